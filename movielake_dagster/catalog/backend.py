"""The one interface both catalogs implement: databases, tables with their partitions, crawl history."""

from __future__ import annotations

from abc import ABC, abstractmethod

from movielake_dagster.catalog.model import CatalogTable, CrawlReport


class Catalog(ABC):
    """A metadata store of databases (one per layer) and tables; the crawler's only way to write."""

    @abstractmethod
    def describe(self) -> str:
        """Where this catalog is, for people: ``local catalog at ...`` or ``AWS Glue (...)``."""

    @abstractmethod
    def ensure_database(self, name: str, description: str) -> None: ...

    @abstractmethod
    def list_databases(self) -> list[str]: ...

    @abstractmethod
    def list_tables(self, database: str) -> list[CatalogTable]:
        """Every table of the database, with its partitions; empty when the database does not exist."""

    def get_table(self, database: str, name: str) -> CatalogTable | None:
        for table in self.list_tables(database):
            if table.name == name:
                return table
        return None

    @abstractmethod
    def put_table(self, table: CatalogTable, partitions_changed: bool = True) -> None:
        """Create or replace the table; its partitions too when ``partitions_changed``."""

    @abstractmethod
    def delete_table(self, database: str, name: str) -> None: ...

    @abstractmethod
    def get_bookmarks(self, database: str) -> dict[str, dict]:
        """Per Iceberg table of the database: what the last crawl saw (snapshot, schema, partitions)."""

    @abstractmethod
    def put_bookmarks(self, database: str, bookmarks: dict[str, dict]) -> None:
        """Replace the database's bookmarks with these (tables not named lose theirs)."""

    def record_crawl(self, report: CrawlReport) -> None:
        """Keep a crawl's report where the backend can (the local catalog keeps a history)."""

    def last_crawls(self, limit: int = 10) -> list[dict]:
        return []
