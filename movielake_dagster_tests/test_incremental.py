"""Daily rating batches loaded one after the other give the same tables as one full build of both."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from movielake_dagster.automation.schedules import DAILY_BATCH_ASSETS, DAILY_JOB
from movielake_dagster.datasets import (
    ALL_DATASETS,
    ANALYTICS_DATASETS,
    FCT_RATING,
    QUARANTINE_RATINGS,
    RATINGS,
)
from movielake_dagster.settings import Settings
from movielake_dagster.tools.generate import GeneratorSpec, generate_dataset

from .conftest import build_lake, lake_resources, table_rows

DAY1, DAY2 = "2026-11-24", "2026-11-25"
FACTS = "access/ratings-data-mart/fct-rating"
COMPARED = [d for d in ALL_DATASETS if d.layer == "access"] + [RATINGS, *ANALYTICS_DATASETS]


def _year(epoch: int) -> int:
    return datetime.fromtimestamp(epoch, UTC).year


def _valid(line: bytes) -> tuple[int, int, int] | None:
    fields = line.split(b"::")
    try:
        return int(fields[0]), int(fields[1]), int(fields[3])
    except (ValueError, IndexError):
        return None


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> dict:
    """Generated raw files whose ratings are split into two daily batches.

    Day 2 holds the ratings of the latest year, a few re-ratings (later, with another rating) of
    pairs first rated on day 1 in earlier years, and one late rating older than day 1's.
    """
    source = tmp_path_factory.mktemp("generated")
    generate_dataset(source, GeneratorSpec(ratings=1200, movies=120, users=60, seed=11, bad_record_rate=0.01))
    lines = (source / "ratings.dat").read_bytes().splitlines()
    valid = [(line, _valid(line)) for line in lines]
    last_year = max(_year(v[2]) for _, v in valid if v)
    day1 = [line for line, v in valid if not v or _year(v[2]) < last_year]
    day2 = [line for line, v in valid if v and _year(v[2]) == last_year]
    early = [(line, v) for line, v in valid if v and _year(v[2]) < last_year - 2]
    rerated = {}
    stamp = int(datetime(last_year, 6, 1, 12, tzinfo=UTC).timestamp())
    for i, (line, (user, movie, _)) in enumerate(early[:8]):
        rating = b"1" if line.split(b"::")[2] != b"1" else b"5"
        day2.append(b"::".join([str(user).encode(), str(movie).encode(), rating, str(stamp + 7 * i).encode()]))
        rerated[(user, movie)] = float(rating)
    user, movie, epoch = early[10][1]
    day2.append(b"::".join([str(user).encode(), str(movie).encode(), b"3", str(epoch - 86400).encode()]))
    folder = tmp_path_factory.mktemp("landing")
    (folder / "ratings").mkdir()
    for name in ("movies.dat", "users_masterdata.json"):
        (folder / name).write_bytes((source / name).read_bytes())
    (folder / "ratings" / f"{DAY1}.dat").write_bytes(b"\n".join(day1) + b"\n")
    (folder / "ratings" / f"{DAY2}.dat").write_bytes(b"\n".join(day2) + b"\n")
    superseded_years = {_year(v[2]) for _, v in early[:8]}
    return {"dir": folder, "rerated": rerated, "last_year": last_year, "superseded_years": superseded_years}


def _table(spark, lake: Path, dataset) -> list[tuple]:
    """The rows of a table, the lineage columns' paths (which differ between two lakes) as file names."""
    rows = table_rows(lake_resources(lake), dataset)
    value = lambda r, c: Path(r[c]).name if c == "source_file" and r[c] else r[c]  # noqa: E731
    return sorted((tuple(value(r, c) for c in dataset.column_names) for r in rows), key=repr)


def _data_files(lake: Path, dataset) -> dict[str, object]:
    """Data file path -> its partition values, of the table's current snapshot."""
    table = lake_resources(lake)["catalog"].iceberg().table(dataset.layer, dataset.name)
    files = table.inspect.data_files()
    return dict(zip(files.column("file_path").to_pylist(), files.column("partition").to_pylist()))


def _metadata(result, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{key} was not materialized")


def _daily_run(defs, instance, day: str, scheduled: bool = False):
    """The daily job for ``day``: all its assets, or (``scheduled``) those the schedule runs for a day."""
    selection = list(DAILY_BATCH_ASSETS) if scheduled else None
    result = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        partition_key=day, instance=instance, raise_on_error=False, asset_selection=selection
    )
    assert result.success, [e.event_specific_data.error.message for e in result.get_step_failure_events()]
    return result


