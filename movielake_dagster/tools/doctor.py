"""``movielake doctor``: is this machine and these settings ready to build the lake?

Each check returns one :class:`Finding`; a problem is printed on one line with its fix. Checks that
need the network (S3, Glue) only run when the settings use them, and never create anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from movielake_dagster.assets.staging import check_landing as landed
from movielake_dagster.assets.staging import landed_rating_batches
from movielake_dagster.aws import error_code, is_not_found
from movielake_dagster.catalog import BACKENDS, default_catalog_path
from movielake_dagster.catalog.glue import GlueCatalog
from movielake_dagster.code_location import build_definitions, build_resources
from movielake_dagster.errors import MovielakeError
from movielake_dagster.lake import LakeLocation
from movielake_dagster.resources.spark import (
    REQUIRED_JARS,
    comet_status,
    connector_jars,
    missing_jars,
)
from movielake_dagster.settings import Settings
from movielake_dagster.tools.catalog_commands import iceberg_for

MIN_JAVA = 17


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok       {self.check}: {self.detail}"
        return f"problem  {self.check}: {self.detail} -> {self.fix}"


def _uses_s3(settings: Settings) -> bool:
    return settings.lake.startswith(("s3://", "s3a://")) or settings.landing.startswith("s3://")


def check_java(settings: Settings, java: Callable[[], str | None] | None = None) -> Finding:
    if settings.spark_remote:
        return Finding("java", True, f"not needed: Spark runs at {settings.spark_remote} (Spark Connect)")
    version_text = (java or _java_version)()
    if version_text is None:
        return Finding(
            "java",
            False,
            "no java on PATH and JAVA_HOME is not set",
            "install a JDK 17 or 21 (apt-get install openjdk-17-jre-headless) or set JAVA_HOME",
        )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_text)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        return Finding(
            "java",
            False,
            f"Java {major or '?'} found; Spark 4 needs {MIN_JAVA} or 21",
            "install openjdk-17 and point JAVA_HOME at it",
        )
    return Finding("java", True, f"Java {major}")


def _java_version() -> str | None:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home, "bin", "java")) if home and Path(home, "bin", "java").exists() else shutil.which("java")
    if not java:
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stderr or done.stdout


def check_jars(settings: Settings) -> Finding:
    """The connector jars this lake needs: Iceberg always, the SQLite driver for a local catalog, the
    AWS bundle and hadoop-aws for S3 or Glue."""

    if settings.spark_remote:
        return Finding("connector jars", True, "provided by the Spark Connect server's own classpath")
    folder = Path(os.path.expanduser(settings.jars_dir))
    jars = connector_jars(str(folder))
    missing = missing_jars(jars, _uses_s3(settings), settings.catalog, settings.spark_engine)
    if missing:
        return Finding(
            "connector jars",
            False,
            f"{folder} lacks {', '.join(f'{m} ({REQUIRED_JARS[m]})' for m in missing)}",
            "run `make setup` (fetches them from Maven Central) or set MOVIELAKE_JARS_DIR",
        )
    return Finding("connector jars", True, f"{len(jars)} jars in {folder}")


def check_lake(settings: Settings) -> Finding:

    try:
        location = LakeLocation.parse(settings.lake)
    except MovielakeError as error:
        return Finding("lake", False, error.problem, error.fix)
    if not location.is_s3:
        root = Path(location.roots["staging"]).parent
        existing = next((p for p in [root, *root.parents] if p.exists()), None)
        if existing is None or not os.access(existing, os.W_OK):
            return Finding(
                "lake",
                False,
                f"{root} cannot be created (no write access to {existing})",
                "set MOVIELAKE_LAKE (or --lake) to a folder you can write",
            )
        return Finding("lake", True, f"{root} ({'exists' if root.exists() else 'created on the first run'})")
    store = build_resources(settings)["lake"].store
    missing = []
    try:
        for bucket in location.buckets():
            if not _bucket_exists(store, bucket):
                missing.append(bucket)
    except MovielakeError as error:
        return Finding("lake", False, error.problem, error.fix)
    state = f"missing, created on the first run: {', '.join(missing)}" if missing else "all reachable"
    return Finding("lake", True, f"buckets {', '.join(location.buckets())} ({state})")


def _bucket_exists(store, bucket: str) -> bool:

    with store.errors(bucket):
        try:
            store.s3.head_bucket(Bucket=bucket)
            return True
        except Exception as error:  # not found is expected; aws_errors classifies the rest
            if is_not_found(error):
                return False
            raise


def check_landing(settings: Settings) -> Finding:

    lake = build_resources(settings)["lake"]
    if not settings.landing.startswith("s3://") and not Path(settings.landing).is_dir():
        return Finding(
            "landing",
            False,
            f"{settings.landing} is not a folder",
            "set MOVIELAKE_LANDING (or --raw) to the folder or s3:// prefix where raw files land",
        )
    try:
        landed(lake)
        batches = len(landed_rating_batches(lake))
    except MovielakeError as error:
        return Finding("landing", False, error.problem, error.fix)
    extra = f", {batches} daily rating batches" if batches else ""
    return Finding("landing", True, f"{settings.landing} has movies, ratings and users{extra}")


def check_s3_credentials(settings: Settings) -> Finding:
    if not _uses_s3(settings) and settings.catalog != "glue":
        return Finding("s3 credentials", True, "not needed: nothing is on S3 or Glue")
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        return Finding(
            "s3 credentials",
            False,
            "no AWS credentials in the default chain",
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run with an IAM role",
        )

    store = build_resources(settings)["lake"].store
    endpoint = settings.s3_endpoint or f"AWS S3 ({settings.region})"
    try:
        with store.errors():
            store.s3.list_buckets()
    except MovielakeError as error:
        return Finding("s3 credentials", False, error.problem, error.fix)
    except Exception as error:  # noqa: BLE001 - e.g. AccessDenied on ListBuckets, which a lake role may lack
        code = error_code(error) or type(error).__name__
        return Finding("s3 credentials", True, f"{credentials.method} credentials; {endpoint} answered ({code})")
    return Finding("s3 credentials", True, f"{credentials.method} credentials accepted by {endpoint}")


def check_catalog(settings: Settings) -> Finding:

    if settings.catalog not in BACKENDS:
        return Finding(
            "catalog",
            False,
            f"MOVIELAKE_CATALOG={settings.catalog!r} is not a catalog backend",
            f"use one of {', '.join(BACKENDS)}",
        )
    if settings.catalog == "local":
        try:
            path = Path(settings.catalog_path or default_catalog_path(LakeLocation.parse(settings.lake)))
        except MovielakeError as error:
            return Finding("catalog", False, error.problem, error.fix)
        existing = next((p for p in [path.parent.resolve(), *path.parent.resolve().parents] if p.exists()), None)
        if existing is None or not os.access(existing, os.W_OK):
            return Finding(
                "catalog",
                False,
                f"cannot write the local catalog {path}",
                "set MOVIELAKE_CATALOG_PATH to a writable file",
            )
        return Finding("catalog", True, f"local catalog at {path} (Iceberg tables: {_iceberg_tables(settings)})")

    try:
        databases = GlueCatalog(settings.glue_endpoint, settings.region).list_databases()
        tables = _iceberg_tables(settings)
    except MovielakeError as error:
        return Finding("catalog", False, error.problem, error.fix)
    return Finding(
        "catalog",
        True,
        f"AWS Glue ({settings.glue_endpoint or settings.region}): "
        f"{len(databases)} databases visible, Iceberg tables: {tables}",
    )


def _iceberg_tables(settings: Settings) -> str:
    """How many Iceberg tables the catalog holds per layer, e.g. ``cleanse 6, access 10``."""

    tables = iceberg_for(settings).tables()
    if not tables:
        return "none yet"
    return ", ".join(f"{layer} {sum(1 for t in tables if t[0] == layer)}" for layer in sorted({t[0] for t in tables}))


def check_definitions(settings: Settings) -> Finding:
    """Schedule, time zone and the other settings are valid: the Dagster code location loads."""

    try:
        defs = build_definitions(settings)
    except MovielakeError as error:
        return Finding("settings", False, error.problem, error.fix)
    schedule = defs.resolve_schedule_def("daily_lake_update_schedule")
    return Finding(
        "settings",
        True,
        f"definitions load; daily update at {settings.schedule_time} "
        f"{schedule.execution_timezone} ({schedule.default_status.value.lower()}), "
        f"fresh by {settings.fresh_by}",
    )


def check_engine(settings: Settings) -> Finding:
    """With ``MOVIELAKE_SPARK_ENGINE=comet``: start Spark as a run would and ask its JVM whether
    Comet's native library loaded (a plugin that fails to load only logs; queries would then run on
    Spark alone, slower, with no error)."""

    if settings.spark_engine != "comet":
        return Finding("engine", True, f"Spark's own engine (MOVIELAKE_SPARK_ENGINE={settings.spark_engine})")
    if settings.spark_remote:
        return Finding("engine", True, "Comet is the Spark Connect server's to load, not checked from here")
    # Spark starts against a throwaway local lake: the doctor creates nothing in the user's lake.
    with tempfile.TemporaryDirectory(prefix="movielake-doctor-") as scratch:
        scratch_settings = settings.with_overrides(lake=scratch, landing=scratch, catalog="local", catalog_path="")
        try:
            session = build_resources(scratch_settings)["spark"].get_session()
        except MovielakeError as error:
            return Finding("engine", False, f"Spark did not start: {error.problem}", error.fix)
        reason = comet_status(session)
    if reason:
        return Finding(
            "engine",
            False,
            f"Comet did not load: {reason}",
            "run `make setup`, or set MOVIELAKE_SPARK_ENGINE=spark to run on Spark alone",
        )
    return Finding("engine", True, "Comet's native library is loaded; Spark's plans run on it where it can")


CHECKS = (
    check_java,
    check_jars,
    check_lake,
    check_landing,
    check_s3_credentials,
    check_catalog,
    check_definitions,
    check_engine,
)


def run_checks(settings: Settings, checks=CHECKS) -> list[Finding]:
    findings = []
    for check in checks:
        try:
            findings.append(check(settings))
        except Exception as error:  # noqa: BLE001 - a broken check is itself a finding, not a crash
            findings.append(
                Finding(
                    check.__name__.removeprefix("check_"),
                    False,
                    f"the check itself failed: {type(error).__name__}: {error}",
                    "report this; the other checks still ran",
                )
            )
    return findings


def report(findings: list[Finding]) -> str:
    problems = sum(not f.ok for f in findings)
    summary = "no problems found" if not problems else f"{problems} problem(s) found"
    return "\n".join([*(f.line() for f in findings), f"movielake doctor: {summary}"])
