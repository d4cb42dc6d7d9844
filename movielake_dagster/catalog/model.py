"""What a catalog holds (databases, tables, columns, partitions) and what a crawl reports.

The shapes follow the AWS Glue Data Catalog, so the Glue backend is a thin translation and the
local backend stores the same thing. Types are Hive/Athena types (``int``, ``bigint``, ``double``,
``string``, ``date``, ``timestamp``, ``boolean``, ``array<string>``), which are also the Spark SQL
types ``datasets.py`` declares.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

CRAWLER_NAME = "movielake"
"""Tables whose ``crawler`` is this name were made by our crawler; only those does it delete."""


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: str
    description: str = ""


@dataclass(frozen=True)
class StorageFormat:
    """How the files are read: Glue's classification plus Hive's input/output formats and SerDe."""

    classification: str  # parquet | json | csv | dat
    input_format: str
    output_format: str
    serde: str
    serde_parameters: dict[str, str] = field(default_factory=dict)
    table_parameters: dict[str, str] = field(default_factory=dict)  # e.g. skip.header.line.count


@dataclass(frozen=True)
class CatalogPartition:
    values: tuple[str, ...]
    location: str
    record_count: int = 0
    size_bytes: int = 0
    files: int = 0


@dataclass(frozen=True)
class CatalogTable:
    """One registered table. ``columns`` excludes the partition keys, as in Glue and Hive."""

    database: str
    name: str
    description: str
    location: str
    storage: StorageFormat
    columns: tuple[CatalogColumn, ...]
    partition_keys: tuple[CatalogColumn, ...] = ()
    partitions: tuple[CatalogPartition, ...] = ()
    record_count: int = 0
    size_bytes: int = 0
    files: int = 0
    fingerprint: str = ""  # changes whenever any data file changes (sizes and ETags/mtimes)
    last_crawled: str = ""  # ISO 8601 UTC
    dataset_key: str = ""  # the key declared in datasets.py; empty for a discovered, undeclared table
    crawler: str = CRAWLER_NAME
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.name}"

    @property
    def classification(self) -> str:
        return self.storage.classification

    def column(self, name: str) -> CatalogColumn | None:
        for column in (*self.columns, *self.partition_keys):
            if column.name == name:
                return column
        return None

    def with_changes(self, **changes: Any) -> CatalogTable:
        return replace(self, **changes)

    # -- plain-data form (the local backend stores this as JSON) --------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CatalogTable:
        data = dict(data)
        data["storage"] = StorageFormat(**data["storage"])
        data["columns"] = tuple(CatalogColumn(**c) for c in data["columns"])
        data["partition_keys"] = tuple(CatalogColumn(**c) for c in data["partition_keys"])
        data["partitions"] = tuple(CatalogPartition(**{**p, "values": tuple(p["values"])}) for p in data["partitions"])
        return cls(**data)


# -- what a crawl reports --------------------------------------------------------------------------


@dataclass(frozen=True)
class TableChange:
    """How one table differs from what the catalog held before this crawl."""

    table: str  # database.name
    kind: str  # added | removed | updated | unchanged
    columns_added: tuple[str, ...] = ()
    columns_removed: tuple[str, ...] = ()
    columns_retyped: tuple[tuple[str, str, str], ...] = ()  # (column, old type, new type)
    partition_keys_changed: bool = False
    partitions_added: tuple[str, ...] = ()
    partitions_removed: tuple[str, ...] = ()
    data_changed: bool = False
    other: tuple[str, ...] = ()  # location, format, ...

    @property
    def schema_changed(self) -> bool:
        return bool(self.columns_added or self.columns_removed or self.columns_retyped or self.partition_keys_changed)

    @property
    def changed(self) -> bool:
        return (
            self.kind in ("added", "removed")
            or self.schema_changed
            or self.data_changed
            or bool(self.partitions_added or self.partitions_removed or self.other)
        )

    def summary(self) -> str:
        if self.kind in ("added", "removed"):
            return f"{self.table}: table {self.kind}"
        parts = []
        if self.columns_added:
            parts.append("columns added " + ", ".join(self.columns_added))
        if self.columns_removed:
            parts.append("columns removed " + ", ".join(self.columns_removed))
        for column, old, new in self.columns_retyped:
            parts.append(f"column {column} retyped {old} -> {new}")
        if self.partition_keys_changed:
            parts.append("partition keys changed")
        if self.partitions_added:
            parts.append(f"{len(self.partitions_added)} partition(s) added")
        if self.partitions_removed:
            parts.append(f"{len(self.partitions_removed)} partition(s) removed")
        parts.extend(self.other)
        if self.data_changed and not parts:
            parts.append("data changed, schema unchanged")
        return f"{self.table}: " + ("; ".join(parts) if parts else "unchanged")


@dataclass(frozen=True)
class CrawlReport:
    """The result of crawling one layer: the tables as registered and the changes since last time."""

    layer: str
    catalog: str  # which backend, for people
    started_at: str
    seconds: float
    tables: tuple[CatalogTable, ...]
    changes: tuple[TableChange, ...]
    warnings: tuple[str, ...] = ()  # contract drift: undeclared or missing columns, mixed formats

    @property
    def changed(self) -> bool:
        return any(change.changed for change in self.changes)

    def change_for(self, table: str) -> TableChange | None:
        for change in self.changes:
            if change.table == table:
                return change
        return None

    @property
    def schema_changes(self) -> list[TableChange]:
        return [c for c in self.changes if c.kind in ("added", "removed") or c.schema_changed]

    def summary_lines(self) -> list[str]:
        return [change.summary() for change in self.changes if change.changed]

    def to_json(self) -> dict:
        return {
            "layer": self.layer,
            "catalog": self.catalog,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "tables": {
                t.qualified_name: {"records": t.record_count, "bytes": t.size_bytes, "partitions": len(t.partitions)}
                for t in self.tables
            },
            "changes": [asdict(c) for c in self.changes if c.changed],
            "warnings": list(self.warnings),
        }
