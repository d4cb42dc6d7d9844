"""``movielake bench``: build the whole lake on generated data and measure where the time goes.

One invocation, one JVM:

1. generate MovieLens-10M-shaped raw files (``generate.py``; not timed as part of the build);
2. start the Spark session (timed on its own: every run of the lake pays it once);
3. the full build: every asset and every check (the ``materialize_lake`` job, as ``movielake run``
   does), with wall time per Dagster step, rows per second, and the Spark stages of each step
   (from Spark's event log, which the benchmark's session writes);
4. a one-day incremental load: a batch ``ratings/<day>.dat`` of one average day of ratings lands
   and the daily job runs for that day as its schedule requests it (the batch's assets and their
   checks; the same instance, so it sees the full build);
5. optionally the seed notebook's pipeline (``seed_baseline.py``) on the same files, and the ratio.

Peak memory is the resident memory of the whole process tree (this Python process, the Spark JVM
and any Python workers; PSS, so pages shared after a fork count once), sampled from ``/proc``
every 0.2 s by a background thread, per phase.
Nothing here asserts timings: the numbers are printed and written to ``bench.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from movielake_dagster.automation.maintenance import MAINTENANCE_JOB
from movielake_dagster.automation.schedules import DAILY_BATCH_ASSETS, DAILY_JOB
from movielake_dagster.code_location import build_definitions, build_resources
from movielake_dagster.datasets import (
    ANALYTICS_BASES,
    FCT_RATING,
    MOVIES,
    QUARANTINE_RATINGS,
    RATINGS,
    USERS,
)
from movielake_dagster.io_managers.iceberg import table_name
from movielake_dagster.settings import Settings
from movielake_dagster.tools.generate import (
    GenerationReport,
    GeneratorSpec,
    generate_dataset,
)
from movielake_dagster.tools.progress import with_progress
from movielake_dagster.tools.runner import failed_error_checks, materialize_all
from movielake_dagster.tools.seed_baseline import run_seed_pipeline

ML10M = GeneratorSpec()
BENCH_BAD_RECORD_RATE = 0.0001
WARM_UP_RATINGS = 20_000  # a few invalid lines of every kind, so the quarantine paths run too
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# -- memory of the process tree ---------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])  # the name may contain spaces
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _resident(pid: int) -> int:
    """Proportional set size (PSS) of a process: its resident pages, shared ones divided among the
    processes sharing them. The JVM forks short-lived children (Hadoop runs shell commands) that
    share all its pages for a moment: summing plain RSS would count the JVM twice."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    with open(f"/proc/{pid}/statm") as handle:  # no smaps_rollup (old kernel): plain RSS
        return int(handle.read().split()[1]) * PAGE_SIZE


def tree_processes(pid: int | None = None) -> dict[str, int]:
    """Resident bytes (PSS) per process of ``pid`` (default: this process) and all its
    descendants, keyed ``<pid> <command>``."""
    pid = pid or os.getpid()
    children, found, todo = _children_map(), {}, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/comm") as handle:
                name = handle.read().strip()
            found[f"{current} {name}"] = _resident(current)
        except OSError:
            pass
        todo.extend(children.get(current, ()))
    return found


def tree_rss(pid: int | None = None) -> int:
    """Resident bytes of ``pid`` (default: this process) and all its descendants."""
    return sum(tree_processes(pid).values())


class PeakMemory:
    """Samples :func:`tree_rss` of ``pid`` (default: this process) in a background thread; ``peak``
    since the last :meth:`reset`."""

    def __init__(self, interval: float = 0.2, pid: int | None = None):
        self.interval = interval
        self.pid = pid
        self.peak = 0
        self.peak_processes: dict[str, int] = {}  # the tree at the peak sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="movielake-bench-memory", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        processes = tree_processes(self.pid)
        if sum(processes.values()) >= self.peak:
            self.peak, self.peak_processes = sum(processes.values()), processes

    def reset(self) -> None:
        self.peak = 0
        self._sample()

    def __enter__(self) -> PeakMemory:
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# -- Spark's event log: one line per stage ----------------------------------------------------------


@dataclass
class Stage:
    stage_id: int
    name: str  # Spark's call site, e.g. "collect at .../assets/cleanse.py:93"
    tasks: int
    start: float  # epoch seconds
    seconds: float
    step: str = ""


