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

from contextlib import contextmanager
from dataclasses import dataclass, field
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
    live_rows,
    partition_values,
    run_branch,
)
from movielake_dagster.datasets import RATING_CHANGES, RATINGS, Dataset, dataset_for
from movielake_dagster.errors import InputMissingError
from movielake_dagster.resources.catalog import CatalogResource
from movielake_dagster.resources.spark import SparkResource

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class RowChanges:
    """An asset's output that changes some rows of its table instead of replacing all of them.

    ``deleted``: the key columns of the rows to delete (their values are matched by a broadcast
    semi-join over the table's key columns, and the rows are deleted by position: merge-on-read, no
    data file rewritten); ``delete_where``: a SQL predicate for more rows to delete; ``inserted``:
    the rows to append. Both land on the run's branch (a DELETE commit, then an append) and reach
    ``main`` in one fast-forward, so readers see the table before or after, never in between. With
    nothing to delete or insert there is no commit at all (a replayed day changes nothing).
    ``properties`` go into the snapshots' summaries (for instance which source snapshot a derived
    table is in step with); ``metadata`` into the materialization.
    """

    deleted: Any = None
    inserted: Any = None
    delete_where: str = ""
    properties: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    commit_empty: bool = False  # commit (an empty append carrying ``properties``) even with no row to change

    def is_empty(self) -> bool:
        """Whether applying these changes would change nothing (the frames are evaluated)."""
        return (
            (self.deleted is None or self.deleted.isEmpty())
            and not self.delete_where
            and (self.inserted is None or self.inserted.isEmpty())
        )


@dataclass(frozen=True)
class Replace:
    """An asset's output that replaces every row of its table, with ``properties`` for the snapshot's
    summary and ``metadata`` for the materialization (a plain DataFrame output is a Replace too)."""

    df: Any
    properties: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


SNAPSHOT_PROPERTY = "spark.sql.iceberg.snapshot-property."  # session properties Iceberg puts into every commit


@contextmanager
def commit_properties(session: SparkSession, properties: dict[str, str]):
    """Every Iceberg commit made inside the block (writes and SQL DML alike) carries these summary properties."""
    keys = [SNAPSHOT_PROPERTY + k for k in properties]
    for key, value in zip(keys, properties.values()):
        session.conf.set(key, str(value))
    try:
        yield
    finally:
        for key in keys:
            session.conf.unset(key)


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
    return (
        f"CREATE TABLE IF NOT EXISTS {table_name(dataset)} (\n  {columns}\n) USING iceberg{partitioned}\n"
        f"LOCATION {_sql_text(location)}\nCOMMENT {_sql_text(dataset.description)}\n"
        f"TBLPROPERTIES ({properties})"
    )


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
            statements.append(
                f"ALTER TABLE {table_name(dataset)} ADD COLUMN `{column.name}` {column.type} "
                f"COMMENT {_sql_text(column.description)}{place}"
            )
        elif field.metadata.get("comment", "") != column.description:
            statements.append(
                f"ALTER TABLE {table_name(dataset)} ALTER COLUMN `{column.name}` "
                f"COMMENT {_sql_text(column.description)}"
            )
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


def table_at(session: SparkSession, dataset: Dataset, snapshot_id: int) -> DataFrame:
    """The table as of one snapshot: a DataFrame that reads the same rows whenever it is evaluated, even
    after later commits (a derived table computed from it must not see the commit it is about to make)."""
    return session.read.option("versionAsOf", str(snapshot_id)).table(table_name(dataset))


def pinned_table(session: SparkSession, iceberg: IcebergCatalog, dataset: Dataset) -> DataFrame | None:
    """The table's current snapshot (``main``), pinned (:func:`table_at`); None before its first write."""
    table = iceberg.table(dataset.layer, dataset.name)
    if table is None:
        return None
    if table.metadata.current_snapshot_id is None:
        return session.createDataFrame([], dataset.spark_ddl())
    return table_at(session, dataset, table.metadata.current_snapshot_id)


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
    session.sql(
        f"CALL {SPARK_CATALOG}.system.fast_forward(table => '{identifier}', branch => 'main', to => '{branch}')"
    ).collect()
    return head


