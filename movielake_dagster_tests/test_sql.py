"""SQL through the catalog on the sample: the SPEC's questions against answers computed without it.

The expected answers are plain Python over the Parquet files of the access layer as pyarrow reads
them, not through the catalog, DuckDB or the questions' SQL.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import timezone

import pyarrow.parquet as pq
import pytest

from movielake_dagster.catalog import LakeFiles, build_crawler
from movielake_dagster.catalog.local import LocalCatalog
from movielake_dagster.cli import main
from movielake_dagster.datasets import BRIDGE_MOVIE_GENRE, DIM_MOVIE, FCT_RATING
from movielake_dagster.lake import LAYERS, LakeLocation, ObjectStore
from movielake_dagster.questions import EXAMPLE_MOVIE_SQL, EXAMPLE_USER_SQL, QUESTIONS, render
from movielake_dagster.sql import QueryError, SqlEngine, is_read_only


@pytest.fixture(scope="module")
def lake_and_catalog(sample_lake, tmp_path_factory):
    lake_dir = sample_lake[0]
    catalog_path = tmp_path_factory.mktemp("sql-catalog") / "catalog.db"
    crawler = build_crawler(LakeLocation.parse(str(lake_dir)), ObjectStore(), LocalCatalog(catalog_path))
    for layer in LAYERS:
        crawler.crawl(layer)
    return lake_dir, catalog_path


@pytest.fixture(scope="module")
def engine(lake_and_catalog):
    engine = SqlEngine(LocalCatalog(lake_and_catalog[1]), LakeFiles(ObjectStore()))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def star(lake_and_catalog):
    """The star schema as Python rows, read straight from the Parquet files."""
    lake_dir = lake_and_catalog[0]

    def rows(dataset):
        return pq.read_table(lake_dir / "access" / dataset.key).to_pylist()

    facts = rows(FCT_RATING)
    for fact in facts:
        fact["rated_at"] = fact["rated_at"].astimezone(timezone.utc).replace(tzinfo=None)
    return {"fct": facts, "movies": {m["movie_id"]: m for m in rows(DIM_MOVIE)}, "bridge": rows(BRIDGE_MOVIE_GENRE)}


def expected_answers(star, movie_id: int, user_id: int) -> dict[str, list[tuple]]:
    facts, movies = star["fct"], star["movies"]
    of_movie = [f for f in facts if f["movie_id"] == movie_id]
    title = movies[movie_id]["title"]
    by_user = sorted((f for f in facts if f["user_id"] == user_id),
                     key=lambda f: (f["rated_at"], movies[f["movie_id"]]["title"]))[:10]
    after_1998 = [m["year"] for m in movies.values() if m["year"] is not None and m["year"] > 1998]
    hours = Counter(f["hour_of_day"] for f in facts)
    busiest = min(hours.items(), key=lambda kv: (-kv[1], kv[0]))
    genres_of = defaultdict(list)
    for row in star["bridge"]:
        genres_of[row["movie_id"]].append(row["genre"])
    genre_counts = Counter(g for f in facts for g in genres_of[f["movie_id"]])
    top = sorted(genre_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {
        "users_who_rated_movie": [(title, len({f["user_id"] for f in of_movie}))],
        "movies_rated_by_user": [(movies[f["movie_id"]]["title"], movies[f["movie_id"]]["year"], f["rating"],
                                  f["rated_at"]) for f in by_user],
        "average_rating_of_movie": [(title, sum(f["rating"] for f in of_movie) / len(of_movie), len(of_movie))],
        "movies_after_1998": [(len(after_1998), min(after_1998), max(after_1998))],
        "busiest_hour": [busiest],
        "top_genres": top,
    }


def test_the_spec_questions_answered_in_sql_equal_independent_answers(engine, star):
    movie_id = engine.query(EXAMPLE_MOVIE_SQL).rows[0][0]
    user_id = engine.query(EXAMPLE_USER_SQL).rows[0][0]
    ratings_per_movie = Counter(f["movie_id"] for f in star["fct"])
    assert movie_id == min(ratings_per_movie.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    assert user_id == min(f["user_id"] for f in star["fct"])
    expected = expected_answers(star, movie_id, user_id)
    for question in QUESTIONS:
        _, sql = render(question, movie_id, user_id)
        rows = engine.query(sql).rows
        if question.key == "average_rating_of_movie":
            (title, average, count), = rows
            (want_title, want_average, want_count), = expected[question.key]
            assert (title, count) == (want_title, want_count)
            assert math.isclose(average, want_average, abs_tol=0.0005 + 1e-9)
        else:
            assert rows == expected[question.key], question.key


def test_tables_are_named_as_in_the_catalog_with_access_as_the_default_schema(engine, star):
    names = engine.table_names()
    assert {"access.fct_rating", "access.dim_movie", "cleanse.ratings", "cleanse.quarantine_ratings",
            "staging.ratings"} <= set(names)
    qualified = engine.query("SELECT COUNT(*) FROM access.fct_rating").rows
    assert qualified == engine.query("SELECT COUNT(*) FROM fct_rating").rows == [(len(star["fct"]),)]
    by_year = engine.query("SELECT rating_year, COUNT(*) FROM fct_rating GROUP BY 1 ORDER BY 1").rows
    assert by_year == sorted(Counter(f["rated_at"].year for f in star["fct"]).items())
    assert engine.query("SELECT COUNT(*) FROM staging.movies WHERE movie_id IS NOT NULL").rows[0][0] > 0


def test_a_bad_query_is_one_line_naming_the_tables(engine):
    with pytest.raises(QueryError) as error:
        engine.query("SELECT * FROM no_such_table")
    assert "\n" not in str(error.value) and "access.fct_rating" in str(error.value)


def test_only_read_statements_are_accepted_by_the_command():
    assert is_read_only("SELECT 1") and is_read_only("  with x as (select 1) select * from x;")
    assert is_read_only("-- comment\nDESCRIBE fct_rating")
    assert not is_read_only("DROP VIEW fct_rating")
    assert not is_read_only("SELECT 1; COPY fct_rating TO 'x.csv'")


def test_movielake_query_prints_a_readable_table(lake_and_catalog, monkeypatch, capsys):
    lake_dir, catalog_path = lake_and_catalog
    monkeypatch.setenv("MOVIELAKE_CATALOG_PATH", str(catalog_path))
    code = main(["query", "--lake", str(lake_dir),
                 "SELECT hour_of_day, COUNT(*) AS ratings FROM access.fct_rating GROUP BY 1 ORDER BY 2 DESC LIMIT 3"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert "hour_of_day" in lines[1] and "ratings" in lines[1]
    assert lines[-1].startswith("(3 rows;")
    assert main(["query", "--lake", str(lake_dir), "DELETE FROM fct_rating"]) == 2
    assert "read-only" in capsys.readouterr().err


def test_movielake_crawl_then_query_on_a_fresh_catalog(sample_lake, tmp_path, monkeypatch, capsys):
    lake_dir = sample_lake[0]
    monkeypatch.setenv("MOVIELAKE_CATALOG_PATH", str(tmp_path / "catalog.db"))
    assert main(["query", "--lake", str(lake_dir), "SELECT 1"]) == 2  # nothing crawled yet
    assert "movielake crawl" in capsys.readouterr().err
    assert main(["crawl", "--lake", str(lake_dir), "--layer", "access"]) == 0
    out = capsys.readouterr().out
    assert "access.fct_rating" in out and "table added" in out
    assert main(["query", "--lake", str(lake_dir), "SELECT COUNT(*) AS n FROM dim_movie"]) == 0
    assert "(1 row;" in capsys.readouterr().out
