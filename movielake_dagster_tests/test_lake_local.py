"""The whole asset graph materialized into a temporary local lake, checked against an oracle."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import pytest

from movielake_dagster.checks import build_checks
from movielake_dagster.datasets import (
    DIM_MOVIE,
    DIM_USER,
    FCT_RATING,
    MOVIES,
    QUARANTINE_MOVIES,
    QUARANTINE_RATINGS,
    QUARANTINE_USERS,
)
from movielake_dagster.settings import SAMPLE_DATA_DIR

from . import reference
from .conftest import (
    ML100K_SEED_FORMAT,
    REAL_DATA,
    build_lake,
    requires_real_data,
    table_rows,
)

ACCESS = "access/ratings-data-mart"


def _metadata(result) -> dict[str, dict]:
    return {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def _rows(resources, dataset) -> list[dict]:
    return table_rows(resources, dataset)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _oracle(raw_dir: Path):
    movies = reference.movies(raw_dir / "movies.dat")
    users = reference.users(raw_dir / "users_masterdata.json")
    ratings = reference.ratings(raw_dir / "ratings.dat", set(users.rows), set(movies.rows), int(time.time()))
    return movies, users, ratings


def test_staging_holds_the_landed_files_byte_for_byte_at_the_seed_keys(sample_lake):
    lake_dir, _, _ = sample_lake
    for landed, staged in [
        ("movies.dat", "staging/movies/movies.dat"),
        ("ratings.dat", "staging/ratings/ratings.dat"),
        ("users_masterdata.json", "staging/masterdata/user_masterdata.json"),
    ]:
        assert _sha(SAMPLE_DATA_DIR / landed) == _sha(lake_dir / staged)


def test_every_table_is_an_iceberg_v2_table_at_its_spec_location(sample_lake):
    """Format version 2, Parquet data files under the SPEC's folder, fct_rating partitioned by rating_year."""
    lake_dir, _, resources = sample_lake
    iceberg = resources["catalog"].iceberg()
    for folder, (layer, name) in {
        "cleanse/movies": ("cleanse", "movies"),
        "cleanse/ratings": ("cleanse", "ratings"),
        "cleanse/masterdata/user": ("cleanse", "users"),
        "cleanse/quarantine/ratings": ("cleanse", "quarantine_ratings"),
        f"{ACCESS}/dim-user": ("access", "dim_user"),
        f"{ACCESS}/dim-movie": ("access", "dim_movie"),
        f"{ACCESS}/dim-date": ("access", "dim_date"),
        f"{ACCESS}/bridge-movie-genre": ("access", "bridge_movie_genre"),
        f"{ACCESS}/fct-rating": ("access", "fct_rating"),
    }.items():
        table = iceberg.table(layer, name)
        assert table.format_version == 2, name
        assert table.location() == (lake_dir / folder).resolve().as_uri().replace("file:///", "file:/"), name
        files = table.inspect.data_files().column("file_path").to_pylist()
        assert files and all(f.endswith(".parquet") and f"/{folder}/data/" in f for f in files), name
        assert table.metadata_location.startswith(table.location() + "/metadata/"), name
    fct = iceberg.table("access", "fct_rating")
    assert [(f.name, str(f.transform)) for f in fct.spec().fields] == [("rating_year", "identity")]
    years = sorted(p.name for p in (lake_dir / ACCESS / "fct-rating" / "data").glob("rating_year=*"))
    assert years and all(len(y) == len("rating_year=2000") for y in years)
    assert not list(lake_dir.rglob("*__*")), "no hidden sibling folders: Iceberg commits are atomic"
    assert not list((lake_dir / "cleanse").rglob("classified-ratings-*")), "the ratings' scratch is removed"


