"""Table maintenance: compaction, snapshot expiry, orphan files, stale run branches; a job and its schedule.

Iceberg keeps every snapshot until it is expired, and merge-on-read loads add small delete files;
both are Iceberg's own jobs, run here with Iceberg's Spark procedures
(https://iceberg.apache.org/docs/latest/spark-procedures/) on every cleanse and access table:

1. ``rewrite_data_files``: small data files are compacted, and data files that delete files touch
   are rewritten with the deletes applied (readers then skip no rows at scan time);
2. ``rewrite_position_delete_files``: the delete files that remain are compacted;
3. ``expire_snapshots``: snapshots older than ``retain_days`` go (their unreferenced files with
   them), the newest ``retain_last`` always stay; until then ``movielake rollback`` and time travel
   reach them;
4. ``remove_orphan_files``: files no snapshot references (left by killed writers), older than
   ``orphan_days`` (younger ones may belong to a commit in progress);
5. run branches (write-audit-publish) older than ``retain_days`` are dropped.

Each table's figures are recorded as an observation on its asset, so the UI shows when it was last
maintained and what that did.
"""

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from movielake_dagster.automation.schedules import default_status
from movielake_dagster.catalog.iceberg import RUN_BRANCH_PREFIX, SPARK_CATALOG
from movielake_dagster.datasets import dataset_for_table
from movielake_dagster.resources.catalog import CatalogResource
from movielake_dagster.resources.lake import LakeResource
from movielake_dagster.resources.spark import SparkResource
from movielake_dagster.settings import Settings

MAINTENANCE_JOB = "maintain_lake"
MAINTENANCE_SCHEDULE = "weekly_maintenance_schedule"


class MaintenanceConfig(dg.Config):
    retain_days: int = 7
    """Snapshots (and run branches) younger than this many days are kept for rollback and time travel."""
    retain_last: int = 5
    """The newest snapshots of a table kept whatever their age."""
    orphan_days: int = Field(default=3, ge=1)
    """Files no snapshot references are removed once they are this many days old (at least 1: younger
    ones may belong to a commit in progress, and Iceberg refuses less than 24 hours)."""
    target_file_mb: int = 128
    """Compaction writes data files of about this size."""
    tables: list[str] = []
    """Only these tables (``layer.name``, e.g. ``access.fct_rating``); empty: every table of the lake."""


def _call(session, procedure: str, **arguments) -> dict:
    """``CALL lake.system.<procedure>(name => value, ...)``; the procedure's single result row."""

    def literal(value):
        if isinstance(value, datetime):
            return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S')}'"
        if isinstance(value, dict):
            return "map(" + ", ".join(f"'{k}', '{v}'" for k, v in value.items()) + ")"
        if isinstance(value, int):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"

    args = ", ".join(f"{name} => {literal(value)}" for name, value in arguments.items())
    rows = session.sql(f"CALL {SPARK_CATALOG}.system.{procedure}({args})").collect()
    return rows[0].asDict() if rows else {}


