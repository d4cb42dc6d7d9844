"""``movielake``: build the lake and ask it questions from the command line.

Every command prints one line ``movielake: error: <problem> -> <fix>`` and exits non-zero on a
problem the user can fix, instead of a stack trace.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tabulate import tabulate

from movielake_dagster.errors import ConfigurationError, MovielakeError
from movielake_dagster.settings import SPARK_ENGINES, Settings
from movielake_dagster.tools.bench import format_report, run_bench
from movielake_dagster.tools.bench_cold import (
    DEFAULT_NOTEBOOK,
    cold_compare,
    parse_sizes,
    scale_curve,
)
from movielake_dagster.tools.catalog_commands import add_commands, answer_questions
from movielake_dagster.tools.doctor import report, run_checks
from movielake_dagster.tools.generate import GeneratorSpec, generate_dataset
from movielake_dagster.tools.progress import Progress
from movielake_dagster.tools.runner import (
    asset_rows,
    check_rows,
    check_summary,
    failed_error_checks,
    materialize_all,
    step_error,
)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(landing=getattr(args, "raw", None), lake=getattr(args, "lake", None))


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(f"movielake: building the lake at {settings.lake} from {settings.landing}", flush=True)
    progress = None if args.quiet else Progress()
    result, _resources = materialize_all(settings, verbose=args.verbose, progress=progress)
    if progress is not None:
        print(progress.summary())
        print()
    print(tabulate(asset_rows(result), headers=["asset", "rows (or bytes)", "location"]))
    checks = check_rows(result)
    if checks:
        print()
        print(tabulate(check_summary(checks), headers=["asset", "checks passed", "failed (severity: rows)"]))
    for asset, check, severity, outcome, failed in checks:
        if outcome == "FAIL" and severity == "WARN":
            print(f"movielake: warning: check {asset}:{check} failed ({failed} rows)", file=sys.stderr)
    failed_checks = failed_error_checks(result)
    if failed_checks:
        print(
            f"movielake: error: {len(failed_checks)} ERROR check(s) failed: {', '.join(failed_checks)} "
            "-> see the checks' metadata (failing rows and rule) in the Dagster UI or the table above",
            file=sys.stderr,
        )
        return 1
    if not result.success:
        for event in result.get_step_failure_events():
            print(
                f"movielake: error: step {event.step_key} failed: {step_error(event.event_specific_data.error)}",
                file=sys.stderr,
            )
        return 1
    print()
    for text, columns, rows in answer_questions(settings, args.movie_id, args.user_id):
        print(f"Q: {text}")
        print(tabulate(rows, headers=columns))
        print()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """One line per check; a problem names its fix. Exit status 1 when there is any problem."""

    findings = run_checks(_settings(args))
    print(report(findings))
    return 0 if all(f.ok for f in findings) else 1


def cmd_generate(args: argparse.Namespace) -> int:
    """Deterministic synthetic raw files (MovieLens-10M shape by default) into ``--out``."""
    import time
    from pathlib import Path

    spec = GeneratorSpec(
        ratings=args.ratings, movies=args.movies, users=args.users, seed=args.seed, bad_record_rate=args.bad_record_rate
    )
    started = time.perf_counter()
    report = generate_dataset(Path(args.out), spec)
    print(
        tabulate(
            [(name, report.files[name], report.lines[name], report.expected_clean[name]) for name in report.files],
            headers=["dataset", "file", "lines", "valid records"],
        )
    )
    print(f"movielake: generated in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Build the lake on generated data and print the timings (see bench.py)."""
    from pathlib import Path

    if args.cold or args.scale:
        return _cold_bench(args)
    result = run_bench(
        args.ratings,
        Path(args.out) if args.out else None,
        baseline=args.baseline,
        incremental=not args.no_incremental,
        keep=args.keep,
        warm_up=not args.no_warm_up,
        baseline_lake_conf=args.baseline_lake_conf,
        days=args.days,
        log=lambda line: print(line, flush=True),
        progress=None if args.quiet else Progress(),
    )
    print(format_report(result))
    print(f"movielake: measurements in {result.work_dir}/bench.json")
    return 0 if result.build.success and not result.failed_checks else 1


