"""Record reconciliation: nothing vanishes between layers.

Cleanse: the lines of the staged files (counted again, independently of the cleansing step) must
equal the rows stored in the cleansed table plus the rows stored in its quarantine, per source
file and exactly; and the counts the cleansing step put in its materialization metadata (what the
UI shows) must agree with what is stored. Access: a table built one-to-one from a cleansed table
has exactly its rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import PurePosixPath

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movielake_dagster.catalog.iceberg import live_rows
from movielake_dagster.checks.rules import ERROR, Outcome
from movielake_dagster.datasets import MOVIES, RATINGS, USERS, Dataset
from movielake_dagster.lake import spark_uri
from movielake_dagster.transforms import layouts

DESCRIPTION = "input records = cleansed + quarantined, exactly, per source file (staged lines counted independently)"


def _name(uri: str) -> str:
    return PurePosixPath(uri).name


def staged_records(spark, uris: list[str], dataset: str) -> dict[str, int]:
    """Records per staged file, counted apart from the cleansing step's reader.

    One Spark scan counts each file's lines, its whitespace-only lines, its lines with a quote, and
    finds its first non-blank line. A file of one record per line holds its non-blank lines less a
    header line; a CSV file with quotes is counted record by record with Python's ``csv``, a JSON
    document by loading it whole with ``json`` (element by element only when it does not load).
    """
    counts = {_name(u): 0 for u in uris}
    if not uris:
        return counts
    documents = []
    csv_files = any(layouts.layout_of(u) == layouts.CSV for u in uris)
    for row in _line_stats(spark, uris, csv_files):
        name = _name(row["file"])
        layout = layouts.layout_of(name)
        first = (row["first"] or "").lstrip("\ufeff")
        if (layout == layouts.CSV and row["quoted"]) or (
            layout == layouts.JSON and layouts.json_starts_document(first)
        ):
            documents.append((row["file"], layout))
            continue
        header = layouts.header_for(dataset, name)
        counts[name] = row["lines"] - row["blank"] - int(layouts.is_header(layouts.split_line(first, layout), header))
    if documents:
        contents = spark.read.format("binaryFile").load([f for f, _ in documents]).select("path", "content").collect()
        for row in contents:
            name = _name(row["path"])
            counts[name] = _count_document(
                bytes(row["content"]), layouts.layout_of(name), layouts.header_for(dataset, name)
            )
    return counts


def _line_stats(spark, uris: list[str], quotes: bool) -> list[dict]:
    """Per file: lines, whitespace-only lines, lines with a quote (CSV files only), the first non-blank
    line. One aggregation over the files, then one small job per file that stops at its first line."""
    lines = spark.read.text(list(uris)).select(F.col("_metadata.file_path").alias("file"), "value")
    value = F.col("value")
    blank = (F.length(value) == 0) | ((F.ascii(value) <= 32) & (F.trim(value, F.lit(" \t\r\f")) == ""))
    stats = (
        lines.groupBy("file")
        .agg(
            F.count(F.lit(1)).alias("lines"),
            F.count_if(blank).alias("blank"),
            (F.count_if(value.contains('"')) if quotes else F.lit(0)).alias("quoted"),
        )
        .collect()
    )
    found = []
    for row in stats:
        first = lines.where((F.col("file") == row["file"]) & ~blank).select("value").limit(1).collect()
        found.append({**row.asDict(), "first": first[0]["value"] if first else None})
    return found


def _count_document(content: bytes, layout: str, header: tuple[str, ...] | None) -> int:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = content.decode("latin-1")
    text = text.lstrip("\ufeff")
    if layout == layouts.CSV:
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r and not (len(r) == 1 and not r[0].strip())]
        return len(rows) - int(bool(rows) and layouts.is_header(rows[0], header))
    try:
        value = json.loads(text)
        return len(value) if isinstance(value, list) else 1
    except ValueError:
        return len(layouts.parse_json_document(text).records)


def quarantined_by_file(quarantine: DataFrame) -> dict[str, dict[str, int]]:
    """file name -> reason -> quarantined rows (the quarantine is small)."""
    found: dict[str, dict[str, int]] = {}
    for row in quarantine.groupBy("source_file", "reason").count().collect():
        reasons = found.setdefault(_name(row["source_file"]), {})
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + row["count"]
    return found


def reconcile_cleanse(
    dataset: Dataset,
    staged: dict[str, int],
    cleansed_rows: int,
    quarantined: dict[str, dict[str, int]],
    reported: dict | None,
) -> Outcome:
    """Compares independent counts; ``reported`` is the cleansing step's ``movielake/reconciliation``.

    With one source file, its records must be the cleansed rows plus the quarantined rows. With
    several, the accepted count of each file comes from the step's report, and the cleansed rows
    must be their sum (rating batches), or, for users merged per user from master data and
    MovieLens 1M ``users.dat``, lie between the largest file's accepted count and their sum.
    """
    merged_per_key = dataset.name == USERS.name
    files = sorted(set(staged) | set(quarantined))
    table, problems, unaccounted = [], [], 0
    for name in files:
        lines = staged.get(name, 0)
        rejected = sum(quarantined.get(name, {}).values())
        if len(staged) <= 1:
            accepted = cleansed_rows if name in staged else 0
        else:
            accepted = (reported or {}).get(name, {}).get("accepted")
            if accepted is None:
                problems.append(f"{name}: no accepted count in the cleansing step's metadata")
                accepted = 0
        difference = lines - accepted - rejected
        unaccounted += abs(difference)
        table.append((name, lines, accepted, rejected, difference))
        if name not in staged:
            problems.append(f"{name}: quarantined rows from a file that is not staged")
        if reported is not None:
            entry = reported.get(name, {})
            if entry.get("input", 0) != lines:
                problems.append(f"{name}: metadata says {entry.get('input', 0)} input records, staging has {lines}")
            if entry.get("reasons", {}) != quarantined.get(name, {}):
                problems.append(
                    f"{name}: metadata reasons {entry.get('reasons', {})} != stored {quarantined.get(name, {})}"
                )
    if len(staged) > 1:
        accepted_counts = [row[2] for row in table]
        low = max(accepted_counts) if merged_per_key else sum(accepted_counts)
        if not low <= cleansed_rows <= sum(accepted_counts):
            problems.append(
                f"{cleansed_rows} rows stored, but the files accepted {sum(accepted_counts)}"
                + (f" (at least {low} distinct)" if merged_per_key else "")
            )
            unaccounted += abs(cleansed_rows - sum(accepted_counts)) if not merged_per_key else 1
    total_lines = sum(staged.values())
    total_rejected = sum(sum(r.values()) for r in quarantined.values())
    outcome = Outcome(
        "reconciliation",
        unaccounted == 0 and not problems,
        ERROR,
        DESCRIPTION,
        unaccounted,
        f"staged records of staging.{dataset.name} (spark.read.text, per file)\n"
        f"  = count(*) of {dataset.layer}.{dataset.name} + count(*) of {dataset.layer}.quarantine_{dataset.name} per source_file",
        total_lines,
        ["source_file", "input_records", "cleansed", "quarantined", "difference"],
        table,
    )
    outcome.extra = {
        "input_records": total_lines,
        "cleansed_records": cleansed_rows,
        "quarantined_records": total_rejected,
        "problems": problems,
    }
    return outcome


def reconcile_batch(
    dataset: Dataset,
    spark,
    staged,
    batch_files: tuple[str, ...],
    cleansed_rows: int,
    quarantine: DataFrame,
    reported: dict | None,
) -> Outcome:
    """The reconciliation of a day's load: the batch file's records (counted again, independently)
    are its accepted plus its quarantined records, exactly; the stored quarantine holds the reasons the
    cleansing step reported for it; and the table holds the accepted records of every file loaded so
    far (the step's carried per-file accounts), less none and more none. Only the batch is read."""
    reported = reported or {}
    uris = [u for u, name in zip(staged.uris, staged.names) if name in batch_files]
    counts = staged_records(spark, [spark_uri(u) for u in uris], dataset.name)
    batch_quarantine = (
        quarantined_by_file(
            quarantine.where(
                F.col("source_file").rlike("(" + "|".join(re.escape("/" + name) for name in batch_files) + ")$")
            )
        )
        if batch_files
        else {}
    )
    table, problems, unaccounted = [], [], 0
    for name in batch_files:
        entry = reported.get(name, {})
        records, accepted = counts.get(name, 0), entry.get("accepted", 0)
        rejected = sum(batch_quarantine.get(name, {}).values())
        difference = records - accepted - rejected
        unaccounted += abs(difference)
        table.append((name, records, accepted, rejected, difference))
        if entry.get("input") != records:
            problems.append(f"{name}: metadata says {entry.get('input')} input records, staging has {records}")
        if entry.get("reasons", {}) != batch_quarantine.get(name, {}):
            problems.append(
                f"{name}: metadata reasons {entry.get('reasons', {})} != stored {batch_quarantine.get(name, {})}"
            )
    accepted_everywhere = sum(e.get("accepted", 0) for e in reported.values())
    if accepted_everywhere != cleansed_rows:
        problems.append(f"{cleansed_rows} rows stored, but the loaded files accepted {accepted_everywhere}")
        unaccounted += abs(cleansed_rows - accepted_everywhere)
    outcome = Outcome(
        "reconciliation",
        unaccounted == 0 and not problems,
        ERROR,
        DESCRIPTION + " (a day's load: its batch file, and the stored rows against every file's accepted records)",
        unaccounted,
        f"records of {', '.join(batch_files)} = accepted + quarantined rows of it;\n"
        f"  rows of {dataset.layer}.{dataset.name} (Iceberg metadata) = sum of accepted records over the loaded files",
        sum(counts.values()),
        ["source_file", "input_records", "cleansed", "quarantined", "difference"],
        table,
    )
    outcome.extra = {
        "input_records": sum(counts.values()),
        "cleansed_records": cleansed_rows,
        "quarantined_records": sum(r[3] for r in table),
        "problems": problems,
    }
    return outcome


def reconcile_counts(dataset: Dataset, rows: int, iceberg) -> Outcome:
    """After a day's row changes: the table has as many rows as its source (both from Iceberg's metadata)."""

    upstream = ACCESS_SOURCES[dataset.name][0]
    source = iceberg.table(upstream.layer, upstream.name).current_snapshot()
    expected = live_rows(source.summary) if source is not None else 0
    difference = rows - expected
    return Outcome(
        "reconciliation",
        difference == 0,
        ERROR,
        f"every row of cleanse.{upstream.name} is in {dataset.name}, "
        "nothing more (row counts of both tables' current snapshots)",
        abs(difference),
        f"live rows of {dataset.layer}.{dataset.name} = live rows of cleanse.{upstream.name} (Iceberg metadata)",
        rows,
        ["table", "rows", "expected", "difference"],
        [(dataset.name, rows, expected, difference)] if difference else [],
    )


# Access tables built one-to-one from a cleansed table: name -> (source, expected row count).
ACCESS_SOURCES = {
    "dim_user": (USERS, lambda df: df.count()),
    "dim_movie": (MOVIES, lambda df: df.count()),
    "fct_rating": (RATINGS, lambda df: df.count()),
    "bridge_movie_genre": (MOVIES, lambda df: df.select("movie_id", F.explode("genres")).distinct().count()),
}


def reconcile_access(dataset: Dataset, rows: int, source: DataFrame) -> Outcome:
    upstream, expected_rows = ACCESS_SOURCES[dataset.name]
    expected = expected_rows(source)
    difference = rows - expected
    rule = (
        "count(*) = count(*) of cleanse." + upstream.name
        if dataset.name != "bridge_movie_genre"
        else "count(*) = count(DISTINCT movie_id, genre) of cleanse.movies LATERAL VIEW explode(genres)"
    )
    return Outcome(
        "reconciliation",
        difference == 0,
        ERROR,
        f"every row of cleanse.{upstream.name} is in {dataset.name}, nothing more",
        abs(difference),
        rule,
        rows,
        ["table", "rows", "expected", "difference"],
        [(dataset.name, rows, expected, difference)] if difference else [],
    )


def latest_report(instance, dataset: Dataset) -> dict | None:
    """The cleansing step's own per-file counts (``movielake/reconciliation``) from the dataset's latest
    materialization in ``instance``; None when it has none."""
    event = instance.get_latest_materialization_event(dataset.asset_key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("movielake/reconciliation")
    return dict(value.value) if value is not None else None
