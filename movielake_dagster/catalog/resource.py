"""The catalog as a Dagster resource: which backend, where, and a crawler over the lake."""


import dagster as dg

from movielake_dagster.catalog import Catalog, Crawler, build_crawler, open_catalog
from movielake_dagster.resources.lake import LakeResource


class CatalogResource(dg.ConfigurableResource):
    """The metadata catalog: ``local`` (an embedded SQLite file) or ``glue`` (AWS Glue Data Catalog)."""

    lake: LakeResource
    backend: str = "local"
    path: str = ""
    glue_endpoint: str = ""
    region: str = "us-east-1"

    def catalog(self) -> Catalog:
        return open_catalog(self.backend, self.lake.location, self.path, self.glue_endpoint, self.region)

    def crawler(self) -> Crawler:
        return build_crawler(self.lake.location, self.lake.store, self.catalog())
