"""Run-failure sensor: when a lake run fails, say which step failed and why, in one line per step.

The report goes to the sensor's log (visible in the UI under the sensor's ticks) and, when
``MOVIELAKE_ALERT_WEBHOOK`` is set, is POSTed as ``{"text": ...}`` to that URL (Slack, Teams and most
chat tools accept this shape).
"""

from __future__ import annotations

import json
import urllib.request

import dagster as dg

from movielake_dagster.settings import Settings

SENSOR_NAME = "lake_run_failure"


def root_error(error_info) -> str:
    """The most telling line of a Dagster error chain: our one-line ``problem -> fix`` if any, else
    the innermost cause as ``Class: message``."""
    chain = []
    while error_info is not None:
        chain.append(error_info)
        error_info = error_info.cause
    for info in chain:
        if " -> " in info.message:
            return f"{info.cls_name}: {info.message.strip().splitlines()[-1].split(': ', 1)[-1]}"
    last = chain[-1] if chain else None
    if last is None:
        return "unknown error"
    lines = [line for line in last.message.strip().splitlines() if line.strip()]
    text = lines[0].split(": ", 1)[-1] if lines else ""
    return f"{last.cls_name}: {text}"


def failure_report(context: dg.RunFailureSensorContext) -> str:
    """``movielake: run <id> of <job> [day <partition>] failed: step <key>: <error>; ...``."""
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    head = f"movielake: run {run.run_id[:8]} of {run.job_name}" + (f" for {partition}" if partition else "")
    steps = [
        f"step {event.step_key}: {root_error(event.event_specific_data.error)}"
        for event in context.get_step_failure_events()
    ]
    if not steps:  # the run itself failed (run worker lost, canceled, ...)
        steps = [context.failure_event.message or "no step failed"]
    return f"{head} failed: " + "; ".join(steps)


def post(webhook: str, text: str) -> None:
    request = urllib.request.Request(
        webhook, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def build_run_failure_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Reports every failed run of the lake with the failed step and its error.",
    )
    def lake_run_failure(context: dg.RunFailureSensorContext):
        report = failure_report(context)
        context.log.error(report)
        if settings.alert_webhook:
            try:
                post(settings.alert_webhook, report)
            except OSError as error:
                context.log.warning(f"could not post the failure report to MOVIELAKE_ALERT_WEBHOOK: {error}")

    return lake_run_failure
