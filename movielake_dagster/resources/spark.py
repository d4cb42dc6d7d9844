"""The Spark engine as a Dagster resource: one session per process, local or on a cluster.

Every asset of a run executes in one process (the definitions use the in-process executor), so a
run starts one JVM and all steps share its session and cache; a multiprocess executor would start
a JVM per step, costing seconds each and re-reading what an earlier step had in memory.
"""

import glob
import os
import shutil
from pathlib import Path

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from movielake_dagster.catalog.iceberg import SPARK_CATALOG
from movielake_dagster.errors import EnvironmentProblem
from movielake_dagster.resources.catalog import CatalogResource
from movielake_dagster.resources.lake import LakeResource

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
_APPLIED: dict[int, tuple] = {}  # per session: the runtime settings last applied to it


def java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "java").exists():
        return True
    return shutil.which("java") is not None


def connector_jars(jars_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(os.path.expanduser(jars_dir), "*.jar")))


REQUIRED_JARS = {  # jar name prefix -> what needs it
    "iceberg-spark-runtime": "Iceberg tables (every lake)",
    "comet-spark": "the Comet engine (MOVIELAKE_SPARK_ENGINE=comet)",
    "sqlite-jdbc": "the local Iceberg catalog",
    "iceberg-aws-bundle": "Iceberg on S3 and the Glue catalog",
    "hadoop-aws": "Spark's s3a:// reads of raw files on S3",
}


def missing_jars(jars: list[str], on_s3: bool, backend: str, engine: str = "spark") -> list[str]:
    """The connector jars a lake with these settings needs and ``jars`` lacks (by name prefix)."""
    needed = ["iceberg-spark-runtime"]
    if engine == "comet":
        needed.append("comet-spark")
    if backend == "local":
        needed.append("sqlite-jdbc")
    if on_s3 or backend == "glue":
        needed.append("iceberg-aws-bundle")
    if on_s3:
        needed.append("hadoop-aws")
    names = [os.path.basename(j) for j in jars]
    return [n for n in needed if not any(name.startswith(n + "-") for name in names)]


def session_property(key: str) -> bool:
    """Whether a client of a Spark Connect server may set ``key`` on its own session: SQL properties (the
    catalog, the time zone; Hadoop and Comet ones are accepted there too). The others (jars, extensions,
    driver, executors, plugins) are the server's, given when it starts; a client's try only warns."""
    return key.startswith(("spark.sql.", "spark.hadoop.", "spark.comet.")) and key != "spark.sql.extensions"


COMET_PLUGIN = "org.apache.spark.CometPlugin"


def comet_conf(jars: list[str], local: bool) -> dict[str, str]:
    """Spark properties that put Apache DataFusion Comet under Spark's plans.

    Comet replaces the physical operators it supports (scans, filters, projections, hash
    aggregations, joins, sorts, shuffles) with native Arrow/DataFusion ones and leaves the rest to
    Spark, converting batches at the boundaries; Iceberg and Parquet writes stay on Spark. Each
    choice below follows Comet's tuning guide and the prototype of issue 16:

    - off-heap memory on, 768 MB: Comet's operators reserve their memory from Spark's off-heap pool
      and refuse to start without one; the pool is memory beside the driver's heap (size both
      together against the machine).
    - native shuffle (``CometShuffleManager``): shuffles between native stages stay columnar.
    - windows stay on Spark (``spark.comet.exec.window.enabled=false``): ``row_number`` over a
      sorted partition, which ranks duplicates, ran about 2x slower natively in the prototype.

    It is opt-in (``MOVIELAKE_SPARK_ENGINE=comet``): on the lake's whole graph it measured slower
    (docs/performance.md, run N). The lake's plans cross between Spark and Comet often (the text
    scan of raw files, windows, Iceberg writes stay on Spark), and each crossing converts rows.

    On a cluster the plugin and the shuffle manager are loaded when an executor starts, before it
    fetches ``spark.jars``, so the jar also goes on the executors' class path: it must exist at the
    same path on every worker (``make setup`` there, or a shared folder).
    """
    conf = {
        "spark.plugins": COMET_PLUGIN,
        "spark.shuffle.manager": "org.apache.spark.sql.comet.execution.shuffle.CometShuffleManager",
        "spark.comet.enabled": "true",
        "spark.comet.exec.enabled": "true",
        "spark.comet.shuffle.enabled": "true",
        "spark.memory.offHeap.enabled": "true",
        "spark.memory.offHeap.size": "768m",
        "spark.comet.exec.window.enabled": "false",
        "spark.executorEnv.COMET_LOG_LEVEL": "WARN",
    }
    comet = [j for j in jars if os.path.basename(j).startswith("comet-spark-")]
    if comet and not local:
        conf["spark.executor.extraClassPath"] = comet[0]
    return conf


