"""IO managers: how each layer's assets are stored in and loaded from the lake."""

from movielake_dagster.io_managers.parquet import SparkParquetIOManager
from movielake_dagster.io_managers.raw_files import RawFilesIOManager, StagedFiles

__all__ = ["RawFilesIOManager", "SparkParquetIOManager", "StagedFiles"]
