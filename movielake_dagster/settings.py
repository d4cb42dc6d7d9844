"""All configuration in one place.

Every setting has a default that runs the bundled demo on a laptop; each can be overridden by an
environment variable (or a CLI flag, which sets the same field). Nothing here is read at import
time: ``Settings.from_env()`` is called when the Dagster definitions load or the CLI starts, so
tests build ``Settings(...)`` directly. Credentials are never settings: they come from the AWS
default chain (environment, profile, instance role) in both boto3 and Spark's S3A.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from movielake_dagster.errors import ConfigurationError

SAMPLE_DATA_DIR = Path(__file__).parent / "sample_data"
CONNECTORS = "spark4.1-iceberg1.12.0-comet1.2.0"  # the jar set of connectors/pom.xml (the Makefile's CONNECTORS)
SPARK_ENGINES = ("comet", "spark")
DEFAULT_JARS_DIR = Path.home() / ".cache" / "movielake" / "jars" / CONNECTORS


def _env_name(field_name: str) -> str:
    return f"MOVIELAKE_{field_name.upper()}"


@dataclass(frozen=True)
class Settings:
    """The lake's settings. Each field ``x`` is read from ``MOVIELAKE_X`` by ``from_env``."""

    lake: str = ".movielake/lake"
    """Where the lake lives: a local folder (one sub-folder per layer), or ``s3://`` for one
    bucket per layer with the seed's names, or ``s3://prefix-{layer}`` for your own names."""
    landing: str = str(SAMPLE_DATA_DIR)
    """Where raw files land (a local folder or ``s3://bucket/prefix``); the bundled sample by default."""
    s3_endpoint: str = ""
    """S3 endpoint URL for MinIO, moto or another S3-compatible server; empty means AWS."""
    s3_region: str = ""
    """AWS region; empty means the AWS default chain (AWS_REGION, profile), else us-east-1."""
    spark_master: str = "local[*]"
    """Spark master URL: ``local[*]`` runs in-process; ``spark://host:7077``, ``yarn``, ``k8s://...`` a cluster."""
    spark_remote: str = ""
    """Spark Connect URL (``sc://host:15002``); when set, it is used instead of ``spark_master``."""
    spark_driver_memory: str = "1536m"
    """Driver (and, in local mode, executor) memory. 1536m keeps a 10M-rating build within 3 GiB
    for the whole process tree (docs/performance.md); raise it for bigger data on a bigger machine."""
    spark_shuffle_partitions: int = 32
    """Partitions of a shuffle before adaptive execution merges small ones (into pieces of about
    16 MB). 32 keeps each sort or hash table of a 10M-rating build small enough not to spill on one
    machine (docs/performance.md); raise it on a cluster (a few per core)."""
    spark_engine: str = "spark"
    """What executes Spark's plans: ``spark`` (Spark's own JVM engine) or ``comet`` (Apache
    DataFusion Comet, a native vectorized engine that runs the scans, filters, aggregations, joins
    and shuffles it supports and hands the rest back to Spark). Comet is opt-in: on this lake's
    graph it measured slower, not faster (docs/performance.md, run N: 10M ratings, cold
    ``movielake run`` 599 s with Comet against 172 s without), so it stays off until that changes."""
    spark_conf: str = ""
    """Further Spark properties, ``key=value`` pairs separated by commas (for example
    ``spark.executor.memory=4g,spark.executor.cores=4``); they are applied after, and so override,
    the lake's own settings above."""
    spark_java_options: str = ""
    """Further JVM options for Spark's driver and executors, after the lake's own (its log4j
    configuration and the parallel collector). ``-XX:TieredStopAtLevel=1`` (the JIT's quick tier
    only) suits small data: the bundled sample's build used 96 instead of 140 CPU seconds, 77
    instead of 85 s wall (docs/performance.md, run P); long jobs over big data lose the optimizing
    tier's speed with it. The test suite sets it for the JVMs of the processes it starts."""
    jars_dir: str = str(DEFAULT_JARS_DIR)
    """Folder with the S3A connector jars (``make setup`` fills it from Maven Central)."""
    dagster_home: str = ""
    """Dagster instance folder used by the CLI; empty means an ephemeral instance."""
    catalog: str = "local"
    """Metadata catalog the crawler writes: ``local`` (an embedded SQLite file) or ``glue`` (AWS Glue Data Catalog)."""
    catalog_path: str = ""
    """The local catalog's file; empty means ``catalog.db`` beside the layer folders (``.movielake/catalog.db`` for S3 lakes)."""
    glue_endpoint: str = ""
    """Glue API endpoint URL (moto, LocalStack); empty means AWS (or ``AWS_ENDPOINT_URL_GLUE``)."""
    snapshot_retention_days: int = 7
    """Days that the maintenance job keeps old Iceberg snapshots (for rollback and time travel) and
    unpublished run branches (for inspection) before expiring them."""
    schedule_time: str = "06:00"
    """Local time (HH:MM, in ``schedule_timezone``) at which the daily update starts."""
    schedule_timezone: str = "UTC"
    """IANA time zone of the schedule and of the freshness deadline (e.g. ``Europe/Berlin``)."""
    fresh_by: str = "07:00"
    """Deadline (HH:MM, ``schedule_timezone``) by which the access layer must have been refreshed that day."""
    landing_settle_seconds: int = 60
    """A landed file younger than this is still being written: the new-data sensor waits for it."""
    step_retries: int = 2
    """Retries of a failed step (S3 throttling, a dropped connection, a lost executor); 0 disables."""
    retry_delay_seconds: int = 15
    """Wait before the first retry; it doubles for each further one (with jitter)."""
    automation: str = "stopped"
    """Initial state of the daily schedule and the new-data sensor: ``stopped`` or ``running``."""
    alert_webhook: str = ""
    """URL that the run-failure sensor POSTs ``{"text": ...}`` to (Slack/Teams style); empty: log only."""
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parse_spark_conf(self.spark_conf)  # a malformed value fails when the settings are made
        if self.spark_engine not in SPARK_ENGINES:
            raise ConfigurationError(
                f"{_env_name('spark_engine')}={self.spark_engine!r} is not an engine movielake knows",
                f"set it to one of {', '.join(SPARK_ENGINES)}",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``MOVIELAKE_*`` variables, then explicit ``overrides`` (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = environ.get(_env_name(f.name))
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, raw, f.type)
        if not values.get("s3_endpoint"):
            endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                values["s3_endpoint"] = endpoint
        if not values.get("s3_region"):
            region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
            if region:
                values["s3_region"] = region
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: object) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def region(self) -> str:
        return self.s3_region or "us-east-1"

    @property
    def extra_spark_conf(self) -> dict[str, str]:
        """``spark_conf`` as a dict; a pair without ``=`` or with an empty key is a configuration error."""
        return parse_spark_conf(self.spark_conf)


def parse_spark_conf(text: str) -> dict[str, str]:
    """``"a=1, b=x=y"`` -> ``{"a": "1", "b": "x=y"}`` (the value may contain ``=``, not ``,``)."""
    conf = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                f"{_env_name('spark_conf')} has {pair!r}, which is not a key=value pair",
                f"write it as {_env_name('spark_conf')}=spark.some.property=value,spark.other=value",
            )
        conf[key.strip()] = value.strip()
    return conf


def _coerce(name: str, raw: str, type_name: object) -> object:
    if type_name in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(
                f"{_env_name(name)}={raw!r} is not a whole number", f"set {_env_name(name)} to an integer"
            ) from None
    return raw
