"""The daily update: a partitioned job, the schedule that runs it, and the deadline it must meet.

Every morning at ``schedule_time`` (``schedule_timezone``) the schedule runs ``daily_lake_update`` for
the previous day, for the assets that day's batch changes (``DAILY_BATCH_ASSETS``): the ratings batch
(``ratings/<day>.dat`` in the landing location) is cleansed on its own and merged, rewriting only
the fact partitions it changes, and the analytics are recomputed. Movies and user master data are
full snapshots, rebuilt when their files change (the new-data sensor) or in a run of the whole job
(on a new lake, the first daily run from the UI builds everything). The access layer carries a cron
freshness policy with the ``fresh_by`` deadline, so the UI flags it when that run did not land in time.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from movielake_dagster.assets.staging import (
    RATING_DAYS,
    staging_rating_batch,
    staging_ratings,
)
from movielake_dagster.datasets import (
    ANALYTICS_DATASETS,
    DIM_DATE,
    FCT_RATING,
    QUARANTINE_RATINGS,
    RATING_CHANGES,
    RATINGS,
)
from movielake_dagster.errors import ConfigurationError
from movielake_dagster.settings import Settings

DAILY_JOB = "daily_lake_update"
DAILY_SCHEDULE = "daily_lake_update_schedule"
LAKE_WRITER_TAG = "movielake/writes-lake"  # runs with this tag are queued one at a time (deploy/dagster.yaml)

# A full build re-reads every staged rating file; the per-day staging asset belongs to the daily job only.
WHOLE_LAKE = dg.AssetSelection.all() - dg.AssetSelection.assets(staging_rating_batch)
DAILY_UPDATE = dg.AssetSelection.all() - dg.AssetSelection.assets(staging_ratings)
# What one day's batch changes, and so what the schedule and the new-data sensor run for a day (with
# the checks of these assets): the movie and user snapshots are rebuilt only when their files change.
ANALYTICS_ASSETS = tuple(d.asset_key for d in ANALYTICS_DATASETS)
DAILY_BATCH_ASSETS = (
    staging_rating_batch.key,
    RATINGS.asset_key,
    QUARANTINE_RATINGS.asset_key,
    RATING_CHANGES.asset_key,
    FCT_RATING.asset_key,
    DIM_DATE.asset_key,
    *ANALYTICS_ASSETS,
)


def retry_policy(settings: Settings) -> dg.RetryPolicy | None:
    """Retries with exponential backoff and jitter for transient failures (S3 throttling, a dropped
    connection, a lost executor). Problems a retry cannot fix (a missing file, bad settings) are
    raised as non-retryable failures and fail at once."""
    if settings.step_retries <= 0:
        return None
    return dg.RetryPolicy(
        max_retries=settings.step_retries,
        delay=settings.retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def parse_clock(value: str, name: str) -> time:
    try:
        hour, minute = (int(part) for part in value.split(":"))
        return time(hour, minute)
    except ValueError:
        raise ConfigurationError(
            f"MOVIELAKE_{name.upper()}={value!r} is not a time of day",
            f"set MOVIELAKE_{name.upper()} as HH:MM, e.g. 06:00",
        ) from None


def timezone_of(settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.schedule_timezone)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError or a malformed key
        raise ConfigurationError(
            f"MOVIELAKE_SCHEDULE_TIMEZONE={settings.schedule_timezone!r} is not a time zone",
            "use an IANA name such as UTC or Europe/Berlin",
        ) from None


def daily_cron(clock: time) -> str:
    return f"{clock.minute} {clock.hour} * * *"


def build_daily_job(settings: Settings) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DAILY_JOB,
        selection=DAILY_UPDATE,
        partitions_def=RATING_DAYS,
        op_retry_policy=retry_policy(settings),
        tags={LAKE_WRITER_TAG: "true"},
        description="One day's update: load that day's ratings batch incrementally and refresh what depends "
        "on it. The schedule and the new-data sensor run only those assets; launched here for all "
        "assets, it also rebuilds the movie and user snapshots (as a first run on a new lake must). "
        "Partitioned by day; a backfill of several days runs one run per day.",
    )


def build_daily_schedule(settings: Settings, job) -> dg.ScheduleDefinition:
    """At ``schedule_time`` every day, run ``daily_lake_update`` for the previous (local) day."""
    tz = timezone_of(settings)
    start = parse_clock(settings.schedule_time, "schedule_time")
    fresh_by = parse_clock(settings.fresh_by, "fresh_by")

    def previous_day(context: dg.ScheduleEvaluationContext):
        scheduled = context.scheduled_execution_time or datetime.now(tz)
        day = (scheduled.astimezone(tz).date() - timedelta(days=1)).isoformat()
        return dg.RunRequest(
            run_key=day, partition_key=day, asset_selection=list(DAILY_BATCH_ASSETS), tags={LAKE_WRITER_TAG: "true"}
        )

    return dg.ScheduleDefinition(
        name=DAILY_SCHEDULE,
        job=job,
        cron_schedule=daily_cron(start),
        execution_timezone=settings.schedule_timezone,
        execution_fn=previous_day,
        default_status=default_status(settings, dg.DefaultScheduleStatus),
        description=f"Daily at {settings.schedule_time} {settings.schedule_timezone}: load yesterday's ratings "
        f"batch (and recompute the analytics), so that the access layer is fresh by {fresh_by:%H:%M}. "
        "Movie and user snapshots are rebuilt by the new_landed_files sensor when their files change.",
    )


FULL_CHECK_SCHEDULE = "weekly_full_check_schedule"


def build_full_check_schedule(settings: Settings, job) -> dg.ScheduleDefinition:
    """Saturdays at 04:00: every check on every row of every table (``check_lake``). A day's load checks
    what it changed; this re-checks everything, against the latest dimensions too."""
    return dg.ScheduleDefinition(
        name=FULL_CHECK_SCHEDULE,
        job=job,
        cron_schedule="0 4 * * 6",
        execution_timezone=settings.schedule_timezone,
        default_status=default_status(settings, dg.DefaultScheduleStatus),
        description="Saturdays 04:00: run every quality check on every row of the lake as it is published "
        "(the daily loads check only the rows they change).",
    )


def access_freshness_policy(settings: Settings) -> dg.FreshnessPolicy:
    """The access layer must have been updated between the schedule's start and ``fresh_by`` each day."""
    start = parse_clock(settings.schedule_time, "schedule_time")
    deadline = parse_clock(settings.fresh_by, "fresh_by")
    window = datetime.combine(datetime.min, deadline) - datetime.combine(datetime.min, start)
    if window <= timedelta(0):
        window += timedelta(days=1)
    return dg.FreshnessPolicy.cron(
        deadline_cron=daily_cron(deadline), lower_bound_delta=window, timezone=settings.schedule_timezone
    )


def default_status(settings: Settings, enum):
    """``MOVIELAKE_AUTOMATION`` as a Dagster default status (of a schedule or a sensor)."""
    if settings.automation not in ("stopped", "running"):
        raise ConfigurationError(
            f"MOVIELAKE_AUTOMATION={settings.automation!r} is not stopped or running",
            "set MOVIELAKE_AUTOMATION=running to start the schedule and sensors, else stopped",
        )
    return enum.RUNNING if settings.automation == "running" else enum.STOPPED
