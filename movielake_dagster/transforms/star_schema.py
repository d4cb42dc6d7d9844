"""The access layer's star schema, built from the cleansed tables."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movielake_dagster.datasets import (
    BRIDGE_MOVIE_GENRE,
    DIM_DATE,
    DIM_MOVIE,
    DIM_USER,
    FCT_RATING,
    Dataset,
)


def _project(df: DataFrame, dataset: Dataset) -> DataFrame:
    return df.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in dataset.columns])


def date_key(date_col) -> F.Column:
    """yyyymmdd as an int: 2003-07-14 -> 20030714."""
    return (F.year(date_col) * 10000 + F.month(date_col) * 100 + F.dayofmonth(date_col)).cast("int")


def iso_day_of_week(day_or_time) -> F.Column:
    """ISO day of week of a date or timestamp: 1 = Monday ... 7 = Sunday (Spark's dayofweek has 1 = Sunday)."""
    return ((F.dayofweek(day_or_time) + 5) % 7 + 1).cast("int")


def build_dim_user(users: DataFrame) -> DataFrame:
    return _project(users, DIM_USER)


def build_dim_movie(movies: DataFrame) -> DataFrame:
    return _project(movies, DIM_MOVIE)


def build_bridge_movie_genre(movies: DataFrame) -> DataFrame:
    """One row per (movie, genre); movies without genres have no rows."""
    exploded = movies.select("movie_id", F.explode("genres").alias("genre"))
    return _project(exploded.dropDuplicates(["movie_id", "genre"]), BRIDGE_MOVIE_GENRE)


def build_dim_date(first_day, last_day, spark) -> DataFrame:
    """Every calendar day from ``first_day`` to ``last_day`` (Python dates), inclusive."""
    days = spark.sql(
        "SELECT explode(sequence(to_date(:first), to_date(:last), interval 1 day)) AS date",
        args={"first": first_day.isoformat(), "last": last_day.isoformat()},
    )
    iso_dow = iso_day_of_week(F.col("date"))
    return _project(
        days.select(
            date_key(F.col("date")).alias("date_key"),
            "date",
            F.year("date").alias("year"),
            F.quarter("date").alias("quarter"),
            F.month("date").alias("month"),
            F.dayofmonth("date").alias("day"),
            iso_dow.alias("day_of_week"),
            (iso_dow >= 6).alias("is_weekend"),
        ),
        DIM_DATE,
    )


def build_fct_rating(ratings: DataFrame) -> DataFrame:
    """One fact per cleansed rating, keyed to the dimensions; ``rating_year`` is the partition."""
    return _project(
        ratings.select(
            "user_id",
            "movie_id",
            date_key(F.col("rating_date")).alias("date_key"),
            "rated_at",
            F.hour("rated_at").alias("hour_of_day"),
            "rating",
            F.year("rating_date").alias("rating_year"),
        ),
        FCT_RATING,
    )
