"""The catalogs as a Dagster resource: the Iceberg catalog of the cleanse and access tables, and the
crawler's catalog (local SQLite or AWS Glue) of the staging files; one setting chooses both."""

from pathlib import Path

import dagster as dg

from movielake_dagster.catalog import (
    Catalog,
    Crawler,
    build_crawler,
    iceberg_catalog,
    open_catalog,
)
from movielake_dagster.catalog.iceberg import IcebergCatalog
from movielake_dagster.datasets import Dataset
from movielake_dagster.resources.lake import LakeResource


class CatalogResource(dg.ConfigurableResource):
    """The metadata catalog: ``local`` (an embedded SQLite file) or ``glue`` (AWS Glue Data Catalog)."""

    lake: LakeResource
    backend: str = "local"
    path: str = ""
    glue_endpoint: str = ""
    region: str = "us-east-1"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.iceberg().prepare()

    def catalog(self) -> Catalog:
        return open_catalog(self.backend, self.lake.location, self.path, self.glue_endpoint, self.region)

    def crawler(self) -> Crawler:
        return build_crawler(self.lake.location, self.lake.store, self.catalog(), self.iceberg())

    def iceberg(self) -> IcebergCatalog:
        return iceberg_catalog(
            self.backend, self.lake.location, self.path, self.glue_endpoint, self.region, self.lake.s3_endpoint
        )

    def table_location(self, dataset: Dataset) -> str:
        """The URI of the dataset's table: its SPEC location (``file:///...`` or ``s3://...``)."""
        uri = self.lake.uri(dataset)
        return uri if uri.startswith("s3://") else Path(uri).resolve().as_uri()
