"""The Dagster code location: assets of the three layers, their resources and jobs.

``build_definitions(settings)`` is the one place where settings become resources; the Dagster
entry point ``defs`` reads the environment only when the code location loads, never at import.
"""

from __future__ import annotations

import dagster as dg

from movielake_dagster.assets.access import access_assets
from movielake_dagster.assets.analytics import analytics_assets
from movielake_dagster.assets.cleanse import cleanse_assets
from movielake_dagster.assets.staging import staging_assets
from movielake_dagster.resources.catalog import CatalogResource
from movielake_dagster.catalog.sensor import crawl_catalog_job, crawl_sensor
from movielake_dagster.checks import build_checks
from movielake_dagster.io_managers import IcebergIOManager, RawFilesIOManager
from movielake_dagster.maintenance import build_maintenance_schedule, maintain_lake
from movielake_dagster.resources import LakeResource, SparkResource
from movielake_dagster.schedules import (
    WHOLE_LAKE,
    access_freshness_policy,
    build_daily_job,
    build_daily_schedule,
    build_full_check_schedule,
    retry_policy,
)
from movielake_dagster.sensors.new_data import build_new_data_sensor
from movielake_dagster.sensors.run_failure import build_run_failure_sensor
from movielake_dagster.settings import Settings

ALL_ASSETS = [*staging_assets, *cleanse_assets, *access_assets, *analytics_assets]
ALL_CHECKS, FRESHNESS_SENSOR = build_checks()

materialize_lake_job = dg.define_asset_job(
    "materialize_lake",
    selection=WHOLE_LAKE,
    description="Build the whole lake: stage the landed files, cleanse them, publish the star schema and its "
                "analytics.",
)
materialize_unchecked_job = dg.define_asset_job(
    "materialize_lake_unchecked",
    selection=WHOLE_LAKE.without_checks(),
    description="Build the whole lake without running its quality checks (nothing is blocked).",
)
check_lake_job = dg.define_asset_job(
    "check_lake",
    selection=dg.AssetSelection.all_asset_checks(),
    description="Run every quality check against the lake as it is stored, materializing nothing.",
)


def build_resources(settings: Settings) -> dict:
    lake = LakeResource(
        url=settings.lake, landing=settings.landing, s3_endpoint=settings.s3_endpoint, s3_region=settings.region
    )
    catalog = CatalogResource(lake=lake, backend=settings.catalog, path=settings.catalog_path,
                              glue_endpoint=settings.glue_endpoint, region=settings.region)
    spark = SparkResource(
        lake=lake,
        catalog=catalog,
        master=settings.spark_master,
        remote=settings.spark_remote,
        driver_memory=settings.spark_driver_memory,
        shuffle_partitions=settings.spark_shuffle_partitions,
        engine=settings.spark_engine,
        jars_dir=settings.jars_dir,
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
    whole run (see ``resources/spark.py``).
    """
    retries = retry_policy(settings)
    lake_jobs = [with_retries(job, retries) for job in (materialize_lake_job, materialize_unchecked_job)]
    daily_job = build_daily_job(settings)
    access = dg.AssetSelection.groups("access")
    defs = dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[*lake_jobs, daily_job, check_lake_job, crawl_catalog_job, maintain_lake],
        schedules=[build_daily_schedule(settings, daily_job), build_maintenance_schedule(settings),
                   build_full_check_schedule(settings, check_lake_job)],
        sensors=[FRESHNESS_SENSOR, crawl_sensor, build_new_data_sensor(settings, [daily_job, lake_jobs[0]]),
                 build_run_failure_sensor(settings)],
        resources=build_resources(settings),
        executor=dg.in_process_executor,
    )
    fresh = access_freshness_policy(settings)  # the access layer is late when not updated by fresh_by
    return defs.map_resolved_asset_specs(func=lambda spec: dg.apply_freshness_policy(spec, fresh), selection=access)


def with_retries(job: dg.UnresolvedAssetJobDefinition, policy: dg.RetryPolicy | None):
    """The same job with the settings' retry policy for its steps."""
    if policy is None:
        return job
    return dg.define_asset_job(job.name, selection=job.selection, description=job.description, tags=job.tags,
                               partitions_def=job.partitions_def, op_retry_policy=policy)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
