"""Assets, checks and sensors called directly with their contexts (Dagster's ``build_asset_context``, ``build_op_context`` and
``build_sensor_context``), as in Dagster's testing guide: one unit, its inputs, its result and
metadata, no run of the whole lake."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from movielake_dagster.assets.access import bridge_movie_genre, dim_user
from movielake_dagster.assets.staging import staging_movies, staging_rating_batch, staging_users
from movielake_dagster.automation.crawl import crawl_run_config, crawl_sensor
from movielake_dagster.code_location import ALL_CHECKS, build_resources
from movielake_dagster.datasets import BRIDGE_MOVIE_GENRE, DIM_USER, MOVIES, STAGING_RATINGS
from movielake_dagster.errors import InputMissingError
from movielake_dagster.resources import LakeResource
from movielake_dagster.settings import SAMPLE_DATA_DIR, Settings


def _lake(tmp_path: Path, landing: Path) -> LakeResource:
    return LakeResource(url=str(tmp_path / "lake"), landing=str(landing))


def test_a_staging_asset_returns_the_landed_files_it_found(tmp_path):
    staged = staging_movies(context=dg.build_asset_context(), lake=_lake(tmp_path, SAMPLE_DATA_DIR))
    assert staged.names == ("movies.dat",)
    users = staging_users(context=dg.build_asset_context(), lake=_lake(tmp_path, SAMPLE_DATA_DIR))
    assert users.names == (
        "user_masterdata.json",
    )  # staged under the SPEC's name  # MovieLens 1M users.dat is optional


def test_a_staging_asset_names_the_missing_file_in_one_line(tmp_path):
    (tmp_path / "landing").mkdir()
    with pytest.raises(InputMissingError) as raised:
        staging_movies(context=dg.build_asset_context(), lake=_lake(tmp_path, tmp_path / "landing"))
    assert "movies.dat" in str(raised.value) and " -> " in str(raised.value) and "\n" not in str(raised.value)


def test_the_rating_batch_asset_stages_its_partitions_day(tmp_path):
    landing = tmp_path / "landing"
    (landing / "ratings").mkdir(parents=True)
    batch = landing / "ratings" / "2026-11-25.dat"
    batch.write_bytes(b"1::2::4.5::1764028800\n2::3::1::1764032400\n")
    lake = _lake(tmp_path, landing)

    result = staging_rating_batch(context=dg.build_asset_context(partition_key="2026-11-25"), lake=lake)

    staged = Path(lake.uri(STAGING_RATINGS, "2026-11-25.dat"))
    assert staged.read_bytes() == batch.read_bytes()
    assert result.metadata["bytes"] == batch.stat().st_size
    assert result.metadata["dagster/uri"] == dg.MetadataValue.path(str(staged))
    with pytest.raises(InputMissingError, match=r"no ratings batch for 2026-11-26"):
        staging_rating_batch(context=dg.build_asset_context(partition_key="2026-11-26"), lake=lake)


def test_access_assets_are_pure_functions_of_their_inputs(spark):
    movies = spark.createDataFrame(
        [(1, "Heat", 1995, ["Action", "Crime"], "Heat (1995)"), (2, "Nameless", None, [], "Nameless")],
        MOVIES.spark_ddl(),
    )
    bridge = bridge_movie_genre(movies=movies)
    assert bridge.columns == BRIDGE_MOVIE_GENRE.column_names
    assert sorted(tuple(r) for r in bridge.collect()) == [(1, "Action"), (1, "Crime")]  # no genres, no row

    users = spark.createDataFrame(
        [(7, "Ada", "Lovelace", None, None, None, None)],
        "user_id int, first_name string, last_name string, gender string, age_group string, "
        "occupation string, zip string",
    )
    dim = dim_user(users=users)
    assert dim.columns == DIM_USER.column_names
    assert [r.user_id for r in dim.collect()] == [7]


def test_the_crawl_sensor_requests_one_crawl_per_layer_that_changed():
    instance = dg.DagsterInstance.ephemeral()
    first = crawl_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(first, dg.SkipReason)

    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=dg.AssetKey(["access", "dim_user"])))
    changed = crawl_sensor(dg.build_sensor_context(instance=instance))
    assert [r.run_config for r in changed.run_requests] == [crawl_run_config("access")]
    assert changed.run_requests[0].tags == {"movielake/layer": "access"}

    again = crawl_sensor(dg.build_sensor_context(instance=instance, cursor=changed.cursor))
    assert isinstance(again, dg.SkipReason)  # the cursor remembers what was crawled


def test_the_crawl_sensor_waits_while_a_run_writes_the_lake():
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=dg.AssetKey(["access", "dim_user"])))
    instance.add_run(dg.DagsterRun(job_name="crawl_catalog", run_id="c" * 36, status=dg.DagsterRunStatus.STARTED))
    crawled = crawl_sensor(dg.build_sensor_context(instance=instance))
    assert len(crawled.run_requests) == 1  # a crawl in progress does not hold the next one back

    instance.add_run(dg.DagsterRun(job_name="materialize_lake", run_id="a" * 36, status=dg.DagsterRunStatus.STARTED))
    waiting = crawl_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(waiting, dg.SkipReason) and "aaaaaaaa (materialize_lake)" in waiting.skip_message


def _check_results(checks_def, spark, tmp_path, **inputs) -> dict[str, dg.AssetCheckResult]:
    """A table's multi-asset check called directly: its inputs as DataFrames, an empty lake behind it."""
    resources = build_resources(Settings.from_env(lake=str(tmp_path / "lake")))
    with dg.build_op_context(resources={"spark": resources["spark"]}) as context:
        return {r.check_name: r for r in checks_def(context, **inputs)}