# -- derived tables kept in step with the ratings through their change log --------------------------------

CHANGES_BASE = "movielake.changes-base"  # rating_changes' snapshot: the ratings snapshot the changes apply to
FULL_BUILD = "full-build"  # ... or this, after a full build (no changes to apply: derived tables rebuild)
RATINGS_SYNC = "movielake.ratings-snapshot"  # a derived table's snapshot: the ratings snapshot it reflects


@dataclass(frozen=True)
class RatingDelta:
    """The ratings rows a day inserted and the stored rows it replaced (``rating_changes``), which bring
    a derived table from the ratings snapshot it reflects to the current one."""

    inserted: Any
    deleted: Any
    ratings_snapshot: int | None
    unchanged: bool = False  # the derived table already reflects the current ratings


def _is_compaction(snapshot) -> bool:
    """A ``replace`` snapshot: files rewritten (compaction, delete files folded in), rows unchanged."""
    return snapshot.summary is not None and snapshot.summary.operation.value == "replace"


def _same_rows(table, snapshot_id) -> list[str]:
    """The snapshot and the ancestors it only compacted: the snapshots holding the same rows."""
    snapshot = table.snapshot_by_id(int(snapshot_id)) if table is not None and snapshot_id else None
    same = []
    while snapshot is not None:
        same.append(str(snapshot.snapshot_id))
        if not _is_compaction(snapshot) or snapshot.parent_snapshot_id is None:
            break
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id)
    return same


def _summary(table, ref: str = "main") -> dict:
    """The summary properties of the branch's last commit that changed rows (a compaction carries none)."""
    snapshot = table.snapshot_by_name(ref) if table is not None else None
    while snapshot is not None and _is_compaction(snapshot) and snapshot.parent_snapshot_id is not None:
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id)
    return dict(snapshot.summary.additional_properties) if snapshot is not None and snapshot.summary else {}


def rating_delta(session: SparkSession, iceberg: IcebergCatalog, consumer: Dataset) -> RatingDelta | None:
    """What ``consumer`` must apply to reflect the current ratings, or None when only a rebuild can tell.

    Exact when the consumer reflects the ratings snapshot the change log starts from, and the ratings'
    commits since then are those of the run that wrote the change log (its day's deletes and append).
    A consumer that already reflects the current ratings has nothing to apply (a replayed day).
    Compactions (``replace`` snapshots, same rows) of either table do not count as changes.
    """
    now = branch_snapshot(iceberg, RATINGS, "main")  # the ratings snapshot readers see now
    synced = _summary(iceberg.table(consumer.layer, consumer.name)).get(RATINGS_SYNC)
    if synced is None:
        return None
    ratings = iceberg.table(RATINGS.layer, RATINGS.name)
    if synced in _same_rows(ratings, now):
        empty = session.createDataFrame([], RATING_CHANGES.spark_ddl())
        return RatingDelta(empty, empty, now, unchanged=True)
    changes = iceberg.table(RATING_CHANGES.layer, RATING_CHANGES.name)
    log = _summary(changes)
    base, run = log.get(CHANGES_BASE), log.get(RUN_ID_PROPERTY)
    if base is None or base == FULL_BUILD or synced not in _same_rows(ratings, base):
        return None
    snapshot = ratings.snapshot_by_id(now) if now is not None else None
    while (
        snapshot is not None
        and snapshot.summary is not None
        and snapshot.summary.additional_properties.get(RUN_ID_PROPERTY) == run
    ):
        snapshot = ratings.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    if snapshot is None or str(snapshot.snapshot_id) != base:  # the ratings moved otherwise: rebuild
        return None
    frame = table_at(session, RATING_CHANGES, changes.metadata.current_snapshot_id)
    return RatingDelta(frame.where(F.col("change") == "insert"), frame.where(F.col("change") == "delete"), now)


