"""Cold, separate-process measurements: the lake as users run it, against the seed notebook, by size.

``movielake bench`` (``bench.py``) measures a warm build inside one process. A user pays more: a
fresh ``movielake run`` starts Python, Dagster and a JVM, builds the lake, crawls it and answers the
SPEC's questions. Here each run is its own process, started the way a user starts it:

- ``--cold``: on the same generated files, ``movielake run`` (once per engine, e.g. Comet and
  Spark's own) and the seed notebook's script (``seed_notebook.py RAW_DIR OUT_DIR``, one Spark script
  with local paths), one after the other, ``--rounds`` times, interleaved so that a change in the
  machine's load hits every contender alike. Prints wall time, ratings per second, peak memory and
  each run's speed relative to the notebook.
- ``--scale 1M,3M,10M``: ``movielake run`` cold on files of each size, to show how cost grows.

Wall time is measured around the child process. Peak memory is the resident memory (PSS) of the
child's whole process tree (Python, the JVM, Python workers), sampled every 0.2 s. The machine's
load average is printed before and after each run: on a shared machine compare only within one run.
Nothing here asserts timings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from movielake_dagster.errors import ConfigurationError
from movielake_dagster.tools.bench import PeakMemory, bench_spec
from movielake_dagster.tools.generate import generate_dataset

SAMPLE_INTERVAL = 0.2
DEFAULT_NOTEBOOK = Path(__file__).resolve().parents[3] / "shared" / "bench" / "seed_notebook.py"
SIZE_SUFFIXES = {"k": 1_000, "m": 1_000_000}


@dataclass
class ColdRun:
    """One separate-process run: what ran, how long, how much memory, the load around it."""

    label: str
    ratings: int
    seconds: float
    peak_rss: int  # bytes, PSS of the child's process tree at its largest
    returncode: int
    load_before: float  # 1-minute load average
    load_after: float
    log: str  # the child's output

    @property
    def rows_per_second(self) -> float:
        return self.ratings / self.seconds if self.seconds else 0.0


def parse_sizes(text: str) -> list[int]:
    """``"1M,3M,10M,500k,20000"`` -> ``[1000000, 3000000, 10000000, 500000, 20000]``.

    Raises ``ConfigurationError`` naming the bad item."""
    sizes = []
    for item in (part.strip().lower() for part in text.split(",")):
        if not item:
            continue
        factor = SIZE_SUFFIXES.get(item[-1], 1)
        number = item[:-1] if item[-1] in SIZE_SUFFIXES else item
        try:
            size = round(float(number) * factor)
        except ValueError:
            size = 0
        if size <= 0:
            raise ConfigurationError(
                f"--scale has {item!r}, which is not a number of ratings",
                "write sizes like --scale 1M,3M,10M (k and M suffixes allowed)",
            )
        sizes.append(size)
    return sizes


def movielake_command(*args: str) -> list[str]:
    """The ``movielake`` console script of this environment (what a user types), else the module."""
    script = Path(sys.executable).with_name("movielake")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from movielake_dagster.tools.cli import main; sys.exit(main())", *args]


def run_cold(label: str, argv: list[str], ratings: int, log_file: Path, env: dict[str, str] | None = None) -> ColdRun:
    """Run ``argv`` as a child process (its own session, output to ``log_file``), sampling the memory
    of its process tree until it exits."""
    load_before = os.getloadavg()[0]
    with open(log_file, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        with PeakMemory(SAMPLE_INTERVAL, pid=child.pid) as memory:
            child.wait()
        seconds = time.perf_counter() - started
    return ColdRun(
        label, ratings, seconds, memory.peak, child.returncode, load_before, os.getloadavg()[0], str(log_file)
    )


def _check(run: ColdRun, log) -> None:
    if run.returncode != 0:
        tail = Path(run.log).read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        log(f"  {run.label} exited with {run.returncode}: {tail[0][:300]} (full output: {run.log})")


def _line(run: ColdRun, reference: ColdRun | None = None) -> str:
    versus = f"  {reference.seconds / run.seconds:4.2f}x the notebook's speed" if reference and run.seconds else ""
    return (
        f"  {run.label:<24} {run.seconds:7.1f} s  {run.rows_per_second:>11,.0f} ratings/s  "
        f"peak {run.peak_rss / 2**30:4.2f} GiB  load {run.load_before:.1f}->{run.load_after:.1f}{versus}"
    )


def _engine_env(engine: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MOVIELAKE_SPARK_ENGINE"] = engine
    env.pop("DAGSTER_HOME", None)  # an ephemeral instance, as on a fresh machine
    return env


def _lake_run(label: str, raw: Path, lake: Path, ratings: int, log_file: Path, engine: str, log) -> ColdRun:
    """``movielake run`` cold from ``raw`` into a new lake at ``lake`` (deleted afterwards)."""
    shutil.rmtree(lake, ignore_errors=True)
    argv = movielake_command("run", "--raw", str(raw), "--lake", str(lake))
    run = run_cold(label, argv, ratings, log_file, _engine_env(engine))
    shutil.rmtree(lake, ignore_errors=True)
    _check(run, log)
    return run


def cold_compare(
    ratings: int, work: Path, engines: list[str], notebook: Path, rounds: int = 1, seed: int = 42, log=print
) -> list[ColdRun]:
    """Generate ``ratings`` ratings once; then, per round, ``movielake run`` once per engine and the
    seed notebook once, each a fresh process on the same files. Returns every run in order."""
    if not notebook.exists():
        raise ConfigurationError(
            f"the seed notebook's script is not at {notebook}", "pass --notebook PATH/seed_notebook.py"
        )
    raw = work / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    # No invalid lines: the notebook has no quarantine, and one malformed line stops it (Spark's ANSI
    # mode fails its unguarded `split(...)[1]`), so both read files it can process.
    report = generate_dataset(raw, bench_spec(ratings, seed, bad_record_rate=0.0))
    lines = report.lines["ratings"]
    log(f"cold runs on {lines:,} rating lines in {raw}, {rounds} round(s), interleaved:")
    runs: list[ColdRun] = []
    for round_number in range(1, rounds + 1):
        round_runs = []
        for engine in engines:
            lake = work / f"lake-{engine}-{round_number}"
            log_file = work / f"run-{engine}-{round_number}.log"
            round_runs.append(_lake_run(f"movielake run ({engine})", raw, lake, lines, log_file, engine, log))
        out = work / f"notebook-{round_number}"
        shutil.rmtree(out, ignore_errors=True)
        notebook_run = run_cold(
            "seed notebook",
            [sys.executable, str(notebook), str(raw), str(out)],
            lines,
            work / f"notebook-{round_number}.log",
        )
        shutil.rmtree(out, ignore_errors=True)
        _check(notebook_run, log)
        log(f" round {round_number}:")
        for run in round_runs:
            log(_line(run, notebook_run if notebook_run.returncode == 0 else None))
        log(_line(notebook_run))
        runs.extend([*round_runs, notebook_run])
    (work / "cold.json").write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return runs


def scale_curve(sizes: list[int], work: Path, engine: str, seed: int = 42, log=print) -> list[ColdRun]:
    """``movielake run`` cold on generated files of each size (smallest first); the files and the
    lake of one size are deleted before the next is generated."""
    log(f"cost by size, movielake run cold ({engine}):")
    runs = []
    for size in sorted(sizes):
        raw = work / f"raw-{size}"
        shutil.rmtree(raw, ignore_errors=True)
        started = time.perf_counter()
        lines = generate_dataset(raw, bench_spec(size, seed)).lines["ratings"]
        generated = time.perf_counter() - started
        run = _lake_run(
            f"{lines:,} ratings", raw, work / f"lake-{size}", lines, work / f"scale-{size}.log", engine, log
        )
        log(_line(run) + f"  (generated in {generated:.0f} s)")
        runs.append(run)
        shutil.rmtree(raw, ignore_errors=True)
    (work / "scale.json").write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return runs
