"""The whole graph against a real S3 endpoint over HTTP: a moto server on loopback; Spark reads the raw
files through s3a, Iceberg writes its tables through S3FileIO, pyiceberg reads them back."""

from __future__ import annotations

import boto3
import pytest

from movielake_dagster.settings import SAMPLE_DATA_DIR, Settings

from movielake_dagster.datasets import FCT_RATING

from .conftest import build_lake, table_rows

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def _keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def test_lake_on_s3_has_the_seed_buckets_and_keys(spark, s3_server, tmp_path):
    if not Settings.from_env().jars_dir or not list(__import__("pathlib").Path(Settings.from_env().jars_dir).glob("*.jar")):
        pytest.fail("S3A connector jars missing: run `make setup`")
    result, resources = build_lake(SAMPLE_DATA_DIR, "s3://", s3_endpoint=s3_server,
                                   catalog_path=str(tmp_path / "catalog.db"))
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

    # pyiceberg reads the facts back from S3 through the catalog, as many as Spark wrote.
    materialized = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
                    for e in result.get_asset_materialization_events()}
    assert len(table_rows(resources, FCT_RATING)) == materialized["access/fct_rating"]["dagster/row_count"].value > 0
    assert materialized["access/fct_rating"]["dagster/uri"].value.startswith(
        "s3://data-lake-access-layer/ratings-data-mart/fct-rating")
