"""Raw text files as Spark rows: one row per line with its source file, line number and decoded text.

Spark's text source keeps each line's bytes untouched, so the encoding is decided here, per file:
a file whose non-ASCII lines are all valid UTF-8 is UTF-8; a file with invalid UTF-8 lines and
no valid multi-byte ones is Latin-1 (MovieLens 1M); in a UTF-8 file that also has a minority of
invalid lines, those lines are rejected with reason ``encoding`` rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from movielake_dagster.lake import spark_uri

RID = "_rid"  # row id from monotonically_increasing_id: partition index << 33 | position
PART = "_part"
RAW = "_raw"  # the line's bytes as Spark read them (not yet decoded)
TEXT = "text"  # the decoded line, NULL when it cannot be decoded
REASON = "_reason"
DETAIL = "_detail"
SOURCE_FILE = "source_file"
LINE_NUMBER = "line_number"
FIELDS = "_fields"  # a record's fields when its reader split them (CSV); NULL for '::' lines
BOM = "\ufeff"  # a UTF-8 byte-order mark opens the first line of some exported files
REGEX_SPECIAL = set(".$|()[]{}^?*+\\")  # characters a regular expression gives a meaning


@dataclass(frozen=True)
class FileProfile:
    """What one pass over a raw file tells: line counts, encoding, and its first non-blank line."""

    source_file: str
    lines: int
    encoding: str  # "UTF-8" or "ISO-8859-1"
    invalid_utf8_lines: int
    blank_lines: int = 0  # whitespace-only lines: not records
    quoted_lines: int = 0  # lines holding a '"': a CSV file with any is parsed as RFC 4180 records
    first_line: bytes | None = None  # the first non-blank line, undecoded (header and layout decisions)
    first_line_rid: int | None = None  # its row id

    def decode(self, raw: bytes) -> str:
        """Bytes of this file as text, in its encoding; undecodable bytes become lone surrogates
        (``surrogateescape``), so that nothing is lost and such text can be recognised."""
        return raw.decode("latin-1" if self.encoding == "ISO-8859-1" else "utf-8", errors="surrogateescape")


def read_lines(spark: SparkSession, uris: list[str]) -> DataFrame:
    """Every line of the given files (local paths or s3:// URLs), with a row id from which the line
    number is derived."""
    return spark.read.text([spark_uri(uri) for uri in uris]).select(
        F.col("value").alias(RAW),
        F.col("_metadata.file_path").alias(SOURCE_FILE),
        F.monotonically_increasing_id().alias(RID),
    )


def _is_multibyte_utf8(raw: Column) -> Column:
    return F.is_valid_utf8(raw) & (F.octet_length(raw) > F.char_length(raw))


def is_blank_line(raw: Column) -> Column:
    """Whitespace only (spaces, tabs, a stray CR, form feeds) or empty: not a record. Only a line whose
    first character is whitespace is trimmed, so the test costs one character for every other line."""
    return (F.octet_length(raw) == 0) | ((F.ascii(raw) <= 32) & (F.length(F.btrim(raw, F.lit(" \t\r\f\u000b"))) == 0))


def profile_partitions(lines: DataFrame, quotes: bool = False) -> DataFrame:
    """One small row per (file, Spark partition): line count, first row id, encoding evidence.

    One cheap aggregation gives everything that needs a whole pass: input counts for the
    reconciliation (lines, blank lines), line-number offsets and the encoding of each file; with
    ``quotes`` (CSV files), also how many lines hold a ``"`` (a CSV file with any is parsed as RFC
    4180 records).
    """
    measures = [
        F.count(F.lit(1)).alias("lines"),
        F.min(RID).alias("first_rid"),
        F.sum((~F.is_valid_utf8(RAW)).cast("long")).alias("invalid_utf8"),
        F.sum(_is_multibyte_utf8(F.col(RAW)).cast("long")).alias("multibyte_utf8"),
        F.count_if(is_blank_line(F.col(RAW))).alias("blank"),
        (F.count_if(F.col(RAW).contains('"')) if quotes else F.lit(0).cast("long")).alias("quoted"),
    ]
    return lines.groupBy(SOURCE_FILE, (F.col(RID).bitwiseAND(F.lit(-1 << 33))).alias(PART)).agg(*measures)


def first_lines(lines: DataFrame, files: list[str]) -> dict[str, tuple[int, bytes]]:
    """Each file's first non-blank line: (row id, raw bytes). A small job per file that reads only up to
    that line (Spark scans the partitions in order and stops at the first match)."""
    found = {}
    for path in files:
        rows = (
            lines.where((F.col(SOURCE_FILE) == path) & ~is_blank_line(F.col(RAW)))
            .select(RID, F.col(RAW).cast("binary").alias(RAW))
            .limit(1)
            .collect()
        )
        if rows:
            found[path] = (rows[0][RID], bytes(rows[0][RAW]))
    return found


def file_profiles(partition_rows: list, first: dict[str, tuple[int, bytes]] | None = None) -> list[FileProfile]:
    """Per-file totals and encoding from the rows of :func:`profile_partitions`, with each file's first
    non-blank line from :func:`first_lines`."""
    totals: dict[str, list[int]] = {}
    first = first or {}
    for row in partition_rows:
        t = totals.setdefault(row[SOURCE_FILE], [0, 0, 0, 0, 0])
        t[0] += row["lines"]
        t[1] += row["invalid_utf8"]
        t[2] += row["multibyte_utf8"]
        t[3] += row["blank"]
        t[4] += row["quoted"]
    return [
        FileProfile(
            source_file,
            lines,
            choose_encoding(invalid, multibyte),
            invalid,
            blank,
            quoted,
            first.get(source_file, (None, None))[1],
            first.get(source_file, (None, None))[0],
        )
        for source_file, (lines, invalid, multibyte, blank, quoted) in sorted(totals.items())
    ]


def choose_encoding(invalid_utf8_lines: int, multibyte_utf8_lines: int) -> str:
    """UTF-8 unless invalid UTF-8 lines outnumber valid multi-byte ones (then the file is Latin-1)."""
    return "ISO-8859-1" if invalid_utf8_lines > multibyte_utf8_lines else "UTF-8"


def line_offsets(spark: SparkSession, partition_rows: list) -> DataFrame:
    """(source_file, _part, _offset) such that line_number = _rid + _offset + 1.

    Spark reads a file's splits in order, and each partition numbers its rows consecutively,
    so the lines before a row are the rows of earlier partitions of the same file plus the row's
    position in its own partition.
    """
    rows, seen = [], {}
    for row in sorted(partition_rows, key=lambda r: r["first_rid"]):
        before = seen.get(row[SOURCE_FILE], 0)
        rows.append((row[SOURCE_FILE], row[PART], before - row["first_rid"]))
        seen[row[SOURCE_FILE]] = before + row["lines"]
    return spark.createDataFrame(rows, f"{SOURCE_FILE} string, {PART} bigint, _offset bigint")


def with_line_numbers(records: DataFrame, offsets: DataFrame) -> DataFrame:
    """Adds ``line_number`` (1-based, per file); meant for the few rejected rows, not every row."""
    keyed = records.withColumn(PART, F.col(RID).bitwiseAND(F.lit(-1 << 33)))
    return (
        keyed.join(F.broadcast(offsets), [SOURCE_FILE, PART], "left")
        .withColumn(LINE_NUMBER, F.col(RID) + F.col("_offset") + 1)
        .drop(PART, "_offset")
    )


def decode_lines(lines: DataFrame, profiles: list[FileProfile]) -> DataFrame:
    """Adds ``text``: the line decoded with its file's encoding; undecodable lines get a reason.

    ``_raw`` is kept only for the lines that could not be decoded (their quarantine text is made
    from it): for the others it would double the width of every row through the shuffles.
    """
    latin1_files = [p.source_file for p in profiles if p.encoding == "ISO-8859-1"]
    is_latin1 = F.col(SOURCE_FILE).isin(latin1_files) if latin1_files else F.lit(False)
    valid_utf8 = F.is_valid_utf8(RAW)
    text = F.when(is_latin1, F.decode(F.col(RAW).cast("binary"), "ISO-8859-1")).when(valid_utf8, F.col(RAW))
    text = F.when(text.startswith(BOM), F.substring(text, 2, 1 << 30)).otherwise(text)  # a byte-order mark is not text
    return lines.withColumn(TEXT, text).withColumns(
        {  # all three from the row's TEXT
            REASON: F.when(F.col(TEXT).isNull(), F.lit("encoding")),
            DETAIL: F.when(F.col(TEXT).isNull(), F.lit("bytes are not valid UTF-8 in a UTF-8 file")),
            RAW: F.when(F.col(TEXT).isNull(), F.col(RAW)),
        }
    )


def raw_text_for_quarantine() -> Column:
    """The record's text for quarantine: decoded text, or the bytes made valid when undecodable."""
    return F.coalesce(F.col(TEXT), F.make_valid_utf8(F.col(RAW)))


