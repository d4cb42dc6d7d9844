"""Access layer: the star schema SQL users query, Iceberg tables under ``access/ratings-data-mart/``."""

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movielake_dagster.datasets import (
    BRIDGE_MOVIE_GENRE,
    DIM_DATE,
    DIM_MOVIE,
    DIM_USER,
    FCT_RATING,
    MOVIES,
    RATING_CHANGES,
    RATINGS,
    USERS,
    Dataset,
)
from movielake_dagster.io_managers.iceberg import RATINGS_SYNC, IcebergIOManager, Replace, RowChanges
from movielake_dagster.resources import SparkResource
from movielake_dagster.transforms import star_schema


def _access_asset(dataset: Dataset, upstream: Dataset, **kwargs):
    return dg.asset(
        key=dataset.asset_key,
        group_name="access",
        io_manager_key="iceberg_io_manager",
        ins={upstream.name: dg.AssetIn(upstream.asset_key)},
        kinds={"spark", "iceberg"},
        **kwargs,
    )


@_access_asset(DIM_USER, USERS)
def dim_user(users: DataFrame) -> DataFrame:
    """User dimension: one row per known user, with names and (when MovieLens 1M `users.dat` landed)
    gender, age group, occupation and zip. Key: `user_id`."""
    return star_schema.build_dim_user(users).coalesce(1)


@_access_asset(DIM_MOVIE, MOVIES)
def dim_movie(movies: DataFrame) -> DataFrame:
    """Movie dimension: one row per known movie with its clean title, release year (NULL when
    unknown), genres array and the raw title. Key: `movie_id`."""
    return star_schema.build_dim_movie(movies).coalesce(1)


@_access_asset(BRIDGE_MOVIE_GENRE, MOVIES)
def bridge_movie_genre(movies: DataFrame) -> DataFrame:
    """Movie-genre bridge: one row per (movie, genre), so that ratings can be counted by genre with
    a plain join. Movies with no genres listed have no row."""
    return star_schema.build_bridge_movie_genre(movies).coalesce(1)


@_access_asset(DIM_DATE, RATINGS, deps=[RATING_CHANGES.asset_key])
def dim_date(
    context: dg.AssetExecutionContext,
    ratings: DataFrame,
    spark: SparkResource,
    iceberg_io_manager: dg.ResourceParam[IcebergIOManager],
):
    """Calendar dimension: every day from the first to the last rating, keyed by `date_key`
    (yyyymmdd), with year, quarter, month, day, ISO day of week and a weekend flag. A day's load only
    appends the new days its ratings reach (from `cleanse/rating_changes`); when the day replaced a
    rating on the first or last day, the range is recomputed from the ratings."""
    session, tables = spark.get_session(), iceberg_io_manager
    delta = tables.rating_delta(DIM_DATE) if context.has_partition_key else None
    if delta is not None:
        sync = {RATINGS_SYNC: str(delta.ratings_snapshot)}
        if delta.unchanged:
            return RowChanges()
        existing = tables.published(DIM_DATE).agg(F.min("date").alias("first"), F.max("date").alias("last")).first()
        added = delta.inserted.agg(F.min("rating_date").alias("first"), F.max("rating_date").alias("last")).first()
        removed = delta.deleted.agg(F.min("rating_date").alias("first"), F.max("rating_date").alias("last")).first()
        if (
            existing["first"] is not None
            and removed["first"] not in (existing["first"], existing["last"])
            and removed["last"] not in (existing["first"], existing["last"])
        ):
            first = min(d for d in (existing["first"], added["first"]) if d is not None)
            last = max(d for d in (existing["last"], added["last"]) if d is not None)
            days = star_schema.build_dim_date(first, last, session)
            new = days.where((F.col("date") < F.lit(existing["first"])) | (F.col("date") > F.lit(existing["last"])))
            context.log.info(f"dim_date: {first} .. {last} (was {existing['first']} .. {existing['last']})")
            return RowChanges(inserted=new.coalesce(1), properties=sync, commit_empty=True)
        context.log.info("dim_date: the day replaced a rating on the first or last day; recomputing the range")
    bounds = ratings.agg(F.min("rating_date").alias("first"), F.max("rating_date").alias("last")).first()
    sync = {RATINGS_SYNC: str(tables.published_snapshot(RATINGS))}
    if bounds["first"] is None:
        return Replace(session.createDataFrame([], DIM_DATE.spark_ddl()), properties=sync)
    return Replace(star_schema.build_dim_date(bounds["first"], bounds["last"], session).coalesce(1), properties=sync)


@_access_asset(FCT_RATING, RATINGS, deps=[RATING_CHANGES.asset_key])
def fct_rating(
    context: dg.AssetExecutionContext, ratings: DataFrame, iceberg_io_manager: dg.ResourceParam[IcebergIOManager]
):
    """Rating facts: one row per (user, movie) with the latest rating, the UTC submission time and
    hour of day, keyed to `dim_user`, `dim_movie` and `dim_date`. Stored partitioned by
    `rating_year`, so queries on a year read only that year's files. A day's load applies the day's
    changes (`cleanse/rating_changes`): the facts of replaced ratings are deleted by position
    (merge-on-read) and the day's facts appended, in one publish; no unchanged fact is rewritten."""
    tables = iceberg_io_manager
    delta = tables.rating_delta(FCT_RATING) if context.has_partition_key else None
    if delta is not None:
        if delta.unchanged:
            return RowChanges()
        facts = star_schema.build_fct_rating(delta.inserted)
        return RowChanges(
            deleted=delta.deleted.select(*FCT_RATING.primary_key),
            inserted=facts,
            properties={RATINGS_SYNC: str(delta.ratings_snapshot)},
            commit_empty=True,
            metadata={"movielake/rows_inserted": facts.count(), "movielake/rows_replaced": delta.deleted.count()},
        )
    if context.has_partition_key:
        context.log.info("fct_rating does not reflect the snapshot the day's changes start from: rebuilding it")
    # Iceberg's own write distribution (hash on the partition) clusters the rows by year: an explicit
    # repartition on top of it cost twice the time at 10M ratings (docs/performance.md).
    return Replace(
        star_schema.build_fct_rating(ratings), properties={RATINGS_SYNC: str(tables.published_snapshot(RATINGS))}
    )


access_assets = [dim_user, dim_movie, bridge_movie_genre, dim_date, fct_rating]
