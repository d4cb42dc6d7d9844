"""Data-quality checks of the cleanse and access layers, generated from ``datasets.py``.

``rules.py`` holds the rules and their one-pass evaluation (Spark, no Dagster),
``reconciliation.py`` the record accounting between layers, ``factories.py`` turns both into
Dagster asset checks.
"""

import warnings

from movielake_dagster.checks.factories import build_dataset_checks, build_freshness_checks, checked_datasets


def build_checks():
    """Every asset check of the lake and the sensor that keeps the access layer's freshness checked."""
    import dagster as dg

    freshness = build_freshness_checks()
    checks = [build_dataset_checks(d) for d in checked_datasets()] + freshness
    with warnings.catch_warnings():  # superseded by FreshnessPolicy, which does not show as a check
        warnings.simplefilter("ignore")
        sensor = dg.build_sensor_for_freshness_checks(freshness_checks=freshness, name="access_freshness_sensor")
    return checks, sensor


__all__ = ["build_checks", "build_dataset_checks", "build_freshness_checks", "checked_datasets"]
