"""The lake's datasets: names, locations, columns, keys. The single source of truth.

Assets, IO managers, checks, the crawler and the data dictionary all read these declarations, so a
column is described once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Spark SQL type: int, bigint, double, string, date, timestamp, boolean, array<string>
    description: str
    nullable: bool = True


@dataclass(frozen=True)
class Dataset:
    """One table (or raw file set) in one layer of the lake."""

    name: str
    layer: str  # staging | cleanse | access
    key: str  # location inside the layer's folder or bucket
    description: str
    columns: tuple[Column, ...] = ()
    primary_key: tuple[str, ...] = ()
    foreign_keys: dict[str, str] = field(default_factory=dict)  # column -> "dataset.column"
    partition_by: tuple[str, ...] = ()
    format: str = "parquet"  # parquet | raw
    group: str = ""  # UI group and asset-key prefix when not the layer's name (the analytics)

    @property
    def group_name(self) -> str:
        return self.group or self.layer

    @property
    def asset_key(self) -> dg.AssetKey:
        import dagster as dg  # the Dagster view is made on demand: the catalog and the tools read datasets without it

        return dg.AssetKey([self.group_name, self.name])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def table_schema(self) -> dg.TableSchema:
        import dagster as dg  # as in asset_key

        return dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=c.name,
                    type=c.type,
                    description=c.description,
                    constraints=dg.TableColumnConstraints(nullable=c.nullable, unique=(c.name,) == self.primary_key),
                )
                for c in self.columns
            ]
        )

    def spark_ddl(self) -> str:
        return ", ".join(f"`{c.name}` {c.type}" for c in self.columns)


def _col(name: str, type_: str, description: str, nullable: bool = True) -> Column:
    return Column(name, type_, description, nullable)


USER_ID = _col("user_id", "int", "MovieLens user id; in master data it arrives as a string.", nullable=False)
MOVIE_ID = _col("movie_id", "int", "MovieLens movie id.", nullable=False)
TITLE = _col("title", "string", "Title without the trailing (year), whitespace trimmed; inner parentheses kept.")
YEAR = _col("year", "int", "Release year from the last (YYYY) of the raw title; NULL when the title has none.")
GENRES = _col("genres", "array<string>", "Genres in source order; empty for '(no genres listed)'.")
RAW_TITLE = _col("raw_title", "string", "The title exactly as it arrived, year included.")
FIRST_NAME = _col("first_name", "string", "First name (the master-data key 'firts_name' or 'first_name').")
LAST_NAME = _col("last_name", "string", "Last name from master data.")
GENDER = _col("gender", "string", "M or F, from MovieLens 1M users.dat; NULL when that file is absent.")
AGE_GROUP = _col("age_group", "string", "Age band from MovieLens 1M users.dat (e.g. '25-34'); NULL when absent.")
OCCUPATION = _col("occupation", "string", "Occupation from MovieLens 1M users.dat; NULL when absent.")
ZIP = _col("zip", "string", "Zip code from MovieLens 1M users.dat; NULL when absent.")
RATING = _col(
    "rating", "double", "Stars, 0.5 to 5.0 in half steps (MovieLens 1M has whole stars only).", nullable=False
)
RATED_AT = _col("rated_at", "timestamp", "When the rating was submitted (UTC), from the unix seconds.", nullable=False)
RATING_DATE = _col("rating_date", "date", "UTC calendar date of rated_at.", nullable=False)

# -- staging: the raw files, byte for byte --------------------------------------------------------
STAGING_MOVIES = Dataset(
    "movies",
    "staging",
    "movies",
    "Raw movie list (movies.dat 'id::title (year)::genres', or MovieLens latest movies.csv), unchanged.",
    format="raw",
)
STAGING_RATINGS = Dataset(
    "ratings",
    "staging",
    "ratings",
    "Raw ratings (ratings.dat 'user::movie::rating::unix_seconds', or ratings.csv), unchanged.",
    format="raw",
)
STAGING_USERS = Dataset(
    "users",
    "staging",
    "masterdata",
    "Raw user master data (JSON lines, plus MovieLens 1M users.dat when present), unchanged.",
    format="raw",
)

# -- cleanse: typed, cleaned, nothing lost --------------------------------------------------------
MOVIES = Dataset(
    "movies",
    "cleanse",
    "movies",
    "One row per valid movie: title and year split, genres as an array, text decoded correctly.",
    columns=(MOVIE_ID, TITLE, YEAR, GENRES, RAW_TITLE),
    primary_key=("movie_id",),
)
USERS = Dataset(
    "users",
    "cleanse",
    "masterdata/user",
    "One row per user from master data (exact duplicates collapsed, conflicts resolved to the first row).",
    columns=(USER_ID, FIRST_NAME, LAST_NAME, GENDER, AGE_GROUP, OCCUPATION, ZIP),
    primary_key=("user_id",),
)
RATINGS = Dataset(
    "ratings",
    "cleanse",
    "ratings",
    "One row per (user, movie): the latest rating wins; only known users and movies.",
    columns=(
        USER_ID,
        MOVIE_ID,
        RATING,
        RATED_AT,
        RATING_DATE,
        _col(
            "source_file",
            "string",
            "Lineage: the staged file of the rating's line (the latest line of this user and movie).",
            nullable=False,
        ),
        _col(
            "line_number",
            "bigint",
            "Lineage: the 1-based line of the rating in source_file. A later rating "
            "that replaces this one moves exactly this line to the quarantine.",
            nullable=False,
        ),
    ),
    primary_key=("user_id", "movie_id"),
    foreign_keys={"user_id": "users.user_id", "movie_id": "movies.movie_id"},
)
RATING_CHANGES = Dataset(
    "rating_changes",
    "cleanse",
    "changes/ratings",
    "The row changes the latest daily load made to cleanse/ratings: each inserted rating and each stored "
    "rating it replaced (change data capture). Derived tables apply these instead of re-reading the ratings; "
    "a full build leaves it empty.",
    columns=(
        _col(
            "change",
            "string",
            "insert: a rating the day added or that replaced a stored one; delete: the stored rating it replaced.",
            nullable=False,
        ),
        USER_ID,
        MOVIE_ID,
        RATING,
        RATED_AT,
        RATING_DATE,
    ),
)
QUARANTINE_COLUMNS = (
    _col("dataset", "string", "Which input the record came from: movies, ratings or users.", nullable=False),
    _col("source_file", "string", "The staging file the record was read from.", nullable=False),
    _col("line_number", "bigint", "1-based line number of the record in its source file.", nullable=False),
    _col("raw_record", "string", "The record's text exactly as read (decoded with the file's encoding)."),
    _col(
        "reason",
        "string",
        "Why it was rejected: malformed, bad_type, out_of_range, null_key, duplicate, "
        "conflicting_duplicate, unknown_user, unknown_movie, encoding.",
        nullable=False,
    ),
    _col("detail", "string", "A human-readable explanation of the reason."),
)


def _quarantine(dataset: str) -> Dataset:
    return Dataset(
        f"quarantine_{dataset}",
        "cleanse",
        f"quarantine/{dataset}",
        f"Every {dataset} input record that is not in cleanse/{dataset}, with its source line and a reason code.",
        columns=QUARANTINE_COLUMNS,
    )


QUARANTINE_MOVIES = _quarantine("movies")
QUARANTINE_RATINGS = _quarantine("ratings")
QUARANTINE_USERS = _quarantine("users")

# -- access: the star schema ------------------------------------------------------------------------
MART = "ratings-data-mart"
DATE_KEY = _col("date_key", "int", "Calendar day as yyyymmdd, key of dim_date.", nullable=False)
DIM_USER = Dataset(
    "dim_user",
    "access",
    f"{MART}/dim-user",
    "User dimension: one row per known user.",
    columns=USERS.columns,
    primary_key=("user_id",),
)
DIM_MOVIE = Dataset(
    "dim_movie",
    "access",
    f"{MART}/dim-movie",
    "Movie dimension: one row per known movie.",
    columns=MOVIES.columns,
    primary_key=("movie_id",),
)
BRIDGE_MOVIE_GENRE = Dataset(
    "bridge_movie_genre",
    "access",
    f"{MART}/bridge-movie-genre",
    "One row per movie and genre, for counting and filtering by genre with plain joins.",
    columns=(MOVIE_ID, _col("genre", "string", "One genre of the movie.", nullable=False)),
    primary_key=("movie_id", "genre"),
    foreign_keys={"movie_id": "dim_movie.movie_id"},
)
DIM_DATE = Dataset(
    "dim_date",
    "access",
    f"{MART}/dim-date",
    "Calendar dimension: every day from the first to the last rating date.",
    columns=(
        DATE_KEY,
        _col("date", "date", "The calendar day.", nullable=False),
        _col("year", "int", "Calendar year.", nullable=False),
        _col("quarter", "int", "Quarter of the year, 1-4.", nullable=False),
        _col("month", "int", "Month, 1-12.", nullable=False),
        _col("day", "int", "Day of the month, 1-31.", nullable=False),
        _col("day_of_week", "int", "ISO day of week: 1 = Monday ... 7 = Sunday.", nullable=False),
        _col("is_weekend", "boolean", "True on Saturday and Sunday.", nullable=False),
    ),
    primary_key=("date_key",),
)
FCT_RATING = Dataset(
    "fct_rating",
    "access",
    f"{MART}/fct-rating",
    "Rating facts: one row per (user, movie) with its latest rating, partitioned by rating_year.",
    columns=(
        USER_ID,
        MOVIE_ID,
        DATE_KEY,
        RATED_AT,
        _col("hour_of_day", "int", "Hour (0-23, UTC) at which the rating was submitted.", nullable=False),
        RATING,
        _col("rating_year", "int", "Year of rated_at (UTC); the partition column.", nullable=False),
    ),
    primary_key=("user_id", "movie_id"),
    foreign_keys={"user_id": "dim_user.user_id", "movie_id": "dim_movie.movie_id", "date_key": "dim_date.date_key"},
    partition_by=("rating_year",),
)

ALL_DATASETS: tuple[Dataset, ...] = (
    STAGING_MOVIES,
    STAGING_RATINGS,
    STAGING_USERS,
    MOVIES,
    USERS,
    RATINGS,
    QUARANTINE_MOVIES,
    QUARANTINE_RATINGS,
    QUARANTINE_USERS,
    RATING_CHANGES,
    DIM_USER,
    DIM_MOVIE,
    BRIDGE_MOVIE_GENRE,
    DIM_DATE,
    FCT_RATING,
)

# -- analytics: small summaries of the star schema, charted in the UI (access/analytics/) -----------
ANALYTICS = "analytics"
RATING_COUNT = _col("ratings", "bigint", "Number of ratings.", nullable=False)
RATING_SHARE = _col("share", "double", "Fraction of all ratings, 0-1 (4 decimals).", nullable=False)
AVERAGE_RATING = _col("average_rating", "double", "Mean stars of these ratings (3 decimals); NULL when there are none.")


def _analytics(name: str, description: str, columns: tuple[Column, ...], primary_key: tuple[str, ...]) -> Dataset:
    return Dataset(
        name,
        "access",
        f"{ANALYTICS}/{name.replace('_', '-')}",
        description,
        columns=columns,
        primary_key=primary_key,
        group=ANALYTICS,
    )


RATINGS_BY_HOUR = _analytics(
    "ratings_by_hour",
    "How many ratings were submitted in each hour of the day (UTC), all 24 hours.",
    (
        _col("hour_of_day", "int", "Hour of the day, 0-23 (UTC).", nullable=False),
        RATING_COUNT,
        RATING_SHARE,
        AVERAGE_RATING,
    ),
    ("hour_of_day",),
)
RATINGS_BY_WEEKDAY = _analytics(
    "ratings_by_weekday",
    "How many ratings were submitted on each day of the week (UTC), Monday to Sunday.",
    (
        _col("day_of_week", "int", "ISO day of week: 1 = Monday ... 7 = Sunday.", nullable=False),
        _col("day_name", "string", "Name of the day: Monday ... Sunday.", nullable=False),
        RATING_COUNT,
        RATING_SHARE,
        AVERAGE_RATING,
    ),
    ("day_of_week",),
)
RATINGS_BY_STARS = _analytics(
    "ratings_by_stars",
    "How often each star value was given, 0.5 to 5.0 in half steps.",
    (_col("rating", "double", "Stars, 0.5 to 5.0 in half steps.", nullable=False), RATING_COUNT, RATING_SHARE),
    ("rating",),
)
TOP_MOVIES = _analytics(
    "top_movies",
    "The best-rated movies: highest average stars among movies with at least a minimum "
    "number of ratings (the asset's config min_ratings).",
    (
        _col(
            "rank", "int", "1 = best, by exact mean; ties go to more ratings, then the lower movie_id.", nullable=False
        ),
        MOVIE_ID,
        TITLE,
        YEAR,
        RATING_COUNT,
        _col("average_rating", "double", "Mean stars of the movie's ratings (3 decimals).", nullable=False),
    ),
    ("rank",),
)
GENRES_BY_YEAR = _analytics(
    "genres_by_year",
    "Ratings per genre and rating year: how popular each genre was in each year.",
    (
        _col("rating_year", "int", "Year in which the ratings were submitted (UTC).", nullable=False),
        _col("genre", "string", "One genre; a movie with several genres counts for each.", nullable=False),
        RATING_COUNT,
        _col(
            "share",
            "double",
            "Fraction of that year's ratings given to movies of this genre (4 decimals); a "
            "year's shares add up to more than 1 because movies have several genres.",
            nullable=False,
        ),
        AVERAGE_RATING,
    ),
    ("rating_year", "genre"),
)

STARS_SUM = _col(
    "stars", "double", "Sum of the stars of these ratings (exact: half stars add without rounding).", nullable=False
)
RATING_BUCKETS = _analytics(
    "rating_buckets",
    "Ratings and their summed stars per (UTC hour, ISO day of week, star value): the sums the "
    "hour, weekday and star tables are made from. A day's load adds its changes to them.",
    (
        _col("hour_of_day", "int", "Hour of the day, 0-23 (UTC).", nullable=False),
        _col("day_of_week", "int", "ISO day of week: 1 = Monday ... 7 = Sunday.", nullable=False),
        _col("rating", "double", "Stars, 0.5 to 5.0 in half steps.", nullable=False),
        RATING_COUNT,
        STARS_SUM,
    ),
    ("hour_of_day", "day_of_week", "rating"),
)
MOVIE_YEAR_TOTALS = _analytics(
    "movie_year_totals",
    "Ratings and their summed stars per (rating year, movie): the sums the top movies and the "
    "genre shares are made from. A day's load adds its changes to them.",
    (
        _col("rating_year", "int", "Year in which the ratings were submitted (UTC).", nullable=False),
        MOVIE_ID,
        RATING_COUNT,
        STARS_SUM,
    ),
    ("rating_year", "movie_id"),
)

#: The tables readers ask (each with a chart), and the sums they are made from (kept so that a day's
#: load adds its changes instead of re-reading the facts).
ANALYTICS_ANSWERS: tuple[Dataset, ...] = (
    RATINGS_BY_HOUR,
    RATINGS_BY_WEEKDAY,
    RATINGS_BY_STARS,
    TOP_MOVIES,
    GENRES_BY_YEAR,
)
ANALYTICS_BASES: tuple[Dataset, ...] = (RATING_BUCKETS, MOVIE_YEAR_TOTALS)
ANALYTICS_DATASETS: tuple[Dataset, ...] = ANALYTICS_ANSWERS + ANALYTICS_BASES
# The one list of every table the lake declares: the three layers' tables, then the analytics summaries.
DECLARED_DATASETS: tuple[Dataset, ...] = ALL_DATASETS + ANALYTICS_DATASETS


def dataset_for_table(layer: str, name: str) -> Dataset | None:
    """The dataset whose table is ``layer.name`` (None for a table not declared here)."""
    return next((d for d in DECLARED_DATASETS if d.layer == layer and d.name == name), None)


def dataset_for(asset_key: dg.AssetKey) -> Dataset:
    for dataset in DECLARED_DATASETS:
        if dataset.asset_key == asset_key:
            return dataset
    raise KeyError(f"no dataset is declared for asset {asset_key.to_user_string()}")
