"""IO managers: how each layer's assets are stored in and loaded from the lake."""

from movielake_dagster.io_managers.iceberg import IcebergIOManager
from movielake_dagster.io_managers.raw_files import RawFilesIOManager, StagedFiles

__all__ = ["IcebergIOManager", "RawFilesIOManager", "StagedFiles"]
