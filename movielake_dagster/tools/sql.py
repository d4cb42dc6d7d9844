"""SQL over the lake through the catalogs' table names, on an embedded DuckDB.

Every table becomes a view named as in the catalog (``access.fct_rating``, ``cleanse.quarantine_ratings``,
``staging.ratings``); the ``access`` schema is the default, so ``SELECT * FROM fct_rating`` works too.
The same SQL runs on Athena against the Glue catalog (see the README).

The cleanse and access tables are Iceberg tables, read through pyiceberg: a table's snapshot becomes
an Arrow dataset of its data files (registered with DuckDB, which pushes projections and filters into
the scan, so unused columns and other partitions' files are skipped), with pyiceberg applying any
delete files. DuckDB's own ``iceberg`` and ``httpfs`` extensions are downloaded at run time, which
this setup avoids. Raw staging files on S3 are not mapped (query them with Athena); locally they are
read with DuckDB's CSV and JSON readers.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import duckdb

from movielake_dagster.catalog import Catalog, CatalogTable, LakeFiles
from movielake_dagster.catalog.iceberg import (
    ICEBERG_LAYERS,
    IcebergCatalog,
    arrow_dataset,
    snapshot_as_of,
)
from movielake_dagster.errors import MovielakeError
from movielake_dagster.lake import LAYERS, store_uri
from movielake_dagster.transforms.layouts import (
    json_starts_document,
    parse_json_document,
)

DUCKDB_TYPES = {
    "int": "INTEGER",
    "bigint": "BIGINT",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "string": "VARCHAR",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
DEFAULT_SCHEMA = "access"


class QueryError(MovielakeError):
    """A query that DuckDB rejected, or a catalog with nothing to query."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    seconds: float


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class TimeTravel:
    """Which snapshot of each Iceberg table a query reads (default: each table's current one).

    ``as_of``: the snapshots that were current then; ``snapshot``: one table's snapshot, the others as
    of its commit time; ``branch``: each table's snapshot on that branch (a run's write-audit-publish
    branch), or its current one where the branch does not exist."""

    as_of: datetime | None = None
    snapshot: int | None = None
    branch: str = ""

    @classmethod
    def parse(cls, as_of: str | None = None, branch: str | None = None) -> TimeTravel:
        """``--as-of`` is a snapshot id (digits) or an ISO timestamp (UTC unless it says otherwise)."""
        if as_of and as_of.strip().isdigit():
            return cls(snapshot=int(as_of.strip()), branch=branch or "")
        if as_of:
            try:
                moment = datetime.fromisoformat(as_of.strip().replace("Z", "+00:00"))
            except ValueError:
                raise QueryError(
                    f"--as-of {as_of!r} is neither a snapshot id nor a timestamp",
                    "give a snapshot id from `movielake history` or a time like 2026-11-30T08:00:00",
                ) from None
            return cls(as_of=moment if moment.tzinfo else moment.replace(tzinfo=UTC), branch=branch or "")
        return cls(branch=branch or "")


