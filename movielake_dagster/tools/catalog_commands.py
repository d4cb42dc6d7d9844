"""The catalog's command-line commands: ``movielake crawl``, ``query``, ``history``, ``rollback``, ``dictionary``.

``cli.py`` adds them with :func:`add_commands`; ``movielake run`` answers the SPEC's questions with
:func:`answer_questions` (crawl, then SQL through the catalog).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from movielake_dagster.catalog import (
    Catalog,
    CrawlReport,
    IcebergCatalog,
    LakeFiles,
    build_crawler,
    iceberg_catalog,
    open_catalog,
)
from movielake_dagster.catalog.iceberg import (
    ICEBERG_LAYERS,
    RUN_BRANCH_PREFIX,
    rollback,
    run_branch,
    snapshot_history,
)
from movielake_dagster.code_location import build_resources
from movielake_dagster.errors import ConfigurationError
from movielake_dagster.lake import LAYERS, LakeLocation, ObjectStore
from movielake_dagster.settings import Settings
from movielake_dagster.tools.dictionary import (
    DICTIONARY_PATH,
    is_stale,
    write_dictionary,
)
from movielake_dagster.tools.questions import (
    EXAMPLE_MOVIE_SQL,
    EXAMPLE_USER_SQL,
    QUESTIONS,
    render,
)
from movielake_dagster.tools.sql import QueryError, SqlEngine, TimeTravel, is_read_only


def catalog_for(settings: Settings) -> tuple[Catalog, LakeLocation, ObjectStore]:
    location = LakeLocation.parse(settings.lake)
    store = build_resources(settings)["lake"].store
    return (
        open_catalog(settings.catalog, location, settings.catalog_path, settings.glue_endpoint, settings.region),
        location,
        store,
    )


def iceberg_for(settings: Settings) -> IcebergCatalog:
    return iceberg_catalog(
        settings.catalog,
        LakeLocation.parse(settings.lake),
        settings.catalog_path,
        settings.glue_endpoint,
        settings.region,
        settings.s3_endpoint,
    )


def crawl(settings: Settings, layers=LAYERS) -> list[CrawlReport]:
    catalog, location, store = catalog_for(settings)
    crawler = build_crawler(location, store, catalog, iceberg_for(settings))
    return [crawler.crawl(layer) for layer in layers]


def sql_engine(settings: Settings, travel=None):

    catalog, _, store = catalog_for(settings)
    return SqlEngine(catalog, LakeFiles(store), iceberg_for(settings), travel=travel)


def iceberg_table_named(settings: Settings, qualified: str):
    """The pyiceberg table named ``layer.name`` (or a bare name, looked up in access, then cleanse)."""
    iceberg = iceberg_for(settings)
    layer, _, name = qualified.rpartition(".")
    candidates = [layer] if layer else ["access", "cleanse"]
    if layer and layer not in ICEBERG_LAYERS:
        raise ConfigurationError(
            f"{qualified} is not an Iceberg table (staging holds the raw files)",
            "name a cleanse or access table, e.g. access.fct_rating",
        )
    for candidate in candidates:
        table = iceberg.table(candidate, name)
        if table is not None:
            return f"{candidate}.{name}", table
    known = ", ".join(f"{a}.{b}" for a, b in iceberg.tables()) or "none yet (run `movielake run`)"
    raise ConfigurationError(f"there is no table {qualified} in the {iceberg.describe()}", f"use one of: {known}")


def answer_questions(settings: Settings, movie_id: int | None, user_id: int | None) -> list:
    """Crawl the lake, then run the SPEC's questions in SQL through the catalog: (question, columns, rows)."""

    crawl(settings)
    engine = sql_engine(settings)
    try:
        if movie_id is None:  # an empty lake has no example: the questions then answer no rows
            movie_id = next(iter(engine.query(EXAMPLE_MOVIE_SQL).rows), (None,))[0]
        if user_id is None:
            user_id = next(iter(engine.query(EXAMPLE_USER_SQL).rows), (None,))[0]
        answers = []
        for question in QUESTIONS:
            text, sql = render(question, movie_id, user_id)
            result = engine.query(sql)
            answers.append((text, result.columns, result.rows))
        return answers
    finally:
        engine.close()