@pytest.fixture(scope="module")
def loaded(spark, landing, tmp_path_factory) -> dict:
    """The same landing loaded as two daily batches into one lake and as a full build into another."""
    from movielake_dagster.code_location import build_definitions

    incremental_lake = tmp_path_factory.mktemp("incremental-lake")
    settings = Settings.from_env(landing=str(landing["dir"]), lake=str(incremental_lake), step_retries=0)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    cached_before = _cached_rdds(spark)
    first = _daily_run(defs, instance, DAY1)
    before = set(_data_files(incremental_lake, FCT_RATING))
    second = _daily_run(defs, instance, DAY2)
    cached_after = _cached_rdds(spark)
    after = set(_data_files(incremental_lake, FCT_RATING))
    full_lake = tmp_path_factory.mktemp("full-lake")
    build_lake(landing["dir"], full_lake, step_retries=0)
    return {
        "incremental": incremental_lake,
        "full": full_lake,
        "defs": defs,
        "instance": instance,
        "first": first,
        "second": second,
        "untouched_before": before,
        "untouched_after": after,
        "cached_before": cached_before,
        "cached_after": cached_after,
    }


def _cached_rdds(spark) -> int:
    return spark.sparkContext._jsc.getPersistentRDDs().size()


@pytest.mark.slow  # four runs of the whole graph with its checks
def test_two_daily_batches_give_the_tables_of_one_full_build(spark, loaded):
    for dataset in COMPARED:
        incremental, full = _table(spark, loaded["incremental"], dataset), _table(spark, loaded["full"], dataset)
        assert incremental == full, f"{dataset.layer}.{dataset.name} differs from the full build"


@pytest.mark.slow  # four runs of the whole graph with its checks
def test_the_quarantine_is_that_of_the_full_build_superseded_lines_included(spark, loaded):
    incremental = _table(spark, loaded["incremental"], QUARANTINE_RATINGS)
    full = _table(spark, loaded["full"], QUARANTINE_RATINGS)
    where = lambda rows: sorted((Path(r[1]).name, r[2], r[3], r[4]) for r in rows)  # noqa: E731
    assert where(incremental) == where(full)
    moved = _metadata(loaded["second"], "cleanse/ratings")["movielake/superseded_records"]
    assert moved >= 8  # the re-ratings moved day 1's lines into the quarantine, as a full build does


@pytest.mark.slow  # four runs of the whole graph with its checks
def test_a_rerating_in_a_later_batch_wins_and_a_late_older_one_is_quarantined(spark, loaded, landing):
    facts = {
        (r["user_id"], r["movie_id"]): r["rating"]
        for r in table_rows(lake_resources(loaded["incremental"]), FCT_RATING)
    }
    for pair, rating in landing["rerated"].items():
        assert facts[pair] == rating
    reasons = _metadata(loaded["second"], "cleanse/ratings")["movielake/reconciliation"][f"{DAY2}.dat"]["reasons"]
    assert reasons.get("duplicate", 0) >= 1


@pytest.mark.slow  # four runs of the whole graph with its checks
def test_the_second_batch_changes_only_what_it_touches(loaded, landing):
    """No data file of the facts is rewritten: the replaced facts are deleted by position (merge-on-read)
    and the day's facts appended; the same holds for the ratings."""
    assert loaded["untouched_before"] and loaded["untouched_before"] <= loaded["untouched_after"]
    assert len(loaded["untouched_after"] - loaded["untouched_before"]) <= 2 * len(
        {landing["last_year"]} | landing["superseded_years"]
    )
    for key in ("cleanse/ratings", "access/fct_rating"):
        metadata = _metadata(loaded["second"], key)
        assert metadata["movielake/write"] == "row changes", key
        assert metadata["movielake/rows_replaced"] == len(landing["rerated"]), key
    fct = lake_resources(loaded["incremental"])["catalog"].iceberg().table(FCT_RATING.layer, FCT_RATING.name)
    assert fct.inspect.delete_files().num_rows >= 1  # the replaced facts: position deletes


@pytest.mark.slow  # four runs of the whole graph with its checks
def test_daily_runs_release_what_they_cached(loaded):
    """The second batch re-rates stored ratings, so its run cached the replaced rows and their lines too."""
    assert loaded["cached_after"] == loaded["cached_before"]


