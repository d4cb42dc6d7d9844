"""The AWS deployment files: settings that load, an instance config Dagster accepts, IAM that fits them."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from movielake_dagster.automation.schedules import (
    DAILY_SCHEDULE,
    LAKE_WRITER_TAG,
    access_freshness_policy,
)
from movielake_dagster.code_location import build_definitions
from movielake_dagster.lake import LAYERS, LakeLocation
from movielake_dagster.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
OTHER_VARIABLES = {"AWS_REGION", "DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME"}
NO_RESOURCE_LEVEL = {"ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"}  # IAM allows only "*" here


def _env() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "aws.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def _policy(name: str) -> dict:
    return json.loads((DEPLOY / "iam" / name).read_text())


def _resources(policy: dict, action_prefix: str = "") -> set[str]:
    return {
        r for s in policy["Statement"] if any(a.startswith(action_prefix) for a in s["Action"]) for r in s["Resource"]
    }


def test_every_variable_in_the_aws_settings_is_a_setting():
    known = {f"MOVIELAKE_{f.name.upper()}" for f in fields(Settings) if f.name != "extra"}
    unknown = {k for k in _env() if k not in known and k not in OTHER_VARIABLES}
    assert unknown == set(), f"not settings: {unknown}"
    assert not any("SECRET" in k or "PASSWORD" in k for k in _env()), "secrets do not belong in the file"


def test_the_aws_settings_load_and_build_the_definitions():
    settings = Settings.from_env(environ=_env())
    location = LakeLocation.parse(settings.lake)
    assert location.is_s3 and settings.landing.startswith("s3://")
    assert settings.catalog == "glue" and settings.spark_remote.startswith("sc://")
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def(DAILY_SCHEDULE)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 5 * * *", "Europe/Berlin")
    assert schedule.default_status.value == "RUNNING"
    policy = access_freshness_policy(settings)
    assert policy.deadline_cron == "0 7 * * *" and policy.lower_bound_delta == timedelta(minutes=90)


def test_the_instance_config_is_valid_and_shares_postgres_and_serializes_lake_writes():
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(DEPLOY), "dagster.yaml")
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert postgres["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert {postgres["hostname"]["env"], postgres["db_name"]["env"], postgres["username"]["env"]} <= set(_env())
    limits = config["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {"key": LAKE_WRITER_TAG, "limit": 1} in limits
    # a dead run worker's run is failed (and retried), not left "started" holding the crawl back
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]


@pytest.mark.parametrize("name", sorted(p.name for p in (DEPLOY / "iam").glob("*.json")))
def test_each_role_policy_is_least_privilege(name):
    policy = _policy(name)
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Sid"]
        assert not [a for a in statement["Action"] if a == "*" or a.endswith(":*")], statement["Sid"]
        if statement["Resource"] == ["*"]:
            assert set(statement["Action"]) <= NO_RESOURCE_LEVEL, statement["Sid"]
        assert not [r for r in statement["Resource"] if r in ("arn:aws:s3:::*", "arn:aws:s3:::*/*")]


def test_the_policies_name_the_buckets_prefix_and_databases_of_the_settings():
    settings = Settings.from_env(environ=_env())
    lake_buckets = set(LakeLocation.parse(settings.lake).buckets())
    landing_bucket, _, prefix = settings.landing.removeprefix("s3://").partition("/")
    logs_bucket = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["compute_logs"]["config"]["bucket"]

    def buckets(policy: dict) -> set[str]:
        return {r.removeprefix("arn:aws:s3:::").split("/")[0] for r in _resources(policy, "s3:")}

    assert buckets(_policy("pipeline.json")) == lake_buckets | {landing_bucket, logs_bucket}
    assert buckets(_policy("spark-cluster.json")) == lake_buckets
    assert buckets(_policy("analyst.json")) == {LakeLocation.parse(settings.lake).roots["access"][5:]}
    writer = _policy("landing-writer.json")
    assert _resources(writer) == {f"arn:aws:s3:::{landing_bucket}/{prefix}/*"}
    assert not [a for s in writer["Statement"] for a in s["Action"] if a in ("s3:GetObject", "s3:DeleteObject")]
    glue = {r.split(":")[-1] for r in _resources(_policy("pipeline.json"), "glue:") if ":database/" in r}
    assert glue == {f"database/{layer}" for layer in LAYERS}
    assert not [
        a
        for s in _policy("analyst.json")["Statement"]
        for a in s["Action"]
        if a.startswith("glue:") and not a.startswith("glue:Get")
    ]
