"""SQL over the lake through the catalog's table names, on an embedded DuckDB.

Every table the catalog holds becomes a view named as in the catalog (``access.fct_rating``,
``cleanse.quarantine_ratings``, ``staging.ratings``), reading the files at the table's location;
the ``access`` schema is the default, so ``SELECT * FROM fct_rating`` works too. The same SQL runs on
Athena against the Glue catalog (see the README).

Where the lake is on S3, Parquet is read through pyarrow's S3 file system (registered with DuckDB
as Arrow datasets, with projection and filter push-down) rather than DuckDB's ``httpfs``
extension: DuckDB downloads extensions at run time, and the only pip-installable ``httpfs`` is
built for an older DuckDB than the one the project uses. Raw staging files on S3 are therefore not
mapped (query them with Athena); locally they are read with DuckDB's CSV and JSON readers.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

import duckdb

from movielake_dagster.catalog import Catalog, CatalogTable, LakeFiles
from movielake_dagster.errors import MovielakeError
from movielake_dagster.lake import LAYERS

DUCKDB_TYPES = {"int": "INTEGER", "bigint": "BIGINT", "smallint": "SMALLINT", "tinyint": "TINYINT",
                "string": "VARCHAR", "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN",
                "date": "DATE", "timestamp": "TIMESTAMP"}
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


class SqlEngine:
    """A DuckDB connection with one view per catalog table; build once, query many times."""

    def __init__(self, catalog: Catalog, files: LakeFiles, layers: tuple[str, ...] = LAYERS):
        self.catalog = catalog
        self.files = files
        self.layers = layers
        self.skipped: list[str] = []  # tables that could not be mapped, with the reason
        self.broken: dict[str, str] = {}  # qualified name -> why it cannot be read (queries on it fail, others work)

    @cached_property
    def tables(self) -> list[CatalogTable]:
        return [t for layer in self.layers for t in self.catalog.list_tables(layer)]

    @cached_property
    def connection(self):

        connection = duckdb.connect(":memory:")
        connection.execute("SET TimeZone = 'UTC'")
        if not any(t.database == DEFAULT_SCHEMA for t in self.tables):
            raise QueryError(f"the {self.catalog.describe()} has no {DEFAULT_SCHEMA} tables",
                             "build the lake and crawl it: `movielake run`, or `movielake crawl` after a build")
        for database in sorted({t.database for t in self.tables}):
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(database)}")
        for table in self.tables:
            try:  # one table that cannot be read must not take the others down
                source = self._source(connection, table)
                if source is None:
                    continue
                connection.execute(
                    f"CREATE VIEW {_ident(table.database)}.{_ident(table.name)} AS SELECT * FROM {source}")
            except (duckdb.Error, OSError, ValueError) as error:
                self.broken[table.qualified_name] = _first_line(error)
        connection.execute(f"USE {_ident(DEFAULT_SCHEMA)}")
        return connection

    def _source(self, connection, table: CatalogTable) -> str | None:
        location = table.location.rstrip("/")
        on_s3 = location.startswith("s3://")
        if table.classification == "parquet" and table.files == 0:
            return self._empty(table)
        if table.classification == "parquet":
            if on_s3:
                return self._register_arrow(connection, table, location)
            depth = "/".join("*" for _ in table.partition_keys)
            pattern = f"{location}/{depth + '/' if depth else ''}*.parquet"
            options = ""
            if table.partition_keys:
                types = ", ".join(f"{_literal(k.name)}: {DUCKDB_TYPES.get(k.type, 'VARCHAR')}"
                                  for k in table.partition_keys)
                options = f", hive_partitioning = true, hive_types = {{{types}}}"
            return f"read_parquet({_literal(pattern)}, union_by_name = true{options})"
        if on_s3:
            self.skipped.append(f"{table.qualified_name}: raw files on S3 (query them with Athena)")
            return None
        files = [f"{location}/{name}" for name in table.parameters.get("files", "").split(",") if name]
        if not files:
            return None
        columns = "{" + ", ".join(f"{_literal(c.name)}: 'VARCHAR'" for c in table.columns) + "}"
        file_list = "[" + ", ".join(_literal(f) for f in files) + "]"
        encoding = "latin-1" if table.parameters.get("encoding") == "ISO-8859-1" else "utf-8"
        if table.classification == "dat":
            return (f"read_csv({file_list}, delim = '::', header = false, quote = '', escape = '', "
                    f"columns = {columns}, null_padding = true, ignore_errors = true, encoding = '{encoding}')")
        if table.classification == "csv":  # RFC 4180: doubled quotes, separators and line breaks in quotes
            header = "true" if table.parameters.get("header") == "true" else "false"
            return (f"read_csv({file_list}, delim = ',', header = {header}, quote = '\"', escape = '\"', "
                    f"columns = {columns}, ignore_errors = true, encoding = '{encoding}')")
        if table.classification == "json":  # JSON lines, or one array (on one line or pretty-printed)
            return f"read_json({file_list}, format = 'auto', columns = {columns}, ignore_errors = true)"
        self.skipped.append(f"{table.qualified_name}: {table.classification} files are not mapped")
        return None

    @staticmethod
    def _empty(table: CatalogTable) -> str:
        """An empty dataset (Spark wrote only ``_SUCCESS``): no rows, the catalog's columns and types."""
        def duckdb_type(hive: str) -> str:
            if hive.startswith("array<") and hive.endswith(">"):
                return duckdb_type(hive[6:-1]) + "[]"
            return "TIMESTAMPTZ" if hive == "timestamp" else DUCKDB_TYPES.get(hive, "VARCHAR")

        columns = ", ".join(f"CAST(NULL AS {duckdb_type(c.type)}) AS {_ident(c.name)}"
                            for c in (*table.columns, *table.partition_keys))
        return f"(SELECT {columns} WHERE false)"

    def _register_arrow(self, connection, table: CatalogTable, location: str) -> str:
        import pyarrow as pa
        import pyarrow.dataset as ds

        arrow_types = {"int": pa.int32(), "bigint": pa.int64(), "string": pa.string(), "smallint": pa.int16(),
                       "tinyint": pa.int8(), "date": pa.date32(), "boolean": pa.bool_(), "double": pa.float64()}
        filesystem, path = self.files.arrow_path(location)
        partitioning = None
        if table.partition_keys:
            partitioning = ds.partitioning(
                pa.schema([(k.name, arrow_types.get(k.type, pa.string())) for k in table.partition_keys]),
                flavor="hive")
        dataset = ds.dataset(path, filesystem=filesystem, format="parquet", partitioning=partitioning)
        name = f"__arrow_{table.database}_{table.name}"
        connection.register(name, dataset)
        return _ident(name)

    def query(self, sql: str) -> QueryResult:
        connection = self.connection
        start = time.perf_counter()
        try:
            cursor = connection.execute(sql)
            rows = cursor.fetchall() if cursor.description else []
        except duckdb.Error as error:
            first_line = _first_line(error)
            for name, reason in self.broken.items():
                if re.search(rf"\b{re.escape(name.split('.')[-1])}\b", sql):
                    raise QueryError(f"the table {name} cannot be read ({reason})",
                                     f"rebuild it (`movielake run`) and re-crawl (`movielake crawl`); "
                                     f"the other tables can be queried") from None
            raise QueryError(f"the query failed: {first_line}",
                             f"check the SQL; tables: {', '.join(self.table_names())}") from None
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return QueryResult(columns, [tuple(_plain(v) for v in row) for row in rows], time.perf_counter() - start)

    def table_names(self) -> list[str]:
        return [t.qualified_name for t in self.tables]

    def close(self) -> None:
        if "connection" in self.__dict__:
            self.connection.close()
            del self.__dict__["connection"]


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _plain(value):
    """Timestamps in UTC without the zone suffix (as Spark prints them), everything else as is."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def is_read_only(sql: str) -> bool:
    """A single SELECT/WITH/DESCRIBE/SHOW/EXPLAIN statement (the CLI refuses anything else)."""
    statement = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S).strip().rstrip(";").strip()
    readers = r"(?is)^(select|with|describe|show|explain|summarize|from|values|pragma\s+table_info)\b"
    return ";" not in statement and bool(re.match(readers, statement))
