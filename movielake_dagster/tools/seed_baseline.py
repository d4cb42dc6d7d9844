"""The seed notebook's pipeline, kept as the performance baseline of ``movielake bench --baseline``.

A faithful re-implementation of the seed design's notebook cells with its Spark idioms, on the
same raw files as the lake and in the same SparkSession: not used by the lake itself.

* raw ``.dat`` files read as single-column CSV (a separator that never occurs) and split on ``::``;
* title and year from Python UDFs (a Python worker round trip per row);
* the cleanse layer written as CSV with ``repartition(1)`` (one task writes each table), read back
  by the access layer with ``inferSchema`` (an extra pass over each file);
* referential integrity with ``NOT IN`` subqueries, one query per rule, each a separate pass;
* checks as separate ``count()`` queries (not-null, unique keys, ranges, input = output).

It does the same logical work as the lake: typed movies, users and ratings (the latest rating per
user and movie, only known users and movies), the star schema with the fact partitioned by year,
and the quality checks. It returns the wall time of each notebook cell.
"""

from __future__ import annotations

import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType

YEAR_AT_END = re.compile(r"\((\d{4})\)[^()]*(?:\([^()]*\)\s*)*$")


@F.udf(IntegerType())
def extract_year(title):
    """The seed's UDF: the last (YYYY) of the title, or None."""
    if title is None:
        return None
    match = YEAR_AT_END.search(title.strip())
    return int(match.group(1)) if match else None


@F.udf(StringType())
def clean_title(title):
    """The seed's UDF: the title without its trailing (YYYY)."""
    if title is None:
        return None
    match = YEAR_AT_END.search(title.strip())
    text = title.strip()[: match.start()] + title.strip()[match.end(1) + 1 :] if match else title
    return " ".join(text.split())


def _read_dat(spark: SparkSession, path: Path) -> DataFrame:
    """The notebook's read: one CSV column per line, then split on '::'."""
    return (
        spark.read.option("sep", "\t")
        .option("quote", "\u0000")
        .csv(str(path))
        .select(F.split(F.col("_c0"), "::").alias("f"))
    )


def _write_csv(df: DataFrame, path: Path) -> None:
    df.repartition(1).write.mode("overwrite").option("header", True).csv(str(path))


def _read_csv(spark: SparkSession, path: Path) -> DataFrame:
    return spark.read.option("header", True).option("inferSchema", True).csv(str(path))


# The lake's own tuning of the session's SQL settings (resources/spark.py). The notebook ran with
# Spark's defaults (200 shuffle partitions, merged by adaptive execution into 64 MB pieces), so the
# baseline does too. The session time zone stays UTC: it decides the dates, not the speed.
LAKE_TUNED_SQL_CONF = ("spark.sql.shuffle.partitions", "spark.sql.adaptive.advisoryPartitionSizeInBytes")


@contextmanager
def notebook_sql_conf(spark: SparkSession, keys=LAKE_TUNED_SQL_CONF):
    """Spark's defaults for ``keys`` inside the block; the session's own values again after it."""
    saved = {key: spark.conf.get(key, None) for key in keys}
    for key in keys:
        spark.conf.unset(key)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is not None:
                spark.conf.set(key, value)


def run_seed_pipeline(
    spark: SparkSession, raw_dir: Path, out_dir: Path, lake_conf: bool = False
) -> list[tuple[str, float, float]]:
    """Run every cell on ``raw_dir`` into ``out_dir``; returns (cell, start epoch, seconds) per cell.

    It runs with Spark's default SQL settings, as the notebook did, unless ``lake_conf`` (then with
    the session's, which the lake tuned).
    """
    if lake_conf:
        return _run_cells(spark, raw_dir, out_dir)
    with notebook_sql_conf(spark):
        return _run_cells(spark, raw_dir, out_dir)


