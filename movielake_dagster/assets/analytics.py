"""Analytics: small tables over the star schema, each with a chart shown on its asset page.

Stored as Parquet in the access layer under ``access/analytics/<name>/`` (SQL users can query
them like the star schema); in the UI they form the group ``analytics``. Each materialization
carries its chart as a PNG inside Markdown metadata (``chart``), so the asset page shows it.
One multi-asset makes all five from two scans of the facts (``transforms/analytics.py``).
"""

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from pyspark.sql import DataFrame

from movielake_dagster.assets.caching import CachedFrames
from movielake_dagster.datasets import (
    BRIDGE_MOVIE_GENRE,
    DIM_MOVIE,
    FCT_RATING,
    GENRES_BY_YEAR,
    RATINGS_BY_HOUR,
    RATINGS_BY_STARS,
    RATINGS_BY_WEEKDAY,
    TOP_MOVIES,
    Dataset,
)
from movielake_dagster.transforms import analytics

CHART_SIZE = (6.4, 3.2)  # inches at 100 dpi: 640 x 320 pixels
CHART_COLOR = "#4f43dd"
GENRE_LINES = 6  # genres_by_year charts the most rated genres only


# -- charts ------------------------------------------------------------------------------------------
def _figure():
    import matplotlib

    matplotlib.use("Agg")  # no display: render to PNG only
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=CHART_SIZE, dpi=100, layout="constrained")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig, ax


def _png(fig) -> bytes:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def bar_chart(labels: list[str], values: list[float], title: str, ylabel: str, highlight: int | None = None) -> bytes:
    fig, ax = _figure()
    colors = [CHART_COLOR if i != highlight else "#e4572e" for i in range(len(values))]
    ax.bar(labels, values, color=colors)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_ylabel(ylabel)
    return _png(fig)


def top_movies_chart(rows: list, min_ratings: int) -> bytes:
    fig, ax = _figure()
    rows = rows[:10]
    labels = [f"{r['title'][:38]} ({r['year'] or '?'})" for r in reversed(rows)]
    ax.barh(labels, [r["average_rating"] for r in reversed(rows)], color=CHART_COLOR)
    for i, r in enumerate(reversed(rows)):
        ax.text(r["average_rating"], i, f" {r['average_rating']:.2f} ({r['ratings']})", va="center", fontsize=7)
    ax.set_xlim(0, 5.6)
    ax.grid(axis="y", alpha=0)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"Top {len(rows)} movies by average stars (at least {min_ratings} ratings)", loc="left", fontsize=11)
    ax.set_xlabel("average stars (number of ratings)")
    return _png(fig)


def genre_chart(rows: list) -> bytes:
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["genre"]] = totals.get(r["genre"], 0) + r["ratings"]
    genres = sorted(totals, key=lambda g: (-totals[g], g))[:GENRE_LINES]
    fig, ax = _figure()
    for genre in genres:
        points = sorted((r["rating_year"], r["share"]) for r in rows if r["genre"] == genre)
        ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", markersize=3, label=genre)
    ax.set_title(f"Share of each year's ratings, top {len(genres)} genres", loc="left", fontsize=11)
    ax.set_ylabel("% of the year's ratings")
    ax.legend(fontsize=7, ncols=2, frameon=False)
    return _png(fig)


def _small(df: DataFrame) -> tuple[DataFrame, list]:
    """The rows on the driver, and the same table rebuilt from them (no second aggregation)."""
    rows = df.collect()
    return df.sparkSession.createDataFrame(rows, df.schema), rows


