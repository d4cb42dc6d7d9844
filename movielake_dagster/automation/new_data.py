"""New-data sensor: each new or changed raw file in the landing location starts one run for its data.

The landing location is the same setting as the lake's input (``MOVIELAKE_LANDING``: a folder or an
``s3://bucket/prefix``). What a file triggers:

- ``ratings/<YYYY-MM-DD>.dat`` (or ``.csv``), a daily ratings batch: ``daily_lake_update`` for that
  day, the assets downstream of that batch only (``DAILY_BATCH_ASSETS``), as the schedule runs it;
- ``movies.dat``/``movies.csv``, ``users_masterdata.json``, ``users.dat`` (full snapshots) and a
  ``ratings.dat``/``ratings.csv`` history: ``materialize_lake`` for that dataset's assets.

Once per file and version: the cursor keeps a fingerprint per file (S3 ETag; locally size and
mtime, plus a content hash so that rewriting the same bytes triggers nothing). A file is not read
while it may still be written: it must be ``landing_settle_seconds`` old, and temporary names
(``.name``, ``_name``, ``*.tmp``, ``*.partial``, ...) are ignored, so a producer that writes under a
temporary name and renames is picked up exactly once. S3 shows an object only once its upload is
complete. At most ``MAX_RUNS_PER_TICK`` runs are requested per tick; the rest wait for the next one.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dagster as dg

from movielake_dagster.assets.staging import (
    BATCH_FOLDER,
    ML1M_USERS,
    MOVIE_FILES,
    RATING_DAYS,
    RATING_FILES,
    USER_FILES,
    batch_day,
)
from movielake_dagster.automation.schedules import (
    ANALYTICS_ASSETS,
    DAILY_BATCH_ASSETS,
    DAILY_JOB,
    LAKE_WRITER_TAG,
    default_status,
)
from movielake_dagster.datasets import (
    BRIDGE_MOVIE_GENRE,
    DIM_DATE,
    DIM_MOVIE,
    DIM_USER,
    FCT_RATING,
    MOVIES,
    QUARANTINE_MOVIES,
    QUARANTINE_RATINGS,
    QUARANTINE_USERS,
    RATINGS,
    STAGING_MOVIES,
    STAGING_RATINGS,
    STAGING_USERS,
    USERS,
)
from movielake_dagster.lake import FileInfo
from movielake_dagster.resources import LakeResource
from movielake_dagster.settings import Settings

SENSOR_NAME = "new_landed_files"
FULL_JOB = "materialize_lake"
MAX_RUNS_PER_TICK = 100
TEMPORARY_SUFFIXES = (".tmp", ".temp", ".partial", ".part", ".inprogress", "._COPYING_", ".crdownload", ".swp")
FILE_TAG = "movielake/landed-file"

SNAPSHOT_ASSETS = {
    "movies": (
        STAGING_MOVIES.asset_key,
        MOVIES.asset_key,
        QUARANTINE_MOVIES.asset_key,
        DIM_MOVIE.asset_key,
        BRIDGE_MOVIE_GENRE.asset_key,
        *ANALYTICS_ASSETS,
    ),
    "users": (STAGING_USERS.asset_key, USERS.asset_key, QUARANTINE_USERS.asset_key, DIM_USER.asset_key),
    "ratings": (
        STAGING_RATINGS.asset_key,
        RATINGS.asset_key,
        QUARANTINE_RATINGS.asset_key,
        FCT_RATING.asset_key,
        DIM_DATE.asset_key,
        *ANALYTICS_ASSETS,
    ),
}
SNAPSHOT_FILES = {
    **dict.fromkeys(MOVIE_FILES, "movies"),
    **dict.fromkeys((*USER_FILES, *ML1M_USERS), "users"),
    **dict.fromkeys(RATING_FILES, "ratings"),
}


@dataclass(frozen=True)
class Arrival:
    """A landed file that is new, or changed since the sensor last saw it."""

    key: str  # path relative to the landing location, e.g. ratings/2026-11-25.dat
    uri: str
    content: str  # content fingerprint: S3 ETag, or a prefix of the SHA-256 locally


def relative_key(landing: str, uri: str) -> str:
    return uri[len(landing.rstrip("/")) + 1 :] if uri.startswith(landing.rstrip("/") + "/") else uri


def is_temporary(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name.startswith((".", "_")) or name.endswith(TEMPORARY_SUFFIXES)


def run_request_for(arrival: Arrival) -> dg.RunRequest | None:
    """The run that loads exactly this file's data, or None when the file is not an input."""
    tags = {FILE_TAG: arrival.key, LAKE_WRITER_TAG: "true"}
    run_key = f"{arrival.key}@{arrival.content}"
    folder, _, name = arrival.key.rpartition("/")
    if folder == BATCH_FOLDER and batch_day(name):
        return dg.RunRequest(
            run_key=run_key,
            job_name=DAILY_JOB,
            partition_key=batch_day(name),
            asset_selection=list(DAILY_BATCH_ASSETS),
            tags=tags,
        )
    if not folder and name in SNAPSHOT_FILES:
        return dg.RunRequest(
            run_key=run_key, job_name=FULL_JOB, asset_selection=list(SNAPSHOT_ASSETS[SNAPSHOT_FILES[name]]), tags=tags
        )
    return None


