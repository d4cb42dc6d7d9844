"""Running the lake from a tool (the CLI, the bench, the tests): build every asset in this process and
read the outcome (stored assets, check results, the failed steps' one-line errors)."""

from __future__ import annotations

import os

import dagster as dg

from movielake_dagster.assets.staging import check_landing
from movielake_dagster.automation.run_failure import root_error
from movielake_dagster.code_location import build_definitions
from movielake_dagster.settings import Settings
from movielake_dagster.tools.progress import with_progress


def run_instance():
    """The Dagster instance of ``$DAGSTER_HOME`` when set (runs show in the UI), else an ephemeral one."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def materialize_all(settings: Settings, verbose: bool = False, instance=None, progress=None):
    """Build every asset of the lake in this process; returns the Dagster result and the resources.

    ``progress`` (a :class:`movielake_dagster.tools.progress.Progress`) receives the run's events as they
    happen and prints a line per stored asset and per check step."""

    defs = build_definitions(settings)
    resources = defs.resources
    # Fail fast, in one line, before any step runs: unreachable S3, missing raw files, Java or jars.
    resources["lake"].prepare()
    check_landing(resources["lake"])
    resources["spark"].get_session()
    log_level = "INFO" if verbose else "WARNING"
    job, run_config = with_progress(
        defs.resolve_job_def("materialize_lake"),
        {"loggers": {"console": {"config": {"log_level": log_level}}}},
        progress,
    )
    result = job.execute_in_process(instance=instance or run_instance(), raise_on_error=False, run_config=run_config)
    return result, resources


def asset_rows(result) -> list[tuple[str, object, str]]:
    rows = []
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        metadata = materialization.metadata
        count = metadata.get("dagster/row_count")
        uri = metadata.get("dagster/uri")
        rows.append(
            (
                materialization.asset_key.to_user_string(),
                count.value if count is not None else metadata.get("bytes").value if "bytes" in metadata else "",
                uri.value if uri is not None else "",
            )
        )
    return rows


def check_rows(result) -> list[tuple[str, str, str, str, object]]:
    """(asset, check, severity, PASS/FAIL, failed rows) for every check evaluated in the run."""
    rows = []
    for evaluation in result.get_asset_check_evaluations():
        failed = evaluation.metadata.get("failed_rows")
        rows.append(
            (
                evaluation.asset_key.to_user_string(),
                evaluation.check_name,
                evaluation.severity.value,
                "pass" if evaluation.passed else "FAIL",
                failed.value if failed is not None else "",
            )
        )
    return sorted(rows)


def check_summary(rows: list[tuple]) -> list[tuple[str, str, str]]:
    """One line per asset: how many of its checks passed, and which failed."""
    by_asset: dict[str, list[tuple]] = {}
    for row in rows:
        by_asset.setdefault(row[0], []).append(row)
    return [
        (
            asset,
            f"{sum(r[3] == 'pass' for r in checks)}/{len(checks)}",
            ", ".join(f"{r[1]} ({r[2]}: {r[4]})" for r in checks if r[3] == "FAIL"),
        )
        for asset, checks in by_asset.items()
    ]


def failed_error_checks(result) -> list[str]:
    """``asset:check`` of every ERROR check that failed in the run."""
    return [
        f"{asset}:{check}"
        for asset, check, severity, outcome, _ in check_rows(result)
        if outcome == "FAIL" and severity == "ERROR"
    ]


def step_error(error_info) -> str:
    """A failed step's error as the CLI prints it: the one-line ``problem -> fix`` when there is one."""
    return root_error(error_info).split(": ", 1)[-1]
