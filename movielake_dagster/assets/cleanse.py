"""Cleanse layer: typed Parquet tables, one row per valid record, and a quarantine for the rest.

Every input record ends up in exactly one place: the cleansed table or its quarantine (with the
source file, line number, raw text and a reason code). Each cleansing step records
``input = accepted + quarantined`` per source file in its materialization metadata.
"""


import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath

import dagster as dg
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from movielake_dagster.datasets import (
    MOVIES,
    QUARANTINE_MOVIES,
    QUARANTINE_RATINGS,
    QUARANTINE_USERS,
    RATINGS,
    STAGING_MOVIES,
    STAGING_RATINGS,
    STAGING_USERS,
    USERS,
    Dataset,
)
from movielake_dagster.assets.caching import CachedFrames, partitions_for
from movielake_dagster.assets.staging import batch_day, staging_rating_batch
from movielake_dagster.errors import InputMissingError
from movielake_dagster.io_managers import StagedFiles
from movielake_dagster.io_managers.iceberg import current_table
from movielake_dagster.lake import spark_uri
from movielake_dagster.resources import LakeResource, SparkResource
from movielake_dagster.transforms import incremental
from movielake_dagster.transforms import movies as movie_rules
from movielake_dagster.transforms import ratings as rating_rules
from movielake_dagster.transforms import users as user_rules
from movielake_dagster.transforms.layouts import HEADERS
from movielake_dagster.transforms.raw_input import RawInput, read_raw
from movielake_dagster.transforms.raw_lines import REASON, SOURCE_FILE
from movielake_dagster.transforms.records import accepted, rejected, slim

BROADCAST_ROW_IDS = 2_000_000  # superseded ratings up to this many are broadcast (8 bytes each)


def reconcile(classified: DataFrame, raw: RawInput) -> dict:
    """Per source file: input records, accepted, quarantined by reason (one pass over the cache), and
    the lines that were not records (``skipped``: blank lines, a header line)."""
    report = {f.source_file: {"input": f.records, "accepted": 0, "quarantined": 0, "reasons": {}, "skipped": f.skipped}
              for f in raw.files.values()}
    for row in classified.groupBy(SOURCE_FILE, REASON).count().collect():
        entry = report.setdefault(row[SOURCE_FILE], {"input": 0, "accepted": 0, "quarantined": 0, "reasons": {},
                                                     "skipped": {}})
        if row[REASON] is None:
            entry["accepted"] += row["count"]
        else:
            entry["quarantined"] += row["count"]
            entry["reasons"][row[REASON]] = entry["reasons"].get(row[REASON], 0) + row["count"]
    return report


