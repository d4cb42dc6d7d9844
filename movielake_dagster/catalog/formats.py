"""The crawler's classifiers: which storage format a file has and which columns it holds.

Parquet files describe themselves (their footer holds the schema). Raw staging files do not, so
the layouts of the files the lake accepts are declared here, with a description per field, and a
file is matched to a layout by its name and checked against its first lines.

Glue's built-in CSV classifier takes one-character delimiters only, so MovieLens' ``::`` files are
registered with Hive's ``RegexSerDe`` (which Athena supports): one capture group per field, every
field a string, lines that do not match read as NULLs, exactly as they sit in staging.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from movielake_dagster.catalog.model import CatalogColumn, StorageFormat
from movielake_dagster.transforms import layouts

TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

PARQUET = StorageFormat(
    classification="parquet",
    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    serde="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    serde_parameters={"serialization.format": "1"},
)


ICEBERG = StorageFormat(  # what Glue records for an Iceberg table (Athena reads it through table_type=ICEBERG)
    classification="iceberg",
    input_format="org.apache.hadoop.mapred.FileInputFormat",
    output_format="org.apache.hadoop.mapred.FileOutputFormat",
    serde="org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
)


def dat_format(fields: int) -> StorageFormat:
    """``a::b::c`` lines: a RegexSerDe with one group per field (the last field may not hold ':')."""
    groups = ["(.*?)"] * (fields - 1) + ["([^:]*)"]
    return StorageFormat(
        classification="dat",
        input_format=TEXT_INPUT,
        output_format=TEXT_OUTPUT,
        serde="org.apache.hadoop.hive.serde2.RegexSerDe",
        serde_parameters={"input.regex": "^" + "::".join(groups) + "$"},
    )


CSV = StorageFormat(
    classification="csv",
    input_format=TEXT_INPUT,
    output_format=TEXT_OUTPUT,
    serde="org.apache.hadoop.hive.serde2.OpenCSVSerde",
    serde_parameters={"separatorChar": ",", "quoteChar": '"', "escapeChar": "\\"},
    table_parameters={"skip.header.line.count": "1"},
)

JSON = StorageFormat(
    classification="json",
    input_format=TEXT_INPUT,
    output_format=TEXT_OUTPUT,
    serde="org.openx.data.jsonserde.JsonSerDe",
    serde_parameters={"ignore.malformed.json": "true"},
)


# -- the raw layouts the lake accepts (SPEC "Inputs") ---------------------------------------------


@dataclass(frozen=True)
class RawLayout:
    file_name: str
    kind: str  # dat | csv | json
    columns: tuple[CatalogColumn, ...]
    description: str

    @property
    def dataset(self) -> str:
        """``movies``, ``ratings`` or ``users`` (the key of ``layouts.HEADERS`` for ``users.dat``)."""
        stem = self.file_name.split(".")[0]
        return {"users": "users_dat", "user_masterdata": "users"}.get(stem, stem)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _raw(name: str, description: str) -> CatalogColumn:
    return CatalogColumn(name, "string", description)


RAW_LAYOUTS: tuple[RawLayout, ...] = (
    RawLayout(
        "movies.dat",
        "dat",
        (
            _raw("movie_id", "MovieLens movie id, as text."),
            _raw("title", "Title with the release year in parentheses, e.g. 'Heat (1995)'."),
            _raw("genres", "Genres separated by '|', or '(no genres listed)'."),
        ),
        "MovieLens 10M/1M movie list: movie_id::title (year)::Genre1|Genre2.",
    ),
    RawLayout(
        "movies.csv",
        "csv",
        (
            _raw("movie_id", "MovieLens movie id, as text (header movieId)."),
            _raw("title", "Title with the release year in parentheses, quoted when it holds commas."),
            _raw("genres", "Genres separated by '|', or '(no genres listed)'."),
        ),
        "MovieLens 'latest' movie list (RFC 4180 CSV, with or without a header line).",
    ),
    RawLayout(
        "ratings.dat",
        "dat",
        (
            _raw("user_id", "MovieLens user id, as text."),
            _raw("movie_id", "MovieLens movie id, as text."),
            _raw("rating", "Stars as text: 0.5 .. 5 (10M) or 1 .. 5 (1M)."),
            _raw("timestamp", "Unix seconds (UTC) when the rating was submitted, as text."),
        ),
        "MovieLens ratings: user_id::movie_id::rating::unix_seconds (daily batches <YYYY-MM-DD>.dat alike).",
    ),
    RawLayout(
        "ratings.csv",
        "csv",
        (
            _raw("user_id", "MovieLens user id, as text (header userId)."),
            _raw("movie_id", "MovieLens movie id, as text (header movieId)."),
            _raw("rating", "Stars as text, 0.5 .. 5.0."),
            _raw("timestamp", "Unix seconds (UTC) when the rating was submitted, as text."),
        ),
        "MovieLens 'latest' ratings (RFC 4180 CSV, with or without a header line).",
    ),
    RawLayout(
        "user_masterdata.json",
        "json",
        (
            _raw("user_id", "User id as a string, as the master-data system sends it."),
            _raw("firts_name", "First name (the master-data key is really spelled 'firts_name')."),
            _raw("last_name", "Last name."),
        ),
        "User master data: JSON lines, or one JSON array (on one line or pretty-printed).",
    ),
    RawLayout(
        "users.dat",
        "dat",
        (
            _raw("user_id", "MovieLens user id, as text."),
            _raw("gender", "M or F."),
            _raw("age", "Age band code: 1, 18, 25, 35, 45, 50 or 56."),
            _raw("occupation", "Occupation code 0-20."),
            _raw("zip", "Zip code."),
        ),
        "MovieLens 1M users: user_id::gender::age::occupation::zip.",
    ),
)


def layout_for(file_name: str) -> RawLayout | None:
    for layout in RAW_LAYOUTS:
        if layout.file_name == file_name:
            return layout
    aliases = {"users_masterdata.json": "user_masterdata.json"}
    return layout_for(aliases[file_name]) if file_name in aliases else None


@dataclass(frozen=True)
class RawSniff:
    """What the first lines of a raw file say about it."""

    kind: str  # dat | csv | json | text
    columns: tuple[CatalogColumn, ...]
    storage: StorageFormat
    encoding: str
    header: bool
    document: bool = False  # records may span lines (a JSON array or pretty-printed objects, quoted CSV)


def sniff_raw(file_name: str, head: bytes) -> RawSniff:
    """Classify a raw file from its name and first bytes; columns from its layout or its content."""
    try:
        text = head.decode("utf-8")
        encoding = "UTF-8"
    except UnicodeDecodeError as error:
        if error.start > len(head) - 4:  # a multi-byte character cut at the end of the sample
            text, encoding = head[: error.start].decode("utf-8"), "UTF-8"
        else:
            text, encoding = head.decode("latin-1"), "ISO-8859-1"
    text = text.lstrip("\ufeff")
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if len(lines) > 1 and not head.endswith(b"\n"):
        lines = lines[:-1]  # the sample cut the last line
    layout = layout_for(file_name)
    first = lines[0] if lines else ""
    if file_name.endswith(".json") or first.lstrip().startswith(("{", "[")):
        document = bool(first) and layouts.json_starts_document(first)
        records = [r.text for r in layouts.parse_json_document(text).records] if document else lines
        return RawSniff("json", _json_columns(records, layout), JSON, encoding, header=False, document=document)
    if "::" in first:
        fields = max(len(line.split("::")) for line in lines)
        if layout and layout.kind == "dat" and len(layout.columns) == fields:
            columns = layout.columns
        else:
            columns = tuple(_raw(f"col{i}", f"Field {i} of the '::'-separated line.") for i in range(1, fields + 1))
        return RawSniff("dat", columns, dat_format(fields), encoding, header=False)
    if file_name.endswith(".csv") or "," in first:
        rows = [r.fields for r in layouts.parse_csv(text).records if r.fields]
        first_fields = list(rows[0]) if rows else []
        if layout is not None:  # a known layout: a header only when the first record is its column names
            header = layouts.is_header(first_fields, layouts.HEADERS.get(layout.dataset))
        else:  # an unknown file: a first record without a single number is a header
            header = bool(first_fields) and not any(_is_number(f) for f in first_fields)
        declared = {c.name: c for c in layout.columns} if layout else {}
        if header:
            names = [column_name(n.strip()) for n in first_fields]
            columns = tuple(declared.get(n) or _raw(n, "") for n in names)
        elif layout is not None:
            columns = layout.columns
        else:
            columns = tuple(_raw(f"col{i}", f"Field {i} of the CSV record.") for i in range(1, len(first_fields) + 1))
        storage = CSV if header else replace(CSV, table_parameters={})
        quoted = any('"' in line for line in lines)
        return RawSniff("csv", columns, storage, encoding, header=header, document=quoted)
    line_format = StorageFormat("text", TEXT_INPUT, TEXT_OUTPUT, "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe")
    return RawSniff("text", (_raw("line", "The whole line."),), line_format, encoding, header=False)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def column_name(header: str) -> str:
    """A header as a catalog column name: snake case, as Athena (which lower-cases names) reads it."""
    return re.sub(r"[^a-z0-9_]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", header).lower()).strip("_") or "col"


def _json_columns(lines: list[str], layout: RawLayout | None) -> tuple[CatalogColumn, ...]:
    """The keys of the sampled objects (JSON texts) in first-seen order, typed as Glue's JSON
    classifier would."""
    declared = {c.name: c for c in layout.columns} if layout else {}
    seen: dict[str, str] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        for key, value in record.items():
            seen[key] = _merge_json_type(seen.get(key), _json_type(value))
    return tuple(
        CatalogColumn(key, type_, declared[key].description if key in declared else "") for key, type_ in seen.items()
    )


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    return "string"


def _merge_json_type(old: str | None, new: str) -> str:
    if old is None or old == new:
        return new
    if {old, new} == {"bigint", "double"}:
        return "double"
    return "string"


# -- Parquet (Arrow) types as Hive/Athena types -----------------------------------------------------


def hive_type(arrow_type) -> str:
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_int8(arrow_type):
        return "tinyint"
    if t.is_int16(arrow_type):
        return "smallint"
    if t.is_int32(arrow_type) or t.is_uint16(arrow_type) or t.is_uint8(arrow_type):
        return "int"
    if t.is_integer(arrow_type):
        return "bigint"
    if t.is_float32(arrow_type):
        return "float"
    if t.is_floating(arrow_type):
        return "double"
    if t.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "string"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type):
        return "binary"
    if t.is_date(arrow_type):
        return "date"
    if t.is_timestamp(arrow_type):
        return "timestamp"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type):
        return f"array<{hive_type(arrow_type.value_type)}>"
    if t.is_map(arrow_type):
        return f"map<{hive_type(arrow_type.key_type)},{hive_type(arrow_type.item_type)}>"
    if t.is_struct(arrow_type):
        fields = ",".join(f"{f.name}:{hive_type(f.type)}" for f in arrow_type)
        return f"struct<{fields}>"
    if arrow_type == pa.null():
        return "string"
    return str(arrow_type)


PARTITION_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def partition_type(values: list[str]) -> str:
    """The type of a partition key from its folder values, when the code does not declare it."""
    if values and all(re.fullmatch(r"-?\d+", v) for v in values):
        return "int" if all(abs(int(v)) < 2**31 for v in values) else "bigint"
    return "string"
