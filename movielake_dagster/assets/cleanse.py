"""Cleanse layer: typed Parquet tables, one row per valid record, and a quarantine for the rest.

Every input record ends up in exactly one place: the cleansed table or its quarantine (with the
source file, line number, raw text and a reason code). Each cleansing step records
``input = accepted + quarantined`` per source file in its materialization metadata.
"""

import time
from datetime import UTC, datetime
from pathlib import PurePosixPath

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movielake_dagster.assets.caching import CachedFrames, partitions_for
from movielake_dagster.assets.staging import batch_day, staging_rating_batch
from movielake_dagster.checks.reconciliation import latest_report
from movielake_dagster.datasets import (
    MOVIES,
    QUARANTINE_MOVIES,
    QUARANTINE_RATINGS,
    QUARANTINE_USERS,
    RATING_CHANGES,
    RATINGS,
    STAGING_MOVIES,
    STAGING_RATINGS,
    STAGING_USERS,
    USERS,
    Dataset,
)
from movielake_dagster.errors import InputMissingError
from movielake_dagster.io_managers import StagedFiles
from movielake_dagster.io_managers.iceberg import CHANGES_BASE, FULL_BUILD, IcebergIOManager, Replace, RowChanges
from movielake_dagster.lake import spark_uri, store_uri
from movielake_dagster.resources import LakeResource, SparkResource
from movielake_dagster.transforms import incremental
from movielake_dagster.transforms import movies as movie_rules
from movielake_dagster.transforms import ratings as rating_rules
from movielake_dagster.transforms import users as user_rules
from movielake_dagster.transforms.layouts import HEADERS
from movielake_dagster.transforms.raw_input import RawInput, read_raw
from movielake_dagster.transforms.raw_lines import (
    REASON,
    SOURCE_FILE,
    with_line_numbers,
)
from movielake_dagster.transforms.records import (
    QUARANTINE_DDL,
    accepted,
    rejected,
    slim,
)

BROADCAST_ROW_IDS = 2_000_000  # superseded ratings up to this many are broadcast (8 bytes each)


def reconcile(classified: DataFrame, raw: RawInput) -> dict:
    """Per source file: input records, accepted, quarantined by reason (one pass over the cache), and
    the lines that were not records (``skipped``: blank lines, a header line)."""
    report = {
        f.source_file: {"input": f.records, "accepted": 0, "quarantined": 0, "reasons": {}, "skipped": f.skipped}
        for f in raw.files.values()
    }
    for row in classified.groupBy(SOURCE_FILE, REASON).count().collect():
        entry = report.setdefault(
            row[SOURCE_FILE], {"input": 0, "accepted": 0, "quarantined": 0, "reasons": {}, "skipped": {}}
        )
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
            {PurePosixPath(f).name: dict(e.items()) for f, e in sorted(report.items())}
        ),
    }


def cleanse_outputs(classified: DataFrame, raw: RawInput, dataset: Dataset, quarantine: Dataset, name: str):
    """Cache the classified records once, then yield the cleansed table and its quarantine."""
    with CachedFrames() as frames:
        cached = frames.cache(slim(classified, dataset), partitions_for(raw.total_records))
        metadata = reconciliation_metadata(reconcile(cached, raw))
        yield dg.Output(accepted(cached, dataset), output_name=dataset.name, metadata=metadata)
        yield dg.Output(rejected(cached, name, raw.offsets), output_name=quarantine.name, metadata=metadata)


