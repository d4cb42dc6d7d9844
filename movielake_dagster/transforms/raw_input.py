"""Staged raw files as records: one pass to profile them, then each file read in its layout.

Every file is read once by Spark's text source for its profile (line counts, blank lines,
encoding, first line, quote characters; ``raw_lines.profile_partitions``). Then, per file:

- a file whose records are lines (``::`` files, JSON lines, CSV without a quote character) keeps
  Spark's parallel line-by-line read: blank lines and a header line are dropped, CSV lines are split
  on ``,`` (exactly RFC 4180 when no field is quoted);
- a CSV file with quoted fields, or a JSON document (an array, pretty-printed objects), is split into
  records by Python's ``csv`` or ``json`` (``layouts.py``) on the driver and handed to Spark as rows.

Both give the same columns, so the cleansing rules never know how a record was read. Record
positions are line numbers: a record spanning lines is located by its first line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from movielake_dagster.lake import spark_uri
from movielake_dagster.transforms import layouts
from movielake_dagster.transforms.raw_lines import (
    DETAIL,
    FIELDS,
    PART,
    RAW,
    REASON,
    RID,
    SOURCE_FILE,
    TEXT,
    FileProfile,
    decode_lines,
    file_profiles,
    first_lines,
    is_blank_line,
    line_offsets,
    profile_partitions,
    read_lines,
)

# Row ids of records parsed on the driver: partition numbers no Spark read reaches (Spark numbers a
# read's partitions from 0), so they never collide with the row ids of lines read by Spark.
PARSED_PARTITION_BASE = 1 << 29
RECORD_COLUMNS = (
    f"{RAW} string, {SOURCE_FILE} string, {RID} bigint, {TEXT} string, {REASON} string, "
    f"{DETAIL} string, {FIELDS} array<string>"
)


@dataclass(frozen=True)
class FileRecords:
    """How one file was read and what it held: its records, and the lines that were not records."""

    source_file: str
    layout: str  # dat | csv | json
    read_as: str  # "lines" (Spark, one record per line) or "records" (Python's csv/json, on the driver)
    records: int
    blank_lines: int = 0
    header_lines: int = 0
    encoding: str = "UTF-8"

    @property
    def name(self) -> str:
        return PurePosixPath(self.source_file).name

    @property
    def skipped(self) -> dict[str, int]:
        return {"blank_lines": self.blank_lines, "header_lines": self.header_lines}


@dataclass
class RawInput:
    """A staged file set read as records (``lines``: decoded text, row ids, provenance, and for CSV
    the split fields), with line-number offsets and per-file accounts."""

    lines: DataFrame
    offsets: DataFrame
    files: dict[str, FileRecords] = field(default_factory=dict)  # by source_file

    @property
    def records_per_file(self) -> dict[str, int]:
        return {f.source_file: f.records for f in self.files.values()}

    @property
    def total_records(self) -> int:
        return sum(f.records for f in self.files.values())


def _layout_decision(profile: FileProfile, header: tuple[str, ...] | None) -> tuple[str, str, int | None]:
    """(layout, read_as, row id of a header line to drop) for a profiled file."""
    layout = layouts.layout_of(profile.source_file)
    first = profile.decode(profile.first_line) if profile.first_line is not None else ""
    if layout == layouts.CSV and profile.quoted_lines:
        return layout, "records", None
    if layout == layouts.JSON:
        return layout, ("records" if first and layouts.json_starts_document(first) else "lines"), None
    is_header = first and layouts.is_header(layouts.split_line(first, layout), header)
    return layout, "lines", profile.first_line_rid if is_header else None


def read_raw(spark: SparkSession, uris: list[str], header: tuple[str, ...] | None = None) -> RawInput:
    """Read staged files as records, each in its layout (see the module docstring).

    ``header``: the column names a header line would carry (``layouts.HEADERS``); a first line that
    is exactly these is dropped and counted, never a record.
    """
    lines = read_lines(spark, uris)
    csv = any(layouts.layout_of(uri) == layouts.CSV for uri in uris)
    partition_rows = profile_partitions(lines, quotes=csv).collect()
    first = first_lines(lines, sorted({row[SOURCE_FILE] for row in partition_rows}))
    profiles = {p.source_file: p for p in file_profiles(partition_rows, first)}
    files: dict[str, FileRecords] = {}
    line_files, csv_line_files, headers, parsed_files = [], [], [], []
    for path, profile in profiles.items():
        layout, read_as, header_rid = _layout_decision(profile, header)
        if read_as == "records":
            parsed_files.append((path, layout, profile))
            continue
        line_files.append(path)
        if layout == layouts.CSV:
            csv_line_files.append(path)
        if header_rid is not None:
            headers.append((path, header_rid))
        files[path] = FileRecords(
            path,
            layout,
            "lines",
            profile.lines - profile.blank_lines - (header_rid is not None),
            profile.blank_lines,
            int(header_rid is not None),
            profile.encoding,
        )
    records = _line_records(decode_lines(lines, list(profiles.values())), line_files, csv_line_files, headers)
    offsets = line_offsets(spark, partition_rows)
    if parsed_files:
        parsed, parsed_offsets = _parsed_records(spark, parsed_files, header, files)
        records = records.unionByName(parsed)
        offsets = offsets.unionByName(parsed_offsets)
    for uri in uris:  # a file with no bytes has no line, so Spark's read never saw it
        path = spark_uri(uri)
        if not any(PurePosixPath(p).name == PurePosixPath(path).name for p in files):
            files[path] = FileRecords(path, layouts.layout_of(path), "lines", 0)
    return RawInput(records, offsets, files)


def _line_records(
    decoded: DataFrame, line_files: list[str], csv_files: list[str], headers: list[tuple[str, int]]
) -> DataFrame:
    """The decoded lines of line-read files that are records: no blank line, no header line."""
    keep = ~is_blank_line(F.coalesce(F.col(TEXT), F.col(RAW)))
    for path, rid in headers:
        keep = keep & ~((F.col(SOURCE_FILE) == path) & (F.col(RID) == rid))
    if line_files:
        keep = keep & F.col(SOURCE_FILE).isin(line_files)
    else:
        keep = F.lit(False)
    fields = F.lit(None).cast("array<string>")
    if csv_files:  # no field of these files is quoted: a plain split is RFC 4180's reading
        fields = F.when(F.col(SOURCE_FILE).isin(csv_files), F.split(F.col(TEXT), layouts.CSV_SEPARATOR, -1))
    return decoded.where(keep).withColumn(FIELDS, fields)


def _parsed_records(
    spark: SparkSession,
    parsed_files: list[tuple[str, str, FileProfile]],
    header: tuple[str, ...] | None,
    files: dict[str, FileRecords],
) -> tuple[DataFrame, DataFrame]:
    """Records of files whose records span lines, split by Python's csv/json on the driver.

    Each file gets a partition number of its own above those of Spark's reads, so that its row ids
    (partition << 33 | line - 1) and line-number offsets work like those of lines read by Spark.
    """
    contents = {
        row["path"]: bytes(row["content"])
        for row in spark.read.format("binaryFile").load([p for p, _, _ in parsed_files]).collect()
    }
    rows, offsets = [], []
    for index, (path, layout, profile) in enumerate(parsed_files):
        base = (PARSED_PARTITION_BASE + index) << 33
        text = profile.decode(contents.get(path, b""))
        parsed = layouts.records_in(text, layout, header)
        for record in parsed.records:
            reason, detail = _problem(record, profile)
            rows.append(
                (
                    None,
                    path,
                    base + record.line_number - 1,
                    _valid_text(record.text),
                    reason,
                    detail,
                    list(record.fields) if record.fields is not None else None,
                )
            )
        offsets.append((path, base, -base))
        files[path] = FileRecords(
            path, layout, "records", len(parsed.records), parsed.blank_lines, parsed.header_lines, profile.encoding
        )
    frame = spark.createDataFrame(rows, RECORD_COLUMNS)
    return frame, spark.createDataFrame(offsets, f"{SOURCE_FILE} string, {PART} bigint, _offset bigint")


def _has_undecodable(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _valid_text(text: str) -> str:
    """The record's text with undecodable bytes replaced (U+FFFD), as Spark's ``make_valid_utf8``."""
    return (
        text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
        if _has_undecodable(text)
        else text
    )


def _problem(record: layouts.Record, profile: FileProfile) -> tuple[str | None, str | None]:
    if _has_undecodable(record.text):
        return "encoding", f"bytes are not valid {profile.encoding} in a {profile.encoding} file"
    if record.problem:
        return "malformed", record.problem
    return None, None
