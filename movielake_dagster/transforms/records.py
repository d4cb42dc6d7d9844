"""Turning classified records into the cleansed table and its quarantine."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from movielake_dagster.datasets import QUARANTINE_COLUMNS, Dataset
from movielake_dagster.transforms.raw_lines import (
    DETAIL,
    LINE_NUMBER,
    REASON,
    RID,
    SOURCE_FILE,
    raw_text_for_quarantine,
    with_line_numbers,
)

RECORD = "_record"


def slim(classified: DataFrame, dataset: Dataset) -> DataFrame:
    """Only what the outputs need: the dataset's columns, provenance, and the text of rejected rows.

    Applied before caching, so that the raw text of accepted rows is not kept in memory. A declared
    ``line_number`` (lineage) is computed later, from the row id (:func:`accepted`).
    """
    provenance = [SOURCE_FILE, RID]
    columns = [c for c in dataset.column_names if c in classified.columns and c not in provenance]
    return classified.select(
        *columns,
        *provenance,
        REASON,
        DETAIL,
        F.when(F.col(REASON).isNotNull(), raw_text_for_quarantine()).alias(RECORD),
    )


def accepted(classified: DataFrame, dataset: Dataset, offsets: DataFrame | None = None) -> DataFrame:
    """The rows without a rejection reason, cast to the dataset's declared columns and types. A declared
    ``line_number`` is the row's line in its source file (from its row id and ``offsets``)."""
    rows = classified.where(F.col(REASON).isNull())
    if LINE_NUMBER in dataset.column_names and LINE_NUMBER not in rows.columns:
        rows = with_line_numbers(rows, offsets)
    return rows.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in dataset.columns])


def rejected(classified: DataFrame, dataset_name: str, offsets: DataFrame) -> DataFrame:
    """The rows with a rejection reason, in the quarantine's columns, with their line numbers."""
    rows = classified.where(F.col(REASON).isNotNull())
    if LINE_NUMBER not in rows.columns:
        rows = with_line_numbers(rows, offsets)
    return rows.select(
        F.lit(dataset_name).alias("dataset"),
        F.col(SOURCE_FILE),
        F.col(LINE_NUMBER).cast("bigint").alias(LINE_NUMBER),
        F.col(RECORD).alias("raw_record"),
        F.col(REASON).alias("reason"),
        F.col(DETAIL).alias("detail"),
    )


QUARANTINE_DDL = ", ".join(f"`{c.name}` {c.type}" for c in QUARANTINE_COLUMNS)


def reject_repeated_keys(df: DataFrame, keys: list[str], label: str, payload: Column | None = None) -> DataFrame:
    """Among accepted rows, the first line per key wins; later lines are rejected.

    A later line is a ``duplicate`` when its ``payload`` equals the first line's (or no payload is
    given), else a ``conflicting_duplicate``.
    """
    first = Window.partitionBy(F.col(REASON).isNull(), *keys).orderBy(RID)
    ranked = df.withColumn("_rank", F.when(F.col(REASON).isNull(), F.row_number().over(first)))
    repeat = F.col("_rank") > 1
    if payload is None:
        conflicting = F.lit(False)
    else:
        conflicting = ~F.first(payload).over(first).eqNullSafe(payload)
    return ranked.withColumns(
        {  # both from the same input row: the window sees the old reasons
            REASON: F.when(repeat & conflicting, F.lit("conflicting_duplicate"))
            .when(repeat, F.lit("duplicate"))
            .otherwise(F.col(REASON)),
            DETAIL: F.when(repeat & conflicting, F.lit(f"{label} already seen with other values; the first line wins"))
            .when(repeat, F.lit(f"{label} already seen on an earlier line; collapsed"))
            .otherwise(F.col(DETAIL)),
        }
    ).drop("_rank")
