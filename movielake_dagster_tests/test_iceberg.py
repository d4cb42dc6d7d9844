"""Lakehouse storage: history, time travel, rollback, schema evolution, snapshot isolation for readers,
maintenance, and a run killed with ``kill -9`` in the middle of its commits (local and on S3).

The expected rows come from pyiceberg reads of earlier snapshots and from builds of the same raw
files, never from the code under test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from movielake_dagster.catalog.iceberg import snapshot_history
from movielake_dagster.datasets import ALL_DATASETS, DIM_DATE, DIM_MOVIE, DIM_USER, FCT_RATING, Column
from movielake_dagster.tools.cli import main
from movielake_dagster.tools.generate import GeneratorSpec, generate_dataset

from .conftest import build_lake, lake_resources, table_rows

TABLES = [d for d in ALL_DATASETS if d.layer in ("cleanse", "access")]
SUM_SQL = "SELECT COUNT(*) AS n, SUM(rating) AS stars FROM access.fct_rating"
# What the kill -9 tests need built first: the fact table, what it is made from and the dimensions its
# key checks read (no analytics, no bridge: their builds prove nothing more about an interrupted commit).
CLEANSE_TABLES = [d for d in TABLES if d.layer == "cleanse"]  # a cleansing step writes all of its outputs
LINEAGE_TABLES = [*CLEANSE_TABLES, DIM_USER, DIM_MOVIE, DIM_DATE, FCT_RATING]
FCT_LINEAGE = [
    "staging/movies",
    "staging/ratings",
    "staging/users",
    *(d.asset_key.to_user_string() for d in LINEAGE_TABLES),
]


def _rows(resources, dataset, snapshot_id=None) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table_rows(resources, dataset, snapshot_id))


def _query(lake: Path, sql: str, *options: str) -> str:
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        assert main(["query", "--lake", str(lake), *options, sql]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate_dataset(folder, GeneratorSpec(ratings=2000, movies=100, users=50, seed=5, bad_record_rate=0.01))
    return folder


@pytest.fixture(scope="module")
def two_versions(spark, raw, tmp_path_factory) -> dict:
    """One lake built twice: from all ratings, then from the first half of them."""
    lake = tmp_path_factory.mktemp("versions") / "lake"
    first, resources = build_lake(raw, lake, step_retries=0)
    fct = resources["catalog"].iceberg().table(FCT_RATING.layer, FCT_RATING.name)
    v1 = {
        "snapshot": fct.metadata.current_snapshot_id,
        "rows": _rows(resources, FCT_RATING),
        "answer": _query(lake, SUM_SQL),
        "run": first.run_id,
    }
    time.sleep(1.1)  # a moment strictly between the two builds, for --as-of TIMESTAMP
    between = datetime.now(UTC)
    time.sleep(1.1)
    half = raw.parent / "raw-half"
    shutil.copytree(raw, half)
    lines = (raw / "ratings.dat").read_bytes().splitlines(keepends=True)
    (half / "ratings.dat").write_bytes(b"".join(lines[: len(lines) // 2]))
    second, _ = build_lake(half, lake, step_retries=0)
    fct = resources["catalog"].iceberg().table(FCT_RATING.layer, FCT_RATING.name)
    v2 = {
        "snapshot": fct.metadata.current_snapshot_id,
        "rows": _rows(resources, FCT_RATING),
        "answer": _query(lake, SUM_SQL),
        "run": second.run_id,
    }
    assert v1["rows"] != v2["rows"]
    return {"lake": lake, "resources": resources, "v1": v1, "v2": v2, "between": between}


def test_history_lists_each_runs_snapshot_with_its_operation_rows_and_run(two_versions, capsys):
    v1, v2 = two_versions["v1"], two_versions["v2"]
    fct = two_versions["resources"]["catalog"].iceberg().table(FCT_RATING.layer, FCT_RATING.name)
    history = {s.snapshot_id: s for s in snapshot_history(fct)}
    assert history[v1["snapshot"]].run_id == v1["run"] and history[v2["snapshot"]].run_id == v2["run"]
    assert history[v1["snapshot"]].total_records == len(v1["rows"])
    assert history[v2["snapshot"]].total_records == len(v2["rows"])
    assert history[v2["snapshot"]].deleted_records == len(v1["rows"])  # the second build replaced every row
    assert history[v2["snapshot"]].operation == "overwrite" and "main" in history[v2["snapshot"]].refs
    assert main(["history", "access.fct_rating", "--lake", str(two_versions["lake"])]) == 0
    out = capsys.readouterr().out
    assert str(v1["snapshot"]) in out and str(v2["snapshot"]) in out and v2["run"][:8] in out
    assert f"+{len(v2['rows'])}" in out and f"-{len(v1['rows'])}" in out


def test_time_travel_answers_as_of_a_snapshot_or_a_timestamp(two_versions):
    lake, v1, v2 = two_versions["lake"], two_versions["v1"], two_versions["v2"]
    assert v1["answer"] != v2["answer"]
    table = lambda out: out.split("(", 1)[0]  # noqa: E731 - the printed rows, without the timing line
    assert table(_query(lake, SUM_SQL)) == table(v2["answer"])
    assert table(_query(lake, SUM_SQL, "--as-of", str(v1["snapshot"]))) == table(v1["answer"])
    assert table(_query(lake, SUM_SQL, "--as-of", two_versions["between"].isoformat())) == table(v1["answer"])
    before_everything = "2000-01-01T00:00:00"
    assert "| 0 " in _query(lake, SUM_SQL, "--as-of", before_everything)


def test_rollback_restores_exactly_the_earlier_rows_and_can_be_undone(two_versions, capsys):
    lake, resources, v1, v2 = two_versions["lake"], two_versions["resources"], two_versions["v1"], two_versions["v2"]
    assert main(["rollback", "access.fct_rating", "--to", str(v1["snapshot"]), "--lake", str(lake)]) == 0
    assert f"{v2['snapshot']} -> {v1['snapshot']}" in capsys.readouterr().out
    assert _rows(resources, FCT_RATING) == v1["rows"]
    assert main(["rollback", "access.fct_rating", "--to", str(v2["snapshot"]), "--lake", str(lake)]) == 0
    assert _rows(resources, FCT_RATING) == v2["rows"]
    assert main(["rollback", "access.fct_rating", "--to", "12345", "--lake", str(lake)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no snapshot 12345" in err and "movielake history" in err


def test_adding_a_declared_column_evolves_the_table_in_place_and_the_crawl_reports_it(two_versions, monkeypatch):
    """A new column in a dataset's declaration: an ALTER TABLE, no data rewritten, no new snapshot; the old
    rows read it as NULL, and the crawler reports the added column from Iceberg's schema history."""
    from movielake_dagster.catalog import build_crawler
    from movielake_dagster.catalog.local import LocalCatalog
    from movielake_dagster.io_managers.iceberg import ensure_table
    from movielake_dagster.lake import LakeLocation, ObjectStore

    resources = two_versions["resources"]
    iceberg = resources["catalog"].iceberg()
    crawler = build_crawler(
        LakeLocation.parse(str(two_versions["lake"])),
        ObjectStore(),
        LocalCatalog(two_versions["lake"].parent / "crawl.db"),
        iceberg,
    )
    crawler.crawl("access")
    before = iceberg.table(DIM_MOVIE.layer, DIM_MOVIE.name)
    files_before = set(before.inspect.data_files().column("file_path").to_pylist())
    extended = replace(DIM_MOVIE, columns=(*DIM_MOVIE.columns, Column("runtime_minutes", "int", "Running time.")))
    statements = ensure_table(
        resources["spark"].get_session(), extended, resources["catalog"].table_location(DIM_MOVIE)
    )
    assert len(statements) == 1 and statements[0].startswith("ALTER TABLE lake.access.dim_movie ADD COLUMN")
    after = iceberg.table(DIM_MOVIE.layer, DIM_MOVIE.name)
    assert after.metadata.current_snapshot_id == before.metadata.current_snapshot_id  # no data rewritten
    assert set(after.inspect.data_files().column("file_path").to_pylist()) == files_before
    field = after.schema().find_field("runtime_minutes")
    assert field.doc == "Running time." and after.schema().schema_id != before.schema().schema_id
    rows = table_rows(resources, DIM_MOVIE)
    assert rows and all(r["runtime_minutes"] is None for r in rows)
    report = crawler.crawl("access")
    assert report.change_for("access.dim_movie").columns_added == ("runtime_minutes",)
    assert "access.dim_movie: column runtime_minutes is in the files but not declared" in report.warnings
    assert ensure_table(resources["spark"].get_session(), extended, "unused") == []  # nothing left to do
    resources["spark"].get_session().sql("ALTER TABLE lake.access.dim_movie DROP COLUMN runtime_minutes")


