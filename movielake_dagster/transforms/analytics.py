"""Analytics over the star schema: small summary tables, one pure function each (no Dagster).

Two scans of the facts make everything: :func:`rating_buckets` (hour x weekday x stars) and
:func:`movie_year_totals` (year x movie); each table is then a sum over one of those small
tables, with the columns declared in ``datasets.py`` (``RATINGS_BY_HOUR`` ...), in that order and
with those types. Counts include empty buckets (an hour, a weekday or a star value nobody used
shows 0 ratings), so charts have a fixed axis whatever the data. Shares are rounded to 4 decimals and mean stars to 3.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from movielake_dagster.transforms.star_schema import iso_day_of_week

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
STAR_VALUES = tuple(v / 2 for v in range(1, 11))  # 0.5 .. 5.0
SHARE_DECIMALS = 4  # shares and means are rounded for reading; ranks use the exact means
AVERAGE_DECIMALS = 3


def rating_buckets(fct_rating: DataFrame) -> DataFrame:
    """Ratings and their summed stars per (UTC hour of day, ISO day of week, star value).

    At most 24 x 7 x 10 rows, made in one scan of the facts; the hour, weekday and star tables are
    all sums over them. Day of week comes from ``rated_at`` exactly as ``dim_date`` derives it.
    """
    return fct_rating.groupBy("hour_of_day", iso_day_of_week(F.col("rated_at")).alias("day_of_week"), "rating").agg(
        F.count(F.lit(1)).alias("ratings"), F.sum("rating").alias("stars")
    )


def movie_year_totals(fct_rating: DataFrame) -> DataFrame:
    """Ratings and their summed stars per (rating year, movie): about 100,000 rows at 10M ratings,
    made in one scan of the facts; the top movies and the genre shares are both sums over them."""
    return fct_rating.groupBy("rating_year", "movie_id").agg(
        F.count(F.lit(1)).alias("ratings"), F.sum("rating").alias("stars")
    )


def apply_changes(stored: DataFrame, added: DataFrame, removed: DataFrame, keys: list[str]) -> DataFrame:
    """Sums brought up to date with a day's changes: ``stored`` plus the sums of the added facts less
    those of the removed ones, per key; keys left with no rating disappear. Exact: the sums are of
    half stars, which doubles add without rounding."""
    signed = added.select(*keys, "ratings", "stars").unionByName(
        removed.select(*keys, (-F.col("ratings")).alias("ratings"), (-F.col("stars")).alias("stars"))
    )
    return (
        stored.select(*keys, "ratings", "stars")
        .unionByName(signed)
        .groupBy(*keys)
        .agg(F.sum("ratings").cast("bigint").alias("ratings"), F.sum("stars").alias("stars"))
        .where(F.col("ratings") > 0)
    )


def _counts_over(buckets: DataFrame, column: str, values: DataFrame) -> DataFrame:
    """Ratings, share of all ratings and mean stars for each value of ``column`` (all of ``values``)."""
    per_value = buckets.groupBy(column).agg(
        F.sum("ratings").alias("ratings"), (F.sum("stars") / F.sum("ratings")).alias("average_rating")
    )
    total = F.sum("ratings").over(Window.partitionBy())  # from the few grouped rows, not another scan of the facts
    return (
        values.join(per_value, column, "left")
        .withColumn("ratings", F.coalesce(F.col("ratings"), F.lit(0)).cast("bigint"))
        .withColumn("share", F.coalesce(F.round(F.try_divide(F.col("ratings"), total), SHARE_DECIMALS), F.lit(0.0)))
        .withColumn("average_rating", F.round(F.col("average_rating"), AVERAGE_DECIMALS).cast("double"))
        .orderBy(column)
    )


def ratings_by_hour(buckets: DataFrame) -> DataFrame:
    """Ratings per UTC hour of the day, hours 0-23, from :func:`rating_buckets`."""
    hours = buckets.sparkSession.range(24).select(F.col("id").cast("int").alias("hour_of_day"))
    return _counts_over(buckets, "hour_of_day", hours).select(
        "hour_of_day", "ratings", F.col("share").cast("double"), "average_rating"
    )


def ratings_by_weekday(buckets: DataFrame) -> DataFrame:
    """Ratings per ISO day of week (1 = Monday), from :func:`rating_buckets`."""
    days = buckets.sparkSession.createDataFrame(
        [(i + 1, name) for i, name in enumerate(DAY_NAMES)], "day_of_week int, day_name string"
    )
    return _counts_over(buckets, "day_of_week", days).select(
        "day_of_week", "day_name", "ratings", F.col("share").cast("double"), "average_rating"
    )


def ratings_by_stars(buckets: DataFrame) -> DataFrame:
    """How many ratings gave each star value, 0.5 to 5.0, from :func:`rating_buckets`."""
    stars = buckets.sparkSession.createDataFrame([(v,) for v in STAR_VALUES], "rating double")
    return _counts_over(buckets, "rating", stars).select("rating", "ratings", F.col("share").cast("double"))


def top_movies(totals: DataFrame, dim_movie: DataFrame, min_ratings: int, limit: int) -> DataFrame:
    """The ``limit`` movies with the highest mean stars among those with at least ``min_ratings``,
    from :func:`movie_year_totals`.

    Ties in the mean go to the movie with more ratings, then to the lower ``movie_id``. Star values
    are halves, so the sums are exact and the mean is the same as over the single ratings.
    """
    per_movie = (
        totals.groupBy("movie_id")
        .agg(F.sum("ratings").alias("ratings"), (F.sum("stars") / F.sum("ratings")).alias("average_rating"))
        .where(F.col("ratings") >= min_ratings)
    )
    order = Window.orderBy(F.desc("average_rating"), F.desc("ratings"), F.asc("movie_id"))
    ranked = per_movie.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= limit)
    return (
        ranked.join(dim_movie.select("movie_id", "title", "year"), "movie_id", "left")
        .select(
            F.col("rank").cast("int"),
            "movie_id",
            "title",
            "year",
            F.col("ratings").cast("bigint"),
            F.round("average_rating", AVERAGE_DECIMALS).cast("double").alias("average_rating"),
        )
        .orderBy("rank")
    )


def genres_by_year(totals: DataFrame, bridge_movie_genre: DataFrame) -> DataFrame:
    """Ratings per (rating year, genre) and the genre's share of that year's ratings, from
    :func:`movie_year_totals`.

    Only the per-(year, movie) sums meet the bridge: joining every fact to its genres would
    multiply 10M rows by two or three.
    """
    per_year = totals.groupBy("rating_year").agg(F.sum("ratings").alias("year_ratings"))
    per_genre = (
        totals.join(bridge_movie_genre, "movie_id")
        .groupBy("rating_year", "genre")
        .agg(F.sum("ratings").alias("ratings"), (F.sum("stars") / F.sum("ratings")).alias("average_rating"))
    )
    return (
        per_genre.join(per_year, "rating_year")
        .select(
            F.col("rating_year").cast("int"),
            "genre",
            F.col("ratings").cast("bigint"),
            F.round(F.col("ratings") / F.col("year_ratings"), SHARE_DECIMALS).cast("double").alias("share"),
            F.round("average_rating", AVERAGE_DECIMALS).cast("double").alias("average_rating"),
        )
        .orderBy("rating_year", F.desc("ratings"), "genre")
    )
