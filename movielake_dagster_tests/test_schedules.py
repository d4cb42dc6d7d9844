"""The daily schedule: when it fires, in which time zone, what it runs, and the freshness deadline."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._vendored.croniter import croniter  # croniter, as vendored by Dagster

from movielake_dagster.automation.schedules import (
    DAILY_JOB,
    DAILY_SCHEDULE,
    LAKE_WRITER_TAG,
    access_freshness_policy,
)
from movielake_dagster.code_location import build_definitions
from movielake_dagster.errors import ConfigurationError
from movielake_dagster.settings import Settings


def _schedule(**settings) -> dg.ScheduleDefinition:
    return build_definitions(Settings(**settings)).resolve_schedule_def(DAILY_SCHEDULE)


def test_defaults_start_at_six_utc_for_the_daily_job():
    schedule = _schedule()
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == DAILY_JOB
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_start_time_and_time_zone_come_from_the_settings():
    schedule = _schedule(schedule_time="05:30", schedule_timezone="Europe/Berlin", automation="running")
    assert schedule.cron_schedule == "30 5 * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    berlin = ZoneInfo("Europe/Berlin")
    fires = croniter(schedule.cron_schedule, datetime(2026, 11, 25, 23, 0, tzinfo=berlin)).get_next(datetime)
    assert fires == datetime(2026, 11, 26, 5, 30, tzinfo=berlin)


def test_evaluation_requests_the_previous_day_of_the_schedule_time_zone():
    defs = build_definitions(Settings(schedule_timezone="Europe/Berlin"))
    schedule = defs.resolve_schedule_def(DAILY_SCHEDULE)
    # 06:00 in Berlin on 26 November is 05:00 UTC: the batch to load is the one of the 25th.
    tick = datetime(2026, 11, 26, 6, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def()) as context:
        requests = list(schedule.evaluate_tick(context).run_requests)
    assert len(requests) == 1
    request = requests[0]
    assert request.partition_key == "2026-11-25"
    assert request.run_key == "2026-11-25"
    assert request.tags[LAKE_WRITER_TAG] == "true"
    # the day's batch and what depends on it; the movie and user snapshots only when their files change
    selected = {k.to_user_string() for k in request.asset_selection}
    assert {"staging/rating_batch", "cleanse/ratings", "access/fct_rating", "analytics/top_movies"} <= selected
    assert not selected & {"staging/movies", "cleanse/movies", "cleanse/users", "access/dim_user"}


def test_the_daily_job_is_partitioned_by_day_and_full_builds_are_not():
    defs = build_definitions(Settings())
    daily = defs.resolve_job_def(DAILY_JOB)
    assert isinstance(daily.partitions_def, dg.DailyPartitionsDefinition)
    assert daily.partitions_def.has_partition_key("2026-11-25")
    assert defs.resolve_job_def("materialize_lake").partitions_def is None
    assert daily.op_retry_policy.max_retries == 2 and daily.op_retry_policy.backoff == dg.Backoff.EXPONENTIAL
    staged = {k.to_user_string() for k in daily.asset_layer.executable_asset_keys}
    assert "staging/rating_batch" in staged and "staging/ratings" not in staged


def test_the_access_layer_must_be_fresh_by_seven():
    policy = access_freshness_policy(Settings())
    assert policy.deadline_cron == "0 7 * * *"
    assert policy.lower_bound_delta == timedelta(hours=1)
    assert policy.timezone == "UTC"
    graph = build_definitions(Settings()).resolve_asset_graph()
    fct = graph.get(dg.AssetKey(["access", "fct_rating"]))
    assert fct.freshness_policy == policy
    assert graph.get(dg.AssetKey(["cleanse", "ratings"])).freshness_policy is None


@pytest.mark.parametrize(
    "field, value", [("schedule_time", "6am"), ("schedule_timezone", "Mars/Olympus"), ("automation", "maybe")]
)
def test_bad_schedule_settings_fail_in_one_line(field, value):
    with pytest.raises(ConfigurationError, match=f"MOVIELAKE_{field.upper()}"):
        build_definitions(Settings(**{field: value}))