def test_a_reader_polling_during_commits_sees_only_whole_snapshots(spark, tmp_path):
    """A writer commits overwrites of different sizes while a reader counts the table through pyiceberg
    again and again: every count it sees is the row count of some snapshot."""
    import dagster as dg
    from pyspark.sql import functions as F

    resources = lake_resources(tmp_path / "lake")
    manager = resources["iceberg_io_manager"]
    session = resources["spark"].get_session()

    def facts(rows: int):
        ids = session.range(0, rows, numPartitions=4)
        return ids.select(
            F.col("id").cast("int").alias("user_id"),
            (F.col("id") % 97).cast("int").alias("movie_id"),
            F.lit(20010101).alias("date_key"),
            F.timestamp_seconds(F.lit(978307200) + F.col("id")).alias("rated_at"),
            F.lit(0).alias("hour_of_day"),
            F.lit(4.0).alias("rating"),
            (2001 + F.col("id") % 5).cast("int").alias("rating_year"),
        )

    def write(rows: int, run: str):
        manager.handle_output(dg.build_output_context(asset_key=FCT_RATING.asset_key, run_id=run), facts(rows))

    write(1000, "first000")
    iceberg = resources["catalog"].iceberg()
    seen: list[int] = []
    done = threading.Event()

    def poll():
        while not done.is_set():
            table = iceberg.table(FCT_RATING.layer, FCT_RATING.name)
            seen.append(table.scan().to_arrow().num_rows)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for i, rows in enumerate((3000, 500, 7000, 2000, 9000, 100)):
            write(rows, f"writer{i:02d}")
    finally:
        done.set()
        reader.join()
    totals = {s.total_records for s in snapshot_history(iceberg.table(FCT_RATING.layer, FCT_RATING.name))}
    assert len(seen) >= 20 and set(seen) <= totals
    assert len(set(seen)) >= 3, "the reader polled while the writer committed"


