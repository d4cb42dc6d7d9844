"""Merging one batch of ratings into the ratings a previous load left, as row changes.

A daily batch is cleansed on its own (the same rules as a full build), then merged: a batch rating
that is older than the one already in the lake for the same (user, movie) is a ``duplicate``; a newer
one replaces it. What the day changes (rows inserted, stored rows replaced) is written as such, and
recorded as a change log that the derived tables apply. Pure functions.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movielake_dagster.transforms.raw_lines import DETAIL, REASON

KEYS = ["user_id", "movie_id"]
EXISTING_AT = "_existing_rated_at"
HAS_KEY = "_has_key"


def stored_with_batch_keys(existing: DataFrame | None, classified: DataFrame) -> DataFrame | None:
    """The stored ratings whose (user, movie) is that of a valid batch rating: a broadcast semi-join
    of the batch's keys, so the stored table is scanned once and never shuffled. Both
    :func:`reject_superseded_by_existing` and :func:`superseded` need only these few rows."""
    if existing is None:
        return None
    batch_keys = classified.where(F.col(REASON).isNull()).select(*KEYS).distinct()
    return existing.join(F.broadcast(batch_keys), KEYS, "left_semi")


def reject_superseded_by_existing(classified: DataFrame, existing: DataFrame | None) -> DataFrame:
    """Batch ratings older than the lake's rating of the same (user, movie) become ``duplicate``.

    ``existing`` may be the whole stored table or just its rows with the batch's keys
    (:func:`stored_with_batch_keys`). On equal ``rated_at`` the batch wins, so that replaying a
    batch reproduces the same table.
    """
    if existing is None:
        return classified
    hits = stored_with_batch_keys(existing, classified).select(*KEYS, F.col("rated_at").alias(EXISTING_AT))
    joined = classified.join(F.broadcast(hits), KEYS, "left")  # at most one row per batch key
    older = F.col(REASON).isNull() & (F.col("rated_at") < F.col(EXISTING_AT))
    return (
        joined.withColumn(REASON, F.when(older, F.lit("duplicate")).otherwise(F.col(REASON)))
        .withColumn(
            DETAIL,
            F.when(older, F.lit("the lake already has a later rating of this movie by this user")).otherwise(
                F.col(DETAIL)
            ),
        )
        .drop(EXISTING_AT)
    )


def _same_row(columns: list[str]):
    return F.expr(" AND ".join(f"`{c}` <=> `_new_{c}`" for c in columns))


def superseded(existing: DataFrame | None, batch: DataFrame) -> DataFrame | None:
    """The stored rows that the batch replaces by a different row: those of earlier loads.

    A stored row equal in every column to the batch's row (rating, time and source line) is the
    batch's own, from an earlier load of the same file, so replaying a batch supersedes nothing.
    """
    if existing is None:
        return None
    values = [c for c in existing.columns if c not in KEYS]
    incoming = batch.select(*KEYS, *[F.col(c).alias(f"_new_{c}") for c in values])
    return existing.join(F.broadcast(incoming), KEYS).where(~_same_row(values)).select(*existing.columns)


def changed_rows(batch: DataFrame, existing: DataFrame | None) -> DataFrame:
    """The batch rows the stored table does not hold yet: new keys, and keys whose stored row differs."""
    if existing is None:
        return batch
    values = [c for c in batch.columns if c not in KEYS]
    stored = existing.select(*KEYS, *[F.col(c).alias(f"_new_{c}") for c in values])
    return (
        batch.join(F.broadcast(stored), KEYS, "left")
        .where(~F.coalesce(_same_row(values), F.lit(False)))
        .select(*batch.columns)
    )


CHANGE_COLUMNS = ["user_id", "movie_id", "rating", "rated_at", "rating_date"]


def change_log(replaced: DataFrame | None, inserted: DataFrame, spark) -> DataFrame:
    """The day's change log: ``insert`` rows for what the day added, ``delete`` rows for the stored
    rows it replaced (their values before the day)."""
    rows = inserted.select(F.lit("insert").alias("change"), *CHANGE_COLUMNS)
    if replaced is not None:
        rows = rows.unionByName(replaced.select(F.lit("delete").alias("change"), *CHANGE_COLUMNS))
    return rows
