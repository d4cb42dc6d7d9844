"""The new-data sensor over a landing folder and over S3, and the run-failure sensor's report."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
import dagster as dg
import pytest

from movielake_dagster.automation import new_data
from movielake_dagster.automation.run_failure import SENSOR_NAME as FAILURE_SENSOR
from movielake_dagster.automation.run_failure import failure_report
from movielake_dagster.automation.schedules import DAILY_JOB
from movielake_dagster.code_location import build_definitions
from movielake_dagster.datasets import ANALYTICS_DATASETS
from movielake_dagster.lake import FileInfo
from movielake_dagster.resources import LakeResource
from movielake_dagster.settings import Settings

ANALYTICS = [d.asset_key.to_user_string() for d in ANALYTICS_DATASETS]

OLD = time.time() - 3600  # a file last written an hour ago has settled


def _sensor(landing: str, settle: int = 60, **settings):
    defs = build_definitions(Settings(landing=landing, landing_settle_seconds=settle, **settings))
    return defs.resolve_sensor_def(new_data.SENSOR_NAME)


def _tick(sensor, lake: LakeResource, cursor: str | None):
    """One evaluation: (run requests, skip reason, new cursor)."""
    context = dg.build_sensor_context(cursor=cursor, resources={"lake": lake})
    result = sensor(context)
    requests = result if isinstance(result, list) else []
    skip = result if isinstance(result, dg.SkipReason) else None
    return requests, skip, context.cursor


def _write(path: Path, text: str, mtime: float | None = OLD) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing"
    _write(folder / "movies.dat", "1::Toy Story (1995)::Animation\n")
    _write(folder / "users_masterdata.json", '{"user_id": "1", "firts_name": "A", "last_name": "B"}\n')
    _write(folder / "ratings" / "2026-11-24.dat", "1::1::4::1764000000\n")
    _write(folder / "ratings" / "2026-11-25.dat", "1::1::5::1764086400\n")
    _write(folder / "README.txt", "not an input\n")
    _write(folder / "ratings" / ".2026-11-26.dat.partial", "1::1::")  # a producer's temporary name
    return folder


def _by_file(requests) -> dict:
    return {r.tags[new_data.FILE_TAG]: r for r in requests}


def test_one_run_per_new_file_for_exactly_its_data_then_none(landing, tmp_path):
    lake = LakeResource(url=str(tmp_path / "lake"), landing=str(landing))
    sensor = _sensor(str(landing))
    requests, _, cursor = _tick(sensor, lake, None)
    runs = _by_file(requests)
    assert sorted(runs) == ["movies.dat", "ratings/2026-11-24.dat", "ratings/2026-11-25.dat", "users_masterdata.json"]
    batch = runs["ratings/2026-11-25.dat"]
    assert batch.job_name == DAILY_JOB and batch.partition_key == "2026-11-25"
    assert {k.to_user_string() for k in batch.asset_selection} == {
        "staging/rating_batch",
        "cleanse/ratings",
        "cleanse/quarantine_ratings",
        "cleanse/rating_changes",
        "access/fct_rating",
        "access/dim_date",
        *ANALYTICS,
    }
    movies = runs["movies.dat"]
    assert movies.job_name == "materialize_lake" and movies.partition_key is None
    assert {k.to_user_string() for k in movies.asset_selection} == {
        "staging/movies",
        "cleanse/movies",
        "cleanse/quarantine_movies",
        "access/dim_movie",
        "access/bridge_movie_genre",
        *ANALYTICS,
    }

    requests, skip, cursor = _tick(sensor, lake, cursor)
    assert requests == [] and "no new" in skip.skip_message


def test_a_changed_file_runs_again_and_rewriting_the_same_bytes_does_not(landing, tmp_path):
    lake = LakeResource(url=str(tmp_path / "lake"), landing=str(landing))
    sensor = _sensor(str(landing))
    first, _, cursor = _tick(sensor, lake, None)
    _write(landing / "ratings" / "2026-11-25.dat", "1::1::5::1764086400\n2::1::3::1764090000\n", OLD + 60)
    _write(landing / "movies.dat", "1::Toy Story (1995)::Animation\n", OLD + 60)  # same bytes, new mtime
    requests, _, cursor = _tick(sensor, lake, cursor)
    assert list(_by_file(requests)) == ["ratings/2026-11-25.dat"]
    assert requests[0].run_key != _by_file(first)["ratings/2026-11-25.dat"].run_key
    assert _tick(sensor, lake, cursor)[0] == []


def test_a_file_still_being_written_waits_until_it_has_settled(landing, tmp_path):
    lake = LakeResource(url=str(tmp_path / "lake"), landing=str(landing))
    sensor = _sensor(str(landing))
    _, _, cursor = _tick(sensor, lake, None)
    growing = landing / "ratings" / "2026-11-23.dat"
    _write(growing, "1::2::4::1764172800\n", mtime=None)  # just written: younger than the settle time
    requests, skip, cursor = _tick(sensor, lake, cursor)
    assert requests == [] and "settling" in skip.skip_message
    with growing.open("a") as handle:
        handle.write("2::2::3::1764172900\n")
    assert _tick(sensor, lake, cursor)[0] == []
    os.utime(growing, (OLD, OLD))  # the producer finished a while ago
    requests, _, cursor = _tick(sensor, lake, cursor)
    assert [r.partition_key for r in requests] == ["2026-11-23"]


def test_thousands_of_files_are_handled_a_tick_at_a_time_with_a_small_cursor():
    landing = "s3://landing/drop"
    files = [FileInfo(f"{landing}/ratings/{day}.dat", 10, f"etag-{day}", OLD) for day in _days(3000)]
    seen, total, ticks = {}, [], 0
    while True:
        arrivals, _settling, seen = new_data.scan(files, landing, seen, time.time(), 60, lambda f: f.etag)
        ticks += 1
        if not arrivals:
            break
        assert len(arrivals) <= new_data.MAX_RUNS_PER_TICK
        total += arrivals
    assert len(total) == len({a.key for a in total}) == 3000
    assert ticks == 3000 // new_data.MAX_RUNS_PER_TICK + 1
    assert len(new_data.encode_cursor(seen)) < 60_000
    assert new_data.decode_cursor(new_data.encode_cursor(seen)) == seen


def _days(n: int) -> list[str]:
    from datetime import date, timedelta

    return [(date(2010, 1, 1) + timedelta(days=i)).isoformat() for i in range(n)]


@pytest.mark.s3
def test_over_s3_one_run_per_new_or_changed_object_and_none_for_an_unfinished_upload(s3_server, tmp_path):
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    s3.create_bucket(Bucket="landing-sensor")
    for key, body in [
        ("drop/movies.dat", b"1::Toy Story (1995)::Animation\n"),
        ("drop/ratings/2026-11-24.dat", b"1::1::4::1764000000\n"),
        ("drop/notes.txt", b"not an input\n"),
    ]:
        s3.put_object(Bucket="landing-sensor", Key=key, Body=body)
    landing = "s3://landing-sensor/drop"
    lake = LakeResource(url=str(tmp_path / "lake"), landing=landing, s3_endpoint=s3_server)
    sensor = _sensor(landing, settle=0)
    requests, _, cursor = _tick(sensor, lake, None)
    assert sorted(_by_file(requests)) == ["movies.dat", "ratings/2026-11-24.dat"]
    assert _tick(sensor, lake, cursor)[0] == []

    s3.put_object(Bucket="landing-sensor", Key="drop/ratings/2026-11-24.dat", Body=b"1::1::2::1764000001\n")
    upload = s3.create_multipart_upload(Bucket="landing-sensor", Key="drop/ratings/2026-11-25.dat")
    s3.upload_part(
        Bucket="landing-sensor",
        Key="drop/ratings/2026-11-25.dat",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"1::2::4::1764086400\n",
    )  # not completed: S3 does not list it yet
    requests, _, cursor = _tick(sensor, lake, cursor)
    assert [(r.tags[new_data.FILE_TAG], r.partition_key) for r in requests] == [
        ("ratings/2026-11-24.dat", "2026-11-24")
    ]
    assert _tick(sensor, lake, cursor)[0] == []


@dg.asset
def _breaks_on_purpose() -> None:
    raise ValueError("the S3 connection was reset by peer")


def test_the_failure_report_names_the_run_step_and_error():
    from movielake_dagster.automation.run_failure import build_run_failure_sensor

    instance = dg.DagsterInstance.ephemeral()
    job = dg.define_asset_job("daily_lake_update_test", selection=[_breaks_on_purpose])
    defs = dg.Definitions(assets=[_breaks_on_purpose], jobs=[job])
    result = defs.resolve_job_def("daily_lake_update_test").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name=FAILURE_SENSOR,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
    report = failure_report(context)
    assert report.startswith(f"movielake: run {result.run_id[:8]} of daily_lake_update_test failed: ")
    assert "step _breaks_on_purpose: ValueError: the S3 connection was reset by peer" in report
    sensor = build_run_failure_sensor(Settings(alert_webhook=""))
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    sensor(context)  # logs the report; no webhook configured