def test_maintenance_expires_old_snapshots_and_compacts_without_changing_a_row(two_versions):
    import dagster as dg

    from movielake_dagster.code_location import build_definitions
    from movielake_dagster.settings import Settings

    resources = two_versions["resources"]
    iceberg = resources["catalog"].iceberg()
    before = {d.name: _rows(resources, d) for d in TABLES}
    snapshots_before = len(iceberg.table(FCT_RATING.layer, FCT_RATING.name).metadata.snapshots)
    defs = build_definitions(Settings(lake=str(two_versions["lake"])))
    result = defs.resolve_job_def("maintain_lake").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config={"ops": {"maintain_tables": {"config": {"retain_days": 0, "retain_last": 1}}}},
    )
    assert result.success
    fct = iceberg.table(FCT_RATING.layer, FCT_RATING.name)
    assert len(fct.metadata.snapshots) < snapshots_before
    assert {d.name: _rows(resources, d) for d in TABLES} == before
    assert not [name for name in fct.metadata.refs if name.startswith("run_")]  # stale run branches dropped
    observed = {e.asset_key for e in result.get_asset_observation_events()}
    assert FCT_RATING.asset_key in observed and DIM_MOVIE.asset_key in observed
    with pytest.raises(Exception):  # noqa: B017 - Spark's error for a lost snapshot; the snapshot the first build made is gone: no time travel to it any more
        table_rows(resources, FCT_RATING, two_versions["v1"]["snapshot"])


# -- kill -9 while a run commits fct_rating --------------------------------------------------------------


