"""Staging layer: the raw files exactly as they landed, copied into ``staging/`` under the seed's keys."""


import dagster as dg

from movielake_dagster.datasets import STAGING_MOVIES, STAGING_RATINGS, STAGING_USERS, Dataset
from movielake_dagster.errors import InputMissingError
from movielake_dagster.io_managers import StagedFiles
from movielake_dagster.resources import LakeResource

# For each dataset: the landing file names accepted, in order of preference, and the name each
# gets in staging (the seed's keys). ``alternatives`` are one-of; ``extras`` are copied when present.
MOVIE_FILES = {"movies.dat": "movies.dat", "movies.csv": "movies.csv"}
RATING_FILES = {"ratings.dat": "ratings.dat", "ratings.csv": "ratings.csv"}
USER_FILES = {"users_masterdata.json": "user_masterdata.json", "user_masterdata.json": "user_masterdata.json"}
ML1M_USERS = {"users.dat": "users.dat"}


def _find_landed(lake: LakeResource, dataset: Dataset, alternatives: dict,
                 extras: dict) -> StagedFiles:
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
    if not found:
        expected = " or ".join([*alternatives, *extras])
        raise InputMissingError(
            f"no raw {dataset.name} file ({expected}) in the landing location {lake.landing}",
            "put the file there, or point MOVIELAKE_LANDING / `movielake run --raw DIR` at the folder that has it",
        )
    return StagedFiles(tuple(uri for uri, _ in found), tuple(name for _, name in found))


def _staging_asset(dataset: Dataset, description: str, alternatives: dict[str, str],
                   extras: dict[str, str] | None = None) -> dg.AssetsDefinition:
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

staging_assets = [staging_movies, staging_ratings, staging_users]