def test_a_tables_checks_pass_on_good_rows_and_name_what_fails_on_bad_ones(spark, tmp_path):
    checks = next(c for c in ALL_CHECKS if c.node_def.name == "access_bridge_movie_genre_checks")
    dims = spark.createDataFrame([(1,), (2,)], "movie_id int")
    good = spark.createDataFrame([(1, "Action"), (1, "Crime"), (2, "Drama")], BRIDGE_MOVIE_GENRE.spark_ddl())
    movies = spark.createDataFrame(
        [(1, "Heat", 1995, ["Action", "Crime"], "Heat (1995)"), (2, "Babe", 1995, ["Drama"], "Babe (1995)")],
        MOVIES.spark_ddl(),
    )

    passed = _check_results(checks, spark, tmp_path, table=good, parent_movie_id=dims, source=movies)
    assert {name for name, r in passed.items() if not r.passed} == set()
    assert passed["primary_key_unique"].metadata["rows_checked"].value == 3
    assert passed["reconciliation"].passed
    # the check ran on rows no run of this lake wrote: nothing to publish
    assert passed["not_empty"].metadata["movielake/published"].value.startswith("not applicable")

    bad = spark.createDataFrame([(1, "Action"), (1, "Action"), (3, None)], BRIDGE_MOVIE_GENRE.spark_ddl())
    failed = _check_results(checks, spark, tmp_path, table=bad, parent_movie_id=dims, source=movies)
    # the rows beyond the first per key fail uniqueness; the NULL genre fails not_null
    assert not failed["primary_key_unique"].passed and failed["primary_key_unique"].metadata["failed_rows"].value == 1
    assert not failed["not_null"].passed and failed["not_null"].metadata["failed_rows"].value == 1
    assert not failed["movie_id_references_dim_movie"].passed
    assert failed["movie_id_references_dim_movie"].metadata["failed_rows"].value == 1
    assert failed["primary_key_unique"].severity == dg.AssetCheckSeverity.ERROR
    assert "failing_rows" in failed["primary_key_unique"].metadata
