"""Analytics on the bundled sample equal the same figures computed independently.

The oracle reads the stored star schema with pyiceberg and counts in plain Python (day of week from
``rated_at``, genres from ``dim_movie``), never through ``transforms/analytics.py`` or Spark.
"""

from __future__ import annotations

import base64
import struct
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from movielake_dagster.assets.analytics import genre_chart
from movielake_dagster.datasets import (
    ANALYTICS_ANSWERS,
    ANALYTICS_BASES,
    ANALYTICS_DATASETS,
    DIM_MOVIE,
    FCT_RATING,
    GENRES_BY_YEAR,
    RATINGS_BY_HOUR,
    RATINGS_BY_STARS,
    RATINGS_BY_WEEKDAY,
    TOP_MOVIES,
)

from .conftest import table_rows

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "charts"
ANALYTICS = ANALYTICS_DATASETS


def _materialization(result, dataset):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dataset.asset_key]
    return event.materialization


def _rows(resources, dataset) -> list[dict]:
    return table_rows(resources, dataset)


@pytest.fixture(scope="module")
def facts(sample_lake) -> list[dict]:
    _, _, resources = sample_lake
    return _rows(resources, FCT_RATING)


@pytest.fixture(scope="module")
def stored(sample_lake):
    _, _, resources = sample_lake
    return lambda dataset: _rows(resources, dataset)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def share(value: float):
    return pytest.approx(value, abs=0.00005 + 1e-12)  # stored with 4 decimals


def mean(value: float):
    return pytest.approx(value, abs=0.0005 + 1e-12)  # stored with 3 decimals


def test_ratings_by_hour_of_day(facts, stored):
    by_hour = defaultdict(list)
    for f in facts:
        by_hour[f["rated_at"].hour].append(f["rating"])
    rows = stored(RATINGS_BY_HOUR)
    assert [r["hour_of_day"] for r in rows] == list(range(24))
    for r in rows:
        stars = by_hour.get(r["hour_of_day"], [])
        assert r["ratings"] == len(stars)
        assert r["share"] == share(len(stars) / len(facts))
        assert r["average_rating"] == (mean(_mean(stars)) if stars else None)
    assert sum(r["ratings"] for r in rows) == len(facts)


def test_ratings_by_day_of_week(facts, stored):
    by_day = defaultdict(list)
    for f in facts:
        by_day[f["rated_at"].isoweekday()].append(f["rating"])
    rows = stored(RATINGS_BY_WEEKDAY)
    assert [(r["day_of_week"], r["day_name"]) for r in rows] == list(
        enumerate(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"], start=1)
    )
    assert {r["day_of_week"]: r["ratings"] for r in rows} == {d: len(by_day.get(d, [])) for d in range(1, 8)}
    for r in rows:
        assert r["average_rating"] == mean(_mean(by_day[r["day_of_week"]]))


def test_ratings_by_stars(facts, stored):
    counts = Counter(f["rating"] for f in facts)
    rows = stored(RATINGS_BY_STARS)
    assert [r["rating"] for r in rows] == [v / 2 for v in range(1, 11)]
    assert {r["rating"]: r["ratings"] for r in rows} == {v / 2: counts.get(v / 2, 0) for v in range(1, 11)}
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=0.0005)


def test_top_movies_by_average_with_a_minimum_of_votes(sample_lake, facts, stored):
    _, result, _ = sample_lake
    by_movie = defaultdict(list)
    for f in facts:
        by_movie[f["movie_id"]].append(f["rating"])
    min_ratings = _materialization(result, TOP_MOVIES).metadata["min_ratings"].value
    eligible = [(m, len(s), _mean(s)) for m, s in by_movie.items() if len(s) >= min_ratings]
    expected = sorted(eligible, key=lambda e: (-e[2], -e[1], e[0]))[:20]
    titles = {m["movie_id"]: (m["title"], m["year"]) for m in stored(DIM_MOVIE)}
    rows = stored(TOP_MOVIES)
    assert min_ratings == 50 and len(rows) == 20
    assert [r["rank"] for r in rows] == list(range(1, 21))
    assert [(r["movie_id"], r["ratings"]) for r in rows] == [(m, n) for m, n, _ in expected]
    assert [r["average_rating"] for r in rows] == [mean(avg) for _, _, avg in expected]
    assert [(r["title"], r["year"]) for r in rows] == [titles[m] for m, _, _ in expected]


def test_genres_by_year(facts, stored):
    genres = {m["movie_id"]: m["genres"] for m in stored(DIM_MOVIE)}
    per_year = Counter(f["rating_year"] for f in facts)
    stars = defaultdict(list)
    for f in facts:
        for genre in genres[f["movie_id"]]:
            stars[(f["rating_year"], genre)].append(f["rating"])
    rows = stored(GENRES_BY_YEAR)
    assert {(r["rating_year"], r["genre"]): r["ratings"] for r in rows} == {k: len(v) for k, v in stars.items()}
    for r in rows:
        assert r["share"] == share(r["ratings"] / per_year[r["rating_year"]])
        assert r["average_rating"] == mean(_mean(stars[(r["rating_year"], r["genre"])]))


