"""The embedded catalog: one SQLite file that persists across runs (no server, safe for concurrent crawls).

Each staging table is stored whole as JSON (the same fields the Glue backend writes), so it can be
read with any SQLite client: ``sqlite3 .movielake/lake/catalog.db "select database, name from tables"``.
The same file is the Iceberg catalog of the cleanse and access tables (``iceberg_tables``, written by
Iceberg's JDBC catalog and pyiceberg); for those the crawler keeps only its bookmarks.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path

from movielake_dagster.catalog.backend import Catalog
from movielake_dagster.catalog.model import CatalogTable, CrawlReport

SCHEMA = """
CREATE TABLE IF NOT EXISTS databases (name TEXT PRIMARY KEY, description TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables (
    database TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (database, name));
CREATE TABLE IF NOT EXISTS bookmarks (
    database TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (database, name));
CREATE TABLE IF NOT EXISTS crawls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, layer TEXT NOT NULL, started_at TEXT NOT NULL, report TEXT NOT NULL);
"""


class LocalCatalog(Catalog):
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()

    def describe(self) -> str:
        return f"local catalog at {self.path}"

    @contextmanager
    def _connect(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one transaction (the inner `with connection`): committed on success, rolled back on error
        with closing(sqlite3.connect(self.path, timeout=30)) as connection, connection:
            connection.executescript(SCHEMA)
            yield connection

    def ensure_database(self, name: str, description: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO databases VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET description = ?",
                (name, description, description),
            )

    def list_databases(self) -> list[str]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT name FROM databases ORDER BY name")]

    def list_tables(self, database: str) -> list[CatalogTable]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute("SELECT body FROM tables WHERE database = ? ORDER BY name", (database,)).fetchall()
        return [CatalogTable.from_dict(json.loads(body)) for (body,) in rows]

    def get_table(self, database: str, name: str) -> CatalogTable | None:
        if not self.path.exists():
            return None
        with self._connect() as db:
            row = db.execute("SELECT body FROM tables WHERE database = ? AND name = ?", (database, name)).fetchone()
        return CatalogTable.from_dict(json.loads(row[0])) if row else None

    def put_table(self, table: CatalogTable, partitions_changed: bool = True) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO tables VALUES (?, ?, ?)",
                (table.database, table.name, json.dumps(table.to_dict(), sort_keys=True)),
            )

    def delete_table(self, database: str, name: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM tables WHERE database = ? AND name = ?", (database, name))

    def get_bookmarks(self, database: str) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        with self._connect() as db:
            rows = db.execute("SELECT name, body FROM bookmarks WHERE database = ?", (database,)).fetchall()
        return {name: json.loads(body) for name, body in rows}

    def put_bookmarks(self, database: str, bookmarks: dict[str, dict]) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM bookmarks WHERE database = ?", (database,))
            db.executemany(
                "INSERT INTO bookmarks VALUES (?, ?, ?)",
                [(database, name, json.dumps(body, sort_keys=True)) for name, body in bookmarks.items()],
            )

    def record_crawl(self, report: CrawlReport) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO crawls (layer, started_at, report) VALUES (?, ?, ?)",
                (report.layer, report.started_at, json.dumps(report.to_json())),
            )
            db.execute("DELETE FROM crawls WHERE id NOT IN (SELECT id FROM crawls ORDER BY id DESC LIMIT 200)")

    def last_crawls(self, limit: int = 10) -> list[dict]:
        if not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute("SELECT report FROM crawls ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [json.loads(r[0]) for r in rows]