@pytest.mark.slow  # four runs of the whole graph with its checks
def test_replaying_a_batch_commits_nothing(spark, loaded):
    iceberg = lake_resources(loaded["incremental"])["catalog"].iceberg()
    tables = [*COMPARED, QUARANTINE_RATINGS]
    snapshots = lambda: {d.name: iceberg.table(d.layer, d.name).metadata.current_snapshot_id for d in tables}  # noqa: E731
    before = snapshots()
    replay = _daily_run(loaded["defs"], loaded["instance"], DAY2, scheduled=True)
    assert _metadata(replay, "cleanse/ratings")["movielake/superseded_records"] == 0
    assert _metadata(replay, "access/fct_rating")["movielake/published"] == "unchanged: nothing to commit"
    assert snapshots() == before


def _day_batch(landing: dict, day: str, stars: bytes, month: int) -> None:
    """A batch re-rating 40 of day 1's pairs later than any stored rating."""
    day1_lines = (landing["dir"] / "ratings" / f"{DAY1}.dat").read_bytes().splitlines()
    stamp = int(datetime(landing["last_year"], month, 1, tzinfo=UTC).timestamp())
    batch = [
        b"::".join([str(u).encode(), str(m).encode(), stars, str(stamp + i).encode()])
        for i, (u, m, _) in enumerate(v for v in map(_valid, day1_lines[:40]) if v)
    ]
    (landing["dir"] / "ratings" / f"{day}.dat").write_bytes(b"\n".join(batch) + b"\n")


