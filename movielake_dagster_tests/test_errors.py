"""Bad input and configuration end in one line that names the fix, not a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from movielake_dagster.aws import GLUE, S3, aws_errors
from movielake_dagster.errors import ConfigurationError, EndpointError
from movielake_dagster.lake import LakeLocation
from movielake_dagster.settings import Settings

MOVIELAKE = [sys.executable, "-m", "movielake_dagster.tools.cli"]


def _run(args: list[str], env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run(MOVIELAKE + args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("movielake: error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def _tiny_landing(tmp_path: Path, with_ratings: bool = True) -> Path:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "movies.dat").write_text("1::Toy Story (1995)::Comedy\n")
    (landing / "users_masterdata.json").write_text('{"user_id": "1", "firts_name": "A", "last_name": "B"}\n')
    if with_ratings:
        (landing / "ratings.dat").write_text("1::1::4::978300760\n")
    return landing


def test_missing_raw_file(tmp_path):
    landing = _tiny_landing(tmp_path, with_ratings=False)
    proc = _run(["run", "--raw", str(landing), "--lake", str(tmp_path / "lake")], {}, tmp_path)
    _one_line_error(proc, "ratings", "MOVIELAKE_LANDING")


def test_unreachable_s3_endpoint(tmp_path):
    proc = _run(["run", "--lake", "s3://"], {"MOVIELAKE_S3_ENDPOINT": "http://127.0.0.1:9"}, tmp_path)
    _one_line_error(proc, "cannot reach the S3 endpoint http://127.0.0.1:9", "MOVIELAKE_S3_ENDPOINT")


def test_missing_java(tmp_path):
    env = {"PATH": str(tmp_path), "JAVA_HOME": ""}
    landing = _tiny_landing(tmp_path)
    proc = _run(["run", "--raw", str(landing), "--lake", str(tmp_path / "lake")], env, tmp_path)
    _one_line_error(proc, "Java was not found", "JAVA_HOME")


@pytest.mark.s3
def test_missing_connector_jars(tmp_path, s3_server):
    env = {"MOVIELAKE_S3_ENDPOINT": s3_server, "MOVIELAKE_JARS_DIR": str(tmp_path / "no-jars")}
    landing = _tiny_landing(tmp_path)
    proc = _run(["run", "--raw", str(landing), "--lake", "s3://jarless-{layer}"], env, tmp_path)
    _one_line_error(proc, "connector jars iceberg-spark-runtime", "make setup")


def test_bad_settings_are_named():
    with pytest.raises(ConfigurationError, match="one per layer"):
        LakeLocation.parse("s3://just-one-bucket")
    with pytest.raises(ConfigurationError, match="MOVIELAKE_SPARK_SHUFFLE_PARTITIONS"):
        Settings.from_env({"MOVIELAKE_SPARK_SHUFFLE_PARTITIONS": "many"})
    with pytest.raises(ConfigurationError, match=r"MOVIELAKE_SPARK_CONF has 'spark\.driver\.memory'"):
        Settings.from_env({"MOVIELAKE_SPARK_CONF": "spark.driver.memory"})


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"])
def test_rejected_credentials_become_one_line(code):
    error = ClientError({"Error": {"Code": code, "Message": "no"}}, "HeadBucket")
    with pytest.raises(EndpointError) as raised, aws_errors(S3, "http://s3.example", "data-lake-staging"):
        raise error
    assert "refused the credentials" in str(raised.value) and "AWS_ACCESS_KEY_ID" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_glue_refusals_name_the_permissions():
    """One mapper serves both services; each names its own fix."""
    error = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetDatabase")
    with (
        pytest.raises(EndpointError, match=r"AWS Glue refused the credentials .* glue:\*Database\*"),
        aws_errors(GLUE, None),
    ):
        raise error
    with (
        pytest.raises(EndpointError, match=r"cannot reach the Glue endpoint .* MOVIELAKE_GLUE_ENDPOINT"),
        aws_errors(GLUE, "http://127.0.0.1:9"),
    ):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def test_connection_errors_become_one_line():
    with pytest.raises(EndpointError, match="cannot reach"), aws_errors(S3, "http://127.0.0.1:9"):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def test_lake_locations():
    seed = LakeLocation.parse("s3://")
    assert (
        seed.uri("access", "ratings-data-mart/fct-rating") == "s3://data-lake-access-layer/ratings-data-mart/fct-rating"
    )
    assert LakeLocation.parse("s3://acme-{layer}").uri("staging") == "s3://acme-staging"
    local = LakeLocation.parse("/tmp/lake")
    assert local.uri("cleanse", "movies") == "/tmp/lake/cleanse/movies" and not local.is_s3
