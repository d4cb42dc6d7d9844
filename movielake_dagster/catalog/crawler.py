"""The crawler: one layer's files in, that layer's database of tables out, plus what changed.

Like a Glue crawler it lists the layer, groups files into tables (each dataset declared in
``datasets.py`` by its key; any other folder of data files as a discovered table), infers each
table's columns and types from the files themselves (Parquet footers; the first lines of raw
files), and registers the tables in the layer's database with the descriptions declared in code.
Data whose files did not change since the last crawl (same sizes and ETags/mtimes) is not read again.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from movielake_dagster.catalog.backend import Catalog
from movielake_dagster.catalog.files import LakeFiles, is_hidden
from movielake_dagster.catalog.formats import (
    ICEBERG,
    PARTITION_SEGMENT,
    RAW_LAYOUTS,
    layout_for,
    sniff_raw,
)
from movielake_dagster.catalog.iceberg import (
    ICEBERG_LAYERS,
    IcebergCatalog,
    bookmark,
    iceberg_change,
    iceberg_table,
    iter_tables,
)
from movielake_dagster.catalog.model import (
    CRAWLER_NAME,
    CatalogTable,
    CrawlReport,
    TableChange,
)
from movielake_dagster.datasets import DECLARED_DATASETS, Dataset
from movielake_dagster.errors import ConfigurationError
from movielake_dagster.lake import LAYERS, FileInfo, LakeLocation
from movielake_dagster.transforms import layouts

LAYER_DESCRIPTIONS = {
    "staging": "The raw files exactly as they landed (movielake staging layer).",
    "cleanse": "Typed, cleansed Parquet datasets and the quarantine of rejected records (movielake cleanse layer).",
    "access": "The ratings star schema for SQL users (movielake access layer).",
}


def table_name(folder: str) -> str:
    """A catalog name for a discovered folder: what Glue and Athena accept (lower case, digits, ``_``)."""
    return re.sub(r"[^a-z0-9_]+", "_", folder.lower()).strip("_") or "unnamed"


def declared_datasets(layer: str) -> list[Dataset]:
    return [d for d in DECLARED_DATASETS if d.layer == layer]


@dataclass
class _Group:
    """The files of one table: a declared dataset or a discovered folder."""

    key: str
    name: str
    dataset: Dataset | None
    files: list[tuple[str, FileInfo]] = field(default_factory=list)  # (key relative to the table, file)


class Crawler:
    """Registers a layer's tables and reports what changed since the last crawl.

    Staging holds raw files: the crawler registers them (columns, layout, encoding, record counts) in
    its catalog, as a Glue crawler would. The cleanse and access layers are Iceberg tables: the Iceberg
    catalog already registers them, with their schema history, snapshots and statistics, so the
    crawler reads them from there (``iceberg``), reports the changes since its last crawl from
    Iceberg's own schema history and snapshots, and keeps only a bookmark per table (the snapshot and
    schema it last saw) instead of writing the metadata a second time.
    """

    def __init__(self, location: LakeLocation, files: LakeFiles, catalog: Catalog, iceberg: IcebergCatalog):
        self.location = location
        self.files = files
        self.catalog = catalog
        self.iceberg = iceberg

    def crawl(self, layer: str) -> CrawlReport:
        if layer not in LAYERS:
            raise ConfigurationError(f"there is no layer {layer!r}", f"crawl one of {', '.join(LAYERS)}")
        clock = time.perf_counter()
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        warnings: list[str] = []
        self.catalog.ensure_database(layer, LAYER_DESCRIPTIONS[layer])
        if layer in ICEBERG_LAYERS:
            tables, changes = self._crawl_iceberg(layer, now, warnings)
            return self._record(layer, now, clock, tables, changes, warnings)
        previous = {t.name: t for t in self.catalog.list_tables(layer)}
        groups = self._group(layer, warnings)
        tables, changes = [], []
        for group in groups:
            before = previous.get(group.name)
            table = self._table(layer, group, before, now, warnings)
            change = diff_tables(before, table)
            self.catalog.put_table(
                table,
                partitions_changed=bool(
                    before is None
                    or change.partitions_added
                    or change.partitions_removed
                    or change.data_changed
                    or change.other
                    or change.partition_keys_changed
                ),
            )
            tables.append(table)
            changes.append(change)
        discovered = {g.name for g in groups}
        for name, table in sorted(previous.items()):
            if name not in discovered and table.crawler == CRAWLER_NAME:
                self.catalog.delete_table(layer, name)
                changes.append(TableChange(table.qualified_name, "removed"))
        return self._record(layer, now, clock, tables, changes, warnings)

    def _record(self, layer: str, now: str, clock: float, tables: list, changes: list, warnings: list) -> CrawlReport:
        """The crawl's report, kept by the catalog (``clock``: ``perf_counter`` when the crawl began)."""
        report = CrawlReport(
            layer,
            self.catalog.describe(),
            now,
            time.perf_counter() - clock,
            tuple(tables),
            tuple(changes),
            tuple(warnings),
        )
        self.catalog.record_crawl(report)
        return report

    # -- Iceberg layers ------------------------------------------------------------------------
    def _crawl_iceberg(self, layer: str, now: str, warnings: list[str]) -> tuple[list, list]:
        """Every Iceberg table of the layer, with the changes since the bookmark of the last crawl."""
        bookmarks = self.catalog.get_bookmarks(layer)
        tables, changes, seen = [], [], {}
        for _, name, table in iter_tables(self.iceberg, (layer,)):
            entry = iceberg_table(layer, name, table, now)
            before = bookmarks.get(name)
            changes.append(iceberg_change(entry.qualified_name, table, before))
            dataset = next((d for d in declared_datasets(layer) if d.name == name), None)
            if dataset is not None:
                warnings.extend(contract_drift(dataset, entry))
            else:
                warnings.append(f"{layer}.{name}: an Iceberg table not declared in datasets.py")
            tables.append(entry)
            seen[name] = bookmark(table)
        for name in sorted(set(bookmarks) - set(seen)):
            changes.append(TableChange(f"{layer}.{name}", "removed"))
        self._drop_stale_registrations(layer, seen, warnings)
        self.catalog.put_bookmarks(layer, seen)
        return tables, changes

    def _drop_stale_registrations(self, layer: str, iceberg_names: dict, warnings: list[str]) -> None:
        """Tables an earlier (Parquet) crawl registered in this layer's database: Iceberg owns the layer
        now, so they go (a Glue table of the same name would also block the Iceberg table's creation)."""
        for table in self.catalog.list_tables(layer):
            if table.crawler == CRAWLER_NAME and table.classification != ICEBERG:
                self.catalog.delete_table(layer, table.name)
                warnings.append(
                    f"{layer}.{table.name}: removed the registration of an earlier crawl "
                    f"({table.classification} files); the layer's tables are Iceberg tables now"
                )

    # -- discovery -----------------------------------------------------------------------------
    def _group(self, layer: str, warnings: list[str]) -> list[_Group]:
        root = self.location.uri(layer)
        datasets = sorted(declared_datasets(layer), key=lambda d: len(d.key), reverse=True)
        groups: dict[str, _Group] = {}
        for info in self.files.list(root):
            relative = info.uri[len(root) :].lstrip("/")
            dataset = next((d for d in datasets if relative.startswith(d.key.rstrip("/") + "/")), None)
            if is_hidden(relative):
                continue
            if dataset is not None:
                group = groups.setdefault(dataset.key, _Group(dataset.key, dataset.name, dataset))
                group.files.append((relative[len(dataset.key) + 1 :], info))
            else:
                folder = relative.rpartition("/")[0]
                parts = folder.split("/") if folder else []
                while parts and PARTITION_SEGMENT.match(parts[-1]):
                    parts.pop()
                if not parts:
                    warnings.append(f"{layer}: {relative} is outside any dataset folder; not registered")
                    continue
                key = "/".join(parts)
                name = table_name(parts[-1])
                group = groups.setdefault(key, _Group(key, name, None))
                group.files.append((relative[len(key) + 1 :], info))
        names: dict[str, str] = {}
        for group in sorted(groups.values(), key=lambda g: (g.dataset is None, g.key)):
            if group.name in names:  # two discovered folders with the same last segment
                group.name = table_name(group.key)
            names[group.name] = group.key
            if group.dataset is None:
                warnings.append(f"{layer}.{group.name}: discovered at {group.key}/ but not declared in datasets.py")
        return sorted(groups.values(), key=lambda g: g.name)

    # -- one table -----------------------------------------------------------------------------
    def _table(
        self, layer: str, group: _Group, before: CatalogTable | None, now: str, warnings: list[str]
    ) -> CatalogTable:
        location = self._folder_uri(layer, group.key)
        data_files = group.files
        fingerprint = hashlib.sha256(
            "\n".join(
                f"{rel}\t{info.size}\t{info.etag}" for rel, info in sorted(data_files, key=lambda x: x[0])
            ).encode()
        ).hexdigest()[:20]
        description = (
            group.dataset.description if group.dataset else "Discovered by the crawler; not declared in datasets.py."
        )
        base = {
            "database": layer,
            "name": group.name,
            "description": description,
            "location": location,
            "fingerprint": fingerprint,
            "last_crawled": now,
            "dataset_key": group.dataset.key if group.dataset else "",
            "size_bytes": sum(f.size for _, f in data_files),
            "files": len(data_files),
        }
        if before is not None and before.fingerprint == fingerprint and before.location == location:
            # Same files as last time: keep what was read from them, refresh what comes from code.
            return before.with_changes(**{k: v for k, v in base.items() if k != "description"})
        return self._raw_table(group, base, warnings)

    def _folder_uri(self, layer: str, key: str) -> str:
        uri = self.location.uri(layer, key)
        return uri + "/" if uri.startswith("s3://") else uri

    def _raw_table(self, group: _Group, base: dict, warnings: list[str]) -> CatalogTable:
        def priority(item):
            relative = item[0]
            name = relative.rpartition("/")[2]
            layout = layout_for(name)
            return (RAW_LAYOUTS.index(layout) if layout else len(RAW_LAYOUTS), relative)

        files = sorted(group.files, key=priority)
        sniffs = [
            (relative, info, sniff_raw(relative.rpartition("/")[2], self.files.head(info.uri)))
            for relative, info in files
        ]
        primary = sniffs[0][2]
        records, names, others, utf8 = 0, [], [], True
        for relative, info, sniff in sniffs:
            if (
                sniff.kind == primary.kind
                and len(sniff.columns) == len(primary.columns)
                and layout_for(relative.rpartition("/")[2]) is None
            ):
                sniff = primary  # e.g. daily batches 2026-11-01.dat beside ratings.dat: the same layout
            if sniff.kind != primary.kind or sniff.columns != primary.columns:
                others.append(relative)
                continue
            names.append(relative)
            lines, file_utf8, blank = self.files.scan_text(info.uri)
            if sniff.document:  # records span lines: count them as the cleansing step reads them
                text = self.files.read_text(info.uri, "utf-8" if file_utf8 else "latin-1")
                parsed = layouts.records_in(text, sniff.kind)
                records += len(parsed.records) - (1 if sniff.header and sniff.kind == "csv" else 0)
            else:
                records += lines - blank - (1 if sniff.header else 0)
            utf8 = utf8 and file_utf8
        if others:
            warnings.append(
                f"staging.{group.name}: {', '.join(others)} has another layout than {names[0]}; "
                f"the table describes {', '.join(names)} (Athena reads every file in the folder)"
            )
        encoding = "UTF-8" if utf8 else "ISO-8859-1"
        parameters = {"encoding": encoding, "files": ",".join(names)}
        storage = primary.storage
        if not utf8:  # Hive's text SerDes decode with this; DuckDB's readers are told in sql.py
            storage = replace(
                storage, serde_parameters={**storage.serde_parameters, "serialization.encoding": encoding}
            )
        if others:
            parameters["other_files"] = ",".join(others)
        description = base.pop("description")
        known = {layout_for(n.rpartition("/")[2]) for n in names} - {None}
        if known:
            description += " Layout: " + " ".join(sorted(layout.description for layout in known))
        if primary.header:
            parameters["header"] = "true"
        if any(s.document for _, _, s in sniffs):
            parameters["records_span_lines"] = "true"
            if primary.kind == "json":
                warnings.append(
                    f"staging.{group.name}: {', '.join(names)} holds JSON records over several lines "
                    "(an array or pretty-printed objects); Athena's JSON SerDe reads one object per line, "
                    "so query the cleansed table instead"
                )
        return CatalogTable(
            **base,
            description=description,
            storage=storage,
            columns=primary.columns,
            record_count=records,
            parameters=parameters,
        )