def read_stages(event_log_dir: Path) -> list[Stage]:
    """Completed stages from the Spark event log(s) in ``event_log_dir`` (skipped stages excluded)."""
    stages = []
    for path in sorted(p for p in event_log_dir.rglob("*") if p.is_file()):  # Spark 4: a folder of rolled files
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if '"SparkListenerStageCompleted"' not in line:
                    continue
                info = json.loads(line)["Stage Info"]
                if "Submission Time" not in info or "Completion Time" not in info:
                    continue
                stages.append(
                    Stage(
                        info["Stage ID"],
                        info["Stage Name"],
                        info["Number of Tasks"],
                        info["Submission Time"] / 1000,
                        (info["Completion Time"] - info["Submission Time"]) / 1000,
                    )
                )
    return stages


# -- results -----------------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    kind: str  # asset | check
    seconds: float
    start: float = 0.0
    spark_seconds: float = 0.0  # wall time of the Spark stages that ran during the step


@dataclass
class Phase:
    name: str
    seconds: float
    peak_rss: int
    success: bool = True
    steps: list[Step] = field(default_factory=list)
    note: str = ""
    peak_processes: dict[str, int] = field(default_factory=dict)  # resident bytes per process at the peak


@dataclass
class BenchResult:
    ratings_lines: int
    input_lines: int
    generate_seconds: float
    spark_start_seconds: float
    phases: dict[str, Phase]
    stages: list[Stage]
    failed_checks: list[str]
    counts_match_generator: bool
    work_dir: str

    @property
    def build(self) -> Phase:
        return self.phases["full_build"]

    @property
    def ratio(self) -> float | None:
        baseline = self.phases.get("seed_baseline")
        return baseline.seconds / self.build.seconds if baseline and self.build.seconds else None

    @property
    def peak_rss(self) -> int:
        return max(p.peak_rss for p in self.phases.values())

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(ratio=self.ratio, peak_rss=self.peak_rss)
        return data