def _outs(*datasets: Dataset) -> dict[str, dg.AssetOut]:
    return {
        dataset.name: dg.AssetOut(
            key=dataset.asset_key,
            group_name="cleanse",
            io_manager_key="iceberg_io_manager",
            description=dataset.description,
            kinds={"spark", "iceberg"},
        )
        for dataset in datasets
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
    max_year = datetime.now(UTC).year + 5
    classified = movie_rules.classify_movies(raw.lines, max_year)
    yield from cleanse_outputs(classified, raw, MOVIES, QUARANTINE_MOVIES, "movies")


def _user_columns(name: str, columns: tuple[str, ...]) -> Dataset:
    """The part of the user table that one source provides (names, or MovieLens 1M demographics)."""
    return Dataset(name, "cleanse", USERS.key, USERS.description, tuple(c for c in USERS.columns if c.name in columns))


USER_SOURCES = {  # staged file -> (classifier, the columns it provides, the column names of a header line)
    "user_masterdata.json": (
        user_rules.classify_masterdata,
        _user_columns("users_masterdata", ("user_id", "first_name", "last_name")),
        None,
    ),
    "users.dat": (
        user_rules.classify_ml1m_users,
        _user_columns("users_ml1m", ("user_id", "gender", "age_group", "occupation", "zip")),
        HEADERS["users_dat"],
    ),
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
    outs={**_outs(RATINGS, QUARANTINE_RATINGS), **_outs(RATING_CHANGES)},
    ins={
        "raw_ratings": dg.AssetIn(STAGING_RATINGS.asset_key),
        "users": dg.AssetIn(USERS.asset_key),
        "movies": dg.AssetIn(MOVIES.asset_key),
    },
    deps=[staging_rating_batch],
)
def cleanse_ratings(
    context: dg.AssetExecutionContext,
    raw_ratings: StagedFiles,
    users: DataFrame,
    movies: DataFrame,
    spark: SparkResource,
    lake: LakeResource,
    iceberg_io_manager: dg.ResourceParam[IcebergIOManager],
):
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
        previous = latest_report(context.instance, RATINGS) or {}
        yield from _cleanse_rating_batch(
            context.partition_key, raw_ratings, users, movies, session, lake, iceberg_io_manager, previous
        )
        return
    raw = read_raw(session, list(raw_ratings.uris), HEADERS["ratings"])
    yield from _cleanse_all_ratings(context, raw, users, movies, session, lake)


def _cleanse_all_ratings(
    context: dg.AssetExecutionContext, raw: RawInput, users: DataFrame, movies: DataFrame, session, lake: LakeResource
):
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
            yield dg.Output(accepted(classified, RATINGS, raw.offsets), output_name=RATINGS.name, metadata=metadata)
            quarantined = classified.where(F.col(REASON).isNotNull())
            if count:  # superseded lines were accepted when classified, so their text was not kept
                quarantined = rating_rules.with_superseded_text(quarantined, raw.lines, superseded, broadcast=small)
            yield dg.Output(
                rejected(quarantined, "ratings", raw.offsets), output_name=QUARANTINE_RATINGS.name, metadata=metadata
            )
            # A full build changes everything: the change log is empty, and derived tables rebuild.
            yield dg.Output(
                Replace(session.createDataFrame([], RATING_CHANGES.spark_ddl()), properties={CHANGES_BASE: FULL_BUILD}),
                output_name=RATING_CHANGES.name,
            )
    finally:
        lake.store.delete_tree(scratch)


def merge_reconciliation(previous: dict, batch_metadata: dict, moved: dict[str, int]) -> dict:
    """The batch's per-file counts added to those of the files loaded before, with new totals, so
    that the metadata keeps describing every staged file (a replayed batch replaces its entry).
    ``moved`` counts, per earlier file, the lines the batch superseded (now quarantined)."""
    files = {**previous, **batch_metadata["movielake/reconciliation"].value}
    for name, count in moved.items():
        entry = files.get(name, {"input": 0, "accepted": 0, "quarantined": 0, "reasons": {}})
        reasons = dict(entry.get("reasons", {}))
        reasons["duplicate"] = reasons.get("duplicate", 0) + count
        files[name] = {
            **entry,
            "accepted": entry.get("accepted", 0) - count,
            "quarantined": entry.get("quarantined", 0) + count,
            "reasons": reasons,
        }
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


def _cleanse_rating_batch(
    day: str,
    raw_ratings: StagedFiles,
    users: DataFrame,
    movies: DataFrame,
    session,
    lake: LakeResource,
    tables: IcebergIOManager,
    previous_report: dict,
):
    """One day's batch, cleansed on its own and merged into the stored ratings as row changes.

    The stored ratings with the batch's keys are found by one broadcast semi-join over the stored
    table; a batch rating older than the stored one is quarantined, a newer one replaces it. Only
    what changed is written (merge-on-read: position deletes for the replaced rows, one appended
    file for the batch's rows); the replaced ratings' lines, found through their lineage columns
    and read straight from their staged files, move to the quarantine as a full build would put them.
    The day's changes also go to ``cleanse/rating_changes``, from which the derived tables refresh.
    A replayed day changes nothing and commits nothing.
    """
    uri = next((u for u, name in zip(raw_ratings.uris, raw_ratings.names) if batch_day(name) == day), None)
    if uri is None:
        raise InputMissingError(
            f"the ratings batch for {day} is not in staging/ratings/",
            "materialize staging/rating_batch for that day first",
        )
    raw = read_raw(session, [uri], HEADERS["ratings"])
    checked = rating_rules.classify_ratings(raw.lines, _now_epoch())
    stored = tables.published(RATINGS)  # the ratings before this day, whatever it commits
    base_snapshot = tables.published_snapshot(RATINGS)
    batch_files = list(raw.files)
    with CachedFrames() as frames:
        resolved = frames.cache(rating_rules.resolve_ratings(checked, users, movies), partitions_for(raw.total_records))
        # The few stored rows with the batch's keys: one scan of the stored table, used three times.
        same_keys = (
            frames.cache(incremental.stored_with_batch_keys(stored, resolved), partitions=1)
            if stored is not None
            else None
        )
        classified = incremental.reject_superseded_by_existing(resolved, same_keys)
        cached = frames.cache(with_line_numbers(slim(classified, RATINGS), raw.offsets), partitions=1)
        batch = accepted(cached, RATINGS)
        replaced = (
            frames.cache(incremental.superseded(same_keys, batch), partitions=1) if same_keys is not None else None
        )
        inserted = incremental.changed_rows(batch, same_keys)
        moved, moved_by_file = _replaced_lines(replaced, lake, session)
        batch_rejected = rejected(cached, "ratings", raw.offsets)
        if moved is not None:
            batch_rejected = batch_rejected.unionByName(moved)
        metadata = merge_reconciliation(previous_report, reconciliation_metadata(reconcile(cached, raw)), moved_by_file)
        metadata["movielake/batch"] = day
        metadata["movielake/superseded_records"] = sum(moved_by_file.values())
        quarantine = frames.cache(batch_rejected, partitions=1)
        yield dg.Output(
            _quarantine_changes(tables.published(QUARANTINE_RATINGS), quarantine, batch_files, bool(moved_by_file)),
            output_name=QUARANTINE_RATINGS.name,
            metadata=metadata,
        )
        counts = {
            "movielake/rows_inserted": inserted.count(),
            "movielake/rows_replaced": replaced.count() if replaced is not None else 0,
            "movielake/batch_files": dg.MetadataValue.json([PurePosixPath(f).name for f in batch_files]),
        }
        yield dg.Output(
            RowChanges(deleted=replaced, inserted=inserted, metadata=counts),
            output_name=RATINGS.name,
            metadata=metadata,
        )
        changes = incremental.change_log(replaced, inserted, session)
        yield dg.Output(
            Replace(changes, properties={CHANGES_BASE: str(base_snapshot)}), output_name=RATING_CHANGES.name
        )


def _quarantine_changes(stored: DataFrame | None, rows: DataFrame, batch_files: list[str], moved: bool) -> RowChanges:
    """The batch's quarantine rows replace those of the same file (a replayed batch), unless they are
    the same rows and no line moved: then nothing changes."""
    files = ", ".join("'" + f.replace("'", "''") + "'" for f in batch_files)
    if stored is not None and not moved:
        before = stored.where(F.col(SOURCE_FILE).isin(batch_files))
        if before.exceptAll(rows).isEmpty() and rows.exceptAll(before).isEmpty():
            return RowChanges()
    return RowChanges(inserted=rows, delete_where=f"source_file IN ({files})" if stored is not None else "")


def _replaced_lines(replaced: DataFrame | None, lake: LakeResource, session):
    """Quarantine rows for the stored ratings the batch replaces (``duplicate``, as a full build would
    quarantine their lines), and their count per file. Their lines are read straight from their
    staged files, by the line numbers the stored rows carry (a streaming count of line breaks: no parse)."""
    if replaced is None:
        return None, {}
    rows = replaced.select(SOURCE_FILE, "line_number").collect()
    if not rows:
        return None, {}
    by_file: dict[str, set[int]] = {}
    for row in rows:
        by_file.setdefault(row[SOURCE_FILE], set()).add(row["line_number"])
    quarantine = []
    for source, numbers in sorted(by_file.items()):
        lines = lake.store.lines_at(store_uri(source), numbers)
        for number in sorted(numbers):
            text = lines.get(number, b"").decode("utf-8", errors="replace").lstrip("\ufeff")
            quarantine.append(
                ("ratings", source, number, text, "duplicate", "a later rating of the same movie by the same user wins")
            )
    moved_by_file = {PurePosixPath(source).name: len(numbers) for source, numbers in by_file.items()}
    return session.createDataFrame(quarantine, QUARANTINE_DDL), moved_by_file


cleanse_assets = [cleanse_movies, cleanse_users, cleanse_ratings]
