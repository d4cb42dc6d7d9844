"""The Dagster code location built from settings: assets, checks, automation, resources.

``definitions.py`` is the entry point Dagster loads (``defs``, reading the environment when the code
location loads, never at import); everything that needs the definitions for given settings (the
CLI, the bench, the tests) calls ``build_definitions`` here, so the entry point is imported by nobody.
"""

from __future__ import annotations

import dagster as dg

from movielake_dagster.assets import ALL_ASSETS
from movielake_dagster.automation import build_automation
from movielake_dagster.automation.schedules import access_freshness_policy
from movielake_dagster.checks import build_checks
from movielake_dagster.io_managers import IcebergIOManager, RawFilesIOManager
from movielake_dagster.resources import CatalogResource, LakeResource, SparkResource
from movielake_dagster.settings import Settings

ALL_CHECKS = build_checks()


def build_resources(settings: Settings) -> dict:
    """The one mapping from settings to resources, keyed as the assets and IO managers ask for them."""
    lake = LakeResource(
        url=settings.lake, landing=settings.landing, s3_endpoint=settings.s3_endpoint, s3_region=settings.region
    )
    catalog = CatalogResource(
        lake=lake,
        backend=settings.catalog,
        path=settings.catalog_path,
        glue_endpoint=settings.glue_endpoint,
        region=settings.region,
    )
    spark = SparkResource(
        lake=lake,
        catalog=catalog,
        master=settings.spark_master,
        remote=settings.spark_remote,
        driver_memory=settings.spark_driver_memory,
        shuffle_partitions=settings.spark_shuffle_partitions,
        engine=settings.spark_engine,
        jars_dir=settings.jars_dir,
        java_options=settings.spark_java_options,
        extra_conf=settings.extra_spark_conf,
    )
    return {
        "lake": lake,
        "spark": spark,
        "iceberg_io_manager": IcebergIOManager(spark=spark),
        "raw_files_io_manager": RawFilesIOManager(lake=lake),
        "catalog": catalog,
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    """All of movielake's definitions for the given settings.

    The in-process executor runs every step of a run in one process, so one Spark JVM serves the
    whole run (see ``resources/spark.py``). The access layer carries the cron freshness policy of
    ``fresh_by``: the UI flags a table that the daily run did not update in time.
    """
    automation = build_automation(settings)
    defs = dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=automation.sensors,
        resources=build_resources(settings),
        executor=dg.in_process_executor,
    )
    fresh = access_freshness_policy(settings)
    return defs.map_resolved_asset_specs(
        func=lambda spec: dg.apply_freshness_policy(spec, fresh), selection=dg.AssetSelection.groups("access")
    )