def run_properties(context: dg.OutputContext) -> dict[str, str]:
    """What every snapshot a run commits records: the run and the asset."""
    return {RUN_ID_PROPERTY: context.run_id, ASSET_PROPERTY: context.asset_key.to_user_string()}


def apply_changes(session: SparkSession, dataset: Dataset, target: str, changes: RowChanges) -> None:
    """Apply row changes to ``target`` (a table or one of its branches): deletes first, then the append."""
    keys = list(dataset.primary_key)
    if changes.deleted is not None and not changes.deleted.isEmpty():
        view = f"movielake_deleted_{dataset.name}"
        # The keys as plain rows (a day's replaced keys: a few thousand): Iceberg's DELETE plans need a
        # deterministic subquery, and the keys' lineage goes back to row ids made while reading the files.
        deleted = changes.deleted.select(*keys)
        session.createDataFrame(deleted.collect(), deleted.schema).createOrReplaceTempView(view)
        matched = " AND ".join(f"k.`{k}` = t.`{k}`" for k in keys)
        session.sql(f"DELETE FROM {target} t WHERE EXISTS (SELECT 1 FROM {view} k WHERE {matched})")
        session.catalog.dropTempView(view)
    if changes.delete_where:
        session.sql(f"DELETE FROM {target} WHERE {changes.delete_where}")
    if changes.inserted is not None and not changes.inserted.isEmpty():
        changes.inserted.select(*dataset.column_names).writeTo(target).append()
    elif changes.commit_empty:  # a snapshot with no new rows, for its summary properties
        session.createDataFrame([], dataset.spark_ddl()).writeTo(target).append()


def audited_in_run(context: dg.OutputContext) -> bool:
    """Whether this run evaluates a blocking check of the output's asset (the check then publishes it)."""
    try:
        step = context.step_context
    except Exception:  # noqa: BLE001 - an output context built outside a run (tests): nothing audits it
        return False
    graph = step.job_def.asset_layer.asset_graph
    selected = step.dagster_run.asset_check_selection
    return any(
        key.asset_key == context.asset_key
        and graph.get_check_spec(key).blocking
        and (selected is None or key in selected)
        for key in graph.asset_check_keys
    )


