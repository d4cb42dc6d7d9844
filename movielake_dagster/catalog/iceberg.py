"""The lake's Iceberg catalog: where the cleanse and access tables live, for Spark and for Python.

The cleanse and access layers are Apache Iceberg tables (format version 2, Parquet data files) at the
locations the SPEC gives (``access/ratings-data-mart/fct-rating/`` ...), in one catalog:

- ``local`` (the default): an embedded SQLite file beside the lake (``catalog.db``). Spark reaches it
  through Iceberg's JDBC catalog (``sqlite-jdbc``), Python through pyiceberg's SQL catalog: the same
  two tables (``iceberg_tables``, ``iceberg_namespace_properties``), so each reads what the other wrote.
- ``glue``: the AWS Glue Data Catalog, databases ``cleanse`` and ``access``; the tables are Iceberg
  tables that Athena queries as they are (``table_type=ICEBERG``, ``metadata_location``).

Every write is one Iceberg commit: a reader sees the previous snapshot or the new one, never a mix.
This module holds what Spark and Python need to reach the catalog, and the Python side (pyiceberg):
snapshot history, rollback, time travel and Arrow datasets for DuckDB. No Dagster, no Spark here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from movielake_dagster.catalog.formats import ICEBERG
from movielake_dagster.catalog.model import (
    CatalogColumn,
    CatalogPartition,
    CatalogTable,
    TableChange,
)
from movielake_dagster.errors import ConfigurationError, EndpointError

SPARK_CATALOG = "lake"  # Spark's name for the catalog: tables are lake.cleanse.movies, lake.access.fct_rating
ICEBERG_LAYERS = ("cleanse", "access")
BACKENDS = ("local", "glue")
RUN_BRANCH_PREFIX = "run_"  # a run's write-audit-publish branch: run_<first 8 characters of its id>
RUN_ID_PROPERTY = "dagster.run-id"  # snapshot summary property: the Dagster run that made the snapshot
ASSET_PROPERTY = "dagster.asset"
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.format.default": "parquet",
    "write.parquet.compression-codec": "zstd",
    # Deletes, updates and merges write delete files instead of rewriting data files (merge-on-read):
    # a day's load touches what the day touches; the maintenance job compacts them.
    "write.delete.mode": "merge-on-read",
    "write.update.mode": "merge-on-read",
    "write.merge.mode": "merge-on-read",
    "history.expire.max-snapshot-age-ms": str(7 * 24 * 3600 * 1000),
}


@dataclass(frozen=True)
class IcebergCatalog:
    """How to reach the lake's Iceberg catalog (its settings only: nothing connects until asked)."""

    backend: str  # local | glue
    sqlite_path: str  # the local catalog's file (backend local)
    warehouse: str  # a URI under which tables without a location of their own would go
    region: str = "us-east-1"
    s3_endpoint: str = ""  # MinIO, moto, ...; empty: AWS
    glue_endpoint: str = ""  # moto, LocalStack; empty: AWS
    on_s3: bool = False  # the lake's files are on S3 (S3FileIO), else on a local file system

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigurationError(
                f"MOVIELAKE_CATALOG={self.backend!r} is not a catalog backend", f"use one of {', '.join(BACKENDS)}"
            )

    def prepare(self) -> None:
        """Create the local catalog's folder (SQLite creates the file, not its folder)."""
        if self.backend == "local":
            Path(self.sqlite_path).parent.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        if self.backend == "local":
            return f"Iceberg catalog in {self.sqlite_path}"
        return f"Iceberg tables in the AWS Glue Data Catalog ({self.glue_endpoint or self.region})"

    # -- Spark ---------------------------------------------------------------------------------------
    def spark_conf(self) -> dict[str, str]:
        """Spark properties for the catalog ``lake`` (Iceberg's SparkCatalog) and its file IO."""
        prefix = f"spark.sql.catalog.{SPARK_CATALOG}"
        conf = {
            "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
            prefix: "org.apache.iceberg.spark.SparkCatalog",
            f"{prefix}.warehouse": self.warehouse,
            f"{prefix}.cache-enabled": "false",  # every read sees the latest commit, also another process's
        }
        if self.backend == "local":
            conf.update(
                {
                    f"{prefix}.type": "jdbc",
                    f"{prefix}.uri": f"jdbc:sqlite:{self.sqlite_path}",
                    f"{prefix}.jdbc.schema-version": "V1",
                }
            )
        else:
            conf.update({f"{prefix}.type": "glue", f"{prefix}.client.region": self.region})
            if self.glue_endpoint:
                conf[f"{prefix}.glue.endpoint"] = self.glue_endpoint
        if self.on_s3:
            conf.update(
                {
                    f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
                    f"{prefix}.client.region": self.region,
                }
            )
            if self.s3_endpoint:
                conf.update({f"{prefix}.s3.endpoint": self.s3_endpoint, f"{prefix}.s3.path-style-access": "true"})
        return conf

    # -- Python (pyiceberg) --------------------------------------------------------------------------
    def properties(self) -> dict[str, str]:
        """pyiceberg's catalog properties (credentials come from the AWS default chain, never from here)."""
        if self.backend == "local":
            props = {"type": "sql", "uri": f"sqlite:///{self.sqlite_path}", "warehouse": self.warehouse}
        else:
            props = {"type": "glue", "glue.region": self.region}
            if self.glue_endpoint:
                props["glue.endpoint"] = self.glue_endpoint
        if self.on_s3:
            props["s3.region"] = self.region
            if self.s3_endpoint:
                props.update({"s3.endpoint": self.s3_endpoint, "s3.force-virtual-addressing": "false"})
        return props

    def load(self):
        """The pyiceberg catalog (one per process and configuration)."""
        return _load_catalog(tuple(sorted(self.properties().items())))

    def exists(self) -> bool:
        """Whether the catalog can hold tables yet (the local file exists; Glue always)."""
        return self.backend == "glue" or Path(self.sqlite_path).exists()

    def table(self, layer: str, name: str):
        """The pyiceberg table ``layer.name``, or None when it does not exist."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        if not self.exists():
            return None
        with catalog_errors(self):
            try:
                return self.load().load_table((layer, name))
            except (NoSuchTableError, NoSuchNamespaceError):
                return None

    def tables(self, layers: tuple[str, ...] = ICEBERG_LAYERS) -> list[tuple[str, str]]:
        """(layer, name) of every table in the given layers' namespaces."""
        from pyiceberg.exceptions import NoSuchNamespaceError

        if not self.exists():
            return []
        found = []
        with catalog_errors(self):
            for layer in layers:
                try:
                    found += [(layer, ident[-1]) for ident in self.load().list_tables(layer)]
                except NoSuchNamespaceError:
                    continue
        return sorted(found)


