"""Everything that decides when work runs: the jobs, the schedules and the sensors.

``build_automation(settings)`` returns them for the code location (``code_location.py``); the
access layer's freshness policy (``schedules.access_freshness_policy``) is applied there too.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from movielake_dagster.automation.crawl import crawl_catalog_job, crawl_sensor
from movielake_dagster.automation.jobs import (
    check_lake_job,
    materialize_lake_job,
    materialize_unchecked_job,
    with_retries,
)
from movielake_dagster.automation.maintenance import (
    build_maintenance_schedule,
    maintain_lake,
)
from movielake_dagster.automation.new_data import build_new_data_sensor
from movielake_dagster.automation.run_failure import build_run_failure_sensor
from movielake_dagster.automation.schedules import (
    build_daily_job,
    build_daily_schedule,
    build_full_check_schedule,
    retry_policy,
)
from movielake_dagster.settings import Settings


@dataclass(frozen=True)
class Automation:
    jobs: list
    schedules: list[dg.ScheduleDefinition]
    sensors: list[dg.SensorDefinition]


def build_automation(settings: Settings) -> Automation:
    """The lake's jobs (the whole-lake ones with the settings' retry policy), schedules and sensors."""
    retries = retry_policy(settings)
    lake_jobs = [with_retries(job, retries) for job in (materialize_lake_job, materialize_unchecked_job)]
    daily_job = build_daily_job(settings)
    return Automation(
        jobs=[*lake_jobs, daily_job, check_lake_job, crawl_catalog_job, maintain_lake],
        schedules=[
            build_daily_schedule(settings, daily_job),
            build_maintenance_schedule(settings),
            build_full_check_schedule(settings, check_lake_job),
        ],
        sensors=[
            crawl_sensor,
            build_new_data_sensor(settings, [daily_job, lake_jobs[0]]),
            build_run_failure_sensor(settings),
        ],
    )


__all__ = ["Automation", "build_automation"]