def reject_when(rules: list[tuple[Column, str, Column | str]]) -> tuple[Column, Column]:
    """First failing rule wins: ``(condition, reason, detail)`` -> (reason, detail) columns.

    Rows already rejected earlier (``_reason`` set) keep their reason.
    """
    reason = F.col(REASON)
    detail = F.col(DETAIL)
    for condition, code, message in reversed(rules):
        message_col = F.lit(message) if isinstance(message, str) else message
        reason = F.when(F.col(REASON).isNull() & condition, F.lit(code)).otherwise(reason)
        detail = F.when(F.col(REASON).isNull() & condition, message_col).otherwise(detail)
    return reason, detail


def split_fields(text: Column, separator: str, expected: int) -> tuple[Column, Column]:
    """(fields array, is_malformed) for lines of ``expected`` fields separated by ``separator`` ('::').

    A separator of one doubled character is split on that single character first: Java splits on
    one literal character without a regular expression, about 1 s less per 10M lines (2 cores). A
    line splits cleanly when every other part is empty (no field holds the character); any other
    line is split on the whole separator, so the fields are always those of ``split(separator)``.
    """
    whole = F.split(text, separator)  # Spark's split takes a regular expression
    char = separator[0]
    if len(separator) != 2 or separator[1] != char or char in REGEX_SPECIAL:
        return whole, F.size(whole) != expected
    parts = F.split(text, char)
    clean = F.size(parts) == 2 * expected - 1
    for i in range(1, 2 * expected - 1, 2):
        clean = clean & (F.get(parts, i) == "")
    fields = F.when(clean, F.array(*[F.get(parts, i) for i in range(0, 2 * expected - 1, 2)])).otherwise(whole)
    return fields, F.size(fields) != expected


def record_fields(separator: str, expected: int) -> tuple[Column, Column]:
    """(fields array, is_malformed) of every record: the fields its reader already split (CSV,
    ``_fields``), else the ``separator``-split text (``::`` lines, see :func:`split_fields`)."""
    split, _ = split_fields(F.col(TEXT), separator, expected)
    fields = F.coalesce(F.col(FIELDS), split)
    return fields, F.size(fields) != expected


def try_int(value: Column) -> Column:
    """A whole number from text, or NULL for anything else (no ANSI cast exception)."""
    return F.trim(value).try_cast("bigint").try_cast("int")


def try_double(value: Column) -> Column:
    return F.trim(value).try_cast("double")