def _human_bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def print_report(report: CrawlReport) -> None:
    print(f"{report.layer}: {len(report.tables)} tables in {report.catalog} ({report.seconds:.2f} s)")
    rows = []
    for table in report.tables:
        change = report.change_for(table.qualified_name)
        rows.append(
            (
                table.qualified_name,
                table.classification,
                table.record_count,
                _human_bytes(table.size_bytes),
                len(table.partitions) or "",
                change.summary().split(": ", 1)[1] if change else "",
            )
        )
    for change in report.changes:
        if change.kind == "removed":
            rows.append((change.table, "", "", "", "", "table removed"))
    print(tabulate(rows, headers=["table", "format", "records", "size", "partitions", "since last crawl"]))
    for warning in report.warnings:
        print(f"movielake: warning: {warning}", file=sys.stderr)
    print()


def cmd_crawl(args: argparse.Namespace) -> int:
    settings = Settings.from_env(lake=args.lake)
    layers = [args.layer] if args.layer else list(LAYERS)
    if args.layer and args.layer not in LAYERS:
        raise ConfigurationError(f"there is no layer {args.layer!r}", f"use --layer with one of {', '.join(LAYERS)}")
    for report in crawl(settings, layers):
        print_report(report)
    return 0


def cmd_query(args: argparse.Namespace) -> int:

    if not is_read_only(args.sql):
        raise QueryError(
            "movielake query runs one read-only statement (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN)",
            "write a single SELECT; the lake is changed only by its Dagster assets",
        )
    travel = TimeTravel.parse(args.as_of, _branch_name(args.branch))
    engine = sql_engine(Settings.from_env(lake=args.lake), travel)
    try:
        result = engine.query(args.sql)
    finally:
        engine.close()
    shown = result.rows if args.max_rows <= 0 else result.rows[: args.max_rows]
    print(tabulate(shown, headers=result.columns, tablefmt="psql", missingval="NULL", disable_numparse=True))
    more = f", showing the first {len(shown)}" if len(shown) < len(result.rows) else ""
    print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''}{more}; {result.seconds:.3f} s)")
    if travel != TimeTravel():
        read = ", ".join(
            f"{name}@{snapshot if snapshot is not None else 'empty'}"
            for name, snapshot in sorted(engine.read_snapshots.items())
        )
        print(f"(read as of {args.as_of or 'now'}{' on branch ' + travel.branch if travel.branch else ''}: {read})")
    return 0