def reconciliation_metadata(report: dict) -> dict:
    totals = {k: sum(e[k] for e in report.values()) for k in ("input", "accepted", "quarantined")}
    reasons: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for entry in report.values():
        for reason, count in entry["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + count
        for kind, count in entry.get("skipped", {}).items():
            skipped[kind] = skipped.get(kind, 0) + count
    return {
        "movielake/input_records": totals["input"],
        "movielake/skipped_lines": dg.MetadataValue.json(dict(sorted(skipped.items()))),
        "movielake/accepted_records": totals["accepted"],
        "movielake/quarantined_records": totals["quarantined"],
        "movielake/quarantine_reasons": dg.MetadataValue.json(dict(sorted(reasons.items()))),
        "movielake/reconciliation": dg.MetadataValue.json(
            {PurePosixPath(f).name: {k: v for k, v in e.items()} for f, e in sorted(report.items())}
        ),
    }


def cleanse_outputs(classified: DataFrame, raw: RawInput, dataset: Dataset, quarantine: Dataset, name: str):
    """Cache the classified records once, then yield the cleansed table and its quarantine."""
    with CachedFrames() as frames:
        cached = frames.cache(slim(classified, dataset), partitions_for(raw.total_records))
        metadata = reconciliation_metadata(reconcile(cached, raw))
        yield dg.Output(accepted(cached, dataset), output_name=dataset.name, metadata=metadata)
        yield dg.Output(rejected(cached, name, raw.offsets), output_name=quarantine.name, metadata=metadata)


def _outs(dataset: Dataset, quarantine: Dataset) -> dict[str, dg.AssetOut]:
    return {
        dataset.name: dg.AssetOut(
            key=dataset.asset_key, group_name="cleanse", io_manager_key="iceberg_io_manager",
            description=dataset.description, kinds={"spark", "iceberg"},
        ),
        quarantine.name: dg.AssetOut(
            key=quarantine.asset_key, group_name="cleanse", io_manager_key="iceberg_io_manager",
            description=quarantine.description, kinds={"spark", "iceberg"},
        ),
    }


def _now_epoch() -> int:
    return int(time.time())


@dg.multi_asset(outs=_outs(MOVIES, QUARANTINE_MOVIES), ins={"raw_movies": dg.AssetIn(STAGING_MOVIES.asset_key)})
def cleanse_movies(raw_movies: StagedFiles, spark: SparkResource):
    """Typed movies from the staged movie file, and the quarantine of rejected movie lines.

    The title loses its trailing `(YYYY)`, which becomes `year` (NULL when there is none);
    inner parentheses and markers such as `(V)` stay; genres become an array (empty for
    `(no genres listed)`). Latin-1 files (MovieLens 1M) and UTF-8 files (10M) are both decoded
    correctly. Rejected: malformed lines, empty or non-numeric ids, implausible years, repeated ids.
    """
    session = spark.get_session()
    raw = read_raw(session, list(raw_movies.uris), HEADERS["movies"])
    max_year = datetime.now(timezone.utc).year + 5
    classified = movie_rules.classify_movies(raw.lines, max_year)
    yield from cleanse_outputs(classified, raw, MOVIES, QUARANTINE_MOVIES, "movies")


def _user_columns(name: str, columns: tuple[str, ...]) -> Dataset:
    """The part of the user table that one source provides (names, or MovieLens 1M demographics)."""
    return Dataset(name, "cleanse", USERS.key, USERS.description, tuple(c for c in USERS.columns if c.name in columns))


USER_SOURCES = {  # staged file -> (classifier, the columns it provides, the column names of a header line)
    "user_masterdata.json": (user_rules.classify_masterdata,
                             _user_columns("users_masterdata", ("user_id", "first_name", "last_name")), None),
    "users.dat": (user_rules.classify_ml1m_users,
                  _user_columns("users_ml1m", ("user_id", "gender", "age_group", "occupation", "zip")),
                  HEADERS["users_dat"]),
}


@dg.multi_asset(outs=_outs(USERS, QUARANTINE_USERS), ins={"raw_users": dg.AssetIn(STAGING_USERS.asset_key)})
def cleanse_users(raw_users: StagedFiles, spark: SparkResource):
    """Typed users from the master data (and MovieLens 1M `users.dat` when staged), and their quarantine.

    `user_id` arrives as a string and becomes an int; the name key is `firts_name` (sic) or
    `first_name`. Exact repeats of a user collapse; a user with conflicting rows keeps the first
    one and the others are quarantined as `conflicting_duplicate`. `users.dat` adds gender, age
    group, occupation and zip.
    """
    session = spark.get_session()
    report, accepted_by_source, quarantine = {}, {}, None
    with CachedFrames() as frames:
        for file_name, (classify, columns, header) in USER_SOURCES.items():
            uri = raw_users.named(file_name)
            if uri is None:
                continue
            raw = read_raw(session, [uri], header)
            classified = frames.cache(slim(classify(raw.lines), columns), partitions_for(raw.total_records))
            report.update(reconcile(classified, raw))
            accepted_by_source[file_name] = accepted(classified, columns)
            part = rejected(classified, "users", raw.offsets)
            quarantine = part if quarantine is None else quarantine.unionByName(part)
        users = user_rules.merge_user_sources(
            accepted_by_source.get("user_masterdata.json"), accepted_by_source.get("users.dat")
        ).select(*USERS.column_names)
        metadata = reconciliation_metadata(report)
        yield dg.Output(users, output_name=USERS.name, metadata=metadata)
        yield dg.Output(quarantine, output_name=QUARANTINE_USERS.name, metadata=metadata)


@dg.multi_asset(
    outs=_outs(RATINGS, QUARANTINE_RATINGS),
    ins={
        "raw_ratings": dg.AssetIn(STAGING_RATINGS.asset_key),
        "users": dg.AssetIn(USERS.asset_key),
        "movies": dg.AssetIn(MOVIES.asset_key),
    },
    deps=[staging_rating_batch],
)
def cleanse_ratings(context: dg.AssetExecutionContext, raw_ratings: StagedFiles, users: DataFrame,
                    movies: DataFrame, spark: SparkResource, lake: LakeResource):
    """Typed ratings, one per (user, movie), and the quarantine of rejected rating lines.

    `rated_at` is the UTC timestamp of the unix seconds (time of day kept), `rating_date` its date.
    Rejected: malformed lines, empty or non-numeric ids, ratings outside 0.5-5.0 in half steps,
    timestamps in the future, ratings of users not in the master data or of unknown movies, and
    earlier ratings of a (user, movie) that was rated again later (the latest wins).

    In a run for one day (a partition of `staging/rating_batch`) only that day's batch file is read
    and cleansed; it is then merged into the ratings the lake already has (see
    `transforms/incremental.py`): a later rating replaces the stored one, an earlier one is quarantined.
    """
    session = spark.get_session()
    if context.has_partition_key:
        previous = _latest_report(context, RATINGS)
        yield from _cleanse_rating_batch(context.partition_key, raw_ratings, users, movies, session, lake, previous)
        return
    raw = read_raw(session, list(raw_ratings.uris), HEADERS["ratings"])
    yield from _cleanse_all_ratings(context, raw, users, movies, session, lake)


def _cleanse_all_ratings(context: dg.AssetExecutionContext, raw: RawInput, users: DataFrame, movies: DataFrame,
                         session, lake: LakeResource):
    """Every staged rating line classified in one pass and written once to a scratch folder
    (``_scratch/`` of the cleanse layer, never a table); the duplicate rule, both outputs and the
    per-file counts then read that Parquet.

    At 10M ratings, parsing and classifying the text is the expensive part (about 10 s a pass on
    two cores), so it runs once; Spark's in-memory cache of the same rows cost more than the
    Parquet write (docs/performance.md). The scratch folder is removed when the step ends.
    """
    checked = rating_rules.classify_ratings(raw.lines, _now_epoch())
    referenced = slim(rating_rules.resolve_references(checked, users, movies), RATINGS)
    for folder in lake.sweep_scratch():
        context.log.info(f"removed {folder}, left by a run that did not finish")
    scratch = lake.scratch("classified-ratings", context.run_id)
    try:
        with CachedFrames() as frames:
            referenced.write.mode("overwrite").parquet(spark_uri(scratch))
            stored = session.read.schema(referenced.schema).parquet(spark_uri(scratch))
            superseded = frames.cache(rating_rules.superseded_rows(stored))
            count = superseded.count()
            context.log.info(f"{count} ratings are superseded by a later rating of the same (user, movie)")
            small = count <= BROADCAST_ROW_IDS
            classified = rating_rules.mark_superseded(stored, superseded, broadcast=small)
            metadata = reconciliation_metadata(reconcile(classified, raw))
            yield dg.Output(accepted(classified, RATINGS), output_name=RATINGS.name, metadata=metadata)
            quarantined = classified.where(F.col(REASON).isNotNull())
            if count:  # superseded lines were accepted when classified, so their text was not kept
                quarantined = rating_rules.with_superseded_text(quarantined, raw.lines, superseded, broadcast=small)
            yield dg.Output(rejected(quarantined, "ratings", raw.offsets), output_name=QUARANTINE_RATINGS.name,
                            metadata=metadata)
    finally:
        lake.store.delete_tree(scratch)


def _latest_report(context: dg.AssetExecutionContext, dataset: Dataset) -> dict:
    """The per-file reconciliation of the dataset's latest materialization (empty when none)."""
    event = context.instance.get_latest_materialization_event(dataset.asset_key)
    if event is None or event.asset_materialization is None:
        return {}
    value = event.asset_materialization.metadata.get("movielake/reconciliation")
    return dict(value.value) if value is not None else {}


def merge_reconciliation(previous: dict, batch_metadata: dict, moved: dict[str, int]) -> dict:
    """The batch's per-file counts added to those of the files loaded before, with new totals, so
    that the metadata keeps describing every staged file (a replayed batch replaces its entry).
    ``moved`` counts, per earlier file, the lines the batch superseded (now quarantined)."""
    files = {**previous, **batch_metadata["movielake/reconciliation"].value}
    for name, count in moved.items():
        entry = files.get(name, {"input": 0, "accepted": 0, "quarantined": 0, "reasons": {}})
        reasons = dict(entry.get("reasons", {}))
        reasons["duplicate"] = reasons.get("duplicate", 0) + count
        files[name] = {**entry, "accepted": entry.get("accepted", 0) - count,
                       "quarantined": entry.get("quarantined", 0) + count, "reasons": reasons}
    merged = dict(batch_metadata)
    for key in ("input", "accepted", "quarantined"):
        merged[f"movielake/{key}_records"] = sum(entry.get(key, 0) for entry in files.values())
    reasons: dict[str, int] = {}
    for entry in files.values():
        for reason, count in entry.get("reasons", {}).items():
            reasons[reason] = reasons.get(reason, 0) + count
    merged["movielake/quarantine_reasons"] = dg.MetadataValue.json(dict(sorted(reasons.items())))
    merged["movielake/reconciliation"] = dg.MetadataValue.json(dict(sorted(files.items())))
    return merged


def _cleanse_rating_batch(day: str, raw_ratings: StagedFiles, users: DataFrame, movies: DataFrame, session,
                          lake: LakeResource, previous_report: dict):
    """One day's batch, cleansed on its own and merged into the stored ratings and quarantine."""
    uri = next((u for u, name in zip(raw_ratings.uris, raw_ratings.names) if batch_day(name) == day), None)
    if uri is None:
        raise InputMissingError(f"the ratings batch for {day} is not in staging/ratings/",
                                "materialize staging/rating_batch for that day first")
    raw = read_raw(session, [uri], HEADERS["ratings"])
    checked = rating_rules.classify_ratings(raw.lines, _now_epoch())
    existing = current_table(session, RATINGS)
    with CachedFrames() as frames:
        resolved = frames.cache(rating_rules.resolve_ratings(checked, users, movies),
                                partitions_for(raw.total_records))
        # The few stored rows the batch re-rates, found in one scan of the stored table and used twice.
        same_keys = incremental.stored_with_batch_keys(existing, resolved)
        if same_keys is not None:
            same_keys = frames.cache(same_keys)
        classified = incremental.reject_superseded_by_existing(resolved, same_keys)
        cached = frames.cache(slim(classified, RATINGS))
        batch = accepted(cached, RATINGS)
        batch_rejected = rejected(cached, "ratings", raw.offsets)
        moved, moved_by_file = _superseded_lines(same_keys, batch, raw_ratings, uri, session, frames)
        if moved is not None:
            batch_rejected = batch_rejected.unionByName(moved)
        metadata = merge_reconciliation(previous_report,
                                        reconciliation_metadata(reconcile(cached, raw)), moved_by_file)
        metadata["movielake/batch"] = day
        metadata["movielake/superseded_records"] = sum(moved_by_file.values())
        quarantine = incremental.replace_source(
            current_table(session, QUARANTINE_RATINGS), batch_rejected, list(raw.files),
        )
        # The quarantine first: once the ratings are published, the old files `existing` reads are gone.
        yield dg.Output(quarantine, output_name=QUARANTINE_RATINGS.name, metadata=metadata)
        yield dg.Output(incremental.upsert(existing, batch), output_name=RATINGS.name, metadata=metadata)


def _superseded_lines(stored: DataFrame | None, batch: DataFrame, raw_ratings: StagedFiles, batch_uri: str,
                      session, frames: CachedFrames):
    """Quarantine rows for the stored ratings the batch re-rates, and their count per earlier file.

    Only when there are such ratings are the earlier files read, to find each one's line (source
    file, line number, raw text) as a full build would report it. What it keeps cached is held by
    the caller's ``frames``.
    """
    replaced = incremental.superseded(stored, batch)
    if replaced is None:
        return None, {}
    replaced = frames.cache(replaced)
    if replaced.isEmpty():
        return None, {}
    earlier = [u for u in raw_ratings.uris if u != batch_uri]
    if not earlier:  # replaced rows of an earlier version of this very batch file: nothing to move
        return None, {}
    # One pass over the earlier files profiles them (encoding, line-number offsets) and keeps the few
    # lines with a replaced row's key; only those are decoded and classified in full.
    history = read_raw(session, earlier, HEADERS["ratings"], keep=lambda lines: (
        incremental.mark_lines_with_keys(lines, replaced), F.col(incremental.HAS_KEY)))
    checked = rating_rules.classify_ratings(history.lines, _now_epoch())
    found = frames.cache(slim(incremental.source_lines(checked, replaced), RATINGS), partitions=1)  # a handful
    moved_by_file = {PurePosixPath(r[SOURCE_FILE]).name: r["count"] for r in found.groupBy(SOURCE_FILE).count().collect()}
    if not moved_by_file:
        return None, {}
    return rejected(found, "ratings", history.offsets), moved_by_file


cleanse_assets = [cleanse_movies, cleanse_users, cleanse_ratings]
