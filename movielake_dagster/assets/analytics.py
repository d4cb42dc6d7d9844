"""Analytics: small tables over the star schema, each with a chart shown on its asset page.

Stored as Iceberg tables in the access layer under ``access/analytics/<name>/`` (SQL users can query
them like the star schema); in the UI they form the group ``analytics``. Each materialization
carries its chart as a PNG inside Markdown metadata (``chart``), so the asset page shows it.

One multi-asset makes them all. Two tables of sums are the base: ``rating_buckets`` (per hour,
weekday and star value) and ``movie_year_totals`` (per year and movie); the five charted tables are
small sums over them (``transforms/analytics.py``). A full build makes the bases in two scans of the
facts; a day's load adds the day's changes (``cleanse/rating_changes``) to the stored bases instead,
which is exact (half stars add without rounding), and rebuilds them only when the bases do not
reflect the snapshot the changes start from.
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
    MOVIE_YEAR_TOTALS,
    RATING_BUCKETS,
    RATING_CHANGES,
    RATINGS,
    RATINGS_BY_HOUR,
    RATINGS_BY_STARS,
    RATINGS_BY_WEEKDAY,
    TOP_MOVIES,
    Dataset,
)
from movielake_dagster.io_managers.iceberg import RATINGS_SYNC, IcebergIOManager, Replace, RowChanges
from movielake_dagster.transforms import analytics, star_schema

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
    if genres:  # a lake without ratings has no lines to name (matplotlib would warn)
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
    chart = bar_chart(
        [str(r["hour_of_day"]) for r in rows], counts, "Ratings by hour of day (UTC)", "ratings", highlight=peak
    )
    return df, {
        **_chart_metadata(chart, "Ratings by hour of day"),
        **({"busiest_hour": peak} if peak is not None else {}),
    }


def _ratings_by_weekday(buckets: DataFrame, **_):
    df, rows = _small(analytics.ratings_by_weekday(buckets))
    chart = bar_chart(
        [r["day_name"][:3] for r in rows], [r["ratings"] for r in rows], "Ratings by day of week (UTC)", "ratings"
    )
    return df, _chart_metadata(chart, "Ratings by day of week")


def _ratings_by_stars(buckets: DataFrame, **_):
    df, rows = _small(analytics.ratings_by_stars(buckets))
    chart = bar_chart([f"{r['rating']:g}" for r in rows], [r["ratings"] for r in rows], "Ratings by stars", "ratings")
    return df, _chart_metadata(chart, "Ratings by stars")


def _top_movies(totals: DataFrame, dim_movie: DataFrame, config: "AnalyticsConfig", **_):
    df, rows = _small(analytics.top_movies(totals, dim_movie, config.min_ratings, config.limit))
    return df, {
        **_chart_metadata(top_movies_chart(rows, config.min_ratings), "Top movies"),
        "min_ratings": config.min_ratings,
    }


def _genres_by_year(totals: DataFrame, bridge_movie_genre: DataFrame, **_):
    df, rows = _small(analytics.genres_by_year(totals, bridge_movie_genre))
    return df, _chart_metadata(genre_chart(rows), "Genres by year")


@dataclass(frozen=True)
class Base:
    """A table of sums the charted tables are made from: how a full build makes it from the facts."""

    dataset: Dataset
    from_facts: Callable[[DataFrame], DataFrame]


BASES = (Base(RATING_BUCKETS, analytics.rating_buckets), Base(MOVIE_YEAR_TOTALS, analytics.movie_year_totals))


def base_sums(context, fct_rating: DataFrame, frames: CachedFrames, tables: IcebergIOManager) -> dict:
    """Each base's sums (cached, small) and how to store them: updated with the day's changes where
    that is exact, else made from a scan of the facts. ``None`` for a replayed day (nothing changed)."""
    deltas = {b.dataset.name: tables.rating_delta(b.dataset) for b in BASES} if context.has_partition_key else {}
    if deltas and all(d is not None and d.unchanged for d in deltas.values()):
        return {b.dataset.name: (tables.published(b.dataset), RowChanges()) for b in BASES}
    sums = {}
    for base in BASES:
        delta = deltas.get(base.dataset.name)
        if delta is not None and not delta.unchanged:
            added = base.from_facts(star_schema.build_fct_rating(delta.inserted))
            removed = base.from_facts(star_schema.build_fct_rating(delta.deleted))
            frame = analytics.apply_changes(
                tables.published(base.dataset), added, removed, list(base.dataset.primary_key)
            )
            sync = str(delta.ratings_snapshot)
        else:
            frame, sync = base.from_facts(fct_rating), str(tables.published_snapshot(RATINGS))
        frame = frames.cache(frame.select(*base.dataset.column_names), partitions=1)
        sums[base.dataset.name] = (frame, Replace(frame, properties={RATINGS_SYNC: sync}))
    return sums


@dataclass(frozen=True)
class AnalyticsTable:
    """One charted analytics table: the base it sums over, what else it reads, how it is made."""

    dataset: Dataset
    base: Dataset  # RATING_BUCKETS or MOVIE_YEAR_TOTALS
    make: Callable[
        ..., tuple[DataFrame, dict]
    ]  # (base sums, dim_movie=, bridge_movie_genre=, config=) -> table, metadata
    upstream: tuple[Dataset, ...]
    description: str


TABLES = (
    AnalyticsTable(
        RATINGS_BY_HOUR,
        RATING_BUCKETS,
        _ratings_by_hour,
        (FCT_RATING,),
        "At what time of day people rate: the number of ratings submitted in each hour (UTC, 0-23), "
        "their share of all ratings and their average stars. Chart (metadata `chart`): ratings per "
        "hour, the busiest hour in orange.",
    ),
    AnalyticsTable(
        RATINGS_BY_WEEKDAY,
        RATING_BUCKETS,
        _ratings_by_weekday,
        (FCT_RATING,),
        "On which day of the week people rate: the number of ratings per day, Monday to Sunday (UTC), "
        "with their share of all ratings and average stars. Chart (metadata `chart`): ratings per day.",
    ),
    AnalyticsTable(
        RATINGS_BY_STARS,
        RATING_BUCKETS,
        _ratings_by_stars,
        (FCT_RATING,),
        "How people rate: how many ratings gave each star value from 0.5 to 5.0, and their share. "
        "Chart (metadata `chart`): ratings per star value.",
    ),
    AnalyticsTable(
        TOP_MOVIES,
        MOVIE_YEAR_TOTALS,
        _top_movies,
        (FCT_RATING, DIM_MOVIE),
        "What people like best: the movies with the highest average stars among those with at least "
        "`min_ratings` ratings (config, default 50), best first. Chart (metadata `chart`): the first "
        "ten.",
    ),
    AnalyticsTable(
        GENRES_BY_YEAR,
        MOVIE_YEAR_TOTALS,
        _genres_by_year,
        (FCT_RATING, BRIDGE_MOVIE_GENRE),
        "Which genres people rate, year by year: ratings per genre and rating year, and the genre's "
        "share of that year's ratings. Chart (metadata `chart`): the six most rated genres' shares by "
        "year.",
    ),
)


class AnalyticsConfig(dg.Config):
    min_ratings: int = 50
    """top_movies: only movies with at least this many ratings compete (a mean of three 5-star votes is not a top movie)."""
    limit: int = 20
    """top_movies: how many movies to keep."""


BASE_DESCRIPTIONS = {
    RATING_BUCKETS.name: "The sums behind the hour, weekday and star tables: ratings and summed stars per (UTC hour, "
    "ISO day of week, star value). A day's load adds its changes to them.",
    MOVIE_YEAR_TOTALS.name: "The sums behind the top movies and the genre shares: ratings and summed stars per "
    "(rating year, movie). A day's load adds its changes to them.",
}


@dg.multi_asset(
    outs={
        **{
            t.dataset.name: dg.AssetOut(
                key=t.dataset.asset_key,
                group_name=t.dataset.group_name,
                io_manager_key="iceberg_io_manager",
                description=t.description,
                kinds={"spark", "iceberg"},
                is_required=False,
            )  # a subset yields only the selected tables
            for t in TABLES
        },
        **{
            b.dataset.name: dg.AssetOut(
                key=b.dataset.asset_key,
                group_name=b.dataset.group_name,
                io_manager_key="iceberg_io_manager",
                kinds={"spark", "iceberg"},
                description=BASE_DESCRIPTIONS[b.dataset.name],
                is_required=False,
            )
            for b in BASES
        },
    },
    ins={d.name: dg.AssetIn(d.asset_key) for d in (FCT_RATING, DIM_MOVIE, BRIDGE_MOVIE_GENRE)},
    deps=[RATING_CHANGES.asset_key],
    internal_asset_deps={
        **{t.dataset.name: {*(d.asset_key for d in t.upstream), t.base.asset_key} for t in TABLES},
        **{b.dataset.name: {FCT_RATING.asset_key, RATING_CHANGES.asset_key} for b in BASES},
    },
    can_subset=True,
)
def analytics_tables(
    context: dg.AssetExecutionContext,
    config: AnalyticsConfig,
    fct_rating: DataFrame,
    dim_movie: DataFrame,
    bridge_movie_genre: DataFrame,
    iceberg_io_manager: dg.ResourceParam[IcebergIOManager],
):
    """The analytics: two tables of sums (per hour, weekday and stars; per year and movie), made in a
    full build from two scans of `fct_rating` and in a day's load from the day's changes alone, and
    the five charted tables, each a small sum over one of them. Materializing only some of the
    tables makes only the sums they need."""
    selected = context.selected_output_names
    with CachedFrames() as frames:
        needed = {b.dataset.name for b in BASES if b.dataset.name in selected} | {
            t.base.name for t in TABLES if t.dataset.name in selected
        }
        if needed == {b.dataset.name for b in BASES}:
            sums = base_sums(context, fct_rating, frames, iceberg_io_manager)
        else:  # a subset: the sums it needs, from the facts
            sync = {RATINGS_SYNC: str(iceberg_io_manager.published_snapshot(RATINGS))}
            sums = {}
            for base in (b for b in BASES if b.dataset.name in needed):
                frame = frames.cache(base.from_facts(fct_rating).select(*base.dataset.column_names), partitions=1)
                sums[base.dataset.name] = (frame, Replace(frame, properties=sync))
        replay = all(isinstance(output, RowChanges) for _, output in sums.values())
        for base in BASES:
            if base.dataset.name in selected:
                yield dg.Output(sums[base.dataset.name][1], output_name=base.dataset.name)
        for table in TABLES:
            if table.dataset.name not in selected:
                continue
            if replay:  # a replayed day: the sums did not change, nor does anything made from them
                yield dg.Output(RowChanges(), output_name=table.dataset.name)
                continue
            df, metadata = table.make(
                sums[table.base.name][0], dim_movie=dim_movie, bridge_movie_genre=bridge_movie_genre, config=config
            )
            yield dg.Output(df.coalesce(1), output_name=table.dataset.name, metadata=metadata)


analytics_assets = [analytics_tables]