def cmd_dictionary(args: argparse.Namespace) -> int:

    path = Path(args.output) if args.output else DICTIONARY_PATH
    if args.check:
        if is_stale(path):
            print(f"movielake: error: {path} is stale -> run `movielake dictionary` and commit it", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    stats = None
    if args.with_stats:
        stats = {t.qualified_name: t for report in crawl(Settings.from_env(lake=args.lake)) for t in report.tables}
    print(f"wrote {write_dictionary(path, stats)}")
    return 0


def _branch_name(run: str | None) -> str:
    """``--branch`` takes a run's branch name (``run_<first 8 of its id>``) or the run id itself."""

    if not run:
        return ""
    return run if run.startswith(RUN_BRANCH_PREFIX) or run == "main" else run_branch(run)


def cmd_history(args: argparse.Namespace) -> int:
    """Every snapshot the table keeps, oldest first: time, operation, rows added/removed, the run."""
    name, table = iceberg_table_named(Settings.from_env(lake=args.lake), args.table)
    rows = [
        (
            s.committed_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(s.snapshot_id),
            s.operation,
            f"+{s.added_records}",
            f"-{s.deleted_records}",
            s.total_records,
            s.run_id[:8] or "",
            ", ".join(s.refs) + ("" if s.is_current_ancestor else " (not on main)"),
        )
        for s in snapshot_history(table)
    ][-args.limit :]
    print(f"{name}: {len(table.metadata.snapshots)} snapshots kept, current {table.metadata.current_snapshot_id}")
    print(
        tabulate(
            rows,
            headers=["committed (UTC)", "snapshot", "operation", "added", "removed", "rows", "dagster run", "refs"],
            disable_numparse=True,
        )
    )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Make an earlier snapshot the table's current one (one catalog commit; no data is rewritten)."""
    name, table = iceberg_table_named(Settings.from_env(lake=args.lake), args.table)
    before, after = rollback(table, args.to)
    if before == after:
        print(f"{name} is already at snapshot {after}")
    else:
        print(
            f"{name}: current snapshot {before} -> {after} (`movielake history {name}` lists both; "
            f"`movielake rollback {name} --to {before}` undoes this)"
        )
    return 0


def add_commands(commands) -> None:
    """Add ``crawl``, ``query`` and ``dictionary`` to the ``movielake`` sub-command parser."""
    crawl_parser = commands.add_parser("crawl", help="register the lake's tables in the catalog and report changes")
    crawl_parser.add_argument("--layer", choices=LAYERS, help="crawl only this layer; default: all three")
    crawl_parser.add_argument("--lake", help="lake location; default MOVIELAKE_LAKE or .movielake/lake")
    crawl_parser.set_defaults(handler=cmd_crawl)

    query = commands.add_parser("query", help="run SQL on the lake's tables (default schema: access)")
    query.add_argument("sql", help='e.g. "SELECT hour_of_day, COUNT(*) FROM access.fct_rating GROUP BY 1"')
    query.add_argument("--lake", help="lake location; default MOVIELAKE_LAKE or .movielake/lake")
    query.add_argument("--max-rows", type=int, default=100, help="rows to print (0: all); default 100")
    query.add_argument(
        "--as-of",
        metavar="TIMESTAMP|SNAPSHOT",
        help="answer as of then: an ISO time (UTC) or a snapshot id from `movielake history`",
    )
    query.add_argument(
        "--branch",
        metavar="RUN",
        help="read a run's branch (its id, or run-<id>): what a failed run wrote but did not publish",
    )
    query.set_defaults(handler=cmd_query)

    history = commands.add_parser("history", help="list a table's snapshots: time, operation, rows, run")
    history.add_argument("table", help="an Iceberg table: access.fct_rating, cleanse.ratings, ...")
    history.add_argument("--limit", type=int, default=50, help="the latest N snapshots; default 50")
    history.add_argument("--lake", help="lake location; default MOVIELAKE_LAKE or .movielake/lake")
    history.set_defaults(handler=cmd_history)

    rollback_parser = commands.add_parser("rollback", help="make an earlier snapshot of a table current again")
    rollback_parser.add_argument("table", help="an Iceberg table: access.fct_rating, cleanse.ratings, ...")
    rollback_parser.add_argument(
        "--to", type=int, required=True, metavar="SNAPSHOT", help="the snapshot id (from `movielake history`)"
    )
    rollback_parser.add_argument("--lake", help="lake location; default MOVIELAKE_LAKE or .movielake/lake")
    rollback_parser.set_defaults(handler=cmd_rollback)

    dictionary = commands.add_parser("dictionary", help="write docs/data_dictionary.md from the code and catalog")
    dictionary.add_argument("--check", action="store_true", help="fail if the file is not what would be written")
    dictionary.add_argument("--output", help="where to write; default docs/data_dictionary.md in the repo")
    dictionary.add_argument(
        "--with-stats",
        action="store_true",
        help="add crawled record counts from the catalog (a one-off report; do not commit)",
    )
    dictionary.add_argument("--lake", help="lake location for --with-stats")
    dictionary.set_defaults(handler=cmd_dictionary)
