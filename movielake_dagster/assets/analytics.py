"""Analytics: small tables over the star schema, each with a chart shown on its asset page.

Stored as Parquet in the access layer under ``access/analytics/<name>/`` (SQL users can query
them like the star schema); in the UI they form the group ``analytics``. Each materialization
carries its chart as a PNG inside Markdown metadata (``chart``), so the asset page shows it.
"""

import base64
import io

import dagster as dg
from pyspark.sql import DataFrame

from movielake_dagster.datasets import (
    BRIDGE_MOVIE_GENRE,
    DIM_DATE,
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


def _analytics_asset(dataset: Dataset, *upstream: Dataset):
    return dg.asset(
        key=dataset.asset_key,
        group_name=dataset.group_name,
        io_manager_key="parquet_io_manager",
        ins={d.name: dg.AssetIn(d.asset_key) for d in upstream},
        kinds={"spark", "parquet"},
    )


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


def _report(context: dg.AssetExecutionContext, df: DataFrame, chart: bytes, alt: str, **extra) -> DataFrame:
    """Attach the chart (and ``extra`` metadata) to the materialization; the table goes to the IO manager."""
    data = base64.b64encode(chart).decode("ascii")
    context.add_output_metadata({"chart": dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})"), **extra})
    return df.coalesce(1)


def _small(df: DataFrame) -> tuple[DataFrame, list]:
    """The rows on the driver, and the same table rebuilt from them (no second aggregation)."""
    rows = df.collect()
    return df.sparkSession.createDataFrame(rows, df.schema), rows


# -- assets ---------------------------------------------------------------------------------------------
@_analytics_asset(RATINGS_BY_HOUR, FCT_RATING)
def ratings_by_hour(context: dg.AssetExecutionContext, fct_rating: DataFrame) -> DataFrame:
    """At what time of day people rate: the number of ratings submitted in each hour (UTC, 0-23),
    their share of all ratings and their average stars. Chart (metadata `chart`): ratings per hour,
    the busiest hour in orange."""
    df, rows = _small(analytics.ratings_by_hour(fct_rating))
    counts = [r["ratings"] for r in rows]
    peak = max(range(len(counts)), key=counts.__getitem__) if any(counts) else None
    chart = bar_chart([str(r["hour_of_day"]) for r in rows], counts, "Ratings by hour of day (UTC)", "ratings",
                      highlight=peak)
    return _report(context, df, chart, "Ratings by hour of day", **({"busiest_hour": peak} if peak is not None else {}))


@_analytics_asset(RATINGS_BY_WEEKDAY, FCT_RATING, DIM_DATE)
def ratings_by_weekday(context: dg.AssetExecutionContext, fct_rating: DataFrame, dim_date: DataFrame) -> DataFrame:
    """On which day of the week people rate: the number of ratings per day, Monday to Sunday (UTC),
    with their share of all ratings and average stars. Chart (metadata `chart`): ratings per day."""
    df, rows = _small(analytics.ratings_by_weekday(fct_rating, dim_date))
    chart = bar_chart([r["day_name"][:3] for r in rows], [r["ratings"] for r in rows],
                      "Ratings by day of week (UTC)", "ratings")
    return _report(context, df, chart, "Ratings by day of week")


@_analytics_asset(RATINGS_BY_STARS, FCT_RATING)
def ratings_by_stars(context: dg.AssetExecutionContext, fct_rating: DataFrame) -> DataFrame:
    """How people rate: how many ratings gave each star value from 0.5 to 5.0, and their share.
    Chart (metadata `chart`): ratings per star value."""
    df, rows = _small(analytics.ratings_by_stars(fct_rating))
    chart = bar_chart([f"{r['rating']:g}" for r in rows], [r["ratings"] for r in rows],
                      "Ratings by stars", "ratings")
    return _report(context, df, chart, "Ratings by stars")


class TopMoviesConfig(dg.Config):
    min_ratings: int = 50
    """Only movies with at least this many ratings compete (a mean of three 5-star votes is not a top movie)."""
    limit: int = 20
    """How many movies to keep."""


@_analytics_asset(TOP_MOVIES, FCT_RATING, DIM_MOVIE)
def top_movies(context: dg.AssetExecutionContext, config: TopMoviesConfig, fct_rating: DataFrame,
               dim_movie: DataFrame) -> DataFrame:
    """What people like best: the movies with the highest average stars among those with at least
    `min_ratings` ratings (config, default 50), best first. Chart (metadata `chart`): the first ten."""
    df, rows = _small(analytics.top_movies(fct_rating, dim_movie, config.min_ratings, config.limit))
    chart = top_movies_chart(rows, config.min_ratings)
    return _report(context, df, chart, "Top movies", min_ratings=config.min_ratings)


@_analytics_asset(GENRES_BY_YEAR, FCT_RATING, BRIDGE_MOVIE_GENRE)
def genres_by_year(context: dg.AssetExecutionContext, fct_rating: DataFrame,
                   bridge_movie_genre: DataFrame) -> DataFrame:
    """Which genres people rate, year by year: ratings per genre and rating year, and the genre's
    share of that year's ratings. Chart (metadata `chart`): the six most rated genres' shares by year."""
    df, rows = _small(analytics.genres_by_year(fct_rating, bridge_movie_genre))
    return _report(context, df, genre_chart(rows), "Genres by year")


analytics_assets = [ratings_by_hour, ratings_by_weekday, ratings_by_stars, top_movies, genres_by_year]