def is_input(key: str) -> bool:
    return run_request_for(Arrival(key, key, "")) is not None


def scan(
    files: Iterable[FileInfo],
    landing: str,
    seen: dict[str, list[str]],
    now: float,
    settle_seconds: float,
    content_of: Callable[[FileInfo], str],
    limit: int = MAX_RUNS_PER_TICK,
):
    """Compare a listing with the cursor: (arrivals, keys still settling, the new cursor).

    ``seen`` maps each key to ``[stat fingerprint, content fingerprint]``. A file whose stat
    fingerprint is unchanged is skipped without reading it; a changed one whose content is the
    same is recorded silently. Files beyond ``limit`` arrivals are left for the next tick.
    """
    arrivals, settling, cursor = [], [], {}
    for info in files:
        key = relative_key(landing, info.uri)
        if is_temporary(key) or not is_input(key):
            continue
        previous = seen.get(key)
        if previous and previous[0] == info.etag:
            cursor[key] = previous
            continue
        if now - info.modified < settle_seconds:
            settling.append(key)
            if previous:
                cursor[key] = previous
            continue
        if len(arrivals) >= limit:
            if previous:
                cursor[key] = previous
            continue
        content = content_of(info)
        cursor[key] = [info.etag, content]
        if previous and previous[1] == content:
            continue
        arrivals.append(Arrival(key, info.uri, content))
    return arrivals, settling, cursor


def encode_cursor(seen: dict) -> str:
    """A compact cursor: thousands of files fit in a few tens of kilobytes."""
    raw = json.dumps(seen, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_cursor(cursor: str | None) -> dict:
    if not cursor:
        return {}
    return json.loads(zlib.decompress(base64.b64decode(cursor)))


def content_fingerprint(lake: LakeResource) -> Callable[[FileInfo], str]:
    def fingerprint(info: FileInfo) -> str:
        return info.etag if info.uri.startswith("s3://") else lake.store.sha256(info.uri)[:20]

    return fingerprint


def build_new_data_sensor(settings: Settings, jobs: list) -> dg.SensorDefinition:
    settle = settings.landing_settle_seconds

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=jobs,
        minimum_interval_seconds=30,
        default_status=default_status(settings, dg.DefaultSensorStatus),
        description="Starts one run per new or changed raw file in the landing location: a daily ratings batch "
        "loads incrementally, a snapshot rebuilds its own tables. Waits for files still being written.",
    )
    def new_landed_files(context: dg.SensorEvaluationContext, lake: LakeResource):
        seen = decode_cursor(context.cursor)
        landing = lake.landing.rstrip("/")
        arrivals, settling, cursor = scan(
            lake.store.list_files(landing), landing, seen, time.time(), settle, content_fingerprint(lake)
        )
        requests = []
        for arrival in arrivals:
            request = run_request_for(arrival)
            if request.partition_key and not RATING_DAYS.has_partition_key(request.partition_key):
                context.log.warning(f"{arrival.key}: no daily partition {request.partition_key} (yet); will retry")
                cursor.pop(arrival.key, None)
                continue
            requests.append(request)
        if settling:
            context.log.info(f"waiting for {len(settling)} file(s) still being written: {', '.join(settling[:5])}")
        context.update_cursor(encode_cursor(cursor))
        if not requests:
            reason = f"{len(settling)} file(s) still settling" if settling else "no new or changed raw files"
            return dg.SkipReason(reason)
        return requests

    return new_landed_files