def _sortable(values: tuple[str, ...]):
    return tuple((0, int(v), "") if v.lstrip("-").isdigit() else (1, 0, v) for v in values)


def contract_drift(dataset: Dataset, table: CatalogTable) -> list[str]:
    """Where the stored files differ from the columns and types declared in datasets.py."""
    found = {c.name: c.type for c in (*table.columns, *table.partition_keys)}
    declared = {c.name: c.type for c in dataset.columns}
    problems = []
    for name, type_ in declared.items():
        if name not in found:
            problems.append(f"{table.qualified_name}: declared column {name} is not in the files")
        elif found[name] != type_:
            problems.append(f"{table.qualified_name}: column {name} is {found[name]} in the files, declared {type_}")
    for name in found:
        if name not in declared:
            problems.append(f"{table.qualified_name}: column {name} is in the files but not declared")
    return problems


def diff_tables(before: CatalogTable | None, after: CatalogTable) -> TableChange:
    if before is None:
        return TableChange(
            after.qualified_name,
            "added",
            columns_added=tuple(c.name for c in after.columns),
            partitions_added=tuple("/".join(p.values) for p in after.partitions),
            data_changed=True,
        )
    old = {c.name: c.type for c in before.columns}
    new = {c.name: c.type for c in after.columns}
    old_parts = {"/".join(p.values) for p in before.partitions}
    new_parts = {"/".join(p.values) for p in after.partitions}
    other = []
    if before.location != after.location:
        other.append(f"location {before.location} -> {after.location}")
    if before.classification != after.classification:
        other.append(f"format {before.classification} -> {after.classification}")
    change = TableChange(
        after.qualified_name,
        "updated",
        columns_added=tuple(n for n in new if n not in old),
        columns_removed=tuple(n for n in old if n not in new),
        columns_retyped=tuple((n, old[n], new[n]) for n in new if n in old and old[n] != new[n]),
        partition_keys_changed=[(c.name, c.type) for c in before.partition_keys]
        != [(c.name, c.type) for c in after.partition_keys],
        partitions_added=tuple(sorted(new_parts - old_parts)),
        partitions_removed=tuple(sorted(old_parts - new_parts)),
        data_changed=before.fingerprint != after.fingerprint,
        other=tuple(other),
    )
    return change if change.changed else TableChange(after.qualified_name, "unchanged")
