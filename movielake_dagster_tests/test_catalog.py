"""The crawler on the materialized sample: raw staging files registered in the crawler's catalog, the
Iceberg tables of the cleanse and access layers read from Iceberg's own metadata; and the crawl sensor.

Expected values come from elsewhere than the crawler: the row counts the IO manager recorded when it
committed each table (the materialization metadata), the raw files' own lines, and the partition folders.
The Glue backend is tested with the S3 lake (``test_lake_s3.py``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import pytest

from movielake_dagster.automation.crawl import (
    crawl_catalog_job,
    crawl_run_config,
    crawl_sensor,
)
from movielake_dagster.catalog import build_crawler, iceberg_catalog
from movielake_dagster.catalog.iceberg import ICEBERG_LAYERS
from movielake_dagster.catalog.local import LocalCatalog
from movielake_dagster.datasets import DECLARED_DATASETS, DIM_MOVIE, FCT_RATING
from movielake_dagster.lake import LAYERS, LakeLocation, ObjectStore
from movielake_dagster.settings import SAMPLE_DATA_DIR
from movielake_dagster_tests.conftest import REAL_DATA, requires_real_data

DATASETS = DECLARED_DATASETS
ICEBERG_DATASETS = [d for d in DATASETS if d.layer in ICEBERG_LAYERS]
RAW_FILES = {"movies": "movies.dat", "ratings": "ratings.dat", "users": "users_masterdata.json"}


def crawl_all(lake_url: str, catalog, iceberg, store: ObjectStore | None = None) -> dict:
    crawler = build_crawler(LakeLocation.parse(lake_url), store or ObjectStore(), catalog, iceberg)
    return {layer: crawler.crawl(layer) for layer in LAYERS}


def spark_row_counts(result) -> dict[str, int]:
    """Rows per table as the IO manager recorded them when it committed each (the materialization metadata)."""
    tables = {d.asset_key: f"{d.layer}.{d.name}" for d in DATASETS}
    counts = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if "dagster/row_count" in materialization.metadata and materialization.asset_key in tables:
            counts[tables[materialization.asset_key]] = materialization.metadata["dagster/row_count"].value
    return counts


def rating_year_folders(lake_dir: Path) -> list[str]:
    folder = lake_dir / "access" / FCT_RATING.key / "data"
    return sorted((p.name.split("=", 1)[1] for p in folder.iterdir() if p.name.startswith("rating_year=")), key=int)


@pytest.fixture(scope="module")
def local_crawl(sample_lake, tmp_path_factory):
    lake_dir, result, resources = sample_lake
    catalog_path = tmp_path_factory.mktemp("catalog") / "catalog.db"
    reports = crawl_all(str(lake_dir), LocalCatalog(catalog_path), resources["catalog"].iceberg())
    return lake_dir, result, catalog_path, reports


def assert_reports_match_lake(reports: dict, catalog, lake_dir: Path, result) -> None:
    """Tables, columns, types, descriptions, partitions and counts against the lake as written."""
    counts = spark_row_counts(result)
    tables = {t.qualified_name: t for report in reports.values() for t in report.tables}
    for layer in LAYERS:
        assert {t.name for t in reports[layer].tables} == {d.name for d in DATASETS if d.layer == layer}, layer
    for dataset in ICEBERG_DATASETS:
        table = tables[f"{dataset.layer}.{dataset.name}"]
        assert [(c.name, c.type) for c in table.columns] == [(c.name, c.type) for c in dataset.columns]
        assert [c.description for c in table.columns] == [c.description for c in dataset.columns]
        assert table.description == dataset.description
        assert table.record_count == counts[table.qualified_name], table.qualified_name
        assert table.classification == "iceberg" and table.parameters["table_type"] == "ICEBERG"
        assert table.parameters["metadata_location"].endswith(".metadata.json")
        assert dataset.key in table.location and table.last_crawled
        assert (table.size_bytes > 0) == (table.record_count > 0), (
            table.qualified_name
        )  # an empty change log has no files
    fct = tables["access.fct_rating"]
    assert [p.values[0] for p in fct.partitions] == rating_year_folders(lake_dir)
    assert sum(p.record_count for p in fct.partitions) == fct.record_count
    assert fct.parameters["partition_spec"] == "1000: rating_year: identity(7)"
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


def test_local_crawl_registers_staging_and_reads_the_iceberg_tables(local_crawl):
    lake_dir, result, catalog_path, reports = local_crawl
    catalog = LocalCatalog(catalog_path)  # a fresh object: what was persisted, not what is in memory
    assert catalog.list_databases() == sorted(LAYERS)
    assert_reports_match_lake(reports, catalog, lake_dir, result)
    for layer in ICEBERG_LAYERS:  # Iceberg registers these tables: the crawler keeps a bookmark, not a copy
        assert catalog.list_tables(layer) == []
        bookmarks = catalog.get_bookmarks(layer)
        assert set(bookmarks) == {d.name for d in DATASETS if d.layer == layer}
        assert all(b["snapshot_id"] and "schema_id" in b for b in bookmarks.values())
    for report in reports.values():
        assert {c.kind for c in report.changes} == {"added"}
        assert report.warnings == ()  # the files match the contract in datasets.py


def test_recrawl_of_unchanged_data_reports_no_change(sample_lake, local_crawl):
    lake_dir, _, catalog_path, first = local_crawl
    again = crawl_all(str(lake_dir), LocalCatalog(catalog_path), sample_lake[2]["catalog"].iceberg())
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
        "1",
        "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
        "Adventure|Sci-Fi",
    )


def _staging_crawler(tmp_path: Path):
    lake = tmp_path / "lake"
    location = LakeLocation.parse(str(lake))
    catalog = LocalCatalog(tmp_path / "catalog.db")
    return (
        lake,
        catalog,
        build_crawler(
            location, ObjectStore(), catalog, iceberg_catalog("local", location, str(tmp_path / "catalog.db"))
        ),
    )


def test_raw_staging_files_are_classified_by_layout_and_counted(tmp_path):
    lake, _catalog, crawler = _staging_crawler(tmp_path)
    staging = lake / "staging"
    (staging / "ratings").mkdir(parents=True)
    (staging / "ratings" / "ratings.dat").write_text("1::10::4.5::978300760\n2::20::3::978300761\n\n")
    (staging / "ratings" / "2026-11-01.dat").write_text("3::30::5::1761955200")  # no final newline
    (staging / "masterdata").mkdir()
    (staging / "masterdata" / "user_masterdata.json").write_text(
        '[{"user_id": "1", "firts_name": "A",\n  "last_name": "B"},\n {"user_id": "2"}]\n'
    )
    (staging / "masterdata" / "users.dat").write_bytes("1::F::1::10::48067\n2::M::56::16::70072\n".encode("latin-1"))
    (staging / "movies").mkdir()
    (staging / "movies" / "movies.csv").write_text('movieId,title,genres\n1,"Heat, The\n(1995)",Action\n')
    report = crawler.crawl("staging")
    tables = {t.name: t for t in report.tables}
    assert tables["ratings"].record_count == 3 and tables["ratings"].parameters["files"] == "ratings.dat,2026-11-01.dat"
    assert tables["movies"].classification == "csv" and tables["movies"].record_count == 1  # one quoted record
    assert tables["movies"].storage.table_parameters == {"skip.header.line.count": "1"}
    assert [c.name for c in tables["movies"].columns] == ["movie_id", "title", "genres"]
    assert tables["movies"].columns[0].description.startswith("MovieLens movie id")
    users = tables["users"]  # one JSON array over three lines: two records, columns from its elements
    assert users.classification == "json" and users.record_count == 2
    assert [c.name for c in users.columns] == ["user_id", "firts_name", "last_name"]
    assert users.parameters["other_files"] == "users.dat"
    assert any("users.dat has another layout" in w for w in report.warnings)
    assert any("Athena's JSON SerDe reads one object per line" in w for w in report.warnings)


def test_a_headerless_csv_is_registered_with_its_layouts_columns(tmp_path):
    lake, _catalog, crawler = _staging_crawler(tmp_path)
    (lake / "staging" / "ratings").mkdir(parents=True)
    (lake / "staging" / "ratings" / "ratings.csv").write_text("1,10,4.0,978300760\n2,20,3.5,978300761\n")
    table = {t.name: t for t in crawler.crawl("staging").tables}["ratings"]
    assert table.record_count == 2 and table.storage.table_parameters == {}
    assert [c.name for c in table.columns] == ["user_id", "movie_id", "rating", "timestamp"]


ML1M = REAL_DATA / "ml-1m"


@requires_real_data(ML1M)
def test_latin1_movielens_1m_files_are_registered_and_read_with_their_encoding(tmp_path):
    from movielake_dagster.catalog import LakeFiles
    from movielake_dagster.tools.sql import SqlEngine

    lake, catalog, crawler = _staging_crawler(tmp_path)
    for folder, name in (("movies", "movies.dat"), ("masterdata", "users.dat")):
        (lake / "staging" / folder).mkdir(parents=True)
        shutil.copyfile(ML1M / name, lake / "staging" / folder / name)  # a temporary lake, as staging does
    staging = crawler.crawl("staging")
    movies = catalog.get_table("staging", "movies")
    assert movies.record_count == 3883 and movies.parameters["encoding"] == "ISO-8859-1"
    assert movies.storage.serde_parameters["serialization.encoding"] == "ISO-8859-1"
    users = catalog.get_table("staging", "users")
    assert users.record_count == 6040 and [c.name for c in users.columns][:2] == ["user_id", "gender"]
    assert staging.warnings == ()
    engine = SqlEngine(catalog, LakeFiles(ObjectStore()), crawler.iceberg)
    assert engine.query("SELECT title FROM staging.movies WHERE movie_id = '73'").rows == [("Misérables, Les (1995)",)]
    engine.close()


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


def test_crawl_job_records_an_observation_per_table_with_the_changes(sample_lake):
    lake_dir, _, resources = sample_lake
    catalog = resources["catalog"]
    catalog.catalog().put_bookmarks("access", {})  # as if never crawled
    with dg.instance_for_test() as instance:
        first = crawl_catalog_job.execute_in_process(
            run_config=crawl_run_config("access"), instance=instance, resources={"catalog": catalog}
        )
        assert first.success
        observations = {
            e.asset_key: e.event_specific_data.asset_observation.metadata for e in first.get_asset_observation_events()
        }
        assert set(observations) == {d.asset_key for d in DATASETS if d.layer == "access"}
        fct = observations[FCT_RATING.asset_key]
        assert fct["catalog/change"].value == "access.fct_rating: table added"
        assert fct["partitions"].value == len(rating_year_folders(lake_dir))
        assert fct["dagster/row_count"].value == spark_row_counts(sample_lake[1])["access.fct_rating"]
        output = next(e for e in first.all_events if e.event_type_value == "STEP_OUTPUT")
        assert output.event_specific_data.metadata["changed"].value is True

        second = crawl_catalog_job.execute_in_process(
            run_config=crawl_run_config("access"), instance=instance, resources={"catalog": catalog}
        )
        output = next(e for e in second.all_events if e.event_type_value == "STEP_OUTPUT")
        assert output.event_specific_data.metadata["changed"].value is False
        assert "No changes" in output.event_specific_data.metadata["changes"].value
