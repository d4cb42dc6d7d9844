"""Staging layer: the raw files exactly as they landed, copied into ``staging/`` under the seed's keys."""

import re
from pathlib import PurePosixPath

import dagster as dg

from movielake_dagster.datasets import (
    STAGING_MOVIES,
    STAGING_RATINGS,
    STAGING_USERS,
    Dataset,
)
from movielake_dagster.errors import InputMissingError
from movielake_dagster.io_managers import StagedFiles
from movielake_dagster.resources import LakeResource

# For each dataset: the landing file names accepted, in order of preference, and the name each
# gets in staging (the seed's keys). ``alternatives`` are one-of; ``extras`` are copied when present.
MOVIE_FILES = {"movies.dat": "movies.dat", "movies.csv": "movies.csv"}
RATING_FILES = {"ratings.dat": "ratings.dat", "ratings.csv": "ratings.csv"}
USER_FILES = {"users_masterdata.json": "user_masterdata.json", "user_masterdata.json": "user_masterdata.json"}
ML1M_USERS = {"users.dat": "users.dat"}
# Ratings may also land as daily batches, ``ratings/2026-11-25.dat``: each is staged under its own name
# next to the history file (``staging/ratings/2026-11-25.dat``) and is one partition of RATING_DAYS.
BATCH_FOLDER = "ratings"
BATCH_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(?:dat|csv)$")
RATING_DAYS = dg.DailyPartitionsDefinition(start_date="1995-01-01", end_offset=1)


def _find_landed(lake: LakeResource, dataset: Dataset, alternatives: dict, extras: dict) -> StagedFiles:
    found = []
    for landing_name, staging_name in alternatives.items():
        uri = lake.landing_file(landing_name)
        if uri:
            found.append((uri, staging_name))
            break
    for landing_name, staging_name in extras.items():
        uri = lake.landing_file(landing_name)
        if uri:
            found.append((uri, staging_name))
    if dataset == STAGING_RATINGS:
        found += [(uri, name) for name, uri in sorted(landed_rating_batches(lake).items())]
    if not found:
        expected = " or ".join([*alternatives, *extras])
        raise InputMissingError(
            f"no raw {dataset.name} file ({expected}) in the landing location {lake.landing}",
            "put the file there, or point MOVIELAKE_LANDING / `movielake run --raw DIR` at the folder that has it",
        )
    return StagedFiles(tuple(uri for uri, _ in found), tuple(name for _, name in found))


def landed_rating_batches(lake: LakeResource) -> dict[str, str]:
    """Daily rating batches in the landing location: ``ratings/YYYY-MM-DD.dat`` (or ``.csv``) -> URI."""
    batches = {}
    for info in lake.store.list_files(f"{lake.landing.rstrip('/')}/{BATCH_FOLDER}"):
        name = PurePosixPath(info.uri).name
        if batch_day(name) is not None:
            batches[name] = info.uri
    return batches


def batch_day(file_name: str) -> str | None:
    """``2026-11-25.dat`` -> ``2026-11-25``; None for any other name."""
    match = BATCH_FILE.match(file_name)
    return match.group(1) if match else None


def _staging_asset(
    dataset: Dataset, description: str, alternatives: dict[str, str], extras: dict[str, str] | None = None
) -> dg.AssetsDefinition:
    @dg.asset(
        key=dataset.asset_key,
        group_name="staging",
        io_manager_key="raw_files_io_manager",
        description=description,
        kinds={"file"},
        metadata={"movielake/location_key": dataset.key},
    )
    def _asset(context: dg.AssetExecutionContext, lake: LakeResource) -> StagedFiles:
        staged = _find_landed(lake, dataset, alternatives, extras or {})
        context.log.info(f"staging {', '.join(staged.names)} from {lake.landing}")
        return staged

    return _asset


staging_movies = _staging_asset(
    STAGING_MOVIES,
    "The raw movie list, byte for byte as it landed: `movies.dat` (`movie_id::title (year)::genres`, "
    "MovieLens 10M/1M layout) or the MovieLens 'latest' `movies.csv`. Stored at `staging/movies/`.",
    MOVIE_FILES,
)
staging_ratings = _staging_asset(
    STAGING_RATINGS,
    "The raw ratings, byte for byte as they landed: `ratings.dat` (`user_id::movie_id::rating::unix_seconds`) "
    "or the MovieLens 'latest' `ratings.csv`. Stored at `staging/ratings/`.",
    RATING_FILES,
)
staging_users = _staging_asset(
    STAGING_USERS,
    "The raw user master data, byte for byte: JSON lines from the master-data system "
    "(`users_masterdata.json`, stored as `staging/masterdata/user_masterdata.json`), plus MovieLens 1M "
    "`users.dat` (gender, age, occupation, zip) when it landed too. At least one of them is required.",
    USER_FILES,
    extras=ML1M_USERS,
)


@dg.asset(
    key=dg.AssetKey(["staging", "rating_batch"]),
    group_name="staging",
    partitions_def=RATING_DAYS,
    kinds={"file"},
    metadata={"movielake/location_key": STAGING_RATINGS.key},
)
def staging_rating_batch(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """One day's ratings batch, byte for byte: landing `ratings/<day>.dat` (or `.csv`) is copied to
    `staging/ratings/<day>.dat`, next to the other staged rating files. One partition per day; a
    partitioned run then cleanses that batch only and rewrites only the fact partitions it touches."""
    day = context.partition_key
    landed = {batch_day(name): (name, uri) for name, uri in landed_rating_batches(lake).items()}
    if day not in landed:
        raise InputMissingError(
            f"no ratings batch for {day} (ratings/{day}.dat) in the landing location {lake.landing}",
            "land the batch file, or run the daily job for a day that has one",
        )
    name, uri = landed[day]
    target = lake.uri(STAGING_RATINGS, name)
    lake.store.copy(uri, target)
    return dg.MaterializeResult(
        metadata={
            "dagster/uri": dg.MetadataValue.path(target),
            "bytes": next((f.size for f in lake.store.list_files(lake.uri(STAGING_RATINGS)) if f.uri == target), 0),
        }
    )


staging_assets = [staging_movies, staging_ratings, staging_users, staging_rating_batch]
LANDING_FILES = (  # (dataset, one-of file names, optional extra file names)
    (STAGING_MOVIES, MOVIE_FILES, {}),
    (STAGING_RATINGS, RATING_FILES, {}),
    (STAGING_USERS, USER_FILES, ML1M_USERS),
)


def check_landing(lake: LakeResource) -> None:
    """Raise a one-line :class:`InputMissingError` when a required raw file has not landed."""
    for dataset, alternatives, extras in LANDING_FILES:
        _find_landed(lake, dataset, alternatives, extras)