def comet_status(session) -> str | None:
    """``None`` when Comet's native library is loaded in this (local) session's JVM, else why not.

    A plugin that fails to load does not stop Spark: queries silently run on Spark alone. So this
    asks the JVM directly (Comet's ``NativeBase.isLoaded``) and reports the reason it gives.
    """
    conf = session.sparkContext.getConf()
    if COMET_PLUGIN not in (conf.get("spark.plugins") or ""):
        return "the Comet plugin is not in spark.plugins (MOVIELAKE_SPARK_ENGINE=spark?)"
    try:
        loaded = session._jvm.org.apache.comet.NativeBase.isLoaded()
    except Exception as error:  # noqa: BLE001 - py4j wraps the JVM's reason; report its first line
        return str(error).strip().splitlines()[0][:300]
    return None if loaded else "Comet's native library did not load"


class SparkResource(dg.ConfigurableResource):
    """A SparkSession: ``local[*]`` by default, a cluster master URL, or a Spark Connect remote."""

    lake: LakeResource
    catalog: CatalogResource
    master: str = "local[*]"
    remote: str = ""
    app_name: str = "movielake"
    driver_memory: str = "1536m"
    shuffle_partitions: int = 32
    engine: str = "spark"
    jars_dir: str = ""
    java_options: str = ""
    extra_conf: dict[str, str] = {}

    def s3a_options(self) -> dict[str, str]:
        """Hadoop S3A settings: endpoint and region from the lake, credentials from the AWS default chain."""
        options = {
            "fs.s3a.aws.credentials.provider": "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
            "fs.s3a.endpoint.region": self.lake.s3_region,
            "fs.s3a.attempts.maximum": "3",
            "fs.s3a.retry.limit": "3",
            "fs.s3a.connection.establish.timeout": "5s",
            "fs.s3a.fast.upload": "true",
        }
        endpoint = self.lake.s3_endpoint
        if endpoint:
            options["fs.s3a.endpoint"] = endpoint
            options["fs.s3a.path.style.access"] = "true"
            options["fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https")).lower()
        return options

    def spark_conf(self) -> dict[str, str]:
        conf = {
            "spark.app.name": self.app_name,
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.sql.adaptive.enabled": "true",
            # Adaptive execution merges shuffle partitions up to this size. Spark's 64 MB default
            # left 2-3 partitions for a 10M-row sort or hash aggregation on this 2-core machine,
            # and they ran 2-3x slower than 16 MB pieces (docs/performance.md).
            "spark.sql.adaptive.advisoryPartitionSizeInBytes": "16m",
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.ui.showConsoleProgress": "false",
            "spark.ui.enabled": "false",
            # The parallel (throughput) collector instead of G1: the lake's jobs are batch work
            # with short-lived rows, and at 10M ratings the classification, duplicate ranking and
            # key check ran about 10% faster with it, with the same heap limit (docs/performance.md).
            "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()} -XX:+UseParallelGC"
            + (f" {self.java_options}" if self.java_options else ""),
        }
        if self.java_options and not self.master.startswith("local"):
            conf["spark.executor.extraJavaOptions"] = self.java_options
        if not self.remote:
            conf["spark.driver.memory"] = self.driver_memory
        jars = connector_jars(self.jars_dir) if self.jars_dir else []
        if jars:
            conf["spark.jars"] = ",".join(jars)
        conf.update({f"spark.hadoop.{k}": v for k, v in self.s3a_options().items()})
        conf.update(self.catalog.iceberg().spark_conf())
        if self.engine == "comet":
            conf.update(comet_conf(jars, local=self.master.startswith("local")))
        conf.update(self.extra_conf)  # the user's own properties win
        return conf

    def pyspark(self) -> LazyPySparkResource:
        """dagster-pyspark's resource configured from the lake's settings: ``spark_conf()`` plus the
        master URL, or, for Spark Connect, the remote URL and only the properties a client may set."""
        conf = self.spark_conf()
        if self.remote:  # a Connect server's own properties (jars, extensions, memory) were fixed when it started
            conf = {k: v for k, v in conf.items() if k in self.extra_conf or session_property(k)}
            conf["spark.remote"] = self.remote
        else:
            conf["spark.master"] = self.master
        return LazyPySparkResource(spark_config=conf)

    def get_session(self):
        """The process's SparkSession, created on first use with this resource's settings."""
        from pyspark.sql import SparkSession

        missing = (
            []
            if self.remote
            else missing_jars(connector_jars(self.jars_dir), self.lake.is_s3, self.catalog.backend, self.engine)
        )
        if missing:
            raise EnvironmentProblem(
                f"the Spark connector jars {', '.join(missing)} are missing from "
                f"{self.jars_dir or '(MOVIELAKE_JARS_DIR unset)'}",
                "run `make setup` (it fetches them from Maven Central) or set MOVIELAKE_JARS_DIR",
            )
        self.catalog.iceberg().prepare()
        active = SparkSession.getActiveSession()
        if active is not None:
            self._apply_runtime_conf(active)
            return active
        if not self.remote and not java_available():
            raise EnvironmentProblem(
                "Java was not found (Spark needs a JDK 17 or 21)",
                "install one (apt-get install openjdk-17-jre-headless) or set JAVA_HOME",
            )
        if self.engine == "comet":
            # Comet's native library logs at INFO to stderr unless told otherwise; it reads the
            # level from the environment of the JVM that pyspark is about to start.
            os.environ.setdefault("COMET_LOG_LEVEL", "WARN")
        session = self.pyspark().spark_session
        if not self.remote:
            session.sparkContext.setLogLevel("ERROR")
        return session

    def _apply_runtime_conf(self, session) -> None:
        """A session shared across runs in one process (tests, the CLI) gets this run's S3A settings
        and Iceberg catalog (Spark initialises a catalog once: it is dropped to be made anew). Every
        step asks for the session, so this is a no-op while the settings stay those last applied."""
        catalog_conf = {k: v for k, v in self.catalog.iceberg().spark_conf().items() if k != "spark.sql.extensions"}
        wanted = (
            self.shuffle_partitions,
            tuple(sorted(catalog_conf.items())),
            tuple(sorted(self.s3a_options().items())),
        )
        if _APPLIED.get(id(session)) == wanted:
            return
        _APPLIED[id(session)] = wanted
        session.conf.set("spark.sql.shuffle.partitions", str(self.shuffle_partitions))
        current = session.conf.getAll  # a dict of the session's properties
        prefix = f"spark.sql.catalog.{SPARK_CATALOG}."
        stale = [k for k in current if k.startswith(prefix) and k not in catalog_conf]
        changed = any(current.get(k) != v for k, v in catalog_conf.items()) or stale
        if changed:
            for key in stale:
                session.conf.unset(key)
            for key, value in catalog_conf.items():
                session.conf.set(key, value)
            if not self.remote:
                session._jsparkSession.sessionState().catalogManager().reset()
        if self.remote:
            return
        hadoop_conf = session.sparkContext._jsc.hadoopConfiguration()
        options = self.s3a_options()
        if hadoop_conf.get("fs.s3a.endpoint") != options.get("fs.s3a.endpoint"):
            session.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.closeAll()  # drop clients of the old endpoint
        for key, value in options.items():
            hadoop_conf.set(key, value)
