"""Shared fixtures: one Spark session for the whole test run, a local S3 server, built lakes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from movielake_dagster.settings import SAMPLE_DATA_DIR, Settings

# S3 in tests is a moto server on loopback; it accepts any key. Set before any JVM starts, because
# Spark's S3A reads credentials through the AWS default chain from its process environment.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_REGION", "us-east-1")
# The short-lived JVMs the suite starts (`movielake`, `dagster dev` and `dagster` subprocesses) work
# on small data: the JIT's quick tier only saves about a third of their CPU (docs/performance.md,
# run P). Each pytest worker's own session (the `spark` fixture) lives for the whole suite and keeps
# the optimizing tier: with the quick tier only, the in-process builds ran 30-50% slower.
os.environ.setdefault("MOVIELAKE_SPARK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1")

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens"
ML100K_SEED_FORMAT = REAL_DATA / "ml-100k-seed-format"


def requires_real_data(folder: Path):
    return pytest.mark.skipif(not folder.exists(), reason=f"real MovieLens files not present at {folder}")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The test run's SparkSession (with the S3A jars when `make setup` fetched them)."""
    from movielake_dagster.code_location import build_resources

    settings = Settings.from_env(lake=str(tmp_path_factory.mktemp("spark-lake")), spark_java_options="")
    session = build_resources(settings)["spark"].get_session()
    yield session
    session.stop()


def build_lake(raw_dir: Path | str, lake_dir: Path | str, assets: list[str] | None = None, **overrides):
    """Materialize every asset (or only ``assets``, keys like ``cleanse/movies``, with their checks)
    from ``raw_dir`` into ``lake_dir``; returns (result, resources)."""
    import dagster as dg

    from movielake_dagster.code_location import build_definitions
    from movielake_dagster.tools.runner import materialize_all

    settings = Settings.from_env(landing=str(raw_dir), lake=str(lake_dir), **overrides)
    if assets is None:
        result, resources = materialize_all(settings)
    else:
        defs = build_definitions(settings)
        resources = defs.resources
        result = defs.resolve_job_def("materialize_lake").execute_in_process(
            asset_selection=[dg.AssetKey.from_user_string(a) for a in assets], raise_on_error=False
        )
    assert result.success, [e.event_specific_data.error for e in result.get_step_failure_events()]
    return result, resources


@pytest.fixture(scope="session")
def sample_lake(spark, tmp_path_factory):
    """The bundled sample materialized once into a temporary local lake (shared, read-only)."""
    lake_dir = tmp_path_factory.mktemp("sample-lake")
    result, resources = build_lake(SAMPLE_DATA_DIR, lake_dir)
    return lake_dir, result, resources


@pytest.fixture(scope="session")
def ml100k_lake(spark, tmp_path_factory):
    """Real MovieLens 100k (seed format) materialized once (shared, read-only)."""
    if not ML100K_SEED_FORMAT.exists():
        pytest.skip(f"real MovieLens files not present at {ML100K_SEED_FORMAT}")
    result, resources = build_lake(ML100K_SEED_FORMAT, tmp_path_factory.mktemp("ml100k-lake"))
    return result, resources


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 (and Glue) server on loopback, started for the tests that need it and stopped after."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def table_rows(resources, dataset, snapshot_id: int | None = None) -> list[dict]:
    """A lake table's rows as Python dicts, read with pyiceberg from the lake's own catalog (no Spark,
    so independent of which lake the test run's shared Spark session was last pointed at)."""
    table = resources["catalog"].iceberg().table(dataset.layer, dataset.name)
    assert table is not None, f"{dataset.layer}.{dataset.name} does not exist"
    return table.scan(snapshot_id=snapshot_id).to_arrow().to_pylist()


def spark_table(resources, dataset):
    """A lake table as a Spark DataFrame (its current snapshot), the session pointed at this lake first."""
    from movielake_dagster.io_managers.iceberg import table_name

    return resources["spark"].get_session().table(table_name(dataset))


def lake_resources(lake_dir, **overrides) -> dict:
    """The resources of a local lake (for reading its tables in tests)."""
    from movielake_dagster.code_location import build_resources

    return build_resources(Settings.from_env(lake=str(lake_dir), **overrides))