@pytest.mark.slow  # four runs of the whole graph with its checks
def test_a_compaction_between_days_keeps_the_next_day_incremental(spark, loaded, landing):
    """Compaction commits ``replace`` snapshots (same rows, new files): the next day still applies its
    changes to the facts instead of rebuilding them, and the facts and the analytics' sums stay exact."""
    from movielake_dagster.automation.maintenance import MAINTENANCE_JOB
    from movielake_dagster.datasets import ANALYTICS_BASES, RATING_CHANGES

    tables = [
        f"{d.layer}.{d.name}" for d in (RATINGS, QUARANTINE_RATINGS, RATING_CHANGES, FCT_RATING, *ANALYTICS_BASES)
    ]
    maintained = (
        loaded["defs"]
        .resolve_job_def(MAINTENANCE_JOB)
        .execute_in_process(
            instance=loaded["instance"], run_config={"ops": {"maintain_tables": {"config": {"tables": tables}}}}
        )
    )
    assert maintained.success
    observed = {
        e.asset_key.to_user_string() for e in maintained.all_events if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert observed == {
        d.asset_key.to_user_string()
        for d in (RATINGS, QUARANTINE_RATINGS, RATING_CHANGES, FCT_RATING, *ANALYTICS_BASES)
    }  # only the tables asked for
    iceberg = lake_resources(loaded["incremental"])["catalog"].iceberg()
    assert iceberg.table(RATINGS.layer, RATINGS.name).current_snapshot().summary.operation.value == "replace"
    _day_batch(landing, "2026-11-26", b"2", 8)
    day = _daily_run(loaded["defs"], loaded["instance"], "2026-11-26", scheduled=True)
    assert _metadata(day, "access/fct_rating")["movielake/write"] == "row changes"  # not rebuilt
    facts = {(r[0], r[1]): r[5] for r in _table(spark, loaded["incremental"], FCT_RATING)}
    assert facts == {(r[0], r[1]): r[2] for r in _table(spark, loaded["incremental"], RATINGS)}
    assert sum(r[3] for r in _table(spark, loaded["incremental"], ANALYTICS_BASES[0])) == len(facts)


@pytest.mark.slow  # four runs of the whole graph with its checks
def test_a_day_that_breaks_a_blocking_rule_is_never_published(spark, loaded, landing):
    """A bug forces a duplicated key past the quarantine on day 3: the unique-key check fails, the run
    fails naming it, main keeps yesterday's rows (nothing downstream runs) and the run's branch holds
    the rejected rows for inspection. Runs last: it adds a day to the module's lake."""
    from movielake_dagster.catalog.iceberg import run_branch
    from movielake_dagster.transforms import incremental

    day3 = "2026-11-27"
    _day_batch(landing, day3, b"3", 9)
    resources = lake_resources(loaded["incremental"])
    iceberg = resources["catalog"].iceberg()
    watched = (RATINGS, FCT_RATING)
    before = {d.name: iceberg.table(d.layer, d.name).metadata.current_snapshot_id for d in watched}
    rows_before = _table(spark, loaded["incremental"], RATINGS)
    changed = incremental.changed_rows
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(incremental, "changed_rows", lambda *a: (lambda df: df.unionByName(df.limit(1)))(changed(*a)))
        result = (
            loaded["defs"]
            .resolve_job_def(DAILY_JOB)
            .execute_in_process(partition_key=day3, instance=loaded["instance"], raise_on_error=False)
        )
    assert not result.success
    failed = {
        (e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations() if not e.passed
    }
    assert ("cleanse/ratings", "primary_key_unique") in failed
    assert {d.name: iceberg.table(d.layer, d.name).metadata.current_snapshot_id for d in watched} == before
    assert _table(spark, loaded["incremental"], RATINGS) == rows_before  # readers see yesterday's rows
    assert "access/fct_rating" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    ratings = iceberg.table(RATINGS.layer, RATINGS.name)
    on_branch = ratings.scan(snapshot_id=ratings.metadata.refs[run_branch(result.run_id)].snapshot_id).to_arrow()
    keys = list(zip(on_branch.column("user_id").to_pylist(), on_branch.column("movie_id").to_pylist()))
    assert len(keys) - len(set(keys)) == 1  # the rejected rows, duplicate included, stay inspectable


# -- a failed or killed write leaves the previous version readable ----------------------------------


def _facts(spark, rows: int, fail_after: int | None = None):
    """A small fct_rating-shaped DataFrame over 3 years; with ``fail_after``, a task fails mid-write."""
    from pyspark.sql import functions as F

    ids = spark.range(0, rows, numPartitions=4)
    user = F.col("id").cast("int")
    if fail_after is not None:
        user = F.when(F.col("id") >= fail_after, F.raise_error(F.lit("executor lost mid-write"))).otherwise(user)
    return ids.select(
        user.alias("user_id"),
        (F.col("id") % 50).cast("int").alias("movie_id"),
        F.lit(20010101).alias("date_key"),
        F.timestamp_seconds(F.lit(978307200) + F.col("id")).alias("rated_at"),
        F.lit(0).alias("hour_of_day"),
        F.lit(4.0).alias("rating"),
        (2001 + F.col("id") % 3).cast("int").alias("rating_year"),
    )


@pytest.fixture
def io_manager(spark, tmp_path):
    resources = lake_resources(tmp_path / "lake", step_retries=0)
    return resources["iceberg_io_manager"], resources


def _write(io_manager, obj, run_id: str):
    context = dg.build_output_context(asset_key=FCT_RATING.asset_key, run_id=run_id)
    io_manager.handle_output(context, obj)


def _stored(resources) -> list:
    return sorted(tuple(r.values()) for r in table_rows(resources, FCT_RATING))


def test_a_write_that_fails_midway_leaves_the_previous_table_readable(spark, io_manager):
    manager, resources = io_manager
    _write(manager, _facts(spark, 300), "run-one-0000")
    before = _stored(resources)
    with pytest.raises(Exception, match="executor lost mid-write"):
        _write(manager, _facts(spark, 4000, fail_after=3500), "run-two-0000")
    assert _stored(resources) == before


def test_row_changes_that_fail_midway_leave_every_old_row(spark, io_manager):
    """A day's changes are a DELETE commit then an append on the run's branch: when the append fails
    after the DELETE committed, main still has every old row; a later run applies its changes whole."""
    from pyspark.sql import functions as F

    from movielake_dagster.io_managers.iceberg import RowChanges

    manager, resources = io_manager
    _write(manager, _facts(spark, 300), "run-one-0000")
    before = _stored(resources)
    keys = _facts(spark, 300).where(F.col("rating_year") == 2002).select("user_id", "movie_id")
    failing = _facts(spark, 4000, fail_after=3500).where(F.col("rating_year") == 2002)
    with pytest.raises(Exception, match="executor lost mid-write"):
        _write(manager, RowChanges(deleted=keys, inserted=failing), "run-two-0000")
    assert _stored(resources) == before
    inserted = _facts(spark, 600).where(F.col("rating_year") == 2002)
    _write(manager, RowChanges(delete_where="rating_year = 2002", inserted=inserted), "run-3-0000")
    after = _stored(resources)
    assert [r for r in after if r[-1] != 2002] == [r for r in before if r[-1] != 2002]
    assert len([r for r in after if r[-1] == 2002]) == 200


@pytest.mark.slow  # 12 commits of row changes, then a compaction
def test_twelve_days_of_row_changes_then_a_compaction_keep_the_table_exact(spark, io_manager):
    """12 days (each kind of day recurs: replaced rows in one or several data files, new users), each replacing some stored rows (position deletes) and adding new ones (an append):
    the table equals the rows computed in plain Python after every kind of day, and the maintenance
    job's compaction leaves the same rows in fewer files with no delete file left."""
    from movielake_dagster.automation.maintenance import (
        MaintenanceConfig,
        maintain_table,
    )
    from movielake_dagster.io_managers.iceberg import RowChanges

    manager, resources = io_manager
    columns = [c.name for c in FCT_RATING.columns]
    stamp = datetime(2001, 3, 1, tzinfo=UTC)

    def fact(user: int, movie: int, rating: float, day: int) -> tuple:
        rated = stamp.replace(day=1 + day % 28, hour=day % 24)
        return (user, movie, int(rated.strftime("%Y%m%d")), rated, rated.hour, rating, rated.year)

    expected = {(u, m): fact(u, m, 3.0, 0) for u in range(20) for m in range(10)}
    _write(manager, spark.createDataFrame(list(expected.values()), FCT_RATING.spark_ddl()), "run-day-0000")
    for day in range(1, 13):
        replaced = [(u, m) for (u, m) in sorted(expected) if (u * 7 + m + day) % 23 == 0][:6]
        new = [fact(u, m, 0.5 + (day % 10) / 2, day) for u, m in replaced]
        new += [fact(100 + day, m, 4.5, day) for m in range(3)]
        expected.update({(r[0], r[1]): r for r in new})
        _write(
            manager,
            RowChanges(
                deleted=spark.createDataFrame(replaced, "user_id int, movie_id int"),
                inserted=spark.createDataFrame(new, FCT_RATING.spark_ddl()),
            ),
            f"run-day-{day:04d}",
        )
    iceberg = resources["catalog"].iceberg()
    table = iceberg.table(FCT_RATING.layer, FCT_RATING.name)
    rows = lambda: sorted(tuple(r[c] for c in columns) for r in table_rows(resources, FCT_RATING))  # noqa: E731
    assert rows() == sorted(expected.values())
    files = lambda t: t.inspect.files().column("content").to_pylist()  # noqa: E731  0 data, 1 position deletes
    assert files(table).count(1) > 0  # merge-on-read: the days' deletes are delete files (one per data file)
    figures = maintain_table(
        spark,
        f"{FCT_RATING.layer}.{FCT_RATING.name}",
        table,
        MaintenanceConfig(),
        datetime.now(UTC).replace(tzinfo=None),
    )
    compacted = iceberg.table(FCT_RATING.layer, FCT_RATING.name)
    assert figures["data_files_rewritten"] > figures["data_files_added"] > 0
    assert files(compacted).count(1) == 0 and files(compacted).count(0) < files(table).count(0)
    assert rows() == sorted(expected.values())


def test_leftovers_of_a_killed_run_are_invisible_and_maintenance_removes_them(spark, io_manager):
    """A killed write leaves data files that no snapshot references, and a scratch folder: readers never
    see them, the next write is not disturbed, and once a day old the maintenance job deletes them
    (a younger scratch folder, a live run's, stays)."""
    from movielake_dagster.automation.maintenance import (
        MaintenanceConfig,
        maintain_table,
    )

    manager, resources = io_manager
    _write(manager, _facts(spark, 300), "run-one-0000")
    before = _stored(resources)
    location = Path(resources["lake"].uri(FCT_RATING))
    orphan = location / "data" / "rating_year=2001" / "00000-killed-orphan.parquet"
    orphan.write_bytes(b"PAR1 truncated by kill -9")
    lake = resources["lake"]
    dead, live = (
        Path(lake.scratch("classified-ratings", "deadbeef")),
        Path(lake.scratch("classified-ratings", "running0")),
    )
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"PAR1")
    assert _stored(resources) == before
    _write(manager, _facts(spark, 90), "run-two-0000")
    assert len(_stored(resources)) == 90
    day_ago = time.time() - 25 * 3600
    for path in (orphan, dead, dead / "part-0.parquet"):
        os.utime(path, (day_ago, day_ago))
    session = resources["spark"].get_session()
    table = resources["catalog"].iceberg().table(FCT_RATING.layer, FCT_RATING.name)
    figures = maintain_table(
        session, "access.fct_rating", table, MaintenanceConfig(orphan_days=1), datetime.now(UTC).replace(tzinfo=None)
    )
    assert figures["orphan_files_removed"] >= 1 and not orphan.exists()
    assert lake.sweep_scratch() == [str(dead)] and live.exists()
    assert len(_stored(resources)) == 90