def _cold_bench(args: argparse.Namespace) -> int:
    """``bench --cold`` / ``bench --scale``: separate-process runs, as users run things (bench_cold.py)."""
    import tempfile
    from pathlib import Path

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in SPARK_ENGINES]
    if unknown or not engines:
        raise ConfigurationError(
            f"--engines has {', '.join(unknown) or 'nothing'}",
            f"list engines from {', '.join(SPARK_ENGINES)}, e.g. --engines comet,spark",
        )
    sizes = parse_sizes(args.scale) if args.scale else []
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="movielake-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    if args.cold:
        runs += cold_compare(args.ratings, work, engines, Path(args.notebook or DEFAULT_NOTEBOOK), rounds=args.rounds)
    if sizes:
        runs += scale_curve(sizes, work, engines[0])
    print(f"movielake: measurements in {work} (cold.json, scale.json, one log per run)")
    return 0 if all(r.returncode == 0 for r in runs) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="movielake", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize every asset, then answer the SPEC's questions")
    run.add_argument("--raw", help="folder (or s3:// prefix) of raw files; default: the bundled sample")
    run.add_argument("--lake", help="lake location: a folder, s3:// or s3://name-{layer}; default .movielake/lake")
    run.add_argument("--movie-id", type=int, help="movie for the per-movie questions; default: the most rated")
    run.add_argument("--user-id", type=int, help="user for the per-user question; default: the lowest id")
    run.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step logs")
    run.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress lines while the lake builds: only the tables and answers at the end",
    )
    run.set_defaults(handler=cmd_run)

    doctor = commands.add_parser("doctor", help="check Java, connector jars, lake, landing, S3 and the catalog")
    doctor.add_argument("--raw", help="landing location to check (folder or s3:// prefix)")
    doctor.add_argument("--lake", help="lake location to check")
    doctor.set_defaults(handler=cmd_doctor)

    ml10m = GeneratorSpec()
    generate = commands.add_parser("generate", help="write deterministic synthetic raw files (MovieLens-10M shape)")
    generate.add_argument("--out", required=True, help="folder for movies.dat, ratings.dat, users_masterdata.json")
    generate.add_argument("--ratings", type=int, default=ml10m.ratings, help="valid rating lines (default %(default)s)")
    generate.add_argument("--movies", type=int, default=ml10m.movies, help="movies (default %(default)s)")
    generate.add_argument("--users", type=int, default=ml10m.users, help="users (default %(default)s)")
    generate.add_argument("--seed", type=int, default=ml10m.seed, help="random seed (default %(default)s)")
    generate.add_argument(
        "--bad-record-rate",
        type=float,
        default=ml10m.bad_record_rate,
        help="share of invalid lines mixed in per file (default %(default)s)",
    )
    generate.set_defaults(handler=cmd_generate)

    bench = commands.add_parser("bench", help="time a full build, a one-day load and optionally the seed baseline")
    bench.add_argument("--ratings", type=int, default=ml10m.ratings, help="rating lines (default %(default)s)")
    bench.add_argument("--baseline", action="store_true", help="also run the seed notebook's pipeline; print the ratio")
    bench.add_argument(
        "--baseline-lake-conf",
        action="store_true",
        help="run the seed pipeline with the lake's SQL settings instead of Spark's defaults",
    )
    bench.add_argument("--keep", action="store_true", help="keep the generated files and the lakes")
    bench.add_argument("--out", help="working folder (default: a new temporary folder)")
    bench.add_argument("--no-incremental", action="store_true", help="skip the one-day incremental load")
    bench.add_argument(
        "--days",
        type=int,
        default=1,
        help="consecutive daily loads; above 1, then a compaction and one more day (default 1)",
    )
    bench.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no per-asset progress lines while a build or a daily load runs (the phase lines stay)",
    )
    bench.add_argument(
        "--no-warm-up", action="store_true", help="time a cold JVM: skip the small untimed build that warms it up first"
    )
    bench.add_argument(
        "--cold",
        action="store_true",
        help="instead: `movielake run` per engine and the seed notebook's script, each a fresh "
        "process on the same files, interleaved; print each one's speed against the notebook",
    )
    bench.add_argument(
        "--scale",
        metavar="SIZES",
        help="instead: `movielake run` in a fresh process per size, e.g. 1M,3M,10M; time, rows/s, memory",
    )
    bench.add_argument(
        "--engines",
        default="spark,comet",
        help="engines of the cold runs (the first one for --scale; default %(default)s)",
    )
    bench.add_argument("--rounds", type=int, default=1, help="rounds of the interleaved cold runs (default 1)")
    bench.add_argument(
        "--notebook",
        help="the seed notebook as a script, run as `seed_notebook.py RAW_DIR OUT_DIR` "
        "(default: ../shared/bench/seed_notebook.py beside the project)",
    )
    bench.set_defaults(handler=cmd_bench)
    add_commands(commands)  # crawl, query, dictionary
    return parser


def _quiet_dagster_warnings() -> None:
    """Dagster's API-maturity warnings are for developers of this project, not for its users."""
    import warnings

    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_dagster_warnings()
    try:
        return args.handler(args)
    except MovielakeError as error:
        print(f"movielake: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
