"""Analytics over the star schema: small summary tables, one pure function each (no Dagster).

Every function takes access-layer DataFrames and returns a table with the columns declared in
``datasets.py`` (``RATINGS_BY_HOUR`` ...), in that order and with those types. Counts include
empty buckets (an hour, a weekday or a star value nobody used shows 0 ratings), so charts have a
fixed axis whatever the data. Shares are rounded to 4 decimals and mean stars to 3.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
STAR_VALUES = tuple(v / 2 for v in range(1, 11))  # 0.5 .. 5.0
SHARE_DECIMALS = 4  # shares and means are rounded for reading; ranks use the exact means
AVERAGE_DECIMALS = 3


def _counts_over(facts: DataFrame, column: str, values: DataFrame) -> DataFrame:
    """Ratings, share of all ratings and mean stars for each value of ``column`` (all of ``values``)."""
    per_value = facts.groupBy(column).agg(F.count(F.lit(1)).alias("ratings"), F.avg("rating").alias("average_rating"))
    total = F.sum("ratings").over(Window.partitionBy())  # from the few grouped rows, not another scan of the facts
    return (
        values.join(per_value, column, "left")
        .withColumn("ratings", F.coalesce(F.col("ratings"), F.lit(0)).cast("bigint"))
        .withColumn("share", F.coalesce(F.round(F.try_divide(F.col("ratings"), total), SHARE_DECIMALS), F.lit(0.0)))
        .withColumn("average_rating", F.round(F.col("average_rating"), AVERAGE_DECIMALS).cast("double"))
        .orderBy(column)
    )


def ratings_by_hour(fct_rating: DataFrame) -> DataFrame:
    """Ratings per UTC hour of the day, hours 0-23."""
    hours = fct_rating.sparkSession.range(24).select(F.col("id").cast("int").alias("hour_of_day"))
    return _counts_over(fct_rating, "hour_of_day", hours).select(
        "hour_of_day", "ratings", F.col("share").cast("double"), "average_rating")


def ratings_by_weekday(fct_rating: DataFrame, dim_date: DataFrame) -> DataFrame:
    """Ratings per ISO day of week (1 = Monday), through ``dim_date``."""
    facts = fct_rating.join(dim_date.select("date_key", "day_of_week"), "date_key")
    days = fct_rating.sparkSession.createDataFrame(
        [(i + 1, name) for i, name in enumerate(DAY_NAMES)], "day_of_week int, day_name string")
    return _counts_over(facts, "day_of_week", days).select(
        "day_of_week", "day_name", "ratings", F.col("share").cast("double"), "average_rating")


def ratings_by_stars(fct_rating: DataFrame) -> DataFrame:
    """How many ratings gave each star value, 0.5 to 5.0."""
    stars = fct_rating.sparkSession.createDataFrame([(v,) for v in STAR_VALUES], "rating double")
    return _counts_over(fct_rating, "rating", stars).select("rating", "ratings", F.col("share").cast("double"))


def top_movies(fct_rating: DataFrame, dim_movie: DataFrame, min_ratings: int, limit: int) -> DataFrame:
    """The ``limit`` movies with the highest mean stars among those with at least ``min_ratings``.

    Ties in the mean go to the movie with more ratings, then to the lower ``movie_id``.
    """
    per_movie = (
        fct_rating.groupBy("movie_id")
        .agg(F.count(F.lit(1)).alias("ratings"), F.avg("rating").alias("average_rating"))
        .where(F.col("ratings") >= min_ratings)
    )
    order = Window.orderBy(F.desc("average_rating"), F.desc("ratings"), F.asc("movie_id"))
    ranked = per_movie.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= limit)
    return (
        ranked.join(dim_movie.select("movie_id", "title", "year"), "movie_id", "left")
        .select(F.col("rank").cast("int"), "movie_id", "title", "year", F.col("ratings").cast("bigint"),
                F.round("average_rating", AVERAGE_DECIMALS).cast("double").alias("average_rating"))
        .orderBy("rank")
    )


def genres_by_year(fct_rating: DataFrame, bridge_movie_genre: DataFrame) -> DataFrame:
    """Ratings per (rating year, genre) and the genre's share of that year's ratings.

    The facts are first summed per (year, movie), about 100,000 rows at 10M ratings, and only those
    sums meet the bridge: joining every fact to its genres would multiply 10M rows by two or three.
    """
    per_movie = fct_rating.groupBy("rating_year", "movie_id").agg(
        F.count(F.lit(1)).alias("movie_ratings"), F.sum("rating").alias("movie_stars"))
    per_year = per_movie.groupBy("rating_year").agg(F.sum("movie_ratings").alias("year_ratings"))
    per_genre = (
        per_movie.join(bridge_movie_genre, "movie_id")
        .groupBy("rating_year", "genre")
        .agg(F.sum("movie_ratings").alias("ratings"), (F.sum("movie_stars") / F.sum("movie_ratings")).alias("average_rating"))
    )
    return (
        per_genre.join(per_year, "rating_year")
        .select(F.col("rating_year").cast("int"), "genre", F.col("ratings").cast("bigint"),
                F.round(F.col("ratings") / F.col("year_ratings"), SHARE_DECIMALS).cast("double").alias("share"),
                F.round("average_rating", AVERAGE_DECIMALS).cast("double").alias("average_rating"))
        .orderBy("rating_year", F.desc("ratings"), "genre")
    )
