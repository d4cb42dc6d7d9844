"""Access layer: the star schema in Parquet that SQL users query (``access/ratings-data-mart/``)."""


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
    RATINGS,
    USERS,
    Dataset,
)
from movielake_dagster.io_managers.iceberg import PartitionsUpdate, current_table
from movielake_dagster.resources import SparkResource
from movielake_dagster.transforms import incremental, star_schema


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


@_access_asset(DIM_DATE, RATINGS)
def dim_date(ratings: DataFrame, spark: SparkResource) -> DataFrame:
    """Calendar dimension: every day from the first to the last rating, keyed by `date_key`
    (yyyymmdd), with year, quarter, month, day, ISO day of week and a weekend flag."""
    bounds = ratings.agg(F.min("rating_date").alias("first"), F.max("rating_date").alias("last")).first()
    session = spark.get_session()
    if bounds["first"] is None:
        return session.createDataFrame([], DIM_DATE.spark_ddl())
    return star_schema.build_dim_date(bounds["first"], bounds["last"], session).coalesce(1)


@_access_asset(FCT_RATING, RATINGS)
def fct_rating(context: dg.AssetExecutionContext, ratings: DataFrame, spark: SparkResource):
    """Rating facts: one row per (user, movie) with the latest rating, the UTC submission time and
    hour of day, keyed to `dim_user`, `dim_movie` and `dim_date`. Stored partitioned by
    `rating_year`, so queries on a year read only that year's files. In a run for one day's
    batch only the years whose facts changed are rewritten."""
    facts = star_schema.build_fct_rating(ratings)
    existing = current_table(spark.get_session(), FCT_RATING) if context.has_partition_key else None
    if existing is None:
        return facts.repartition("rating_year")
    (column,) = FCT_RATING.partition_by
    changed, emptied = incremental.changed_partitions(facts, existing, column)
    context.log.info(f"rewriting fct_rating partitions {changed} (of which now empty: {emptied})")
    return PartitionsUpdate(facts.where(F.col(column).isin(changed)).repartition(column), tuple(changed),
                            tuple(emptied))


access_assets = [dim_user, dim_movie, bridge_movie_genre, dim_date, fct_rating]