@functools.lru_cache(maxsize=8)
def _load_catalog(items: tuple[tuple[str, str], ...]):
    from pyiceberg.catalog import load_catalog

    return load_catalog(SPARK_CATALOG, **dict(items))


def run_branch(run_id: str) -> str:
    """The name of the branch a Dagster run writes its tables to before they are published:
    ``run_`` and the first 8 letters and digits of the run id (a UUID: its first group)."""
    return RUN_BRANCH_PREFIX + "".join(ch for ch in run_id if ch.isalnum())[:8].lower()


class catalog_errors:
    """A catalog or storage endpoint that cannot be reached, as a one-line :class:`EndpointError`."""

    def __init__(self, catalog: IcebergCatalog):
        self.catalog = catalog

    def __enter__(self):
        return self

    def __exit__(self, exc_type, error, tb):
        if error is None or isinstance(error, (EndpointError, ConfigurationError)):
            return False
        text = str(error)
        unreachable = (
            "Could not connect",
            "Connection refused",
            "EndpointConnectionError",
            "unable to open database",
            "Failed to resolve",
            "Name or service not known",
        )
        if any(marker in text or marker in type(error).__name__ for marker in unreachable):
            fix = (
                "check MOVIELAKE_CATALOG_PATH (the folder must be writable)"
                if self.catalog.backend == "local"
                else "fix MOVIELAKE_GLUE_ENDPOINT (empty means AWS), or use MOVIELAKE_CATALOG=local"
            )
            raise EndpointError(
                f"cannot reach the {self.catalog.describe()}: {text.splitlines()[0][:160]}", fix
            ) from error
        return False