class IcebergIOManager(dg.ConfigurableIOManager):
    """Writes an asset's DataFrame as one commit to its dataset's Iceberg table and reads the table's
    current snapshot for downstream assets and checks."""

    spark: SparkResource

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        dataset = dataset_for(context.asset_key)
        session = self.spark.get_session()
        iceberg = self.spark.catalog.iceberg()
        evolved = ensure_table(session, dataset, self.spark.catalog.table_location(dataset))
        for statement in evolved:
            context.log.info(f"{table_name(dataset)}: {statement.splitlines()[0]}")
        output = obj if isinstance(obj, (RowChanges, Replace)) else Replace(obj)
        branch = run_branch(context.run_id)
        metadata = {}
        if isinstance(output, RowChanges) and not output.commit_empty and output.is_empty():
            metadata = describe_table(self.spark.catalog, dataset, "main")
            metadata["movielake/published"] = "unchanged: nothing to commit"
        else:
            session.sql(f"ALTER TABLE {table_name(dataset)} CREATE BRANCH IF NOT EXISTS {branch}")
            target = branch_table_name(dataset, branch)
            with commit_properties(session, {**run_properties(context), **output.properties}):
                if isinstance(output, Replace):
                    output.df.select(*dataset.column_names).writeTo(target).overwrite(F.lit(True))  # one commit
                else:
                    apply_changes(session, dataset, target, output)
            audited = audited_in_run(context)
            if not audited:
                publish(session, iceberg, dataset, branch)
            metadata = describe_table(self.spark.catalog, dataset, branch)
            metadata["movielake/branch"] = branch
            metadata["movielake/published"] = (
                "pending: main is fast-forwarded to the branch when the blocking checks pass"
                if audited
                else "yes (no blocking check in this run)"
            )
            metadata["movielake/write"] = "row changes" if isinstance(output, RowChanges) else "replace"
        if evolved:
            metadata["movielake/schema_changes"] = dg.MetadataValue.json([s.splitlines()[0] for s in evolved])
        context.add_output_metadata({**metadata, **output.metadata})

    # What an asset reads of the lake's current state, besides its inputs: the IO manager owns every
    # read of a table's published version (assets ask for it as the ``iceberg_io_manager`` resource).
    def published(self, dataset: Dataset) -> DataFrame | None:
        """The table as readers see it now (``main``), pinned to that snapshot (:func:`table_at`): the
        rows before whatever this run commits; None before the table's first write."""
        return pinned_table(self.spark.get_session(), self.spark.catalog.iceberg(), dataset)

    def published_snapshot(self, dataset: Dataset) -> int | None:
        """The id of the snapshot ``main`` points at (None before the table's first write)."""
        return branch_snapshot(self.spark.catalog.iceberg(), dataset, "main")

    def rating_delta(self, consumer: Dataset) -> RatingDelta | None:
        """What ``consumer`` must apply to reflect the current ratings (:func:`rating_delta`)."""
        return rating_delta(self.spark.get_session(), self.spark.catalog.iceberg(), consumer)

    def load_input(self, context: dg.InputContext):
        dataset = dataset_for(context.upstream_output.asset_key)
        table = run_table(self.spark.get_session(), self.spark.catalog.iceberg(), dataset, context.step_context.run_id)
        if table is None:
            raise InputMissingError(
                f"the table {dataset.layer}.{dataset.name} has not been written yet",
                f"materialize {dataset.asset_key.to_user_string()} first (or the whole lake)",
            )
        return table


def describe_table(catalog: CatalogResource, dataset: Dataset, branch: str = "main") -> dict:
    """Materialization metadata of the snapshot a branch of the table points at, read from Iceberg's
    own metadata (no Spark job): rows, snapshot and parent, operation, schema, location, a preview."""
    table = catalog.iceberg().table(dataset.layer, dataset.name)
    snapshot = table.snapshot_by_name(branch)
    summary = snapshot.summary if snapshot is not None else None
    extra = summary.additional_properties if summary is not None else {}
    columns = dataset.column_names
    preview = (
        table.scan(
            limit=PREVIEW_ROWS, selected_fields=tuple(columns), snapshot_id=snapshot.snapshot_id if snapshot else None
        )
        .to_arrow()
        .to_pylist()
    )
    metadata = {
        "dagster/row_count": live_rows(summary) if summary is not None else 0,
        "dagster/column_schema": dataset.table_schema(),
        "dagster/uri": dg.MetadataValue.path(table.location()),
        "dagster/table_name": f"{dataset.layer}.{dataset.name}",
        "movielake/table_format": "iceberg",
        "movielake/snapshot_id": str(snapshot.snapshot_id) if snapshot else "",
        "movielake/parent_snapshot_id": str(snapshot.parent_snapshot_id or "") if snapshot else "",
        "movielake/operation": summary.operation.value if summary is not None else "",
        "movielake/added_records": int(extra.get("added-records", 0)),
        "movielake/deleted_records": int(extra.get("deleted-records", 0)) + int(extra.get("added-position-deletes", 0)),
        "preview": dg.MetadataValue.md(markdown_preview(preview, columns)),
    }
    if dataset.partition_by and snapshot is not None:
        values = partition_values(table, snapshot.snapshot_id)
        metadata["partitions"] = dg.MetadataValue.json(values)
    return metadata


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