def _new_fct_files(lake: str, s3_endpoint: str | None, known: set[str]) -> list[str]:
    if lake.startswith("s3://"):
        import boto3

        s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
        objects = s3.list_objects_v2(Bucket="killed-access", Prefix=f"{FCT_RATING.key}/data/").get("Contents", [])
        found = {f"s3://killed-access/{o['Key']}" for o in objects}
    else:
        found = {str(p) for p in (Path(lake) / "access" / FCT_RATING.key / "data").rglob("*.parquet")}
    return sorted(found - known)


def _kill_during_fct_commit(lake: str, env: dict, s3_endpoint: str | None, known: set[str], tmp_path: Path) -> None:
    """Materialize fct_rating with Dagster's own CLI, in its own process group (its JVM included), and
    kill -9 the group as soon as the run writes the table's data files, before they are committed."""
    home = tmp_path / "dagster-home"
    home.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "movielake_dagster.definitions",
            "--select",
            FCT_RATING.asset_key.to_user_string(),
        ],
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            if _new_fct_files(lake, s3_endpoint, known):
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        assert process.wait(timeout=60) == -signal.SIGKILL, "the run ended before it wrote fct_rating"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _killed_run_leaves_readers_on_whole_snapshots(raw: Path, lake: str, tmp_path: Path, s3_endpoint=None, **overrides):
    from movielake_dagster.code_location import build_definitions
    from movielake_dagster.settings import Settings

    settings = {"step_retries": 0, "catalog_path": str(tmp_path / "catalog.db"), **overrides}
    if s3_endpoint:
        settings["s3_endpoint"] = s3_endpoint
    _, resources = build_lake(raw, lake, assets=FCT_LINEAGE, **settings)
    clean = {d.name: _rows(resources, d) for d in LINEAGE_TABLES}
    iceberg = resources["catalog"].iceberg()
    published = iceberg.table(FCT_RATING.layer, FCT_RATING.name).metadata.current_snapshot_id
    known = set(_new_fct_files(lake, s3_endpoint, set()))
    seen, done = [], threading.Event()

    def poll():
        while not done.is_set():
            seen.append(iceberg.table(FCT_RATING.layer, FCT_RATING.name).scan().to_arrow().num_rows)

    reader = threading.Thread(target=poll)
    reader.start()
    env = {
        "MOVIELAKE_STEP_RETRIES": "0",
        "MOVIELAKE_CATALOG_PATH": settings["catalog_path"],
        "MOVIELAKE_LAKE": lake,
        "MOVIELAKE_LANDING": str(raw),
        **({"MOVIELAKE_S3_ENDPOINT": s3_endpoint} if s3_endpoint else {}),
    }
    try:
        _kill_during_fct_commit(lake, env, s3_endpoint, known, tmp_path)
        time.sleep(0.5)
    finally:
        done.set()
        reader.join()
    fct = iceberg.table(FCT_RATING.layer, FCT_RATING.name)
    assert fct.metadata.current_snapshot_id == published, "the killed run published nothing"
    assert seen and set(seen) == {len(clean[FCT_RATING.name])}, "readers saw only the last good snapshot"
    assert _new_fct_files(lake, s3_endpoint, known), "the killed write left uncommitted files (orphans)"
    defs = build_definitions(Settings.from_env(landing=str(raw), lake=lake, **settings))
    rerun = defs.resolve_job_def("materialize_lake").execute_in_process(  # the next run succeeds ...
        asset_selection=[FCT_RATING.asset_key], raise_on_error=False
    )
    assert rerun.success
    assert iceberg.table(FCT_RATING.layer, FCT_RATING.name).metadata.current_snapshot_id != published
    assert {d.name: _rows(resources, d) for d in LINEAGE_TABLES} == clean  # ... and equals the clean build


@pytest.mark.slow
def test_kill_9_during_the_fct_commit_on_a_local_lake(spark, raw, tmp_path):
    _killed_run_leaves_readers_on_whole_snapshots(raw, str(tmp_path / "lake"), tmp_path)


@pytest.mark.slow
@pytest.mark.s3
def test_kill_9_during_the_fct_commit_on_s3(spark, raw, tmp_path, s3_server):
    _killed_run_leaves_readers_on_whole_snapshots(raw, "s3://killed-{layer}", tmp_path, s3_endpoint=s3_server)
