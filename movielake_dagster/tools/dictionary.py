"""``docs/data_dictionary.md``: every table of every layer, every column with type, description, origin.

Generated, never edited by hand: descriptions and types come from ``datasets.py`` (Parquet
layers) and from the crawler's raw layouts (staging); how each table is registered (database,
format, SerDe, partition keys) from the catalog code; the origin of a column from the asset
graph (same-named columns of the upstream dataset) or, where a column is derived, from ``DERIVED``
below. ``movielake dictionary`` rewrites the file; ``movielake dictionary --check`` (and a test)
fails while the committed file is stale. ``--with-stats`` adds record counts from the catalog
for a one-off report (not for committing: counts change with the data).
"""

from __future__ import annotations

from pathlib import Path

from movielake_dagster.assets import ALL_ASSETS
from movielake_dagster.catalog.crawler import LAYER_DESCRIPTIONS
from movielake_dagster.catalog.formats import (
    CSV,
    JSON,
    RAW_LAYOUTS,
    RawLayout,
    dat_format,
)
from movielake_dagster.datasets import DECLARED_DATASETS, Dataset
from movielake_dagster.lake import LAYERS

DICTIONARY_PATH = Path(__file__).resolve().parents[2] / "docs" / "data_dictionary.md"

# Staging folder -> the raw layouts it may hold (SPEC "Inputs").
STAGING_FILES = {
    "movies": ("movies.dat", "movies.csv"),
    "ratings": ("ratings.dat", "ratings.csv"),
    "users": ("user_masterdata.json", "users.dat"),
}

# Columns that are computed rather than carried over under the same name.
DERIVED: dict[tuple[str, str, str], str] = {
    ("cleanse", "movies", "movie_id"): "staging.movies `movie_id`, cast to int",
    ("cleanse", "movies", "title"): "staging.movies `title`, year removed and trimmed",
    ("cleanse", "movies", "year"): "staging.movies `title`: the last `(YYYY)`",
    ("cleanse", "movies", "genres"): "staging.movies `genres`, split on `|`",
    ("cleanse", "movies", "raw_title"): "staging.movies `title`, unchanged",
    ("cleanse", "users", "user_id"): "staging.users `user_id`, cast to int",
    ("cleanse", "users", "first_name"): "staging.users `firts_name` (or `first_name`)",
    ("cleanse", "users", "last_name"): "staging.users `last_name`",
    ("cleanse", "users", "gender"): "staging.users users.dat `gender`",
    ("cleanse", "users", "age_group"): "staging.users users.dat `age`, as a band",
    ("cleanse", "users", "occupation"): "staging.users users.dat `occupation`, code as text",
    ("cleanse", "users", "zip"): "staging.users users.dat `zip`",
    ("cleanse", "ratings", "user_id"): "staging.ratings `user_id`, cast to int; must be in cleanse.users",
    ("cleanse", "ratings", "movie_id"): "staging.ratings `movie_id`, cast to int; must be in cleanse.movies",
    ("cleanse", "ratings", "rating"): "staging.ratings `rating`, cast to double",
    ("cleanse", "ratings", "rated_at"): "staging.ratings `timestamp` (unix seconds)",
    ("cleanse", "ratings", "rating_date"): "date of `rated_at`",
    ("access", "bridge_movie_genre", "genre"): "cleanse.movies `genres`, one row per element",
    ("access", "fct_rating", "date_key"): "cleanse.ratings `rating_date` as yyyymmdd",
    ("access", "fct_rating", "hour_of_day"): "hour of cleanse.ratings `rated_at`",
    ("access", "fct_rating", "rating_year"): "year of cleanse.ratings `rated_at`",
    ("access", "dim_date", "date_key"): "`date` as yyyymmdd",
}


def _upstream() -> dict[str, list[Dataset]]:
    """Each Parquet dataset's upstream datasets, from the asset graph."""

    parents_of = {key: deps for asset in ALL_ASSETS for key, deps in asset.asset_deps.items()}
    by_key = {d.asset_key: d for d in DECLARED_DATASETS}
    result: dict[str, list[Dataset]] = {}
    for dataset in DECLARED_DATASETS:
        parents = sorted(parents_of.get(dataset.asset_key, ()), key=lambda k: k.to_user_string())
        result[f"{dataset.layer}.{dataset.name}"] = [by_key[k] for k in parents if k in by_key]
    return result


def column_origin(dataset: Dataset, column: str, upstream: dict[str, list[Dataset]]) -> str:
    derived = DERIVED.get((dataset.layer, dataset.name, column))
    if derived:
        return derived
    if dataset.name.startswith("quarantine_"):
        return f"set by the cleanse of staging.{dataset.name.removeprefix('quarantine_')}"
    parents = upstream.get(f"{dataset.layer}.{dataset.name}", [])
    for parent in parents:
        if column in parent.column_names:
            return f"{parent.layer}.{parent.name} `{column}`"
    if dataset.name == "dim_date":
        return "calendar from the first to the last cleanse.ratings `rating_date`"
    return "computed in " + (", ".join(f"{p.layer}.{p.name}" for p in parents) or "the asset")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _storage_line(storage) -> str:
    line = f"{storage.classification} (SerDe `{storage.serde.rsplit('.', 1)[-1]}`"
    if "input.regex" in storage.serde_parameters:
        line += f", `input.regex` = `{storage.serde_parameters['input.regex']}`"
    if storage.table_parameters:
        line += ", " + ", ".join(f"`{k}` = {v}" for k, v in storage.table_parameters.items())
    return line + ")"


