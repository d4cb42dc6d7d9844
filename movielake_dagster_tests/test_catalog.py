"""The crawler and both catalog backends on the materialized sample, and the crawl sensor.

Expected values come from elsewhere than the crawler: the row counts Spark reported when it wrote
each dataset (the materialization metadata), the raw files' own lines, and the partition folders.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielake_dagster.catalog import build_crawler, open_catalog
from movielake_dagster.catalog.crawler import catalog_datasets
from movielake_dagster.catalog.glue import GlueCatalog
from movielake_dagster.catalog.local import LocalCatalog
from movielake_dagster.catalog.sensor import crawl_catalog_job, crawl_run_config, crawl_sensor
from movielake_dagster.datasets import DIM_MOVIE, FCT_RATING
from movielake_dagster.lake import LAYERS, LakeLocation, ObjectStore
from movielake_dagster.settings import SAMPLE_DATA_DIR
from movielake_dagster_tests.conftest import REAL_DATA, requires_real_data

DATASETS = catalog_datasets()
PARQUET_DATASETS = [d for d in DATASETS if d.format == "parquet"]
RAW_FILES = {"movies": "movies.dat", "ratings": "ratings.dat", "users": "users_masterdata.json"}


def crawl_all(lake_url: str, catalog, store: ObjectStore | None = None) -> dict:
    crawler = build_crawler(LakeLocation.parse(lake_url), store or ObjectStore(), catalog)
    return {layer: crawler.crawl(layer) for layer in LAYERS}


def spark_row_counts(result) -> dict[str, int]:
    """Rows per dataset as Spark counted them when writing (the IO manager's metadata)."""
    tables = {d.asset_key: f"{d.layer}.{d.name}" for d in DATASETS}
    counts = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if "dagster/row_count" in materialization.metadata and materialization.asset_key in tables:
            counts[tables[materialization.asset_key]] = materialization.metadata["dagster/row_count"].value
    return counts


def rating_year_folders(lake_dir: Path) -> list[str]:
    folder = lake_dir / "access" / FCT_RATING.key
    return sorted((p.name.split("=", 1)[1] for p in folder.iterdir() if p.name.startswith("rating_year=")), key=int)


@pytest.fixture(scope="module")
def local_crawl(sample_lake, tmp_path_factory):
    lake_dir, result, _ = sample_lake
    catalog_path = tmp_path_factory.mktemp("catalog") / "catalog.db"
    reports = crawl_all(str(lake_dir), LocalCatalog(catalog_path))
    return lake_dir, result, catalog_path, reports


def assert_catalog_matches_lake(catalog, lake_dir: Path, result, location_prefix: str) -> None:
    """Tables, columns, types, partitions and counts of the catalog against the lake as written."""
    counts = spark_row_counts(result)
    for layer in LAYERS:
        assert {t.name for t in catalog.list_tables(layer)} == {d.name for d in DATASETS if d.layer == layer}
    for dataset in PARQUET_DATASETS:
        table = catalog.get_table(dataset.layer, dataset.name)
        declared = [(c.name, c.type) for c in dataset.columns if c.name not in dataset.partition_by]
        assert [(c.name, c.type) for c in table.columns] == declared, table.qualified_name
        assert all(c.description for c in table.columns), table.qualified_name
        assert [(k.name, k.type) for k in table.partition_keys] == [
            (c.name, c.type) for c in dataset.columns if c.name in dataset.partition_by]
        assert table.record_count == counts[f"{dataset.layer}.{dataset.name}"], table.qualified_name
        assert table.classification == "parquet"
        assert table.storage.serde == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        assert table.location.startswith(location_prefix) and dataset.key in table.location
        assert table.size_bytes > 0 and table.last_crawled
    fct = catalog.get_table("access", "fct_rating")
    assert [p.values[0] for p in fct.partitions] == rating_year_folders(lake_dir)
    assert sum(p.record_count for p in fct.partitions) == fct.record_count
    assert all(p.location.rstrip("/").endswith(f"rating_year={p.values[0]}") for p in fct.partitions)
    for name, file_name in RAW_FILES.items():
        table = catalog.get_table("staging", name)
        data = (SAMPLE_DATA_DIR / file_name).read_bytes()
        assert table.record_count == data.count(b"\n") + (0 if data.endswith(b"\n") else 1), name
    ratings = catalog.get_table("staging", "ratings")
    assert ratings.classification == "dat"
    assert [c.name for c in ratings.columns] == ["user_id", "movie_id", "rating", "timestamp"]
    assert {c.type for c in ratings.columns} == {"string"}
    users = catalog.get_table("staging", "users")
    assert users.classification == "json" and users.storage.serde == "org.openx.data.jsonserde.JsonSerDe"
    assert [c.name for c in users.columns] == ["user_id", "firts_name", "last_name"]


def test_local_crawl_registers_every_dataset_with_columns_types_partitions_and_counts(local_crawl):
    lake_dir, result, catalog_path, reports = local_crawl
    catalog = LocalCatalog(catalog_path)  # a fresh object: what was persisted, not what is in memory
    assert catalog.list_databases() == sorted(LAYERS)
    assert_catalog_matches_lake(catalog, lake_dir, result, str(lake_dir))
    for report in reports.values():
        assert {c.kind for c in report.changes} == {"added"}
        assert report.warnings == ()  # the files match the contract in datasets.py


def test_recrawl_of_unchanged_data_reports_no_change(local_crawl):
    lake_dir, _, catalog_path, first = local_crawl
    again = crawl_all(str(lake_dir), LocalCatalog(catalog_path))
    for layer in LAYERS:
        assert not again[layer].changed, again[layer].summary_lines()
        assert [t.record_count for t in again[layer].tables] == [t.record_count for t in first[layer].tables]
    assert len(LocalCatalog(catalog_path).last_crawls(limit=100)) >= 6


def test_the_ratings_regex_serde_splits_raw_lines_like_the_file_format(local_crawl):
    _, _, catalog_path, _ = local_crawl
    table = LocalCatalog(catalog_path).get_table("staging", "ratings")
    regex = re.compile(table.storage.serde_parameters["input.regex"])  # Java and Python agree on this syntax
    line = (SAMPLE_DATA_DIR / "ratings.dat").read_text().splitlines()[0]
    assert list(regex.match(line).groups()) == line.split("::")
    movies = LocalCatalog(catalog_path).get_table("staging", "movies")
    title_line = "1::City of Lost Children, The (Cité des enfants perdus, La) (1995)::Adventure|Sci-Fi"
    assert re.match(movies.storage.serde_parameters["input.regex"], title_line).groups() == (
        "1", "City of Lost Children, The (Cité des enfants perdus, La) (1995)", "Adventure|Sci-Fi")


@pytest.fixture
def own_lake(sample_lake, tmp_path):
    """A private copy of the sample lake's Parquet layers, free to change."""
    lake_dir = sample_lake[0]
    copy = tmp_path / "lake"
    for layer in ("cleanse", "access"):
        shutil.copytree(lake_dir / layer, copy / layer)
    return copy


def rewrite_parquet(folder: Path, change) -> None:
    files = sorted(folder.glob("*.parquet"))
    table = change(pa.concat_tables([pq.read_table(f) for f in files]))
    for f in files:
        f.unlink()
    pq.write_table(table, folder / "part-00000-changed.parquet")


def test_a_changed_schema_is_reported_as_added_removed_and_retyped_columns(own_lake, tmp_path):
    catalog = LocalCatalog(tmp_path / "catalog.db")
    crawler = build_crawler(LakeLocation.parse(str(own_lake)), ObjectStore(), catalog)
    crawler.crawl("access")

    def change(table: pa.Table) -> pa.Table:
        table = table.drop_columns(["raw_title"])
        table = table.set_column(table.schema.get_field_index("year"), "year", table["year"].cast(pa.int64()))
        return table.append_column("runtime_minutes", pa.array([90] * table.num_rows, pa.int32()))

    rewrite_parquet(own_lake / "access" / DIM_MOVIE.key, change)
    shutil.rmtree(own_lake / "access" / "ratings-data-mart" / "bridge-movie-genre")
    extra = own_lake / "access" / "ratings-data-mart" / "mystery-table"
    extra.mkdir()
    pq.write_table(pa.table({"movie_id": pa.array([1, 2], pa.int32())}), extra / "part-0.parquet")

    report = crawler.crawl("access")
    dim_movie = report.change_for("access.dim_movie")
    assert dim_movie.columns_added == ("runtime_minutes",)
    assert dim_movie.columns_removed == ("raw_title",)
    assert dim_movie.columns_retyped == (("year", "int", "bigint"),)
    assert dim_movie.schema_changed and report.changed
    assert report.change_for("access.bridge_movie_genre").kind == "removed"
    assert report.change_for("access.mystery_table").kind == "added"
    assert report.change_for("access.fct_rating").kind == "unchanged"
    assert {"access.dim_movie: column year is bigint in the files, declared int",
            "access.dim_movie: declared column raw_title is not in the files"} <= set(report.warnings)
    assert "column year retyped int -> bigint" in dim_movie.summary()
    stored = catalog.get_table("access", "dim_movie")
    assert stored.column("runtime_minutes").type == "int" and stored.column("raw_title") is None
    assert catalog.get_table("access", "bridge_movie_genre") is None


def test_raw_staging_files_are_classified_by_layout_and_counted(tmp_path):
    staging = tmp_path / "lake" / "staging"
    (staging / "ratings").mkdir(parents=True)
    (staging / "ratings" / "ratings.dat").write_text("1::10::4.5::978300760\n2::20::3::978300761\n")
    (staging / "ratings" / "2026-11-01.dat").write_text("3::30::5::1761955200")  # no final newline
    (staging / "masterdata").mkdir()
    (staging / "masterdata" / "user_masterdata.json").write_text(
        '{"user_id": "1", "firts_name": "A", "last_name": "B"}\n')
    (staging / "masterdata" / "users.dat").write_bytes("1::F::1::10::48067\n2::M::56::16::70072\n".encode("latin-1"))
    (staging / "movies").mkdir()
    (staging / "movies" / "movies.csv").write_text('movieId,title,genres\n1,"Heat, The (1995)",Action\n')
    report = build_crawler(LakeLocation.parse(str(tmp_path / "lake")), ObjectStore(),
                           LocalCatalog(tmp_path / "catalog.db")).crawl("staging")
    tables = {t.name: t for t in report.tables}
    assert tables["ratings"].record_count == 3 and tables["ratings"].parameters["files"] == "ratings.dat,2026-11-01.dat"
    assert tables["movies"].classification == "csv" and tables["movies"].record_count == 1
    assert tables["movies"].storage.table_parameters == {"skip.header.line.count": "1"}
    assert [c.name for c in tables["movies"].columns] == ["movie_id", "title", "genres"]
    assert tables["movies"].columns[0].description.startswith("MovieLens movie id")
    users = tables["users"]
    assert users.classification == "json" and users.record_count == 1
    assert users.parameters["other_files"] == "users.dat"
    assert any("users.dat has another layout" in w for w in report.warnings)


def test_an_empty_dataset_is_a_table_with_its_declared_schema(tmp_path):
    from movielake_dagster.catalog import LakeFiles
    from movielake_dagster.datasets import QUARANTINE_USERS
    from movielake_dagster.sql import SqlEngine

    lake = tmp_path / "lake"
    (lake / "cleanse" / QUARANTINE_USERS.key).mkdir(parents=True)
    (lake / "cleanse" / QUARANTINE_USERS.key / "_SUCCESS").write_text("")  # Spark wrote no rows
    (lake / "access" / DIM_MOVIE.key).mkdir(parents=True)
    pq.write_table(pa.table({"movie_id": pa.array([7], pa.int32())}), lake / "access" / DIM_MOVIE.key / "p.parquet")
    catalog = LocalCatalog(tmp_path / "catalog.db")
    crawler = build_crawler(LakeLocation.parse(str(lake)), ObjectStore(), catalog)
    crawler.crawl("cleanse")
    crawler.crawl("access")
    table = catalog.get_table("cleanse", "quarantine_users")
    assert table.record_count == 0 and table.files == 0
    assert [(c.name, c.type) for c in table.columns] == [(c.name, c.type) for c in QUARANTINE_USERS.columns]
    engine = SqlEngine(catalog, LakeFiles(ObjectStore()))
    assert engine.query("SELECT COUNT(*), COUNT(reason) FROM cleanse.quarantine_users").rows == [(0, 0)]
    assert engine.query("SELECT movie_id FROM dim_movie").rows == [(7,)]
    engine.close()


ML1M = REAL_DATA / "ml-1m"


@requires_real_data(ML1M)
def test_latin1_movielens_1m_files_are_registered_and_read_with_their_encoding(tmp_path):
    from movielake_dagster.catalog import LakeFiles
    from movielake_dagster.sql import SqlEngine

    lake = tmp_path / "lake"
    for folder, name in (("movies", "movies.dat"), ("masterdata", "users.dat")):
        (lake / "staging" / folder).mkdir(parents=True)
        shutil.copyfile(ML1M / name, lake / "staging" / folder / name)  # a temporary lake, as staging does
    (lake / "access" / DIM_MOVIE.key).mkdir(parents=True)
    pq.write_table(pa.table({"movie_id": pa.array([73], pa.int32())}), lake / "access" / DIM_MOVIE.key / "p.parquet")
    catalog = LocalCatalog(tmp_path / "catalog.db")
    crawler = build_crawler(LakeLocation.parse(str(lake)), ObjectStore(), catalog)
    staging, _ = crawler.crawl("staging"), crawler.crawl("access")
    movies = catalog.get_table("staging", "movies")
    assert movies.record_count == 3883 and movies.parameters["encoding"] == "ISO-8859-1"
    assert movies.storage.serde_parameters["serialization.encoding"] == "ISO-8859-1"
    users = catalog.get_table("staging", "users")
    assert users.record_count == 6040 and [c.name for c in users.columns][:2] == ["user_id", "gender"]
    assert staging.warnings == ()
    engine = SqlEngine(catalog, LakeFiles(ObjectStore()))
    assert engine.query("SELECT title FROM staging.movies WHERE movie_id = '73'").rows == [("Misérables, Les (1995)",)]
    engine.close()


@pytest.mark.s3
@pytest.mark.slow
def test_glue_catalog_on_an_s3_lake_reads_back_like_the_local_one(sample_lake, local_crawl, s3_server, monkeypatch,
                                                                  capsys):
    """The sample lake copied to moto's S3, crawled into moto's Glue, read back with plain boto3."""
    import boto3

    lake_dir, result, catalog_path, _ = local_crawl
    location = LakeLocation.parse("s3://catalog-test-{layer}")
    store = ObjectStore(s3_server, "us-east-1")
    store.ensure_buckets(location.buckets())
    for layer in LAYERS:
        for path in sorted((lake_dir / layer).rglob("*")):
            if path.is_file():
                store.copy(str(path), location.uri(layer, path.relative_to(lake_dir / layer).as_posix()))
    glue_catalog = open_catalog("glue", location, glue_endpoint=s3_server)
    assert isinstance(glue_catalog, GlueCatalog)
    reports = crawl_all("s3://catalog-test-{layer}", glue_catalog, store)
    assert all({c.kind for c in r.changes} == {"added"} for r in reports.values())

    assert_catalog_matches_lake(GlueCatalog(s3_server), lake_dir, result, "s3://catalog-test-")
    local = LocalCatalog(catalog_path)
    for layer in LAYERS:
        for table in local.list_tables(layer):
            remote = glue_catalog.get_table(layer, table.name)
            assert remote.columns == table.columns and remote.partition_keys == table.partition_keys
            assert [(p.values, p.record_count) for p in remote.partitions] == [
                (p.values, p.record_count) for p in table.partitions]

    glue = boto3.client("glue", endpoint_url=s3_server, region_name="us-east-1")
    assert {d["Name"] for d in glue.get_databases()["DatabaseList"]} >= set(LAYERS)
    fct = glue.get_table(DatabaseName="access", Name="fct_rating")["Table"]
    assert fct["TableType"] == "EXTERNAL_TABLE"
    assert fct["StorageDescriptor"]["Location"] == "s3://catalog-test-access/ratings-data-mart/fct-rating/"
    assert fct["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert fct["PartitionKeys"] == [{"Name": "rating_year", "Type": "int",
                                     "Comment": "Year of rated_at (UTC); the partition column."}]
    assert fct["Parameters"]["classification"] == "parquet"
    partitions = glue.get_partitions(DatabaseName="access", TableName="fct_rating")["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == sorted(rating_year_folders(lake_dir))
    assert sum(int(p["Parameters"]["recordCount"]) for p in partitions) == int(fct["Parameters"]["recordCount"])
    ratings = glue.get_table(DatabaseName="staging", Name="ratings")["Table"]
    serde = ratings["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde == "org.apache.hadoop.hive.serde2.RegexSerDe"
    assert ratings["StorageDescriptor"]["Location"] == "s3://catalog-test-staging/ratings/"

    again = crawl_all("s3://catalog-test-{layer}", glue_catalog, store)
    assert not any(r.changed for r in again.values())

    # A schema change on S3 is reported and reaches Glue.
    dim_movie_uri = location.uri("access", DIM_MOVIE.key)
    table = pq.read_table(lake_dir / "access" / DIM_MOVIE.key)
    table = table.append_column("runtime_minutes", pa.array([90] * table.num_rows, pa.int32()))
    local_copy = Path(catalog_path).parent / "dim_movie_changed.parquet"
    pq.write_table(table, local_copy)
    for info in store.list_files(dim_movie_uri):
        store.delete_file(info.uri)
    store.copy(str(local_copy), f"{dim_movie_uri}/part-00000-changed.parquet")
    report = build_crawler(location, store, glue_catalog).crawl("access")
    assert report.change_for("access.dim_movie").columns_added == ("runtime_minutes",)
    columns = glue.get_table(DatabaseName="access", Name="dim_movie")["Table"]["StorageDescriptor"]["Columns"]
    assert columns[-1]["Name"] == "runtime_minutes" and columns[-1]["Type"] == "int"

    # The commands, configured by the environment: Glue catalog, S3 lake read through pyarrow.
    from movielake_dagster.cli import main

    monkeypatch.setenv("MOVIELAKE_CATALOG", "glue")
    monkeypatch.setenv("MOVIELAKE_GLUE_ENDPOINT", s3_server)
    monkeypatch.setenv("MOVIELAKE_S3_ENDPOINT", s3_server)
    capsys.readouterr()
    assert main(["crawl", "--lake", "s3://catalog-test-{layer}", "--layer", "access"]) == 0
    assert "AWS Glue Data Catalog" in capsys.readouterr().out
    assert main(["query", "--lake", "s3://catalog-test-{layer}",
                 "SELECT COUNT(*) AS n, COUNT(DISTINCT rating_year) AS years FROM access.fct_rating"]) == 0
    out = capsys.readouterr().out
    assert f"| {spark_row_counts(result)['access.fct_rating']} " in out
    assert f"| {len(rating_year_folders(lake_dir))} " in out


# -- the crawl sensor and job -----------------------------------------------------------------------


def materialize(instance: dg.DagsterInstance, *keys: dg.AssetKey) -> None:
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))


