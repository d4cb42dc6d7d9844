"""Cleansing rules for ratings: ``user_id::movie_id::rating::unix_seconds`` or ratings.csv."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from movielake_dagster.transforms.keys import grouping_columns
from movielake_dagster.transforms.raw_lines import (
    DETAIL,
    REASON,
    RID,
    raw_text_for_quarantine,
    record_fields,
    reject_when,
    try_double,
    try_int,
)
from movielake_dagster.transforms.records import RECORD


def _empty(column: str):
    return F.col(column).isNull() | (F.col(column) == "")


def classify_ratings(lines: DataFrame, now_epoch: int) -> DataFrame:
    """Typed rating columns plus ``_reason``/``_detail``; the syntactic and range rules.

    ``lines``: records as ``transforms/raw_input.py`` reads them (``::`` lines or CSV fields).
    First failure wins: malformed, null_key, bad_type, out_of_range (rating not in 0.5..5.0 in
    half steps, timestamp negative or after ``now_epoch``). References and duplicates are
    checked by :func:`resolve_ratings`.
    """
    fields, malformed = record_fields("::", 4)
    typed = lines.select(
        "*",
        malformed.alias("_malformed"),
        F.trim(F.get(fields, 0)).alias("_raw_user"),
        F.trim(F.get(fields, 1)).alias("_raw_movie"),
        F.trim(F.get(fields, 2)).alias("_raw_rating"),
        F.trim(F.get(fields, 3)).alias("_raw_ts"),
        try_int(F.get(fields, 0)).alias("user_id"),
        try_int(F.get(fields, 1)).alias("movie_id"),
        try_double(F.get(fields, 2)).alias("rating"),
        F.trim(F.get(fields, 3)).try_cast("bigint").alias("_epoch"),
    )
    rating = F.col("rating")
    reason, detail = reject_when(
        [
            (F.col("_malformed"), "malformed", "expected 4 fields: user_id::movie_id::rating::unix_seconds"),
            (_empty("_raw_user") | _empty("_raw_movie"), "null_key", "user_id or movie_id is empty"),
            (
                F.col("user_id").isNull() | F.col("movie_id").isNull(),
                "bad_type",
                F.concat_ws(
                    "", F.lit("ids must be whole numbers: "), F.col("_raw_user"), F.lit(", "), F.col("_raw_movie")
                ),
            ),
            (
                rating.isNull() | F.col("_epoch").isNull(),
                "bad_type",
                F.concat_ws(
                    "",
                    F.lit("rating or timestamp is not a number: "),
                    F.col("_raw_rating"),
                    F.lit(", "),
                    F.col("_raw_ts"),
                ),
            ),
            (
                (rating < 0.5) | (rating > 5.0) | (rating * 2 != F.floor(rating * 2)),
                "out_of_range",
                F.concat(F.lit("rating must be 0.5..5.0 in half steps: "), F.col("_raw_rating")),
            ),
            (
                (F.col("_epoch") < 0) | (F.col("_epoch") > now_epoch),
                "out_of_range",
                F.concat(F.lit("timestamp before 1970 or in the future: "), F.col("_raw_ts")),
            ),
        ]
    )
    rated_at = F.timestamp_seconds(F.col("_epoch"))
    return (
        typed.withColumns({REASON: reason, DETAIL: detail})  # both from the same input row
        .withColumn("rated_at", F.when(F.col(REASON).isNull(), rated_at))
        .withColumn("rating_date", F.to_date(F.col("rated_at")))
    )


def resolve_ratings(classified: DataFrame, users: DataFrame, movies: DataFrame) -> DataFrame:
    """Rejects ratings of unknown users or movies, then keeps the latest rating per (user, movie).

    The composition of :func:`resolve_references`, :func:`superseded_rows` and
    :func:`mark_superseded`; a full build runs the three itself, to size the last join.
    """
    referenced = resolve_references(classified, users, movies)
    return mark_superseded(referenced, superseded_rows(referenced))


def resolve_references(classified: DataFrame, users: DataFrame, movies: DataFrame) -> DataFrame:
    """Rejects ratings of users not in the master data or of unknown movies (``unknown_user``,
    ``unknown_movie``). Users and movies are small, so these are broadcast joins."""
    known_users = F.broadcast(users.select("user_id", F.lit(True).alias("_known_user")))
    known_movies = F.broadcast(movies.select("movie_id", F.lit(True).alias("_known_movie")))
    joined = classified.join(known_users, "user_id", "left").join(known_movies, "movie_id", "left")
    reason, detail = reject_when(
        [
            (
                F.col("_known_user").isNull(),
                "unknown_user",
                F.concat(F.lit("user_id not in user master data: "), F.col("user_id").cast("string")),
            ),
            (
                F.col("_known_movie").isNull(),
                "unknown_movie",
                F.concat(F.lit("movie_id not in movies: "), F.col("movie_id").cast("string")),
            ),
        ]
    )
    return joined.withColumns({REASON: reason, DETAIL: detail}).drop("_known_user", "_known_movie")


def superseded_rows(referenced: DataFrame) -> DataFrame:
    """The row ids (``_rid``) of accepted ratings that a later rating of the same (user, movie)
    replaces: all but the latest ``rated_at`` per key, the later line winning a tie.

    Only four narrow columns are ranked. Ranking whole rows (text and provenance through the
    shuffle and sort) took most of the 10M build's cleansing step (docs/performance.md).
    """
    narrow = referenced.where(F.col(REASON).isNull()).select("user_id", "movie_id", "rated_at", RID)
    latest_first = Window.partitionBy(*grouping_columns(narrow, ["user_id", "movie_id"])).orderBy(
        F.col("rated_at").desc(), F.col(RID).desc()
    )
    return narrow.withColumn("_rank", F.row_number().over(latest_first)).where(F.col("_rank") > 1).select(RID)


def mark_superseded(referenced: DataFrame, superseded: DataFrame, broadcast: bool = True) -> DataFrame:
    """``duplicate`` for the rows whose ``_rid`` is in ``superseded``.

    Superseded ratings are normally few, so they are broadcast and the classified rows are never
    shuffled; pass ``broadcast=False`` when they are many (a whole file loaded twice).
    """
    flagged = superseded.select(RID, F.lit(True).alias("_superseded"))
    is_superseded = F.coalesce(F.col("_superseded"), F.lit(False))
    return (
        referenced.join(_broadcast_if(flagged, broadcast), RID, "left")
        .withColumns(
            {
                REASON: F.when(is_superseded, F.lit("duplicate")).otherwise(F.col(REASON)),
                DETAIL: F.when(
                    is_superseded, F.lit("a later rating of the same movie by the same user wins")
                ).otherwise(F.col(DETAIL)),
            }
        )
        .drop("_superseded")
    )


def with_superseded_text(
    quarantined: DataFrame, lines: DataFrame, superseded: DataFrame, broadcast: bool = True
) -> DataFrame:
    """Quarantine rows with the raw text of their superseded lines filled in from ``lines``.

    An accepted rating keeps no text (it would be carried for every row); the few that a later
    rating supersedes get theirs back by row id from the decoded lines.
    """
    texts = lines.join(_broadcast_if(superseded, broadcast), RID, "left_semi").select(
        RID, raw_text_for_quarantine().alias("_superseded_text")
    )
    return (
        quarantined.join(_broadcast_if(texts, broadcast), RID, "left")
        .withColumn(RECORD, F.coalesce(F.col(RECORD), F.col("_superseded_text")))
        .drop("_superseded_text")
    )


def _broadcast_if(df: DataFrame, broadcast: bool) -> DataFrame:
    return F.broadcast(df) if broadcast else df
