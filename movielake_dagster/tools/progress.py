"""Progress lines while a run executes: one line per materialized asset and per finished check step.

Dagster hands every event of a run to the run's loggers as it happens (the ``DagsterEvent`` rides on
the log record), so a logger added to the job sees each step finish in order of completion, in the
same process, long before ``execute_in_process`` returns. :func:`with_progress` adds such a logger
to a job; the lines go to stdout::

      3.1s  cleanse/movies                   1,000 rows
      1.2s  cleanse/quarantine_movies            2 rows
      2.8s  cleanse/movies                   6/6 checks passed

The seconds are the time the line's part of its step took: for an asset, since the step started
or since the step's previous output was stored (a step that makes several tables shows one line
each, and their seconds add up to the step's); for checks, the whole check step. A line holds
asset keys, counts and check names only: nothing from the configuration (no paths, no credentials).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LOGGER_KEY = "movielake_progress"
NAME_WIDTH = 30


def _rows(metadata) -> str:
    """``1,000 rows`` from an Iceberg table's materialization; ``48,961 bytes`` for staged files."""
    for key, unit in (("dagster/row_count", "rows"), ("bytes", "bytes")):
        value = metadata.get(key)
        if value is not None and isinstance(value.value, int):
            return f"{value.value:>10,} {unit}"
    return ""


@dataclass
class Progress:
    """Turns a run's events into lines; ``write`` receives each finished line (default: stdout)."""

    write: Callable[[str], None] | None = None
    started: float | None = None  # the run's first event (the JVM and the Spark session start before it)
    assets: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    failed_steps: list[str] = field(default_factory=list)
    _last: dict[str, float] = field(default_factory=dict)  # step -> time of its start or last output
    _checks: dict[str, list] = field(default_factory=dict)  # step -> its check evaluations so far

    def _emit(self, seconds: float, name: str, detail: str) -> None:
        line = f"  {seconds:6.1f}s  {name:<{NAME_WIDTH}} {detail}".rstrip()
        if self.write is not None:
            self.write(line)
        else:
            print(line, file=sys.stdout, flush=True)

    def _since(self, step: str, now: float) -> float:
        seconds = now - self._last.get(step, now)
        self._last[step] = now
        return seconds

    def on_event(self, event, now: float | None = None) -> None:
        """One Dagster event (``DagsterEvent``) of the run, ``now`` its time (monotonic seconds)."""
        now = time.monotonic() if now is None else now
        self.started = now if self.started is None else self.started
        kind, step = event.event_type_value, event.step_key
        if step is None:
            return
        if kind == "STEP_START":
            self._last[step] = now
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            self.assets += 1
            self._emit(
                self._since(step, now), materialization.asset_key.to_user_string(), _rows(materialization.metadata)
            )
        elif kind == "ASSET_CHECK_EVALUATION":
            self._checks.setdefault(step, []).append(event.event_specific_data)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            evaluations = self._checks.pop(step, [])
            seconds = self._since(step, now)
            if evaluations:
                self._emit_checks(seconds, evaluations)
            if kind == "STEP_FAILURE":
                self.failed_steps.append(step)
                self._emit(seconds, step, "FAILED (see the end of the output)")
        elif kind == "STEP_SKIPPED":
            self._emit(0.0, step, "skipped: an upstream step failed or a blocking check failed")

    def _emit_checks(self, seconds: float, evaluations: list) -> None:
        by_asset: dict[str, list] = {}
        for evaluation in evaluations:
            by_asset.setdefault(evaluation.asset_key.to_user_string(), []).append(evaluation)
        for asset, results in by_asset.items():
            passed = [e for e in results if e.passed]
            failed = [f"{e.check_name} ({e.severity.value})" for e in results if not e.passed]
            self.checks_passed += len(passed)
            self.checks_failed += len(failed)
            detail = f"{len(passed)}/{len(results)} checks passed" + (
                f", failed: {', '.join(failed)}" if failed else ""
            )
            self._emit(seconds, asset, detail)
            seconds = 0.0  # one step's seconds, shown once

    def summary(self) -> str:
        """One line: what was made and checked, in how long."""
        text = (
            f"movielake: {self.assets} assets materialized, {self.checks_passed} checks passed, "
            f"{self.checks_failed} failed, in {time.monotonic() - (self.started or time.monotonic()):.1f} s"
        )
        return text + (f"; failed steps: {', '.join(self.failed_steps)}" if self.failed_steps else "")


class _EventHandler(logging.Handler):
    """Hands the ``DagsterEvent`` of each record the run's log manager emits to a :class:`Progress`."""

    def __init__(self, progress: Progress):
        super().__init__(level=logging.DEBUG)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None)  # dagster._core.log_manager.LOG_RECORD_METADATA_ATTR
        event = meta.get("dagster_event") if isinstance(meta, dict) else None
        if event is None:
            return
        try:
            self.progress.on_event(event)
        except Exception:  # noqa: BLE001 - a progress line must never fail the run
            pass


def progress_logger(progress: Progress):
    """A Dagster logger definition whose logger passes every event of the run to ``progress``."""
    import dagster as dg

    @dg.logger(description="movielake's progress lines (one per stored asset and per check step)")
    def _progress_logger(init_context):
        logger = logging.getLogger(f"movielake.progress.{init_context.run_id}")
        logger.setLevel(logging.DEBUG)  # Dagster logs its structured events at DEBUG
        logger.propagate = False
        logger.handlers = [_EventHandler(progress)]
        return logger

    return _progress_logger


def with_progress(job, run_config: dict, progress: Progress | None):
    """``job`` and ``run_config`` with the progress logger added beside the job's own loggers; both
    unchanged when ``progress`` is None."""
    if progress is None:
        return job, run_config
    import dagster as dg

    loggers = {**(job.loggers or dg.default_loggers()), LOGGER_KEY: progress_logger(progress)}
    config = dict(run_config)
    config["loggers"] = {**run_config.get("loggers", {}), LOGGER_KEY: {}}
    if "console" in loggers and "console" not in config["loggers"]:  # configuring one logger drops the others
        config["loggers"]["console"] = {}
    return job.with_logger_defs(loggers), config