@pytest.mark.parametrize("dataset", ANALYTICS_ANSWERS, ids=lambda d: d.name)
def test_each_materialization_shows_a_small_png_chart(sample_lake, dataset):
    """The chart is inline Markdown the UI renders; also saved under test-artifacts/charts/."""
    _, result, _ = sample_lake
    materialization = _materialization(result, dataset)
    chart = materialization.metadata["chart"].value
    prefix = "](data:image/png;base64,"
    assert chart.startswith("![") and prefix in chart and chart.endswith(")")
    png = base64.b64decode(chart.split(prefix, 1)[1][:-1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (640, 320) and len(png) < 80_000
    assert materialization.metadata["dagster/row_count"].value > 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{dataset.name}.png").write_bytes(png)


def test_top_movies_needs_the_minimum_and_breaks_ties(spark):
    from movielake_dagster.transforms.analytics import movie_year_totals, top_movies

    facts = spark.createDataFrame(
        [
            (1, 5.0, 2001),
            (2, 4.0, 2001),
            (2, 4.0, 2002),
            (3, 4.0, 2001),
            (3, 4.0, 2002),
            (3, 4.0, 2003),
            (4, 2.0, 2001),
            (4, 3.0, 2002),
        ],
        "movie_id int, rating double, rating_year int",
    )
    totals = movie_year_totals(facts)
    movies = spark.createDataFrame([(m, f"M{m}", 2000) for m in (1, 2, 3, 4)], "movie_id int, title string, year int")
    rows = top_movies(totals, movies, min_ratings=2, limit=10).collect()
    assert [(r["rank"], r["movie_id"], r["ratings"], r["average_rating"]) for r in rows] == [
        (1, 3, 3, 4.0),
        (2, 2, 2, 4.0),
        (3, 4, 2, 2.5),
    ]
    assert [r["movie_id"] for r in top_movies(totals, movies, min_ratings=1, limit=1).collect()] == [1]


def test_no_facts_give_every_bucket_with_zero_ratings(spark):
    from movielake_dagster.transforms.analytics import (
        rating_buckets,
        ratings_by_hour,
        ratings_by_stars,
    )

    buckets = rating_buckets(spark.createDataFrame([], "hour_of_day int, rated_at timestamp, rating double"))
    hours = ratings_by_hour(buckets).collect()
    assert len(hours) == 24 and {(r["ratings"], r["share"]) for r in hours} == {(0, 0.0)}
    assert {(r["ratings"], r["share"]) for r in ratings_by_stars(buckets).collect()} == {(0, 0.0)}


def test_materializing_some_analytics_writes_only_those(sample_lake):
    """The five tables are one multi-asset that can be subset: selecting two yields and commits two
    (the sample lake's tables get new snapshots of the same rows; the other three keep theirs)."""
    import dagster as dg

    from movielake_dagster.assets import ALL_ASSETS
    from movielake_dagster.code_location import build_definitions
    from movielake_dagster.settings import SAMPLE_DATA_DIR, Settings

    lake_dir, _, resources = sample_lake
    iceberg = resources["catalog"].iceberg()

    def current():
        return {d.asset_key: iceberg.table(d.layer, d.name).metadata.current_snapshot_id for d in ANALYTICS}

    before = current()
    defs = build_definitions(Settings(lake=str(lake_dir), landing=str(SAMPLE_DATA_DIR)))
    selected = {TOP_MOVIES.asset_key, RATINGS_BY_STARS.asset_key}
    result = dg.materialize(ALL_ASSETS, resources=defs.resources, selection=list(selected))
    assert result.success
    assert {e.asset_key for e in result.get_asset_materialization_events()} == selected
    after = current()
    assert {key for key in after if after[key] != before[key]} == selected


def test_analytics_assets_form_their_own_group_over_the_access_layer(tmp_path):
    from movielake_dagster.code_location import build_definitions
    from movielake_dagster.settings import Settings

    graph = build_definitions(Settings(lake=str(tmp_path / "lake"))).resolve_asset_graph()
    for dataset in ANALYTICS:
        node = graph.get(dataset.asset_key)
        assert node.group_name == "analytics" and dataset.key.startswith("analytics/"), dataset.name
        assert node.description and len(node.description) > 80, dataset.name
        parents = {k.to_user_string() for k in node.parent_keys}
        if dataset in ANALYTICS_BASES:  # made from the facts, refreshed from a day's changes
            assert parents == {"access/fct_rating", "cleanse/rating_changes"}, dataset.name
        else:  # made from the bases (and dimensions), never from the cleanse layer
            assert {p.split("/")[0] for p in parents} == {"access", "analytics"}, dataset.name
            assert {p for p in parents if p.startswith("analytics/")} < {
                b.asset_key.to_user_string() for b in ANALYTICS_BASES
            }, dataset.name


def test_the_genre_chart_of_a_lake_without_ratings_is_an_empty_png_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when a legend has nothing to name
        empty = genre_chart([])
    lines = genre_chart([{"genre": "Drama", "rating_year": 1999, "ratings": 3, "share": 0.5}])
    assert empty.startswith(b"\x89PNG") and lines.startswith(b"\x89PNG") and empty != lines
