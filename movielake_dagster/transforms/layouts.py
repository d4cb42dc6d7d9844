"""Raw file layouts: which records a file holds, decided from its name and its content.

Most raw files hold one record per line (``movies.dat``, ``ratings.dat``, JSON lines, a CSV file
without a single quote character): Spark reads those in parallel, line by line
(``transforms/raw_lines.py``). Two layouts let a record span lines, and are split into records
here with Python's own parsers, on the driver:

- CSV with quoted fields (RFC 4180: ``"`` quotes a field, ``""`` is a quote inside it, and commas
  and line breaks inside quotes belong to the field), parsed by :mod:`csv`;
- a JSON document: one array of records (``[{...}, {...}]``, on one line or pretty-printed) or
  objects written one after the other over several lines, parsed by :mod:`json`.

A record is located by the line it starts on. Whitespace-only lines are not records: they are
skipped and counted. Whether a file's first record is a header is decided by its content: the
record is a header when its fields are the layout's column names (:func:`is_header`).
"""

from __future__ import annotations

import bisect
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

DAT, CSV, JSON = "dat", "csv", "json"
DAT_SEPARATOR = "::"
CSV_SEPARATOR = ","

# Column names a header line may carry, per dataset (MovieLens "latest" CSV spells them camelCase,
# others snake_case or with spaces: compared after normalisation, see ``_normalise``).
HEADERS: dict[str, tuple[str, ...]] = {
    "movies": ("movieid", "title", "genres"),
    "ratings": ("userid", "movieid", "rating", "timestamp"),
    "users_dat": ("userid", "gender", "age", "occupation", "zipcode"),
}


def header_for(dataset: str, file_name: str) -> tuple[str, ...] | None:
    """The column names a header line of this staged file would carry (None: JSON has none)."""
    if layout_of(file_name) == JSON:
        return None
    if dataset == "users":
        return HEADERS["users_dat"]
    return HEADERS.get(dataset)


def layout_of(file_name: str) -> str:
    """``csv`` for ``*.csv``, ``json`` for ``*.json``, else ``dat`` (``::``-separated lines)."""
    lowered = file_name.lower()
    if lowered.endswith(".csv"):
        return CSV
    if lowered.endswith(".json"):
        return JSON
    return DAT


def is_blank(text: str) -> bool:
    """Whitespace only (or nothing): not a record."""
    return not text.strip()


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def is_header(fields: list[str] | tuple[str, ...], names: tuple[str, ...] | None) -> bool:
    """True when ``fields`` are exactly the column ``names`` (case, ``_``, spaces and quotes ignored).

    A data record never passes: its key field is a number (or garbage that is not a column name),
    so a file with and a file without a header line both keep every data record.
    """
    if not names or len(fields) != len(names):
        return False
    return all(_normalise(f) == n for f, n in zip(fields, names))


def split_line(text: str, layout: str) -> list[str]:
    """The fields of a one-line record of a line layout (a CSV line without quotes, or ``::``)."""
    return text.split(CSV_SEPARATOR if layout == CSV else DAT_SEPARATOR)


@dataclass(frozen=True)
class Record:
    """One record of a file: the line it starts on (1-based), its text exactly as it stands in the
    file (line breaks inside it included), and its fields where the layout has fields."""

    line_number: int
    text: str
    fields: tuple[str, ...] | None = None
    problem: str = ""  # set when the parser could not read the record; it is then malformed


@dataclass
class ParsedFile:
    """The records of one file, and what was not a record."""

    records: list[Record] = field(default_factory=list)
    blank_lines: int = 0
    header_lines: int = 0


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def parse_csv(text: str, header: tuple[str, ...] | None = None) -> ParsedFile:
    """RFC 4180 records of a CSV text with Python's :mod:`csv` (quoted fields, doubled quotes, commas
    and line breaks inside quotes, CRLF). A field left open at the end of the file makes the rest of
    the file one malformed record."""
    parsed = ParsedFile()
    lines = _strip_bom(text).splitlines(keepends=True)
    reader = csv.reader(iter(lines), strict=False)
    consumed = 0
    while True:
        start = consumed
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            rest = "".join(lines[start:]).rstrip("\r\n")
            parsed.records.append(Record(start + 1, rest, None, f"CSV: {error}"))
            break
        consumed = reader.line_num
        raw = "".join(lines[start:consumed]).rstrip("\r\n")
        if is_blank(raw):
            parsed.blank_lines += consumed - start
            continue
        if not parsed.records and not parsed.header_lines and is_header(fields, header):
            parsed.header_lines += 1
            continue
        parsed.records.append(Record(start + 1, raw, tuple(fields)))
    return parsed