def bench_spec(ratings: int, seed: int = 42, bad_record_rate: float = BENCH_BAD_RECORD_RATE) -> GeneratorSpec:
    """MovieLens-10M shape scaled to ``ratings`` (movies and users in proportion, with small floors)."""
    if ratings == ML10M.ratings:
        return GeneratorSpec(seed=seed, bad_record_rate=bad_record_rate)
    share = ratings / ML10M.ratings
    movies = max(100, round(ML10M.movies * share))
    users = max(20, round(ML10M.users * share), -(-ratings // (movies // 2)))  # room for every rating
    return GeneratorSpec(ratings=ratings, movies=movies, users=users, seed=seed, bad_record_rate=bad_record_rate)


# -- the phases ----------------------------------------------------------------------------------------


def _session(settings, event_log_dir: Path):
    """The run's one SparkSession: the lake's own configuration plus Spark's event log."""

    event_log = f"spark.eventLog.enabled=true,spark.eventLog.dir={event_log_dir.as_uri()},spark.eventLog.compress=false"
    spark_conf = ",".join(c for c in (settings.spark_conf, event_log) if c)
    return build_resources(settings.with_overrides(spark_conf=spark_conf))["spark"].get_session()


def _flush_events(session) -> None:
    """Let Spark's listener bus deliver every event, so the event log has the last stages."""
    try:
        session.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(10_000)
    except Exception:  # noqa: BLE001 - a private API: without it the last stages may be missing
        pass


def _steps(instance, run_id: str) -> list[Step]:
    """Wall time of every step of a run, from the instance's event log (start to success/failure)."""
    starts, steps = {}, []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            start = starts[event.step_key]
            kind = "check" if event.step_key.endswith("_checks") or "freshness" in event.step_key else "asset"
            steps.append(Step(event.step_key, kind, entry.timestamp - start, start))
    return sorted(steps, key=lambda s: s.start)


def _attribute(stages: list[Stage], steps: list[Step]) -> None:
    for stage in stages:
        for step in steps:
            if step.start <= stage.start <= step.start + step.seconds:
                stage.step = step.name
                step.spark_seconds += stage.seconds
                break


def one_day_batch(report: GenerationReport, day: date) -> tuple[str, int]:
    """One average day of ratings for ``day``: re-ratings of existing pairs and ratings of new pairs.

    Deterministic: every k-th line of the generated ratings gives a (user, movie); even ones are
    re-rated, odd ones move to the next movie id (mostly a new pair). Timestamps spread over the day.
    """
    lines = report.lines["ratings"]
    span = (date.fromisoformat(report.spec.end) - date.fromisoformat(report.spec.start)).days + 1
    per_day = max(1, round(report.spec.ratings / span))
    step = max(1, lines // per_day)
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    batch = []
    with open(report.files["ratings"], encoding="utf-8", errors="replace") as handle:
        for index, line in enumerate(handle):
            if index % step or len(batch) >= per_day:
                continue
            fields = line.rstrip("\n").split("::")
            if len(fields) != 4 or not fields[0].isdigit() or not fields[1].isdigit():
                continue
            user, movie = int(fields[0]), int(fields[1])
            if len(batch) % 2:
                movie = movie % report.spec.movies + 1
            stars = (len(batch) * 7) % 10 + 1
            rating = str(stars // 2) if stars % 2 == 0 else f"{stars / 2:.1f}"
            batch.append(f"{user}::{movie}::{rating}::{midnight + (len(batch) * 86_399) // per_day}")
    return "\n".join(batch) + "\n", len(batch)


def _warm_up(
    session,
    settings,
    work: Path,
    ratings: int,
    baseline: bool,
    seed: int,
    memory: PeakMemory,
    log,
    baseline_lake_conf: bool = False,
    progress=None,
) -> Phase:
    """The lake (and the seed pipeline) once on a small generated dataset, before anything is timed.

    A new JVM compiles Spark's generated code and its own hot paths during its first queries: the
    first step of a cold run took 18 s at 10M ratings where the same step took 4 s warm. The
    baseline runs after the lake in the same JVM, so without this the lake alone would pay for it.
    """

    raw = work / "warm-up" / "raw"
    memory.reset()
    started = time.perf_counter()
    generate_dataset(raw, bench_spec(ratings, seed))
    materialize_all(replace(settings, landing=str(raw), lake=str(work / "warm-up" / "lake")), progress=progress)
    if baseline:
        run_seed_pipeline(session, raw, work / "warm-up" / "seed-lake", lake_conf=baseline_lake_conf)
    phase = Phase("warm_up", time.perf_counter() - started, memory.peak, True, note=f"{ratings:,} ratings")
    log(f"warm-up on {ratings:,} ratings (not part of any timing): {phase.seconds:.1f} s")
    shutil.rmtree(work / "warm-up", ignore_errors=True)
    return phase


def run_bench(
    ratings: int = ML10M.ratings,
    work_dir: Path | None = None,
    baseline: bool = False,
    incremental: bool = True,
    keep: bool = False,
    seed: int = 42,
    warm_up: bool = True,
    baseline_lake_conf: bool = False,
    days: int = 1,
    log=print,
    progress=None,
) -> BenchResult:
    """Generate, build, load one day (or ``days`` days, then a compaction and one more day), optionally
    run the seed baseline; returns every measurement. ``log`` gets one line per finished phase;
    ``progress`` (a :class:`movielake_dagster.tools.progress.Progress`, or None) one per asset and check step
    of every build and daily load while it runs."""
    import dagster as dg

    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="movielake-bench-"))
    raw, lake, events = work / "raw", work / "lake", work / "spark-events"
    for folder in (lake, events, work / "seed-lake"):
        shutil.rmtree(folder, ignore_errors=True)
    events.mkdir(parents=True)
    phases: dict[str, Phase] = {}
    try:
        started = time.perf_counter()
        shutil.rmtree(raw, ignore_errors=True)
        report = generate_dataset(raw, bench_spec(ratings, seed))
        generate_seconds = time.perf_counter() - started
        input_lines = sum(report.lines.values())
        log(
            f"generated {report.lines['ratings']:,} rating lines ({input_lines:,} lines in all) "
            f"in {generate_seconds:.1f} s into {raw}"
        )
        settings = Settings.from_env(landing=str(raw), lake=str(lake), step_retries=0, automation="stopped")
        with PeakMemory() as memory:
            started = time.perf_counter()
            session = _session(settings, events)
            spark_start = time.perf_counter() - started
            phases["spark_start"] = Phase("spark_start", spark_start, memory.peak, peak_processes=memory.peak_processes)
            log(f"Spark session started: {spark_start:.1f} s")

            if warm_up:
                phases["warm_up"] = _warm_up(
                    session,
                    settings,
                    work,
                    min(WARM_UP_RATINGS, ratings),
                    baseline,
                    seed,
                    memory,
                    log,
                    baseline_lake_conf,
                    progress,
                )

            memory.reset()
            instance = dg.DagsterInstance.ephemeral()
            started = time.perf_counter()
            result, _ = materialize_all(settings, instance=instance, progress=progress)
            build = Phase(
                "full_build",
                time.perf_counter() - started,
                memory.peak,
                result.success,
                _steps(instance, result.run_id),
                peak_processes=memory.peak_processes,
            )
            phases["full_build"] = build
            failed = failed_error_checks(result)
            counts = {d.name: session.table(table_name(d)).count() for d in (MOVIES, RATINGS, USERS)}
            counts_match = counts == report.expected_clean
            log(
                f"full build: {build.seconds:.1f} s, {input_lines:,} input lines, {counts[RATINGS.name]:,} ratings "
                f"cleansed, success={result.success}, failed ERROR checks: {failed or 'none'}"
            )

            if incremental:
                phases.update(_daily_loads(settings, instance, report, raw, memory, days, log, progress))
            if baseline:
                memory.reset()
                started = time.perf_counter()
                seed_steps = run_seed_pipeline(session, raw, work / "seed-lake", lake_conf=baseline_lake_conf)
                phases["seed_baseline"] = Phase(
                    "seed_baseline",
                    time.perf_counter() - started,
                    memory.peak,
                    True,
                    [Step(name, "seed", seconds, start) for name, start, seconds in seed_steps],
                    note="lake SQL settings" if baseline_lake_conf else "Spark default SQL settings",
                    peak_processes=memory.peak_processes,
                )
                log(f"seed baseline ({phases['seed_baseline'].note}): {phases['seed_baseline'].seconds:.1f} s")
            _flush_events(session)
        stages = read_stages(events)
        for phase in phases.values():
            _attribute([s for s in stages if not s.step], phase.steps)
        result = BenchResult(
            report.lines["ratings"],
            input_lines,
            generate_seconds,
            spark_start,
            phases,
            stages,
            failed,
            counts_match,
            str(work),
        )
        (work / "bench.json").write_text(json.dumps(result.to_json(), indent=2, default=str))
        return result
    finally:
        if not keep:
            for folder in (raw, lake, work / "seed-lake"):
                shutil.rmtree(folder, ignore_errors=True)


def _daily_load(
    job,
    instance,
    report: GenerationReport,
    raw: Path,
    memory: PeakMemory,
    day: date,
    name: str,
    log=None,
    progress=None,
) -> Phase:
    """Land one day's batch for ``day`` and run the daily ``job`` for it as the schedule requests it:
    the assets that batch changes, with their checks."""

    text, lines = one_day_batch(report, day)
    (raw / "ratings").mkdir(exist_ok=True)
    (raw / "ratings" / f"{day.isoformat()}.dat").write_text(text, encoding="utf-8")
    memory.reset()
    started = time.perf_counter()
    job, run_config = with_progress(job, {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}, progress)
    result = job.execute_in_process(
        partition_key=day.isoformat(),
        instance=instance,
        raise_on_error=False,
        asset_selection=list(DAILY_BATCH_ASSETS),
        run_config=run_config,
    )
    phase = Phase(
        name,
        time.perf_counter() - started,
        memory.peak,
        result.success,
        _steps(instance, result.run_id),
        note=f"{lines:,} ratings for {day.isoformat()}",
        peak_processes=memory.peak_processes,
    )
    if log:
        log(f"{name.replace('_', ' ')} ({lines:,} ratings for {day}): {phase.seconds:.1f} s, success={result.success}")
    return phase


def _daily_loads(
    settings, instance, report: GenerationReport, raw: Path, memory: PeakMemory, days: int, log, progress=None
) -> dict[str, Phase]:
    """The day after the generated history (the one-day load); with ``days`` > 1, that many consecutive
    days, then the maintenance job's compaction, then one more day: merge-on-read's deletes pile up
    over the days and the compaction folds them back into the data files."""

    daily_tables = (RATINGS, QUARANTINE_RATINGS, FCT_RATING, *ANALYTICS_BASES)
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def(DAILY_JOB)
    first = date.fromisoformat(report.spec.end) + timedelta(days=1)
    phases = {"incremental": _daily_load(job, instance, report, raw, memory, first, "incremental", log, progress)}
    if days <= 1:
        return phases
    for offset in range(1, days):
        last = _daily_load(
            job, instance, report, raw, memory, first + timedelta(days=offset), "last_day", log, progress
        )
    phases["last_day"] = last
    memory.reset()
    started = time.perf_counter()
    tables = [f"{d.layer}.{d.name}" for d in daily_tables]  # the tables a day writes row changes to
    result = definitions.resolve_job_def(MAINTENANCE_JOB).execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            "ops": {"maintain_tables": {"config": {"tables": tables}}},
        },
    )
    phases["compaction"] = Phase(
        "compaction",
        time.perf_counter() - started,
        memory.peak,
        result.success,
        _steps(instance, result.run_id),
        note="the maintenance job",
        peak_processes=memory.peak_processes,
    )
    log(f"compaction (maintenance job): {phases['compaction'].seconds:.1f} s, success={result.success}")
    phases["after_compaction"] = _daily_load(
        job, instance, report, raw, memory, first + timedelta(days=days), "after_compaction", log, progress
    )
    return phases