# -- snapshots: history, rollback, time travel ---------------------------------------------------------


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of a table, as ``movielake history`` lists it."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime  # UTC
    operation: str  # append, overwrite, delete, replace
    added_records: int
    deleted_records: int  # rows removed: by rewritten files or by position deletes
    total_records: int  # rows the snapshot holds
    run_id: str  # the Dagster run that committed it ("" for other writers)
    refs: tuple[str, ...]  # branches and tags pointing at it (main = the current snapshot)
    is_current_ancestor: bool  # on main's history (not only on a branch)


def live_rows(summary) -> int:
    """The rows a snapshot holds: the rows of its data files less those its position deletes remove
    (merge-on-read; a row is never deleted twice, and the lake writes no equality deletes). Exact as
    long as no delete file outlives the data file it applies to: the maintenance job's compaction
    removes such dangling deletes (``remove-dangling-deletes``)."""
    return _summary_int(summary, "total-records") - _summary_int(summary, "total-position-deletes")


def _summary_int(summary, key: str) -> int:
    value = summary.get(key) if summary is not None else None
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def snapshot_history(table) -> list[SnapshotInfo]:
    """Every snapshot the table still keeps, oldest first, with its operation, row counts and run."""
    refs: dict[int, list[str]] = {}
    for name, ref in table.metadata.refs.items():
        refs.setdefault(ref.snapshot_id, []).append(name)
    current = table.metadata.current_snapshot_id
    ancestors = set()
    snapshot = table.snapshot_by_id(current) if current is not None else None
    while snapshot is not None:
        ancestors.add(snapshot.snapshot_id)
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    history = []
    for snapshot in sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0)):
        summary = snapshot.summary
        operation = summary.operation.value if summary is not None and summary.operation is not None else ""
        additional = summary.additional_properties if summary is not None else {}
        history.append(
            SnapshotInfo(
                snapshot.snapshot_id,
                snapshot.parent_snapshot_id,
                datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
                operation,
                _summary_int(summary, "added-records"),
                _summary_int(summary, "deleted-records") + _summary_int(summary, "added-position-deletes"),
                live_rows(summary),
                additional.get(RUN_ID_PROPERTY, ""),
                tuple(sorted(refs.get(snapshot.snapshot_id, ()))),
                snapshot.snapshot_id in ancestors,
            )
        )
    return history


def rollback(table, snapshot_id: int) -> tuple[int | None, int]:
    """Make ``snapshot_id`` the table's current snapshot again, in one catalog commit.

    An ancestor of the current snapshot is rolled back to (Iceberg's rollback); any other snapshot
    the table keeps (one a later rollback left aside) is set as current. Returns (before, after).
    Raises :class:`ConfigurationError` for a snapshot the table does not keep.
    """
    if table.snapshot_by_id(snapshot_id) is None:
        kept = ", ".join(str(s.snapshot_id) for s in table.metadata.snapshots[-5:])
        raise ConfigurationError(
            f"{'.'.join(table.name()[-2:])} has no snapshot {snapshot_id}",
            f"pick one from `movielake history` (latest: {kept or 'none'})",
        )
    before = table.metadata.current_snapshot_id
    if before == snapshot_id:
        return before, snapshot_id
    ancestors = {s.snapshot_id for s in snapshot_history(table) if s.is_current_ancestor}
    with table.manage_snapshots() as manage:
        if snapshot_id in ancestors:
            manage.rollback_to_snapshot(snapshot_id)
        else:
            manage.set_current_snapshot(snapshot_id=snapshot_id)
    return before, snapshot_id


def snapshot_as_of(table, as_of: datetime):
    """The snapshot of main that was current at ``as_of`` (None: the table was empty or did not exist)."""
    millis = int(as_of.timestamp() * 1000)
    return table.snapshot_as_of_timestamp(millis, inclusive=True)