def _layout_storage(layout: RawLayout):
    return {"dat": lambda: dat_format(len(layout.columns)), "csv": lambda: CSV, "json": lambda: JSON}[layout.kind]()


def render_dictionary(stats: dict[str, object] | None = None) -> str:
    """The Markdown dictionary; ``stats`` (table -> CatalogTable) adds crawled counts when given."""
    upstream = _upstream()
    out = [
        "# Data dictionary",
        "",
        "<!-- Generated by `movielake dictionary` from movielake_dagster/datasets.py and the catalog code."
        " Do not edit by hand. -->",
        "",
        "Every table the crawler registers, by layer. In the catalog (local or AWS Glue) and in SQL "
        "(`movielake query`, Athena) a table is `<database>.<table>`, the database being the layer. "
        "Locations are relative to the layer's folder (local lake) or bucket (S3 lake). "
        "Types are Hive/Athena types (the same names as Spark SQL).",
        "",
    ]
    for layer in LAYERS:
        datasets = [d for d in DECLARED_DATASETS if d.layer == layer]
        out += [f"## Database `{layer}`", "", LAYER_DESCRIPTIONS[layer], ""]
        out += [
            "| table | location | format | rows |" if stats else "| table | location | format |",
            "|---|---|---|---|" if stats else "|---|---|---|",
        ]
        for d in datasets:
            fmt = (
                "raw files"
                if d.format == "raw"
                else "Iceberg table" + (f", partitioned by {', '.join(d.partition_by)}" if d.partition_by else "")
            )
            row = f"| [`{layer}.{d.name}`](#{layer}{d.name}) | `{d.key}/` | {fmt} |"
            if stats:
                table = stats.get(f"{layer}.{d.name}")
                row += f" {table.record_count if table else 'not crawled'} |"
            out.append(row)
        out.append("")
        for d in datasets:
            out += _table_section(d, upstream, stats)
    return "\n".join(out).rstrip() + "\n"


def _table_section(d: Dataset, upstream, stats) -> list[str]:
    out = [f"### `{d.layer}.{d.name}`", "", d.description, "", f"- Location: `{d.layer}/{d.key}/`"]
    if stats and stats.get(f"{d.layer}.{d.name}") is not None:
        table = stats[f"{d.layer}.{d.name}"]
        out.append(
            f"- Crawled: {table.record_count} records, {table.size_bytes} bytes, "
            f"{len(table.partitions)} partitions, last crawl {table.last_crawled}"
        )
    if d.format == "raw":
        out += [
            "- Format: raw text, registered per the file that landed; every field is a string "
            "(unparsed, exactly as it sits in the file)",
            "",
        ]
        for file_name in STAGING_FILES.get(d.name, ()):
            layout = next(layout for layout in RAW_LAYOUTS if layout.file_name == file_name)
            out += [
                f"#### `{file_name}`: {layout.description}",
                "",
                f"Format: {_storage_line(_layout_storage(layout))}",
                "",
                "| column | type | description | origin |",
                "|---|---|---|---|",
            ]
            out += [
                f"| `{c.name}` | {c.type} | {_cell(c.description)} | landed file `{file_name}` |"
                for c in layout.columns
            ]
            out.append("")
        return out
    out.append(
        "- Format: Apache Iceberg table (format version 2, Parquet data files, zstd), "
        f"`lake.{d.layer}.{d.name}` in Spark; merge-on-read deletes"
    )
    if d.primary_key:
        out.append(f"- Primary key: {', '.join(f'`{c}`' for c in d.primary_key)}")
    for column, target in d.foreign_keys.items():
        out.append(f"- Foreign key: `{column}` -> `{d.layer}.{target}`")
    if d.partition_by:
        out.append(
            f"- Partitioned by: {', '.join(f'`{c}`' for c in d.partition_by)} "
            "(Iceberg identity partitions: a query filtering on it reads only those files)"
        )
    out += ["", "| column | type | nullable | description | origin |", "|---|---|---|---|---|"]
    for c in d.columns:
        key = " (partition source)" if c.name in d.partition_by else ""
        out.append(
            f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {_cell(c.description)}{key} "
            f"| {_cell(column_origin(d, c.name, upstream))} |"
        )
    out.append("")
    return out


def write_dictionary(path: Path = DICTIONARY_PATH, stats: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_dictionary(stats), encoding="utf-8")
    return path


def is_stale(path: Path = DICTIONARY_PATH) -> bool:
    return not path.exists() or path.read_text(encoding="utf-8") != render_dictionary()