# -- the report ------------------------------------------------------------------------------------------


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def format_report(result: BenchResult, top_stages: int = 15) -> str:
    from tabulate import tabulate

    build = result.build
    out = [
        f"ratings lines: {result.ratings_lines:,}   all input lines: {result.input_lines:,}   "
        f"generated in {result.generate_seconds:.1f} s   Spark session start: {result.spark_start_seconds:.1f} s"
    ]
    for name, phase in result.phases.items():
        if not phase.steps:
            continue
        rows = [
            (s.name, s.kind, f"{s.seconds:.2f}", f"{s.spark_seconds:.2f}", f"{100 * s.seconds / phase.seconds:.0f}%")
            for s in phase.steps
        ]
        at_peak = ", ".join(
            f"{p.split(' ', 1)[1]} {_gib(r)}"
            for p, r in sorted(phase.peak_processes.items(), key=lambda i: -i[1])
            if r > 2**25
        )
        out += [
            "",
            f"{name}: {phase.seconds:.1f} s wall{' (' + phase.note + ')' if phase.note else ''}, "
            f"peak memory of the process tree (PSS) {_gib(phase.peak_rss)} ({at_peak}), success={phase.success}",
            tabulate(rows, headers=["step", "kind", "seconds", "spark stages s", "share"]),
        ]
    stages = sorted(result.stages, key=lambda s: -s.seconds)[:top_stages]
    out += [
        "",
        f"slowest Spark stages (of {len(result.stages)}):",
        tabulate(
            [
                (
                    s.stage_id,
                    s.step,
                    s.name.split(" at ")[0] + " at " + s.name.rsplit("/", 1)[-1],
                    s.tasks,
                    f"{s.seconds:.2f}",
                )
                for s in stages
            ],
            headers=["stage", "step", "call site", "tasks", "seconds"],
        ),
    ]
    out += ["", "summary:"]
    if "warm_up" in result.phases:
        warm = result.phases["warm_up"]
        out.append(
            f"  JVM warm-up before the timed phases: {warm.seconds:.1f} s "
            f"(the lake{' and the seed pipeline' if result.ratio is not None else ''} on {warm.note})"
        )
    out += [
        f"  full build (all assets and checks): {build.seconds:.1f} s, "
        f"{result.input_lines / build.seconds:,.0f} input lines/s",
        f"  peak memory (process tree, JVM included): {_gib(result.peak_rss)}",
        f"  cleansed row counts match the generator: {result.counts_match_generator}",
        f"  failed ERROR checks: {', '.join(result.failed_checks) or 'none'}",
    ]
    if "incremental" in result.phases:
        inc = result.phases["incremental"]
        out.append(f"  one-day incremental load: {inc.seconds:.1f} s ({inc.note})")
        for name, label in (
            ("last_day", "the last of the consecutive days"),
            ("compaction", "compaction"),
            ("after_compaction", "the day after the compaction"),
        ):
            if name in result.phases:
                phase = result.phases[name]
                out.append(
                    f"  {label}: {phase.seconds:.1f} s = {100 * phase.seconds / build.seconds:.0f}% of the full build"
                )
        out.append(f"one-day load / full build: {100 * inc.seconds / build.seconds:.0f}%")
    if result.ratio is not None:
        seed = result.phases["seed_baseline"]
        out.append(f"  seed baseline ({seed.note}): {seed.seconds:.1f} s -> the lake is {result.ratio:.1f}x faster")
    return "\n".join(out)
