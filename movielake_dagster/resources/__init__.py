"""Dagster resources: where the lake is (``LakeResource``), its catalogs (``CatalogResource``) and the
Spark engine (``SparkResource``)."""

from movielake_dagster.resources.catalog import CatalogResource
from movielake_dagster.resources.lake import LakeResource
from movielake_dagster.resources.spark import SparkResource

__all__ = ["CatalogResource", "LakeResource", "SparkResource"]
