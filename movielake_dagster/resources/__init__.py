"""Dagster resources: where the lake is (``LakeResource``) and the Spark engine (``SparkResource``)."""

from movielake_dagster.resources.lake import LakeResource
from movielake_dagster.resources.spark import SparkResource

__all__ = ["LakeResource", "SparkResource"]
