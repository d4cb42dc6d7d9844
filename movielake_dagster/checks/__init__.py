"""Data-quality checks of the cleanse and access layers, generated from ``datasets.py``.

``rules.py`` holds the rules and their one-pass evaluation (Spark, no Dagster),
``reconciliation.py`` the record accounting between layers, ``factories.py`` turns both into
Dagster asset checks. Lateness is not a check: the access layer carries a freshness policy
(``automation/schedules.py``), which the UI evaluates.
"""

from movielake_dagster.checks.factories import build_dataset_checks, checked_datasets


def build_checks() -> list:
    """Every asset check of the lake: one multi-check per checked dataset."""
    return [build_dataset_checks(d) for d in checked_datasets()]


__all__ = ["build_checks", "build_dataset_checks", "checked_datasets"]