def test_each_materialization_records_its_snapshot_branch_and_publication(sample_lake):
    from pyiceberg.table.snapshots import ancestors_of

    _lake_dir, result, resources = sample_lake
    iceberg = resources["catalog"].iceberg()
    for key, metadata in _metadata(result).items():
        if key.startswith("staging/"):
            continue
        layer, name = metadata["dagster/table_name"].value.split(".")
        table = iceberg.table(layer, name)
        snapshot = table.snapshot_by_id(int(metadata["movielake/snapshot_id"].value))
        assert snapshot is not None and snapshot.summary["dagster.run-id"] == result.run_id, key
        assert metadata["movielake/parent_snapshot_id"].value == str(snapshot.parent_snapshot_id or ""), key
        assert metadata["movielake/branch"].value == f"run_{result.run_id[:8]}", key
        # published: on main's history (a later test may have committed on top of it since)
        main = [s.snapshot_id for s in ancestors_of(table.current_snapshot(), table.metadata)]
        assert snapshot.snapshot_id in main, f"{key} is published"


def test_sample_counts_and_values_match_the_oracle(sample_lake):
    _lake_dir, result, _ = sample_lake
    movies, users, ratings = _oracle(SAMPLE_DATA_DIR)
    meta = _metadata(result)
    assert meta["cleanse/movies"]["dagster/row_count"].value == len(movies.rows)
    assert meta["cleanse/users"]["dagster/row_count"].value == len(users.rows)
    assert meta["cleanse/ratings"]["dagster/row_count"].value == len(ratings.rows)
    assert meta["access/fct_rating"]["dagster/row_count"].value == len(ratings.rows)
    resources = sample_lake[2]
    quarantine = Counter((r["dataset"], r["line_number"], r["reason"]) for r in _rows(resources, QUARANTINE_RATINGS))
    assert quarantine == Counter(("ratings", n, reason) for n, reason in ratings.rejected.items())
    movie_quarantine = {(r["line_number"], r["reason"]) for r in _rows(resources, QUARANTINE_MOVIES)}
    assert movie_quarantine == set(movies.rejected.items())
    user_quarantine = {(r["line_number"], r["reason"]) for r in _rows(resources, QUARANTINE_USERS)}
    assert user_quarantine == set(users.rejected.items())

    dim_movie = {r["movie_id"]: r for r in _rows(resources, DIM_MOVIE)}
    for movie_id, expected in list(movies.rows.items())[:200]:
        got = dim_movie[movie_id]
        assert (got["title"], got["year"], list(got["genres"])) == (
            expected["title"],
            expected["year"],
            expected["genres"],
        )
    facts = {(r["user_id"], r["movie_id"]): r for r in _rows(resources, FCT_RATING)}
    assert set(facts) == set(ratings.rows)
    for key, (_, _, rating, epoch) in list(ratings.rows.items())[:500]:
        fact = facts[key]
        assert fact["rating"] == rating
        assert fact["hour_of_day"] == time.gmtime(epoch).tm_hour
        assert fact["date_key"] == int(time.strftime("%Y%m%d", time.gmtime(epoch)))
        assert fact["rating_year"] == time.gmtime(epoch).tm_year


def test_reconciliation_metadata_balances(sample_lake):
    _, result, _ = sample_lake
    meta = _metadata(result)
    for name in ("movies", "users", "ratings"):
        m = meta[f"cleanse/{name}"]
        assert m["movielake/input_records"].value == (
            m["movielake/accepted_records"].value + m["movielake/quarantined_records"].value
        )


def test_every_materialization_describes_itself(sample_lake):
    _, result, _ = sample_lake
    for key, metadata in _metadata(result).items():
        assert "dagster/uri" in metadata, key
        if not key.startswith("staging/"):
            assert isinstance(metadata["dagster/row_count"].value, int), key
            columns = [c.name for c in metadata["dagster/column_schema"].schema.columns]
            assert columns and all(c.description for c in metadata["dagster/column_schema"].schema.columns), key
            assert "|" in metadata["preview"].value, key


def test_rebuilding_the_same_lake_is_idempotent(sample_lake):
    """The shared sample lake built again in place: new snapshots of exactly the same rows (so the
    other tests sharing it still read the same data)."""
    lake_dir, first, resources = sample_lake
    rows_first = sorted(tuple(r.values()) for r in _rows(resources, FCT_RATING))
    second, _ = build_lake(SAMPLE_DATA_DIR, lake_dir)
    counts = lambda result: {k: m.get("dagster/row_count") for k, m in _metadata(result).items()}  # noqa: E731
    assert counts(first) == counts(second)
    facts = _rows(resources, FCT_RATING)
    assert len(facts) == len({(f["user_id"], f["movie_id"]) for f in facts})
    assert sorted(tuple(r.values()) for r in facts) == rows_first
    assert not list(lake_dir.rglob("*__*")), "no temporary or old versions left behind"


