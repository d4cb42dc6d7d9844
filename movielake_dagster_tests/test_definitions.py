"""The code location loads, and what the UI shows is there: groups, descriptions, schemas."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from movielake_dagster.code_location import build_definitions, build_resources
from movielake_dagster.datasets import ALL_DATASETS
from movielake_dagster.errors import ConfigurationError
from movielake_dagster.settings import Settings


def _defs(tmp_path) -> dg.Definitions:
    return build_definitions(Settings(lake=str(tmp_path / "lake")))


def test_definitions_load_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MOVIELAKE_LAKE", str(tmp_path / "lake"))
    from movielake_dagster.definitions import defs

    loaded = defs() if callable(defs) else defs
    assert loaded.resolve_job_def("materialize_lake") is not None
    assert loaded.resources["lake"].url == str(tmp_path / "lake")


def test_every_dataset_is_an_asset_in_its_layer_group(tmp_path):
    graph = _defs(tmp_path).resolve_asset_graph()
    for dataset in ALL_DATASETS:
        node = graph.get(dataset.asset_key)
        assert node.group_name == dataset.layer, dataset.name
        assert node.description and len(node.description) > 40, dataset.name


def test_star_schema_depends_on_the_cleanse_layer(tmp_path):
    graph = _defs(tmp_path).resolve_asset_graph()
    parents = lambda *path: {k.to_user_string() for k in graph.get(dg.AssetKey(list(path))).parent_keys}  # noqa: E731
    # the facts are the cleansed ratings; a day's load applies the change log instead of re-reading them
    assert parents("access", "fct_rating") == {"cleanse/ratings", "cleanse/rating_changes"}
    assert parents("cleanse", "ratings") >= {"staging/ratings", "cleanse/users", "cleanse/movies"}
    assert parents("cleanse", "movies") == {"staging/movies"}


def test_one_process_runs_the_whole_job(tmp_path):
    """The in-process executor: one Spark JVM per run, not one per step."""
    job = _defs(tmp_path).resolve_job_def("materialize_lake")
    assert job.executor_def.name == dg.in_process_executor.name


def test_extra_spark_properties_override_the_lakes_own():
    settings = Settings.from_env({"MOVIELAKE_SPARK_CONF": "spark.driver.memory=2g, spark.some.flag=a=b,"})
    conf = build_resources(settings)["spark"].spark_conf()
    assert conf["spark.driver.memory"] == "2g"  # the lake's default is 1536m
    assert conf["spark.some.flag"] == "a=b"
    assert conf["spark.sql.session.timeZone"] == "UTC"  # the lake's own settings stay otherwise


def test_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "MOVIELAKE_LAKE": "s3://",
            "MOVIELAKE_SPARK_MASTER": "spark://spark-master:7077",
            "MOVIELAKE_SPARK_SHUFFLE_PARTITIONS": "200",
            "AWS_ENDPOINT_URL_S3": "http://minio:9000",
            "AWS_REGION": "eu-west-1",
        },
        landing="s3://landing/raw",
    )
    assert (settings.lake, settings.spark_master, settings.spark_shuffle_partitions) == (
        "s3://",
        "spark://spark-master:7077",
        200,
    )
    assert (settings.s3_endpoint, settings.region, settings.landing) == (
        "http://minio:9000",
        "eu-west-1",
        "s3://landing/raw",
    )


def test_the_lakes_jvm_runs_the_parallel_collector(spark):
    """The throughput collector the benchmark chose (docs/performance.md), in the JVM Spark really started."""
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    collectors = {bean.getName() for bean in management.getGarbageCollectorMXBeans()}
    assert collectors == {"PS Scavenge", "PS MarkSweep"}, collectors


def test_java_options_go_to_the_driver_and_on_a_cluster_to_the_executors():
    def conf(**env):
        return build_resources(Settings.from_env({"MOVIELAKE_SPARK_JAVA_OPTIONS": "-Xss4m", **env}))[
            "spark"
        ].spark_conf()

    local = conf()
    assert local["spark.driver.extraJavaOptions"].endswith("-XX:+UseParallelGC -Xss4m")  # after the lake's own
    assert "spark.executor.extraJavaOptions" not in local  # local mode: the driver is the executor
    cluster = conf(MOVIELAKE_SPARK_MASTER="spark://master:7077")
    assert cluster["spark.executor.extraJavaOptions"] == "-Xss4m"
    assert "spark.executor.extraJavaOptions" not in build_resources(Settings())["spark"].spark_conf()


COMET_PROBE = """
import sys
from movielake_dagster.code_location import build_resources
from movielake_dagster.resources.spark import comet_status
from movielake_dagster.settings import Settings

spark = build_resources(Settings.from_env(lake=sys.argv[1] + "/lake"))["spark"].get_session()
print("status:", comet_status(spark))
spark.range(10_000).selectExpr("id", "id % 7 AS k").write.parquet(sys.argv[1] + "/numbers")
query = spark.read.parquet(sys.argv[1] + "/numbers").where("id > 100").groupBy("k").count()
print("rows:", sorted(tuple(r) for r in query.collect()))
print("plan:", query._jdf.queryExecution().executedPlan().toString().replace(chr(10), " "))
"""


def test_comet_when_chosen_loads_and_runs_queries_natively(tmp_path):
    """MOVIELAKE_SPARK_ENGINE=comet (its own JVM: the plugin is fixed when Spark starts): the native
    library is loaded, and a scan-filter-aggregate of Parquet runs as Comet operators with Spark's
    answer."""
    env = {**os.environ, "MOVIELAKE_SPARK_ENGINE": "comet"}
    done = subprocess.run(
        [sys.executable, "-c", COMET_PROBE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    lines = {line.split(":", 1)[0]: line.split(": ", 1)[1] for line in done.stdout.splitlines() if ": " in line}
    assert done.returncode == 0, done.stderr[-2000:]
    assert lines["status"] == "None"
    expected = sorted((k, sum(1 for i in range(101, 10_000) if i % 7 == k)) for k in range(7))
    assert lines["rows"] == str(expected)
    assert "CometHashAggregate" in lines["plan"] and (
        "CometScan" in lines["plan"] or "CometNativeScan" in lines["plan"]
    )


def test_the_engine_setting_turns_comet_off_and_names_bad_values():
    from movielake_dagster.resources.spark import COMET_PLUGIN

    comet = build_resources(Settings.from_env({"MOVIELAKE_SPARK_ENGINE": "comet"}))["spark"].spark_conf()
    assert comet["spark.plugins"] == COMET_PLUGIN and comet["spark.memory.offHeap.enabled"] == "true"
    spark_only = build_resources(Settings())["spark"].spark_conf()  # the default
    assert not any(k == "spark.plugins" or k.startswith("spark.comet.") for k in spark_only)
    assert "spark.shuffle.manager" not in spark_only and "spark.memory.offHeap.enabled" not in spark_only
    with pytest.raises(ConfigurationError, match=r"MOVIELAKE_SPARK_ENGINE='turbo'.*comet, spark"):
        Settings.from_env({"MOVIELAKE_SPARK_ENGINE": "turbo"})
