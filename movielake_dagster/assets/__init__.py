"""The lake's assets, one module per layer (each layer is a group in the Dagster UI)."""

from movielake_dagster.assets.access import access_assets
from movielake_dagster.assets.analytics import analytics_assets
from movielake_dagster.assets.cleanse import cleanse_assets
from movielake_dagster.assets.staging import staging_assets

ALL_ASSETS = [*staging_assets, *cleanse_assets, *access_assets, *analytics_assets]

__all__ = ["ALL_ASSETS"]
