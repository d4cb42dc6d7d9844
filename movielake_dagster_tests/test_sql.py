"""SQL through the catalog on the sample: the SPEC's questions against answers computed without it.

The expected answers are plain Python over the access layer's Iceberg tables as pyiceberg reads them,
not through the crawler, DuckDB or the questions' SQL.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import UTC

import pytest

from movielake_dagster.catalog import LakeFiles
from movielake_dagster.datasets import BRIDGE_MOVIE_GENRE, DIM_MOVIE, FCT_RATING
from movielake_dagster.lake import ObjectStore
from movielake_dagster.settings import Settings
from movielake_dagster.tools.catalog_commands import crawl
from movielake_dagster.tools.cli import main
from movielake_dagster.tools.questions import (
    EXAMPLE_MOVIE_SQL,
    EXAMPLE_USER_SQL,
    QUESTIONS,
    render,
)
from movielake_dagster.tools.sql import QueryError, SqlEngine, is_read_only

from .conftest import table_rows


@pytest.fixture(scope="module")
def lake_and_catalog(sample_lake):
    """The sample lake, crawled (the staging files registered) in its own catalog."""
    lake_dir, _, resources = sample_lake
    crawl(Settings.from_env(lake=str(lake_dir)))
    return lake_dir, resources


@pytest.fixture(scope="module")
def engine(lake_and_catalog):
    resources = lake_and_catalog[1]
    catalog = resources["catalog"]
    engine = SqlEngine(catalog.catalog(), LakeFiles(ObjectStore()), catalog.iceberg())
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def star(lake_and_catalog):
    """The star schema as Python rows, read with pyiceberg."""
    resources = lake_and_catalog[1]

    def rows(dataset):
        return table_rows(resources, dataset)

    facts = rows(FCT_RATING)
    for fact in facts:
        fact["rated_at"] = fact["rated_at"].astimezone(UTC).replace(tzinfo=None)
    return {"fct": facts, "movies": {m["movie_id"]: m for m in rows(DIM_MOVIE)}, "bridge": rows(BRIDGE_MOVIE_GENRE)}


def expected_answers(star, movie_id: int, user_id: int) -> dict[str, list[tuple]]:
    facts, movies = star["fct"], star["movies"]
    of_movie = [f for f in facts if f["movie_id"] == movie_id]
    title = movies[movie_id]["title"]
    by_user = sorted(
        (f for f in facts if f["user_id"] == user_id), key=lambda f: (f["rated_at"], movies[f["movie_id"]]["title"])
    )[:10]
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
        "movies_rated_by_user": [
            (movies[f["movie_id"]]["title"], movies[f["movie_id"]]["year"], f["rating"], f["rated_at"]) for f in by_user
        ],
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
            ((title, average, count),) = rows
            ((want_title, want_average, want_count),) = expected[question.key]
            assert (title, count) == (want_title, want_count)
            assert math.isclose(average, want_average, abs_tol=0.0005 + 1e-9)
        else:
            assert rows == expected[question.key], question.key


def test_tables_are_named_as_in_the_catalog_with_access_as_the_default_schema(engine, star):
    names = engine.table_names()
    assert {
        "access.fct_rating",
        "access.dim_movie",
        "cleanse.ratings",
        "cleanse.quarantine_ratings",
        "staging.ratings",
    } <= set(names)
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


def test_movielake_query_prints_a_readable_table(lake_and_catalog, capsys):
    lake_dir, _ = lake_and_catalog
    code = main(
        [
            "query",
            "--lake",
            str(lake_dir),
            "SELECT hour_of_day, COUNT(*) AS ratings FROM access.fct_rating GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert "hour_of_day" in lines[1] and "ratings" in lines[1]
    assert lines[-1].startswith("(3 rows;")
    assert main(["query", "--lake", str(lake_dir), "DELETE FROM fct_rating"]) == 2
    assert "read-only" in capsys.readouterr().err


def test_an_empty_catalog_is_one_line_naming_the_fix(tmp_path, capsys):
    assert main(["query", "--lake", str(tmp_path / "nothing"), "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "movielake run" in err


def test_iceberg_tables_are_queryable_without_a_crawl_and_report_the_crawl_changes(sample_lake, tmp_path, capsys):
    """The Iceberg catalog registers the cleanse and access tables as they are written; a crawl adds
    the staging files and reports the Iceberg tables it sees for the first time."""
    import shutil

    from movielake_dagster.settings import SAMPLE_DATA_DIR

    from .conftest import build_lake

    lake_dir = tmp_path / "lake"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "movies.dat").write_text("1::Heat (1995)::Action\n2::Up (2009)::Animation\n")
    (raw / "ratings.dat").write_text("1::1::4::978300760\n1::2::5::978300761\n")
    shutil.copyfile(SAMPLE_DATA_DIR / "users_masterdata.json", raw / "users_masterdata.json")
    build_lake(raw, lake_dir)
    assert main(["query", "--lake", str(lake_dir), "SELECT COUNT(*) AS n FROM dim_movie"]) == 0
    assert re.search(r"\| 2 +\|", capsys.readouterr().out)
    assert main(["query", "--lake", str(lake_dir), "SELECT COUNT(*) FROM staging.movies"]) == 2
    assert "movielake crawl" in capsys.readouterr().err
    assert main(["crawl", "--lake", str(lake_dir), "--layer", "access"]) == 0
    out = capsys.readouterr().out
    assert "access.fct_rating" in out and "table added" in out and "iceberg" in out
    assert main(["crawl", "--lake", str(lake_dir), "--layer", "staging"]) == 0
    capsys.readouterr()
    assert main(["query", "--lake", str(lake_dir), "SELECT COUNT(*) AS n FROM staging.movies"]) == 0
    assert "(1 row;" in capsys.readouterr().out
