"""Cleanse and access layers: Spark DataFrames stored as Apache Iceberg tables, written, audited, published.

Each dataset declared in ``datasets.py`` is the Iceberg table ``lake.<layer>.<name>`` (format v2,
Parquet data files) at the dataset's SPEC location. The first write creates the table from the
declaration (column types and descriptions, partitioning, properties); a later declaration with more
columns evolves the table in place (``ALTER TABLE ... ADD COLUMN``, no data rewritten).

Write-audit-publish: a run writes each table to a branch of its own (``run_<first 8 of the run id>``),
in one commit. When the run evaluates blocking checks of the table, those checks read the branch,
and only when they pass is ``main`` fast-forwarded to it (``checks/factories.py``), so readers of
``main`` (Athena, ``movielake query``, the next run) never see data a blocking check rejected. A run
without such checks publishes at once. A failed run leaves ``main`` as it was and its branch for
inspection (``movielake query --branch RUN``) until the maintenance job drops it. A killed run leaves
``main`` on the last good snapshot. Snapshot summaries carry the Dagster run id; materializations
carry the branch, the snapshot, its parent, and whether it was published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from movielake_dagster.catalog.iceberg import (
    ASSET_PROPERTY,
    RUN_ID_PROPERTY,
    SPARK_CATALOG,
    TABLE_PROPERTIES,
    IcebergCatalog,
    run_branch,
)
from movielake_dagster.datasets import Dataset, dataset_for
from movielake_dagster.errors import InputMissingError
from movielake_dagster.resources.spark import SparkResource

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class PartitionsUpdate:
    """An asset's output that replaces only some partitions of its (partitioned) dataset.

    ``df`` holds the complete new rows of the partitions ``values``; those in ``emptied`` have no
    rows any more. One commit deletes the old rows of ``values`` and adds ``df``; the other partitions
    are not touched.
    """

    df: Any
    values: tuple = ()
    emptied: tuple = ()


def table_name(dataset: Dataset) -> str:
    """Spark's name of the dataset's table: ``lake.cleanse.movies``, ``lake.access.fct_rating``."""
    return f"{SPARK_CATALOG}.{dataset.layer}.{dataset.name}"


def _sql_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_table_sql(dataset: Dataset, location: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the dataset: declared columns with their descriptions,
    partitioning, the SPEC location and the lake's table properties."""
    columns = ",\n  ".join(f"`{c.name}` {c.type} COMMENT {_sql_text(c.description)}" for c in dataset.columns)
    partitioned = f"\nPARTITIONED BY ({', '.join(dataset.partition_by)})" if dataset.partition_by else ""
    properties = ", ".join(f"{_sql_text(k)} = {_sql_text(v)}" for k, v in TABLE_PROPERTIES.items())
    return (f"CREATE TABLE IF NOT EXISTS {table_name(dataset)} (\n  {columns}\n) USING iceberg{partitioned}\n"
            f"LOCATION {_sql_text(location)}\nCOMMENT {_sql_text(dataset.description)}\n"
            f"TBLPROPERTIES ({properties})")


def evolution_sql(dataset: Dataset, stored_schema) -> list[str]:
    """``ALTER TABLE`` statements that bring a stored table to the declaration without rewriting data:
    declared columns it lacks are added in their declared place, changed descriptions updated.
    Columns it has beyond the declaration are left alone (the schema contract check reports them)."""
    stored = {f.name: f for f in stored_schema.fields}
    statements = []
    previous = None
    for column in dataset.columns:
        field = stored.get(column.name)
        if field is None:
            place = f" AFTER `{previous}`" if previous else " FIRST"
            statements.append(f"ALTER TABLE {table_name(dataset)} ADD COLUMN `{column.name}` {column.type} "
                              f"COMMENT {_sql_text(column.description)}{place}")
        elif field.metadata.get("comment", "") != column.description:
            statements.append(f"ALTER TABLE {table_name(dataset)} ALTER COLUMN `{column.name}` "
                              f"COMMENT {_sql_text(column.description)}")
        previous = column.name
    return statements


def table_exists(session: SparkSession, dataset: Dataset) -> bool:
    return session.catalog.tableExists(table_name(dataset))


def ensure_table(session: SparkSession, dataset: Dataset, location: str) -> list[str]:
    """Create the dataset's table, or evolve it to its declaration; returns the statements run."""
    statements = []
    if not table_exists(session, dataset):
        session.sql(f"CREATE NAMESPACE IF NOT EXISTS {SPARK_CATALOG}.{dataset.layer}")
        statements.append(create_table_sql(dataset, location))
    else:
        statements += evolution_sql(dataset, session.table(table_name(dataset)).schema)
    for statement in statements:
        session.sql(statement)
    return statements


def current_table(session: SparkSession, dataset: Dataset) -> DataFrame | None:
    """The dataset as the lake publishes it now (``main``), or None before its first write."""
    if not table_exists(session, dataset):
        return None
    return session.table(table_name(dataset))


def branch_table_name(dataset: Dataset, branch: str) -> str:
    """Spark's name of one branch of the table: ``lake.access.fct_rating.branch_run_1a2b3c4d``."""
    return f"{table_name(dataset)}.branch_{branch}"