def tick(instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = crawl_sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor, result
    return result.run_requests, result.cursor, None


def test_sensor_requests_one_crawl_per_materialized_layer_and_none_when_nothing_changed():
    with dg.instance_for_test() as instance:
        requests, cursor, skip = tick(instance, None)
        assert requests == [] and skip is not None  # nothing materialized yet

        # A whole-lake run: every dataset of all three layers -> one crawl per layer.
        materialize(instance, *(d.asset_key for d in DATASETS))
        requests, cursor, _ = tick(instance, cursor)
        assert sorted(r.tags["movielake/layer"] for r in requests) == sorted(LAYERS)
        assert {r.run_config["ops"]["crawl_layer"]["config"]["layer"] for r in requests} == set(LAYERS)

        requests, cursor_after, skip = tick(instance, cursor)
        assert requests == [] and skip is not None and cursor_after == cursor  # nothing new: no crawl

        # Two access assets re-materialized between ticks -> exactly one crawl, of access.
        materialize(instance, FCT_RATING.asset_key, DIM_MOVIE.asset_key)
        requests, cursor, _ = tick(instance, cursor)
        assert [r.tags["movielake/layer"] for r in requests] == ["access"]
        assert requests[0].run_key.startswith("crawl-access-")

        materialize(instance, FCT_RATING.asset_key)
        requests_again, cursor, _ = tick(instance, cursor)
        assert len(requests_again) == 1 and requests_again[0].run_key != requests[0].run_key
        assert tick(instance, cursor)[0] == []

        # A daily rating batch lands in staging/ratings/ too: it is a staging change.
        materialize(instance, dg.AssetKey(["staging", "rating_batch"]))
        assert [r.tags["movielake/layer"] for r in tick(instance, cursor)[0]] == ["staging"]


def test_crawl_job_records_an_observation_per_table_with_the_changes(sample_lake, tmp_path):
    from movielake_dagster.catalog.resource import CatalogResource
    from movielake_dagster.resources import LakeResource

    lake_dir = sample_lake[0]
    catalog = CatalogResource(lake=LakeResource(url=str(lake_dir)), path=str(tmp_path / "catalog.db"))
    with dg.instance_for_test() as instance:
        first = crawl_catalog_job.execute_in_process(run_config=crawl_run_config("access"), instance=instance,
                                                     resources={"catalog": catalog})
        assert first.success
        observations = {e.asset_key: e.event_specific_data.asset_observation.metadata
                        for e in first.get_asset_observation_events()}
        assert set(observations) == {d.asset_key for d in DATASETS if d.layer == "access"}
        fct = observations[FCT_RATING.asset_key]
        assert fct["catalog/change"].value == "access.fct_rating: table added"
        assert fct["partitions"].value == len(rating_year_folders(lake_dir))
        assert fct["dagster/row_count"].value == spark_row_counts(sample_lake[1])["access.fct_rating"]
        output = [e for e in first.all_events if e.event_type_value == "STEP_OUTPUT"][0]
        assert output.event_specific_data.metadata["changed"].value is True

        second = crawl_catalog_job.execute_in_process(run_config=crawl_run_config("access"), instance=instance,
                                                      resources={"catalog": catalog})
        output = [e for e in second.all_events if e.event_type_value == "STEP_OUTPUT"][0]
        assert output.event_specific_data.metadata["changed"].value is False
        assert "No changes" in output.event_specific_data.metadata["changes"].value
