"""Crawl a layer whenever its assets materialize: the ``crawl_catalog`` job and its sensor.

The sensor's cursor holds, per layer, the storage id of the newest materialization it has
seen; a tick requests one crawl for every layer with a newer one (however many of the layer's
assets were materialized), and nothing when there is none. Each crawl is a run of
``crawl_catalog`` that records an observation on every crawled dataset's asset, with the table's
statistics and what changed since the last crawl in its metadata.
"""

import json

import dagster as dg

from movielake_dagster.assets import ALL_ASSETS
from movielake_dagster.catalog.model import CatalogTable, CrawlReport
from movielake_dagster.datasets import DECLARED_DATASETS
from movielake_dagster.lake import LAYERS
from movielake_dagster.resources.catalog import CatalogResource

JOB_NAME = "crawl_catalog"


class CrawlConfig(dg.Config):
    layer: str = "access"
    """Which layer to crawl: staging, cleanse or access."""


def crawl_run_config(layer: str) -> dict:
    return {"ops": {"crawl_layer": {"config": {"layer": layer}}}}


@dg.op(out=dg.Out(dg.Nothing), description="Crawl one layer of the lake and register its tables in the catalog.")
def crawl_layer(context: dg.OpExecutionContext, config: CrawlConfig, catalog: CatalogResource):
    report = catalog.crawler().crawl(config.layer)
    for table in report.tables:
        context.log_event(
            dg.AssetObservation(asset_key=table_asset_key(table), metadata=observation_metadata(table, report))
        )
    for line in report.summary_lines() or [f"{config.layer}: no changes since the last crawl"]:
        context.log.info(line)
    for warning in report.warnings:
        context.log.warning(warning)
    yield dg.Output(
        None,
        metadata={
            "layer": config.layer,
            "catalog": report.catalog,
            "tables": len(report.tables),
            "changed": report.changed,
            "changes": dg.MetadataValue.md(changes_markdown(report)),
            "warnings": dg.MetadataValue.json(list(report.warnings)),
            "crawl_seconds": round(report.seconds, 3),
        },
    )


@dg.job(
    name=JOB_NAME,
    description="Crawl one layer (run config `layer`) into the metadata catalog.",
    tags={"movielake/kind": "crawl"},
)
def crawl_catalog_job():
    crawl_layer()


def table_asset_key(table: CatalogTable) -> dg.AssetKey:
    """The asset of the dataset behind a table; ``[layer, table]`` for a discovered, undeclared one."""
    for dataset in DECLARED_DATASETS:
        if dataset.layer == table.database and dataset.name == table.name:
            return dataset.asset_key
    return dg.AssetKey([table.database, table.name])


def observation_metadata(table: CatalogTable, report: CrawlReport) -> dict:
    change = report.change_for(table.qualified_name)
    metadata = {
        "catalog/table": table.qualified_name,
        "catalog/change": change.summary() if change else "",
        "catalog/schema_changed": bool(change and (change.kind == "added" or change.schema_changed)),
        "dagster/row_count": table.record_count,
        "size_bytes": table.size_bytes,
        "files": table.files,
        "classification": table.classification,
        "location": dg.MetadataValue.path(table.location),
        "last_crawled": table.last_crawled,
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(c.name, c.type, description=c.description or None)
                for c in (*table.columns, *table.partition_keys)
            ]
        ),
    }
    if change is not None:
        if change.columns_added and change.kind != "added":
            metadata["columns_added"] = dg.MetadataValue.json(list(change.columns_added))
        if change.columns_removed:
            metadata["columns_removed"] = dg.MetadataValue.json(list(change.columns_removed))
        if change.columns_retyped:
            metadata["columns_retyped"] = dg.MetadataValue.json(
                {name: f"{old} -> {new}" for name, old, new in change.columns_retyped}
            )
    if table.partition_keys:
        metadata["partition_keys"] = dg.MetadataValue.json([k.name for k in table.partition_keys])
    if table.partitions:
        metadata["partitions"] = len(table.partitions)
    if "current_snapshot_id" in table.parameters:  # an Iceberg table
        metadata["iceberg/snapshot_id"] = table.parameters["current_snapshot_id"]
        metadata["iceberg/schema_id"] = table.parameters["schema_id"]
        metadata["iceberg/partition_spec"] = table.parameters["partition_spec"] or "unpartitioned"
    return metadata


def changes_markdown(report: CrawlReport) -> str:
    lines = report.summary_lines()
    if not lines:
        return f"No changes in `{report.layer}` since the last crawl."
    return "\n".join(f"- {line}" for line in lines)


def layer_asset_keys(layer: str) -> list[dg.AssetKey]:
    """The assets whose materialization changes the layer: its datasets, and any other asset keyed
    under the layer's name (the daily ``staging/rating_batch`` partitions land in ``staging/ratings/``)."""

    keys = [d.asset_key for d in DECLARED_DATASETS if d.layer == layer]
    keys += [key for asset in ALL_ASSETS for key in asset.keys if key.path[0] == layer and key not in keys]
    return keys


def crawl_requests(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[dg.RunRequest], str]:
    """The crawls due since ``cursor`` (one per layer with a new materialization) and the new cursor."""
    seen = json.loads(cursor) if cursor else {}
    requests = []
    for layer in LAYERS:
        records = instance.get_asset_records(layer_asset_keys(layer))
        newest = max((r.asset_entry.last_materialization_storage_id or 0 for r in records), default=0)
        if newest > seen.get(layer, 0):
            requests.append(
                dg.RunRequest(
                    run_key=f"crawl-{layer}-{newest}",
                    run_config=crawl_run_config(layer),
                    tags={"movielake/layer": layer},
                )
            )
            seen[layer] = newest
    return requests, json.dumps(seen, sort_keys=True)


IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def run_in_progress(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A run still writing the lake (any job but the crawl itself), or None.

    The crawl waits for it: a build of the whole lake materializes a layer's tables over minutes, and
    crawling after each would register the layer many times (each crawl a run; on AWS, a Glue
    crawler's billed minutes) and show the catalog half-updated in between."""
    records = instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS))
    return next((r.dagster_run for r in records if r.dagster_run.job_name != crawl_catalog_job.name), None)


@dg.sensor(
    name="crawl_on_materialization",
    job=crawl_catalog_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Crawls a layer into the catalog after any of its assets materialized, once no run "
    "that writes the lake is in progress.",
)
def crawl_sensor(context: dg.SensorEvaluationContext):
    busy = run_in_progress(context.instance)
    if busy is not None:  # the cursor stays: the crawl after the run covers all it materialized
        return dg.SkipReason(f"waiting for run {busy.run_id[:8]} ({busy.job_name}) to finish; crawling once it has")
    requests, cursor = crawl_requests(context.instance, context.cursor)
    if not requests:
        return dg.SkipReason("no layer was materialized since the last crawl")
    return dg.SensorResult(run_requests=requests, cursor=cursor)