def _chart_metadata(chart: bytes, alt: str) -> dict:
    data = base64.b64encode(chart).decode("ascii")
    return {"chart": dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")}


# -- the tables -----------------------------------------------------------------------------------------
def _ratings_by_hour(buckets: DataFrame, **_):
    df, rows = _small(analytics.ratings_by_hour(buckets))
    counts = [r["ratings"] for r in rows]
    peak = max(range(len(counts)), key=counts.__getitem__) if any(counts) else None
    chart = bar_chart([str(r["hour_of_day"]) for r in rows], counts, "Ratings by hour of day (UTC)", "ratings",
                      highlight=peak)
    return df, {**_chart_metadata(chart, "Ratings by hour of day"), **({"busiest_hour": peak} if peak is not None else {})}


def _ratings_by_weekday(buckets: DataFrame, **_):
    df, rows = _small(analytics.ratings_by_weekday(buckets))
    chart = bar_chart([r["day_name"][:3] for r in rows], [r["ratings"] for r in rows],
                      "Ratings by day of week (UTC)", "ratings")
    return df, _chart_metadata(chart, "Ratings by day of week")


def _ratings_by_stars(buckets: DataFrame, **_):
    df, rows = _small(analytics.ratings_by_stars(buckets))
    chart = bar_chart([f"{r['rating']:g}" for r in rows], [r["ratings"] for r in rows], "Ratings by stars", "ratings")
    return df, _chart_metadata(chart, "Ratings by stars")


def _top_movies(totals: DataFrame, dim_movie: DataFrame, config: "AnalyticsConfig", **_):
    df, rows = _small(analytics.top_movies(totals, dim_movie, config.min_ratings, config.limit))
    return df, {**_chart_metadata(top_movies_chart(rows, config.min_ratings), "Top movies"),
                "min_ratings": config.min_ratings}


def _genres_by_year(totals: DataFrame, bridge_movie_genre: DataFrame, **_):
    df, rows = _small(analytics.genres_by_year(totals, bridge_movie_genre))
    return df, _chart_metadata(genre_chart(rows), "Genres by year")


def _buckets(fct_rating: DataFrame, frames: CachedFrames) -> DataFrame:
    return _small(analytics.rating_buckets(fct_rating))[0]  # at most 24 x 7 x 10 rows, now on the driver


def _totals(fct_rating: DataFrame, frames: CachedFrames) -> DataFrame:
    return frames.cache(analytics.movie_year_totals(fct_rating), partitions=1)  # ~100,000 rows at 10M ratings


@dataclass(frozen=True)
class AnalyticsTable:
    """One analytics table: the scan of the facts it sums over, what else it reads, how it is made."""

    dataset: Dataset
    scan: Callable[[DataFrame, CachedFrames], DataFrame]  # _buckets or _totals: run once per step
    make: Callable[..., tuple[DataFrame, dict]]  # (scan, dim_movie=, bridge_movie_genre=, config=) -> table, metadata
    upstream: tuple[Dataset, ...]
    description: str


TABLES = (
    AnalyticsTable(RATINGS_BY_HOUR, _buckets, _ratings_by_hour, (FCT_RATING,),
                   "At what time of day people rate: the number of ratings submitted in each hour (UTC, 0-23), "
                   "their share of all ratings and their average stars. Chart (metadata `chart`): ratings per "
                   "hour, the busiest hour in orange."),
    AnalyticsTable(RATINGS_BY_WEEKDAY, _buckets, _ratings_by_weekday, (FCT_RATING,),
                   "On which day of the week people rate: the number of ratings per day, Monday to Sunday (UTC), "
                   "with their share of all ratings and average stars. Chart (metadata `chart`): ratings per day."),
    AnalyticsTable(RATINGS_BY_STARS, _buckets, _ratings_by_stars, (FCT_RATING,),
                   "How people rate: how many ratings gave each star value from 0.5 to 5.0, and their share. "
                   "Chart (metadata `chart`): ratings per star value."),
    AnalyticsTable(TOP_MOVIES, _totals, _top_movies, (FCT_RATING, DIM_MOVIE),
                   "What people like best: the movies with the highest average stars among those with at least "
                   "`min_ratings` ratings (config, default 50), best first. Chart (metadata `chart`): the first "
                   "ten."),
    AnalyticsTable(GENRES_BY_YEAR, _totals, _genres_by_year, (FCT_RATING, BRIDGE_MOVIE_GENRE),
                   "Which genres people rate, year by year: ratings per genre and rating year, and the genre's "
                   "share of that year's ratings. Chart (metadata `chart`): the six most rated genres' shares by "
                   "year."),
)


class AnalyticsConfig(dg.Config):
    min_ratings: int = 50
    """top_movies: only movies with at least this many ratings compete (a mean of three 5-star votes is not a top movie)."""
    limit: int = 20
    """top_movies: how many movies to keep."""


@dg.multi_asset(
    outs={
        t.dataset.name: dg.AssetOut(key=t.dataset.asset_key, group_name=t.dataset.group_name,
                                    io_manager_key="iceberg_io_manager", description=t.description,
                                    kinds={"spark", "iceberg"},
                                    is_required=False)  # a subset yields only the selected tables
        for t in TABLES
    },
    ins={d.name: dg.AssetIn(d.asset_key) for d in (FCT_RATING, DIM_MOVIE, BRIDGE_MOVIE_GENRE)},
    internal_asset_deps={t.dataset.name: {d.asset_key for d in t.upstream} for t in TABLES},
    can_subset=True,
)
def analytics_tables(context: dg.AssetExecutionContext, config: AnalyticsConfig, fct_rating: DataFrame,
                     dim_movie: DataFrame, bridge_movie_genre: DataFrame):
    """The five analytics tables, made together from two scans of `fct_rating`: one sums the ratings
    per (hour, weekday, stars), the other per (year, movie); each table is a small sum over one of
    them. Materializing only some of the tables runs only the scans they need."""
    scans: dict[Callable, DataFrame] = {}
    with CachedFrames() as frames:
        for table in TABLES:
            if table.dataset.name not in context.selected_output_names:
                continue
            if table.scan not in scans:
                scans[table.scan] = table.scan(fct_rating, frames)
            df, metadata = table.make(scans[table.scan], dim_movie=dim_movie, bridge_movie_genre=bridge_movie_genre,
                                      config=config)
            yield dg.Output(df.coalesce(1), output_name=table.dataset.name, metadata=metadata)


analytics_assets = [analytics_tables]