class SqlEngine:
    """A DuckDB connection over the lake's tables, named as in the catalogs; build once, query many times.

    The cleanse and access tables are Iceberg tables: each is read through pyiceberg as an Arrow
    dataset of one snapshot (the current one, or the one ``travel`` picks), registered only when a
    query names it. The staging tables are the crawler's registrations of the raw files. A table that
    cannot be read fails only the queries that name it, in one line.
    """

    def __init__(
        self,
        catalog: Catalog,
        files: LakeFiles,
        iceberg: IcebergCatalog,
        layers: tuple[str, ...] = LAYERS,
        travel: TimeTravel | None = None,
    ):
        self.catalog = catalog
        self.files = files
        self.iceberg = iceberg
        self.layers = layers
        self.travel = travel or TimeTravel()
        self.skipped: list[str] = []  # tables that could not be mapped, with the reason
        self.broken: dict[str, str] = {}  # qualified name -> why it cannot be read (queries on it fail, others work)
        self.read_snapshots: dict[str, int | None] = {}  # qualified name -> the snapshot a query read
        self._registered: set[str] = set()

    @cached_property
    def raw_tables(self) -> list[CatalogTable]:
        return [t for layer in self.layers if layer not in ICEBERG_LAYERS for t in self.catalog.list_tables(layer)]

    @cached_property
    def iceberg_tables(self) -> list[tuple[str, str]]:
        return self.iceberg.tables(tuple(layer for layer in self.layers if layer in ICEBERG_LAYERS))

    @cached_property
    def connection(self):
        connection = duckdb.connect(":memory:")
        connection.execute("SET TimeZone = 'UTC'")
        if not self.iceberg_tables and not self.raw_tables:
            raise QueryError(
                f"the {self.iceberg.describe()} has no tables yet", "build the lake first: `movielake run`"
            )
        for layer in self.layers:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(layer)}")
        connection.execute(f"USE {_ident(DEFAULT_SCHEMA)}")
        return connection

    def _register(self, names: set[str]) -> None:
        """Create the views of the tables named ``names`` (bare names), once each."""
        connection = self.connection
        for layer, name in self.iceberg_tables:
            qualified = f"{layer}.{name}"
            if name in names and qualified not in self._registered:
                self._registered.add(qualified)
                try:
                    source = self._iceberg_source(connection, layer, name)
                    connection.execute(f"CREATE VIEW {_ident(layer)}.{_ident(name)} AS SELECT * FROM {source}")
                except (duckdb.Error, OSError, ValueError, MovielakeError) as error:
                    self.broken[qualified] = _first_line(error)
        for table in self.raw_tables:
            if table.name in names and table.qualified_name not in self._registered:
                self._registered.add(table.qualified_name)
                try:  # one table that cannot be read must not take the others down
                    source = self._source(connection, table)
                    if source is not None:
                        connection.execute(
                            f"CREATE VIEW {_ident(table.database)}.{_ident(table.name)} AS SELECT * FROM {source}"
                        )
                except (duckdb.Error, OSError, ValueError) as error:
                    self.broken[table.qualified_name] = _first_line(error)

    def _iceberg_source(self, connection, layer: str, name: str) -> str:
        table = self.iceberg.table(layer, name)
        if table is None:
            raise QueryError(f"{layer}.{name} is no longer in the catalog", "re-run the query")
        snapshot_id = self._snapshot_for(layer, name, table)
        self.read_snapshots[f"{layer}.{name}"] = snapshot_id
        if snapshot_id is None and self.travel != TimeTravel():
            dataset = arrow_dataset(table, None, self.files.arrow_s3 if self.iceberg.on_s3 else None, empty=True)
        else:
            dataset = arrow_dataset(table, snapshot_id, self.files.arrow_s3 if self.iceberg.on_s3 else None)
        handle = f"__iceberg_{layer}_{name}"
        connection.register(handle, dataset)
        return _ident(handle)

    @cached_property
    def _travel_moment(self) -> datetime | None:
        """The moment every table is read as of (``as_of``, or the commit time of ``snapshot``)."""
        if self.travel.as_of is not None:
            return self.travel.as_of
        if self.travel.snapshot is None:
            return None
        for layer, name in self.iceberg_tables:
            table = self.iceberg.table(layer, name)
            snapshot = table.snapshot_by_id(self.travel.snapshot) if table is not None else None
            if snapshot is not None:
                return datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC)
        raise QueryError(
            f"no table of the lake has a snapshot {self.travel.snapshot}", "pick one from `movielake history TABLE`"
        )

    def _snapshot_for(self, layer: str, name: str, table) -> int | None:
        """The snapshot of ``table`` the query reads: None means its current one."""
        if self.travel.branch:
            ref = table.metadata.refs.get(self.travel.branch)
            if ref is not None:
                return ref.snapshot_id
        if self.travel.snapshot is not None and table.snapshot_by_id(self.travel.snapshot) is not None:
            return self.travel.snapshot
        moment = self._travel_moment
        if moment is None:
            return table.metadata.current_snapshot_id if self.travel.branch else None
        snapshot = snapshot_as_of(table, moment)
        return snapshot.snapshot_id if snapshot is not None else None

    def _source(self, connection, table: CatalogTable) -> str | None:
        location = table.location.rstrip("/")
        on_s3 = location.startswith("s3://")
        if on_s3:
            self.skipped.append(f"{table.qualified_name}: raw files on S3 (query them with Athena)")
            return None
        listed = [f"{location}/{name}" for name in table.parameters.get("files", "").split(",") if name]
        if not listed:
            return None
        files = [f for f in listed if os.path.getsize(store_uri(f)) > 0]  # DuckDB cannot sniff an empty file
        if not files:  # only empty exports: the table's columns, no row
            return (
                "(SELECT "
                + ", ".join(f"CAST(NULL AS VARCHAR) AS {_ident(c.name)}" for c in table.columns)
                + " WHERE false)"
            )
        columns = "{" + ", ".join(f"{_literal(c.name)}: 'VARCHAR'" for c in table.columns) + "}"
        file_list = "[" + ", ".join(_literal(f) for f in files) + "]"
        encoding = "latin-1" if table.parameters.get("encoding") == "ISO-8859-1" else "utf-8"
        if table.classification == "dat":
            return (
                f"read_csv({file_list}, delim = '::', header = false, quote = '', escape = '', "
                f"columns = {columns}, null_padding = true, ignore_errors = true, encoding = '{encoding}')"
            )
        if table.classification == "csv":  # RFC 4180: doubled quotes, separators and line breaks in quotes
            header = "true" if table.parameters.get("header") == "true" else "false"
            return (
                f"read_csv({file_list}, delim = ',', header = {header}, quote = '\"', escape = '\"', "
                f"columns = {columns}, ignore_errors = true, encoding = '{encoding}')"
            )
        if table.classification == "json":  # JSON lines, or one array (on one line or pretty-printed)
            documents = [f for f in files if _is_json_document(store_uri(f))]
            if documents:  # split element by element as the lake reads them: a broken one is skipped
                handle = f"__staging_{table.name}"
                connection.register(handle, _json_document_rows(documents, [c.name for c in table.columns]))
                return _ident(handle)
            return f"read_json({file_list}, format = 'auto', columns = {columns}, ignore_errors = true)"
        self.skipped.append(f"{table.qualified_name}: {table.classification} files are not mapped")
        return None

    def query(self, sql: str) -> QueryResult:
        connection = self.connection
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql))
        self._register(words)
        start = time.perf_counter()
        try:
            cursor = connection.execute(sql)
            rows = cursor.fetchall() if cursor.description else []
        except duckdb.Error as error:
            first_line = _first_line(error)
            for name, reason in self.broken.items():
                if re.search(rf"\b{re.escape(name.split('.')[-1])}\b", sql):
                    raise QueryError(
                        f"the table {name} cannot be read ({reason})",
                        "rebuild it (`movielake run`) and re-crawl (`movielake crawl`); "
                        "the other tables can be queried",
                    ) from None
            crawl_hint = "" if self.raw_tables else " (staging's raw files appear after `movielake crawl`)"
            raise QueryError(
                f"the query failed: {first_line}", f"check the SQL; tables: {', '.join(self.table_names())}{crawl_hint}"
            ) from None
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return QueryResult(columns, [tuple(_plain(v) for v in row) for row in rows], time.perf_counter() - start)

    def table_names(self) -> list[str]:
        return [f"{layer}.{name}" for layer, name in self.iceberg_tables] + [t.qualified_name for t in self.raw_tables]

    def close(self) -> None:
        if "connection" in self.__dict__:
            self.connection.close()
            del self.__dict__["connection"]


def _is_json_document(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = next((line for line in handle if line.strip()), "")
    return json_starts_document(first)


def _json_document_rows(paths: list[str], columns: list[str]):
    """The objects of JSON documents (arrays, pretty-printed objects) as text columns, read with the
    lake's own element-by-element reader; elements it cannot read are left out (they are quarantined)."""
    import pyarrow as pa

    rows = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            parsed = parse_json_document(handle.read())
        for record in parsed.records:
            if record.problem:
                continue
            value = json.loads(record.text)
            if isinstance(value, dict):
                rows.append([None if value.get(c) is None else str(value[c]) for c in columns])
    return pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)})


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _plain(value):
    """Timestamps in UTC without the zone suffix (as Spark prints them), everything else as is."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def is_read_only(sql: str) -> bool:
    """A single SELECT/WITH/DESCRIBE/SHOW/EXPLAIN statement (the CLI refuses anything else)."""
    statement = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S).strip().rstrip(";").strip()
    readers = r"(?is)^(select|with|describe|show|explain|summarize|from|values|pragma\s+table_info)\b"
    return ";" not in statement and bool(re.match(readers, statement))
