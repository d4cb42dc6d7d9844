"""The whole graph against real AWS APIs over HTTP: moto's S3 and Glue servers on loopback.

The lake is on S3 with the Glue Data Catalog (``MOVIELAKE_CATALOG=glue``): Spark reads the raw files
through s3a, Iceberg writes its tables through S3FileIO and registers them in Glue, pyiceberg reads them
back, the crawler registers the raw staging files in Glue, and ``movielake query`` answers from there.
"""

from __future__ import annotations

import boto3
import pytest

from movielake_dagster.datasets import DIM_MOVIE, FCT_RATING
from movielake_dagster.settings import SAMPLE_DATA_DIR

from .conftest import build_lake, table_rows

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def _keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@pytest.fixture(scope="module")
def s3_lake(spark, s3_server):
    result, resources = build_lake(
        SAMPLE_DATA_DIR, "s3://", s3_endpoint=s3_server, catalog="glue", glue_endpoint=s3_server
    )
    return result, resources


def test_lake_on_s3_has_the_seed_buckets_and_keys(s3_lake, s3_server):
    result, resources = s3_lake
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    staging = _keys(s3, "data-lake-staging")
    assert sorted(staging) == ["masterdata/user_masterdata.json", "movies/movies.dat", "ratings/ratings.dat"]
    landed = (SAMPLE_DATA_DIR / "ratings.dat").read_bytes()
    assert s3.get_object(Bucket="data-lake-staging", Key="ratings/ratings.dat")["Body"].read() == landed

    cleanse = _keys(s3, "data-lake-cleanse")
    for prefix in ("movies/", "ratings/", "masterdata/user/", "quarantine/ratings/", "quarantine/movies/"):
        assert any(k.startswith(prefix + "data/") and k.endswith(".parquet") for k in cleanse), prefix
        assert any(k.startswith(prefix + "metadata/") and k.endswith(".metadata.json") for k in cleanse), prefix
    access = _keys(s3, "data-lake-access-layer")
    for table in ("dim-user", "dim-movie", "dim-date", "bridge-movie-genre"):
        assert any(k.startswith(f"ratings-data-mart/{table}/data/") and k.endswith(".parquet") for k in access), table
    assert any(k.startswith("ratings-data-mart/fct-rating/data/rating_year=") for k in access)
    assert not [k for k in cleanse + access if "__writing" in k or "_scratch/" in k], "no temporary prefixes left"

    # pyiceberg reads the facts back from S3 through the Glue catalog, as many as Spark wrote.
    materialized = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert len(table_rows(resources, FCT_RATING)) == materialized["access/fct_rating"]["dagster/row_count"].value > 0
    assert materialized["access/fct_rating"]["dagster/uri"].value.startswith(
        "s3://data-lake-access-layer/ratings-data-mart/fct-rating"
    )


def test_the_glue_tables_are_iceberg_tables_that_athena_reads_as_they_are(s3_lake, s3_server):
    glue = boto3.client("glue", endpoint_url=s3_server, region_name="us-east-1")
    fct = glue.get_table(DatabaseName="access", Name="fct_rating")["Table"]
    assert fct["Parameters"]["table_type"].upper() == "ICEBERG"
    metadata_location = fct["Parameters"]["metadata_location"]
    assert metadata_location.startswith("s3://data-lake-access-layer/ratings-data-mart/fct-rating/metadata/")
    assert metadata_location.endswith(".metadata.json")
    columns = {c["Name"]: c for c in fct["StorageDescriptor"]["Columns"]}
    assert set(columns) == {c.name for c in FCT_RATING.columns}
    assert columns["hour_of_day"]["Comment"] == next(
        c.description for c in FCT_RATING.columns if c.name == "hour_of_day"
    )
    assert (
        glue.get_table(DatabaseName="access", Name="dim_movie")["Table"]["Parameters"]["table_type"].upper()
        == "ICEBERG"
    )
    tables = {t["Name"] for t in glue.get_tables(DatabaseName="cleanse")["TableList"]}
    assert {"movies", "ratings", "users", "quarantine_ratings"} <= tables


def test_the_crawler_registers_staging_in_glue_and_queries_read_iceberg_through_glue(
    s3_lake, s3_server, monkeypatch, capsys
):
    from movielake_dagster.tools.cli import main

    _result, resources = s3_lake
    for name, value in {
        "MOVIELAKE_CATALOG": "glue",
        "MOVIELAKE_GLUE_ENDPOINT": s3_server,
        "MOVIELAKE_S3_ENDPOINT": s3_server,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["crawl", "--lake", "s3://"]) == 0
    out = capsys.readouterr().out
    assert "AWS Glue Data Catalog" in out and "access.fct_rating" in out and "iceberg" in out
    glue = boto3.client("glue", endpoint_url=s3_server, region_name="us-east-1")
    ratings = glue.get_table(DatabaseName="staging", Name="ratings")["Table"]
    assert (
        ratings["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.RegexSerDe"
    )
    assert ratings["StorageDescriptor"]["Location"] == "s3://data-lake-staging/ratings/"
    # the crawler keeps its bookmarks in the database, not in the Iceberg tables Iceberg's catalog owns
    parameters = glue.get_database(Name="access")["Database"]["Parameters"]
    assert "movielake.crawl.fct_rating" in parameters
    assert (
        glue.get_table(DatabaseName="access", Name="fct_rating")["Table"]["Parameters"]["table_type"].upper()
        == "ICEBERG"
    )
    assert main(["crawl", "--lake", "s3://"]) == 0
    assert "table added" not in capsys.readouterr().out  # nothing new the second time

    expected = len(table_rows(resources, FCT_RATING))
    years = len({r["rating_year"] for r in table_rows(resources, FCT_RATING)})
    assert (
        main(
            [
                "query",
                "--lake",
                "s3://",
                "SELECT COUNT(*) AS n, COUNT(DISTINCT rating_year) AS years FROM access.fct_rating",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"| {expected} " in out and f"| {years} " in out
    assert main(["history", "--lake", "s3://", "access.dim_movie"]) == 0
    assert (
        str(resources["catalog"].iceberg().table(DIM_MOVIE.layer, DIM_MOVIE.name).metadata.current_snapshot_id)
        in capsys.readouterr().out
    )