# -- Arrow datasets for readers (DuckDB) --------------------------------------------------------------


def _arrow_path(uri: str, s3_filesystem) -> tuple[object, str]:
    from pyarrow import fs

    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        return s3_filesystem, f"{parsed.netloc}/{parsed.path.lstrip('/')}"
    return fs.LocalFileSystem(), parsed.path if parsed.scheme == "file" else uri


def arrow_dataset(table, snapshot_id: int | None, s3_filesystem=None, empty: bool = False):
    """A pyarrow dataset of one snapshot of the table (default: the current one), for DuckDB; with
    ``empty``, no rows (the table as of a time before its first snapshot).

    Data files without deletes are scanned lazily, so DuckDB pushes its projections (column pruning)
    and filters (row groups and files of other ``rating_year`` partitions skipped by their statistics)
    into the scan. The few data files that delete files touch (merge-on-read days not compacted yet)
    are read through pyiceberg, which applies the deletes.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow

    schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
    if empty or (snapshot_id is None and table.metadata.current_snapshot_id is None):
        return ds.dataset(pa.Table.from_batches([], schema=schema))
    scan = table.scan(snapshot_id=snapshot_id)
    tasks = list(scan.plan_files())
    plain = [t.file.file_path for t in tasks if not t.delete_files]
    with_deletes = [t for t in tasks if t.delete_files]
    parts = []
    if plain:
        filesystem, _ = _arrow_path(plain[0], s3_filesystem)
        parts.append(
            ds.dataset(
                [_arrow_path(p, s3_filesystem)[1] for p in plain],
                schema=schema,
                format="parquet",
                filesystem=filesystem,
            )
        )
    if with_deletes:
        scanned = ArrowScan(table.metadata, table.io, scan.projection(), scan.row_filter, scan.case_sensitive)
        parts.append(ds.dataset(scanned.to_table(with_deletes).cast(schema)))
    if not parts:
        return ds.dataset(pa.Table.from_batches([], schema=schema))
    return parts[0] if len(parts) == 1 else ds.dataset(parts)


def iter_tables(catalog: IcebergCatalog, layers: tuple[str, ...] = ICEBERG_LAYERS) -> Iterator[tuple[str, str, object]]:
    """(layer, name, pyiceberg table) of every table of the given layers."""
    for layer, name in catalog.tables(layers):
        table = catalog.table(layer, name)
        if table is not None:
            yield layer, name, table


# -- what the crawler reads from Iceberg --------------------------------------------------------------


def hive_type(iceberg_type) -> str:
    """An Iceberg type as the Hive/Athena (and Spark SQL) type the catalog shows: ``int``, ``array<string>``."""
    from pyiceberg import types as t

    simple = {
        t.IntegerType: "int",
        t.LongType: "bigint",
        t.DoubleType: "double",
        t.FloatType: "float",
        t.StringType: "string",
        t.DateType: "date",
        t.TimestamptzType: "timestamp",
        t.TimestampType: "timestamp",
        t.BooleanType: "boolean",
        t.BinaryType: "binary",
    }
    for kind, name in simple.items():
        if isinstance(iceberg_type, kind):
            return name
    if isinstance(iceberg_type, t.ListType):
        return f"array<{hive_type(iceberg_type.element_type)}>"
    if isinstance(iceberg_type, t.MapType):
        return f"map<{hive_type(iceberg_type.key_type)},{hive_type(iceberg_type.value_type)}>"
    if isinstance(iceberg_type, t.DecimalType):
        return f"decimal({iceberg_type.precision},{iceberg_type.scale})"
    if isinstance(iceberg_type, t.StructType):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.field_type)}" for f in iceberg_type.fields) + ">"
    return str(iceberg_type)


def _columns(schema) -> dict[str, str]:
    return {f.name: hive_type(f.field_type) for f in schema.fields}


def _partition_values(table, snapshot_id: int | None = None) -> dict[str, dict]:
    """Partition value (as text) -> statistics, of a snapshot (default: the current one); empty when
    the table is unpartitioned or the snapshot holds no files."""
    snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else table.current_snapshot()
    if snapshot is None or table.spec().is_unpartitioned():
        return {}
    partitions = table.inspect.partitions(snapshot_id=snapshot.snapshot_id)
    if "partition" not in partitions.column_names:
        return {}
    stats = {}
    for row in partitions.to_pylist():
        values = "/".join(str(v) for v in (row.get("partition") or {}).values())
        stats[values] = {
            "records": row["record_count"],
            "files": row["file_count"],
            "bytes": row["total_data_file_size_in_bytes"],
        }
    return stats


def partition_values(table, snapshot_id: int | None = None) -> list[str]:
    """The partition values of a snapshot (default: the current one), sorted, as text."""
    return sorted(_partition_values(table, snapshot_id), key=_sortable)


def bookmark(table) -> dict:
    """What the crawler remembers of a table between crawls: the snapshot, schema and partitions it saw."""
    snapshot = table.current_snapshot()
    return {
        "snapshot_id": snapshot.snapshot_id if snapshot else None,
        "schema_id": table.schema().schema_id,
        "columns": _columns(table.schema()),
        "partitions": sorted(_partition_values(table)),
    }


def iceberg_table(layer: str, name: str, table, crawled_at: str):
    """The table as the crawler reports it (read from Iceberg's metadata, not from the data files)."""

    snapshot = table.current_snapshot()
    summary = snapshot.summary.additional_properties if snapshot is not None and snapshot.summary else {}
    partitions = _partition_values(table)
    return CatalogTable(
        database=layer,
        name=name,
        description=table.properties.get("comment", ""),
        location=table.location(),
        storage=ICEBERG,
        columns=tuple(CatalogColumn(f.name, hive_type(f.field_type), f.doc or "") for f in table.schema().fields),
        partitions=tuple(
            CatalogPartition((values,), "", s["records"], s["bytes"], s["files"])
            for values, s in sorted(partitions.items(), key=lambda kv: _sortable(kv[0]))
        ),
        record_count=live_rows(snapshot.summary) if snapshot is not None else 0,
        size_bytes=int(summary.get("total-files-size", 0)),
        files=int(summary.get("total-data-files", 0)),
        fingerprint=str(snapshot.snapshot_id if snapshot else ""),
        last_crawled=crawled_at,
        parameters={
            "table_type": "ICEBERG",
            "metadata_location": table.metadata_location,
            "current_snapshot_id": str(snapshot.snapshot_id if snapshot else ""),
            "schema_id": str(table.schema().schema_id),
            "format_version": str(table.format_version),
            "partition_spec": ", ".join(str(f) for f in table.spec().fields),
        },
    )


def _sortable(value: str):
    return (0, int(value), "") if value.lstrip("-").isdigit() else (1, 0, value)


def iceberg_change(qualified_name: str, table, before: dict | None):
    """What changed in the table since the crawl that left ``before`` (its bookmark): columns added,
    removed or retyped between the schema seen then (from Iceberg's schema history) and now,
    partitions added or removed, and whether new snapshots were committed."""

    now = bookmark(table)
    if before is None:
        return TableChange(
            qualified_name,
            "added",
            columns_added=tuple(now["columns"]),
            partitions_added=tuple(now["partitions"]),
            data_changed=True,
        )
    schemas = table.schemas()
    old_columns = (
        _columns(schemas[before["schema_id"]]) if before.get("schema_id") in schemas else before.get("columns", {})
    )
    new_columns = now["columns"]
    change = TableChange(
        qualified_name,
        "updated",
        columns_added=tuple(c for c in new_columns if c not in old_columns),
        columns_removed=tuple(c for c in old_columns if c not in new_columns),
        columns_retyped=tuple(
            (c, old_columns[c], t) for c, t in new_columns.items() if c in old_columns and old_columns[c] != t
        ),
        partitions_added=tuple(p for p in now["partitions"] if p not in before.get("partitions", [])),
        partitions_removed=tuple(p for p in before.get("partitions", []) if p not in now["partitions"]),
        data_changed=now["snapshot_id"] != before.get("snapshot_id"),
    )
    return change if change.changed else TableChange(qualified_name, "unchanged")
