"""The whole-lake jobs: build everything, build without checks, check without building.

The daily partitioned job is in ``schedules.py`` beside its schedule, the crawl job in ``crawl.py``
beside its sensor, the maintenance job in ``maintenance.py`` beside its schedule.
"""

from __future__ import annotations

import dagster as dg

from movielake_dagster.automation.schedules import WHOLE_LAKE

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


def with_retries(job: dg.UnresolvedAssetJobDefinition, policy: dg.RetryPolicy | None):
    """The same job with the settings' retry policy for its steps."""
    if policy is None:
        return job
    return dg.define_asset_job(
        job.name,
        selection=job.selection,
        description=job.description,
        tags=job.tags,
        partitions_def=job.partitions_def,
        op_retry_policy=policy,
    )