def branch_snapshot(iceberg: IcebergCatalog, dataset: Dataset, branch: str) -> int | None:
    """The snapshot a branch of the table points at (None: no such branch), from Iceberg's metadata."""
    table = iceberg.table(dataset.layer, dataset.name)
    ref = table.metadata.refs.get(branch) if table is not None else None
    return ref.snapshot_id if ref is not None else None


def run_table(session: SparkSession, iceberg: IcebergCatalog, dataset: Dataset, run_id: str) -> DataFrame | None:
    """What a reader in this run sees: the run's own branch where the run wrote the table (not
    published yet while its checks audit it), else ``main``; None before the table's first write."""
    if not table_exists(session, dataset):
        return None
    branch = run_branch(run_id)
    if branch_snapshot(iceberg, dataset, branch) is not None:
        return session.table(branch_table_name(dataset, branch))
    return session.table(table_name(dataset))


def publish(session: SparkSession, iceberg: IcebergCatalog, dataset: Dataset, branch: str) -> int | None:
    """Fast-forward ``main`` to the run's branch: one catalog commit that makes the audited snapshot
    the one every reader sees. Returns main's snapshot afterwards. Fails (and publishes nothing) when
    ``main`` moved since the branch was made, i.e. another writer published in between."""
    head = branch_snapshot(iceberg, dataset, branch)
    if head is None or head == branch_snapshot(iceberg, dataset, "main"):
        return head
    identifier = f"{dataset.layer}.{dataset.name}"
    session.sql(f"CALL {SPARK_CATALOG}.system.fast_forward(table => '{identifier}', branch => 'main', "
                f"to => '{branch}')").collect()
    return head


def snapshot_properties(context: dg.OutputContext) -> dict[str, str]:
    return {f"snapshot-property.{RUN_ID_PROPERTY}": context.run_id,
            f"snapshot-property.{ASSET_PROPERTY}": context.asset_key.to_user_string()}


def audited_in_run(context: dg.OutputContext) -> bool:
    """Whether this run evaluates a blocking check of the output's asset (the check then publishes it)."""
    try:
        step = context.step_context
    except Exception:  # noqa: BLE001 - an output context built outside a run (tests): nothing audits it
        return False
    graph = step.job_def.asset_layer.asset_graph
    selected = step.dagster_run.asset_check_selection
    return any(key.asset_key == context.asset_key and graph.get_check_spec(key).blocking
               and (selected is None or key in selected) for key in graph.asset_check_keys)


class IcebergIOManager(dg.ConfigurableIOManager):
    """Writes an asset's DataFrame as one commit to its dataset's Iceberg table and reads the table's
    current snapshot for downstream assets and checks."""

    spark: SparkResource

    def handle_output(self, context: dg.OutputContext, df) -> None:
        if df is None:
            return
        dataset = dataset_for(context.asset_key)
        session = self.spark.get_session()
        evolved = ensure_table(session, dataset, self.spark.catalog.table_location(dataset))
        for statement in evolved:
            context.log.info(f"{table_name(dataset)}: {statement.splitlines()[0]}")
        branch = run_branch(context.run_id)
        session.sql(f"ALTER TABLE {table_name(dataset)} CREATE BRANCH IF NOT EXISTS {branch}")
        update = df if isinstance(df, PartitionsUpdate) else None
        frame = update.df if update else df
        writer = frame.writeTo(branch_table_name(dataset, branch)).options(**snapshot_properties(context))
        if update is None:
            writer.overwrite(F.lit(True))  # replace every row, in one commit
        elif update.values:
            (column,) = dataset.partition_by
            writer.overwrite(F.col(column).isin(list(update.values)))  # these partitions only, in one commit
        audited = audited_in_run(context)
        if not audited:
            publish(session, self.spark.catalog.iceberg(), dataset, branch)
        metadata = self.spark.catalog.describe_table(dataset, branch)
        metadata["movielake/branch"] = branch
        metadata["movielake/published"] = ("pending: main is fast-forwarded to the branch when the blocking "
                                           "checks pass" if audited else "yes (no blocking check in this run)")
        if update is not None:
            metadata["movielake/rewritten_partitions"] = dg.MetadataValue.json([str(v) for v in update.values])
        if evolved:
            metadata["movielake/schema_changes"] = dg.MetadataValue.json([s.splitlines()[0] for s in evolved])
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext):
        dataset = dataset_for(context.upstream_output.asset_key)
        table = run_table(self.spark.get_session(), self.spark.catalog.iceberg(), dataset, context.step_context.run_id)
        if table is None:
            raise InputMissingError(f"the table {dataset.layer}.{dataset.name} has not been written yet",
                                    f"materialize {dataset.asset_key.to_user_string()} first (or the whole lake)")
        return table


def markdown_preview(rows: list, columns: list[str]) -> str:
    """A small Markdown table of rows (Spark Rows, dicts or tuples)."""

    def cell(value) -> str:
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")[:60]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        values = [row.get(c) for c in columns] if isinstance(row, dict) else list(row)
        lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    return "\n".join(lines)