class _Lines:
    """Character offset -> 1-based line number in one text."""

    def __init__(self, text: str):
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def number(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def end_of_line(self, offset: int, text: str) -> int:
        following = bisect.bisect_right(self.starts, offset)
        return self.starts[following] - 1 if following < len(self.starts) else len(text)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def parse_json_document(text: str) -> ParsedFile:
    """The records of a JSON document: the elements of one top-level array, or the values written
    one after the other (JSON lines included, each over one or several lines).

    A record that does not parse is malformed; reading resumes at the next line that starts a
    JSON object (``{``) which parses, so one broken element costs one record, not the rest.
    """
    text = _strip_bom(text)
    lines = _Lines(text)
    parsed = ParsedFile()
    parsed.blank_lines = sum(1 for line in text.split("\n") if is_blank(line)) - (1 if text.endswith("\n") else 0)
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    in_array = text.startswith("[", pos)
    if in_array:
        pos = _skip_space(text, pos + 1)
    while pos < len(text):
        if in_array and text[pos] == "]":
            pos = _skip_space(text, pos + 1)
            in_array = False
            continue
        try:
            _, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as error:
            end = _resume(text, lines, pos, decoder, in_array)
            raw = text[pos:end].rstrip().rstrip(",").rstrip()
            parsed.records.append(Record(lines.number(pos), raw, None, f"JSON: {error.msg}"))
            pos = _skip_space(text, end)
            continue
        parsed.records.append(Record(lines.number(pos), text[pos:end]))
        pos = _skip_space(text, end)
        if in_array and pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
    return parsed


def _resume(text: str, lines: _Lines, pos: int, decoder: json.JSONDecoder, in_array: bool) -> int:
    """Where reading resumes after a record that does not parse at ``pos``: the start of the next
    line that begins a parseable object (or closes the array), else the end of the text."""
    offset = lines.end_of_line(pos, text) + 1
    while offset < len(text):
        start = _skip_space(text, offset)
        if start >= len(text):
            return len(text)
        if in_array and text[start] == "]":
            return start
        if text[start] == "{" and lines.number(start) > lines.number(pos):
            try:
                decoder.raw_decode(text, start)
                return start
            except json.JSONDecodeError:
                pass
        offset = lines.end_of_line(start, text) + 1
    return len(text)


def json_starts_document(first_line: str) -> bool:
    """Whether a JSON file must be read as a document (records over several lines) rather than as
    JSON lines: its first non-blank line opens an array, or is not a whole JSON value by itself."""
    stripped = _strip_bom(first_line).strip()
    if stripped.startswith("["):
        return True
    try:
        json.loads(stripped)
        return False
    except ValueError:
        return stripped.startswith("{")


def records_in(text: str, layout: str, header: tuple[str, ...] | None = None) -> ParsedFile:
    """Every record of a decoded file whose records may span lines (quoted CSV, a JSON document)."""
    if layout == CSV:
        return parse_csv(text, header)
    if layout == JSON:
        return parse_json_document(text)
    raise ValueError(f"{layout} files are read line by line")


def iter_field_rows(parsed: ParsedFile) -> Iterator[tuple]:
    """(line_number, text, fields, problem) tuples, for building a DataFrame."""
    for record in parsed.records:
        yield (
            record.line_number,
            record.text,
            list(record.fields) if record.fields is not None else None,
            record.problem or None,
        )


__all__ = [
    "CSV",
    "DAT",
    "HEADERS",
    "JSON",
    "ParsedFile",
    "Record",
    "header_for",
    "is_blank",
    "is_header",
    "json_starts_document",
    "layout_of",
    "parse_csv",
    "parse_json_document",
    "records_in",
    "split_line",
]
