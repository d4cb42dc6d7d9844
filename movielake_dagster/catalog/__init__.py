"""The lake's metadata catalog: a crawler per layer writing to a local or an AWS Glue catalog.

``open_catalog`` picks the backend from the settings; ``Crawler(location, files, catalog).crawl(layer)``
registers a layer's tables; :mod:`.sensor` crawls a layer whenever its assets materialize;
:mod:`.dictionary` renders ``docs/data_dictionary.md``.
"""

from __future__ import annotations

from pathlib import Path

from movielake_dagster.catalog.backend import Catalog
from movielake_dagster.catalog.crawler import Crawler
from movielake_dagster.catalog.files import LakeFiles
from movielake_dagster.catalog.glue import GlueCatalog
from movielake_dagster.catalog.iceberg import IcebergCatalog
from movielake_dagster.catalog.local import LocalCatalog
from movielake_dagster.catalog.model import (
    CatalogColumn,
    CatalogPartition,
    CatalogTable,
    CrawlReport,
    TableChange,
)
from movielake_dagster.errors import ConfigurationError
from movielake_dagster.lake import LakeLocation, ObjectStore

BACKENDS = ("local", "glue")


def default_catalog_path(location: LakeLocation) -> Path:
    """``catalog.db`` beside the layer folders of a local lake; ``.movielake/catalog.db`` for an S3 lake."""
    if location.is_s3:
        return Path(".movielake") / "catalog.db"
    return Path(location.roots["staging"]).parent / "catalog.db"


def open_catalog(
    backend: str, location: LakeLocation, path: str = "", glue_endpoint: str = "", region: str = "us-east-1"
) -> Catalog:
    if backend == "local":
        return LocalCatalog(path or default_catalog_path(location))
    if backend == "glue":
        return GlueCatalog(glue_endpoint, region)
    raise ConfigurationError(
        f"MOVIELAKE_CATALOG={backend!r} is not a catalog backend", f"use one of {', '.join(BACKENDS)}"
    )


def iceberg_catalog(
    backend: str,
    location: LakeLocation,
    path: str = "",
    glue_endpoint: str = "",
    region: str = "us-east-1",
    s3_endpoint: str = "",
) -> IcebergCatalog:
    """The Iceberg catalog of the cleanse and access tables: the same backend as the crawler's (one
    setting chooses both); locally the same SQLite file."""
    sqlite_path = str(Path(path or default_catalog_path(location)).expanduser().resolve())
    if location.is_s3:
        warehouse = location.roots["cleanse"]
    else:
        warehouse = Path(location.roots["staging"]).parent.as_uri()
    return IcebergCatalog(backend, sqlite_path, warehouse, region, s3_endpoint, glue_endpoint, location.is_s3)


def build_crawler(
    location: LakeLocation, store: ObjectStore, catalog: Catalog, iceberg: IcebergCatalog | None = None
) -> Crawler:
    return Crawler(location, LakeFiles(store), catalog, iceberg)


__all__ = [
    "BACKENDS",
    "Catalog",
    "CatalogColumn",
    "CatalogPartition",
    "CatalogTable",
    "CrawlReport",
    "Crawler",
    "IcebergCatalog",
    "LakeFiles",
    "TableChange",
    "build_crawler",
    "default_catalog_path",
    "iceberg_catalog",
    "open_catalog",
]