def maintain_table(session, identifier: str, table, config: MaintenanceConfig, now: datetime) -> dict:
    """Maintain one table (``layer.name``); ``table`` is its pyiceberg table, for its refs. Returns
    the procedures' figures."""
    figures: dict[str, int | float] = {}
    started = time.perf_counter()
    if table.metadata.current_snapshot_id is not None:
        rewritten = _call(
            session,
            "rewrite_data_files",
            table=identifier,
            options={
                "min-input-files": 2,
                "delete-file-threshold": 1,
                "target-file-size-bytes": config.target_file_mb * 1024 * 1024,
                "partial-progress.enabled": "true",
                # the delete files the rewrite applied would otherwise stay live and keep counting in the
                # snapshot's total-position-deletes, from which the day's checks take the row counts
                "remove-dangling-deletes": "true",
            },
        )
        figures["data_files_rewritten"] = int(rewritten.get("rewritten_data_files_count", 0))
        figures["data_files_added"] = int(rewritten.get("added_data_files_count", 0))
        deletes = _call(session, "rewrite_position_delete_files", table=identifier)
        figures["delete_files_rewritten"] = int(deletes.get("rewritten_delete_files_count", 0))
    cutoff = now - timedelta(days=config.retain_days)
    dropped = 0
    for name, ref in table.metadata.refs.items():
        snapshot = table.snapshot_by_id(ref.snapshot_id)
        if (
            name.startswith(RUN_BRANCH_PREFIX)
            and snapshot is not None
            and snapshot.timestamp_ms < cutoff.timestamp() * 1000
        ):
            session.sql(f"ALTER TABLE {SPARK_CATALOG}.{identifier} DROP BRANCH IF EXISTS `{name}`")
            dropped += 1
    figures["run_branches_dropped"] = dropped
    expired = _call(session, "expire_snapshots", table=identifier, older_than=cutoff, retain_last=config.retain_last)
    figures["data_files_expired"] = int(expired.get("deleted_data_files_count", 0))
    figures["delete_files_expired"] = int(expired.get("deleted_position_delete_files_count", 0))
    figures["manifest_files_expired"] = int(expired.get("deleted_manifest_files_count", 0))
    orphans = session.sql(
        f"CALL {SPARK_CATALOG}.system.remove_orphan_files(table => '{identifier}', "
        f"older_than => TIMESTAMP '{(now - timedelta(days=config.orphan_days)):%Y-%m-%d %H:%M:%S}')"
    )
    figures["orphan_files_removed"] = orphans.count()
    figures["seconds"] = round(time.perf_counter() - started, 2)
    return figures


@dg.op(description="Compact, expire and clean every cleanse and access table with Iceberg's procedures.")
def maintain_tables(
    context: dg.OpExecutionContext,
    config: MaintenanceConfig,
    spark: SparkResource,
    catalog: CatalogResource,
    lake: LakeResource,
):
    session = spark.get_session()
    iceberg = catalog.iceberg()
    now = datetime.now(UTC).replace(tzinfo=None)
    for folder in lake.sweep_scratch():
        context.log.info(f"removed {folder}, a scratch folder left by a run that did not finish")
    for layer, name in iceberg.tables():
        identifier = f"{layer}.{name}"
        if config.tables and identifier not in config.tables:
            continue
        figures = maintain_table(session, identifier, iceberg.table(layer, name), config, now)
        context.log.info(f"{identifier}: {figures}")
        dataset = dataset_for_table(layer, name)
        if dataset is not None:
            context.log_event(
                dg.AssetObservation(
                    asset_key=dataset.asset_key,
                    metadata={f"maintenance/{key}": value for key, value in figures.items()},
                )
            )


@dg.job(
    name=MAINTENANCE_JOB,
    tags={"movielake/writes-lake": "true"},
    description="Weekly upkeep of the Iceberg tables: compact small files and merge-on-read deletes, expire "
    "old snapshots (rollback reaches back retain_days), remove orphan files and stale run branches.",
)
def maintain_lake():
    maintain_tables()


def build_maintenance_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """Sundays at 03:00 in the schedule's time zone; stopped unless MOVIELAKE_AUTOMATION=running."""

    return dg.ScheduleDefinition(
        name=MAINTENANCE_SCHEDULE,
        job=maintain_lake,
        cron_schedule="0 3 * * 0",
        execution_timezone=settings.schedule_timezone,
        default_status=default_status(settings, dg.DefaultScheduleStatus),
        run_config={"ops": {"maintain_tables": {"config": {"retain_days": settings.snapshot_retention_days}}}},
        description=f"Sundays 03:00 {settings.schedule_timezone}: run maintain_lake (compaction, snapshot expiry "
        f"after {settings.snapshot_retention_days} days, orphan files, stale run branches).",
    )
