"""Cleansing rules for movies: ``movie_id::title (year)::Genre1|Genre2`` or the MovieLens CSV layout."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from movielake_dagster.transforms.raw_lines import (
    DETAIL,
    REASON,
    record_fields,
    reject_when,
    try_int,
)
from movielake_dagster.transforms.records import reject_repeated_keys

NO_GENRES = "(no genres listed)"
# The last "(YYYY)" of the title, optionally followed only by markers such as "(V)".
TITLE_YEAR = r"(?s)^(.*)\((\d{4})\)((?:\s*\([^()]*\))*)\s*$"
MIN_YEAR = 1870


def split_title(raw_title: Column) -> tuple[Column, Column]:
    """(title, year): the year from the last (YYYY); the title without it, trimmed and spaces folded.

    ``City of Lost Children, The (Cité des enfants perdus, La) (1995)`` keeps its inner
    parentheses; ``Associate, The (L'Associe)(1982)`` needs no space before the year;
    ``Hamlet (1996) (V)`` keeps its marker; a title without a year gets NULL.
    """
    has_year = raw_title.rlike(TITLE_YEAR)
    without_year = F.concat(F.regexp_extract(raw_title, TITLE_YEAR, 1), F.regexp_extract(raw_title, TITLE_YEAR, 3))
    title = F.trim(F.regexp_replace(F.when(has_year, without_year).otherwise(raw_title), r"\s+", " "))
    year = F.when(has_year, F.regexp_extract(raw_title, TITLE_YEAR, 2).cast("int"))
    return title, year


def parse_genres(genres: Column) -> Column:
    """``A|B`` -> [A, B]; ``(no genres listed)`` or empty -> []."""
    trimmed = F.trim(genres)
    return F.when((trimmed == NO_GENRES) | (trimmed == ""), F.array().cast("array<string>")).otherwise(
        F.split(trimmed, r"\|")
    )


def classify_movies(records: DataFrame, max_year: int) -> DataFrame:
    """Typed movie columns plus ``_reason``/``_detail`` for rejected records.

    ``records`` (``transforms/raw_input.py``) has ``text`` (decoded), ``_fields`` (CSV records: their
    RFC 4180 fields; NULL for ``::`` lines), ``_reason``, ``_detail``, ``_rid`` and ``source_file``.
    Rules, first failure wins: malformed, null_key, bad_type, out_of_range (year), duplicate id
    (the first record keeps the id).
    """
    fields, malformed = record_fields("::", 3)
    raw_id, raw_title, raw_genres = F.get(fields, 0), F.get(fields, 1), F.get(fields, 2)
    title, year = split_title(F.trim(raw_title))
    typed = records.select(
        "*",
        try_int(raw_id).alias("movie_id"),
        title.alias("title"),
        year.alias("year"),
        parse_genres(raw_genres).alias("genres"),
        raw_title.alias("raw_title"),
        malformed.alias("_malformed"),
        F.trim(raw_id).alias("_raw_id"),
    )
    reason, detail = reject_when(
        [
            (F.col("_malformed"), "malformed", "expected 3 fields: movie_id::title (year)::genres"),
            (F.col("_raw_id").isNull() | (F.col("_raw_id") == ""), "null_key", "movie_id is empty"),
            (
                F.col("movie_id").isNull(),
                "bad_type",
                F.concat(F.lit("movie_id is not a whole number: "), F.col("_raw_id")),
            ),
            (F.col("title") == "", "malformed", "title is empty"),
            (
                (F.col("year") < MIN_YEAR) | (F.col("year") > max_year),
                "out_of_range",
                F.concat(F.lit(f"year outside {MIN_YEAR}..{max_year}: "), F.col("year").cast("string")),
            ),
        ]
    )
    checked = typed.withColumns({REASON: reason, DETAIL: detail})
    return reject_repeated_keys(checked, ["movie_id"], "movie_id")