def _run_cells(spark: SparkSession, raw_dir: Path, out_dir: Path) -> list[tuple[str, float, float]]:
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    staging, cleanse, access = out_dir / "staging", out_dir / "cleanse", out_dir / "access" / "ratings-data-mart"
    cells: list[tuple[str, float, float]] = []

    def cell(name: str, started: float, wall: float) -> None:
        cells.append((name, wall, time.perf_counter() - started))

    # -- staging: upload the raw files --------------------------------------------------------------
    t, w = time.perf_counter(), time.time()
    for src, key in [
        ("movies.dat", "movies/movies.dat"),
        ("ratings.dat", "ratings/ratings.dat"),
        ("users_masterdata.json", "masterdata/user_masterdata.json"),
    ]:
        (staging / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(raw_dir / src, staging / key)
    cell("seed_staging", t, w)

    # -- cleanse: movies -----------------------------------------------------------------------------
    t, w = time.perf_counter(), time.time()
    movies = (
        _read_dat(spark, staging / "movies" / "movies.dat")
        .select(
            F.col("f")[0].try_cast("int").alias("movie_id"),
            F.col("f")[1].alias("raw_title"),
            F.col("f")[2].alias("genres"),
            F.size("f").alias("n"),
        )
        .where("n = 3 AND movie_id IS NOT NULL")
        .drop("n")
    )
    movies = movies.dropDuplicates(["movie_id"]).select(
        "movie_id",
        clean_title("raw_title").alias("title"),
        extract_year("raw_title").alias("year"),
        F.when(F.col("genres") == "(no genres listed)", F.lit("")).otherwise(F.col("genres")).alias("genres"),
        "raw_title",
    )
    _write_csv(movies, cleanse / "movies")
    cell("seed_cleanse_movies", t, w)

    # -- cleanse: users ------------------------------------------------------------------------------
    t, w = time.perf_counter(), time.time()
    users = spark.read.json(str(staging / "masterdata" / "user_masterdata.json"))
    first = F.col("firts_name") if "firts_name" in users.columns else F.lit(None)
    if "first_name" in users.columns:
        first = F.coalesce(first, F.col("first_name"))
    users = (
        users.select(F.col("user_id").try_cast("int").alias("user_id"), first.alias("first_name"), F.col("last_name"))
        .where("user_id IS NOT NULL")
        .dropDuplicates(["user_id"])
    )
    _write_csv(users, cleanse / "masterdata" / "user")
    cell("seed_cleanse_users", t, w)

    # -- cleanse: ratings ----------------------------------------------------------------------------
    t, w = time.perf_counter(), time.time()
    ratings = (
        _read_dat(spark, staging / "ratings" / "ratings.dat")
        .select(
            F.col("f")[0].try_cast("int").alias("user_id"),
            F.col("f")[1].try_cast("int").alias("movie_id"),
            F.col("f")[2].try_cast("double").alias("rating"),
            F.col("f")[3].try_cast("long").alias("ts"),
            F.size("f").alias("n"),
        )
        .where(
            "n = 4 AND user_id IS NOT NULL AND movie_id IS NOT NULL AND rating BETWEEN 0.5 AND 5.0 "
            "AND rating * 2 = floor(rating * 2) AND ts IS NOT NULL"
        )
    )
    latest = Window.partitionBy("user_id", "movie_id").orderBy(F.col("ts").desc())
    ratings = (
        ratings.withColumn("rn", F.row_number().over(latest))
        .where("rn = 1")
        .select(
            "user_id",
            "movie_id",
            "rating",
            F.from_unixtime("ts").cast("timestamp").alias("rated_at"),
        )
        .withColumn("rating_date", F.to_date("rated_at"))
    )
    ratings.createOrReplaceTempView("ratings_typed")
    _read_csv(spark, cleanse / "masterdata" / "user").createOrReplaceTempView("users_clean")
    _read_csv(spark, cleanse / "movies").createOrReplaceTempView("movies_clean")
    known = spark.sql(
        "SELECT * FROM ratings_typed WHERE user_id IN (SELECT user_id FROM users_clean) "
        "AND movie_id IN (SELECT movie_id FROM movies_clean)"
    )
    orphans = spark.sql(
        "SELECT * FROM ratings_typed WHERE user_id NOT IN (SELECT user_id FROM users_clean) "
        "UNION ALL SELECT * FROM ratings_typed WHERE user_id IN (SELECT user_id FROM users_clean) "
        "AND movie_id NOT IN (SELECT movie_id FROM movies_clean)"
    )
    _write_csv(known, cleanse / "ratings")
    _write_csv(orphans, cleanse / "quarantine" / "ratings")
    cell("seed_cleanse_ratings", t, w)

    # -- access: the star schema from the cleansed CSV files -----------------------------------------
    t, w = time.perf_counter(), time.time()
    users_c, movies_c = _read_csv(spark, cleanse / "masterdata" / "user"), _read_csv(spark, cleanse / "movies")
    ratings_c = _read_csv(spark, cleanse / "ratings")
    users_c.write.mode("overwrite").parquet(str(access / "dim-user"))
    genres = F.when(F.col("genres").isNull(), F.array().cast("array<string>")).otherwise(F.split("genres", r"\|"))
    movies_c.select("movie_id", "title", "year", genres.alias("genres"), "raw_title").write.mode("overwrite").parquet(
        str(access / "dim-movie")
    )
    movies_c.select("movie_id", F.explode(F.split("genres", r"\|")).alias("genre")).where(
        "genre <> ''"
    ).distinct().write.mode("overwrite").parquet(str(access / "bridge-movie-genre"))
    bounds = ratings_c.agg(F.min("rating_date"), F.max("rating_date")).first()
    days = spark.sql(
        f"SELECT explode(sequence(to_date('{bounds[0]}'), to_date('{bounds[1]}'), interval 1 day)) AS date"
    )
    days.select(
        F.date_format("date", "yyyyMMdd").cast("int").alias("date_key"),
        "date",
        F.year("date").alias("year"),
        F.quarter("date").alias("quarter"),
        F.month("date").alias("month"),
        F.dayofmonth("date").alias("day"),
        ((F.dayofweek("date") + 5) % 7 + 1).alias("day_of_week"),
        F.dayofweek("date").isin(1, 7).alias("is_weekend"),
    ).write.mode("overwrite").parquet(str(access / "dim-date"))
    ratings_c.select(
        "user_id",
        "movie_id",
        F.date_format("rating_date", "yyyyMMdd").cast("int").alias("date_key"),
        "rated_at",
        F.hour("rated_at").alias("hour_of_day"),
        "rating",
        F.year("rating_date").alias("rating_year"),
    ).write.mode("overwrite").partitionBy("rating_year").parquet(str(access / "fct-rating"))
    cell("seed_access", t, w)

    # -- checks: one query per rule --------------------------------------------------------------------
    t, w = time.perf_counter(), time.time()
    for name in ("dim-user", "dim-movie", "dim-date", "bridge-movie-genre", "fct-rating"):
        spark.read.parquet(str(access / name)).createOrReplaceTempView(name.replace("-", "_"))
    failures = {}
    queries = {
        "fct_not_null": "SELECT count(*) FROM fct_rating WHERE user_id IS NULL OR movie_id IS NULL OR date_key IS NULL "
        "OR rating IS NULL OR rated_at IS NULL",
        "fct_unique": "SELECT count(*) FROM (SELECT user_id, movie_id FROM fct_rating GROUP BY user_id, movie_id "
        "HAVING count(*) > 1)",
        "fct_rating_range": "SELECT count(*) FROM fct_rating WHERE rating < 0.5 OR rating > 5.0",
        "fct_user_fk": "SELECT count(*) FROM fct_rating WHERE user_id NOT IN (SELECT user_id FROM dim_user)",
        "fct_movie_fk": "SELECT count(*) FROM fct_rating WHERE movie_id NOT IN (SELECT movie_id FROM dim_movie)",
        "fct_date_fk": "SELECT count(*) FROM fct_rating WHERE date_key NOT IN (SELECT date_key FROM dim_date)",
        "fct_future": "SELECT count(*) FROM fct_rating WHERE rated_at > current_timestamp()",
        "dim_user_unique": "SELECT count(*) - count(DISTINCT user_id) FROM dim_user",
        "dim_movie_unique": "SELECT count(*) - count(DISTINCT movie_id) FROM dim_movie",
        "dim_date_unique": "SELECT count(*) - count(DISTINCT date_key) FROM dim_date",
        "bridge_movie_fk": "SELECT count(*) FROM bridge_movie_genre WHERE movie_id NOT IN (SELECT movie_id FROM dim_movie)",
        "reconcile_ratings": "SELECT (SELECT count(*) FROM fct_rating) - (SELECT count(*) FROM ratings_typed "
        "WHERE user_id IN (SELECT user_id FROM users_clean) "
        "AND movie_id IN (SELECT movie_id FROM movies_clean))",
    }
    for name, sql in queries.items():
        failures[name] = spark.sql(sql).first()[0]
    cell("seed_checks", t, w)
    return cells