@pytest.mark.slow
def test_every_check_passes_on_real_movielens_100k(ml100k_lake):
    """In this module, beside the other 100k test, so that the suite builds the 100k lake once."""
    result, _ = ml100k_lake
    evaluated = {(e.asset_key, e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    declared = {(s.asset_key, s.name) for c in build_checks() for s in c.check_specs}
    assert set(evaluated) == declared
    assert [k for k, passed in evaluated.items() if not passed] == []


@pytest.mark.slow
def test_real_movielens_100k_in_seed_format(ml100k_lake):
    result, resources = ml100k_lake
    meta = _metadata(result)
    assert meta["cleanse/movies"]["dagster/row_count"].value == 1682
    assert meta["cleanse/users"]["dagster/row_count"].value == 943
    assert meta["cleanse/ratings"]["dagster/row_count"].value == 100000
    assert meta["cleanse/quarantine_ratings"]["dagster/row_count"].value == 0
    # Computed independently from ratings.dat: Star Wars (movie 50) has 583 ratings averaging 4.358.
    lines = [line.split("::") for line in (ML100K_SEED_FORMAT / "ratings.dat").read_text().splitlines()]
    star_wars = [float(r) for _, m, r, _ in lines if m == "50"]
    facts = [f for f in _rows(resources, FCT_RATING) if f["movie_id"] == 50]
    assert len(facts) == len(star_wars) == 583
    assert round(sum(f["rating"] for f in facts) / len(facts), 3) == round(sum(star_wars) / 583, 3) == 4.358
    movies = {r["movie_id"]: r for r in _rows(resources, MOVIES)}
    assert (movies[267]["title"], movies[267]["year"], list(movies[267]["genres"])) == ("unknown", None, [])


MOVIE_AND_USER_ASSETS = [
    "staging/movies",
    "cleanse/movies",
    "cleanse/quarantine_movies",
    "staging/users",
    "cleanse/users",
    "cleanse/quarantine_users",
    "access/dim_user",
]


@pytest.mark.slow
@requires_real_data(REAL_DATA / "ml-10m")
def test_real_movie_lists_of_10m_and_1m(tmp_path):
    """10M movies (UTF-8) and 1M movies (Latin-1) with 1M users.dat; a tiny ratings file joins them."""
    for release, expected_movies in (("ml-10m", 10681), ("ml-1m", 3883)):
        raw = tmp_path / release
        raw.mkdir()
        (raw / "movies.dat").write_bytes((REAL_DATA / release / "movies.dat").read_bytes())
        (raw / "ratings.dat").write_text("1::1::5::978300760\n1::2::3.5::978302109\n")
        (raw / "users_masterdata.json").write_text('{"user_id": "1", "firts_name": "Ann", "last_name": "Lee"}\n')
        if release == "ml-1m":
            (raw / "users.dat").write_bytes((REAL_DATA / "ml-1m" / "users.dat").read_bytes())
        # only the movie and user tables (and their checks): the ratings are not what is tested here
        result, resources = build_lake(raw, tmp_path / f"lake-{release}", assets=MOVIE_AND_USER_ASSETS)
        meta = _metadata(result)
        assert meta["cleanse/movies"]["dagster/row_count"].value == expected_movies
        assert meta["cleanse/quarantine_movies"]["dagster/row_count"].value == 0
        movies = {r["movie_id"]: r for r in _rows(resources, MOVIES)}
        if release == "ml-10m":
            lost = movies[29]
            assert (lost["title"], lost["year"]) == ("City of Lost Children, The (Cité des enfants perdus, La)", 1995)
            assert [m for m in movies.values() if list(m["genres"]) == []], "(no genres listed) -> []"
        else:
            assert (movies[1001]["title"], movies[1001]["year"]) == ("Associate, The (L'Associe)", 1982)
            users = {r["user_id"]: r for r in _rows(resources, DIM_USER)}
            assert len(users) == 6040
            assert (users[1]["first_name"], users[1]["gender"], users[1]["age_group"]) == ("Ann", "F", "Under 18")
