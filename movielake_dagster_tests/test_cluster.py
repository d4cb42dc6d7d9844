"""The lake on a real Spark cluster: a standalone master and two workers, then a Spark Connect server.

Every Spark process here is a separate JVM started from pyspark's own distribution (``bin/spark-class``,
``bin/spark-submit``) on 127.0.0.1, and the lake is on S3 (moto's server), so executors reach the raw
files and the tables over HTTP as they would on AWS. ``movielake run`` runs as users run it, in its
own process: once with ``MOVIELAKE_SPARK_MASTER=spark://...`` (the CLI is the driver; the connector
jars travel to the executors as ``spark.jars``), once with ``MOVIELAKE_SPARK_REMOTE=sc://...`` (a
Connect server on the same cluster is the driver; the CLI is a thin client). Each run's tables
equal those of a local build, and Spark's own event log shows tasks on both workers. Every process
the module starts is stopped by it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from movielake_dagster.datasets import (
    ALL_DATASETS,
    ANALYTICS_DATASETS,
    FCT_RATING,
    RATINGS,
)
from movielake_dagster.settings import Settings

from .conftest import table_rows

pytestmark = [pytest.mark.slow, pytest.mark.s3]

TABLES = [d for d in (*ALL_DATASETS, *ANALYTICS_DATASETS) if d.layer != "staging"]  # the Iceberg tables
STARTUP_SECONDS = 120
RUN_SECONDS = 900


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent  # pip's pyspark is a Spark distribution: bin/, jars/


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_excerpt(log: Path, limit: int = 6) -> str:
    """The lines of a log that say what went wrong (never the whole Spark log)."""
    if not log.exists():
        return ""
    lines = [
        line.strip()[:300]
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("movielake:") or "ERROR" in line or "Exception" in line
    ]
    return "\n".join(lines[:limit])


class Processes:
    """The JVMs this module starts, each in a process group of its own, stopped in reverse order."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder, start_new_session=True
        )
        log.close()
        self.started.append((name, process))
        return process

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM to the process's group (a worker's executors are in it), SIGKILL after 20 s."""
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            if process.poll() is not None:
                break
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        try:  # the group itself: an executor outliving its worker
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            self.stop(process)
        alive = [name for name, process in self.started if process.poll() is None]
        assert not alive, f"still running: {alive}"

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{_log_excerpt(self.folder / f'{name}.log')}")


def _jvm_env(**extra: str) -> dict[str, str]:
    """The environment of every process here: loopback only, and the AWS test credentials that conftest
    set, which executors need for s3a as much as the driver does (the AWS default chain)."""
    dropped = ("MOVIELAKE_SPARK_MASTER", "MOVIELAKE_SPARK_REMOTE", "MOVIELAKE_SPARK_CONF")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith(("PYSPARK_", "SPARK_"))}
    # Executors run a few Python tasks (a frame the driver makes from rows, in classic mode): with
    # this Python, whatever ``python3`` is on the PATH.
    env.update(SPARK_HOME=str(_spark_home()), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, **extra)
    return env


def _daemon_env() -> dict[str, str]:
    """A master's or worker's: a small heap and a JVM that starts quickly (they only schedule)."""
    return _jvm_env(SPARK_DAEMON_MEMORY="256m", SPARK_DAEMON_JAVA_OPTS="-XX:+UseSerialGC -XX:TieredStopAtLevel=1")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and two workers of two cores each, stopped (with their executors) after the module."""
    folder = tmp_path_factory.mktemp("cluster")
    processes = Processes(folder)
    spark_class = str(_spark_home() / "bin" / "spark-class")
    port, ui = _free_port(), _free_port()
    master = f"spark://127.0.0.1:{port}"
    worker_uis = [_free_port(), _free_port()]
    try:
        processes.start(
            "master",
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui),
            ],
            _daemon_env(),
        )
        for i, worker_ui in enumerate(worker_uis, 1):
            work_dir = folder / f"worker{i}"
            work_dir.mkdir()
            processes.start(
                f"worker{i}",
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    master,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "2",
                    "--memory",
                    "1g",
                    "--webui-port",
                    str(worker_ui),
                    "--work-dir",
                    str(work_dir),
                ],
                _daemon_env(),
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        alive: list = []
        while len(alive) < 2:
            processes.check_alive()
            assert time.monotonic() < deadline, f"the workers did not register with the master: {alive}"
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as response:
                    state = json.load(response)
            except OSError:
                continue
            alive = [w for w in state.get("workers", []) if w["state"] == "ALIVE"]
        yield {"master": master, "ui": ui, "worker_uis": worker_uis, "folder": folder, "processes": processes}
    finally:
        processes.stop_all()


def _lake_settings(name: str, s3_server: str, folder: Path, **overrides) -> Settings:
    return Settings.from_env(
        lake=f"s3://{name}-{{layer}}",
        s3_endpoint=s3_server,
        catalog_path=str(folder / f"{name}-catalog.db"),
        catalog="local",
        **overrides,
    )


def _lake_env(settings: Settings, **spark: str) -> dict[str, str]:
    """What ``movielake run`` gets: the lake on S3, its catalog, and the Spark settings given."""
    env = _jvm_env(
        MOVIELAKE_LAKE=settings.lake,
        MOVIELAKE_S3_ENDPOINT=settings.s3_endpoint,
        MOVIELAKE_CATALOG="local",
        MOVIELAKE_CATALOG_PATH=settings.catalog_path,
        **spark,
    )
    for name in ("MOVIELAKE_LANDING", "DAGSTER_HOME"):  # the bundled sample, an ephemeral instance
        env.pop(name, None)
    return env


def _app_conf(events: Path) -> dict[str, str]:
    """Each application: one executor of one core and 512 MB on each worker (two cores of the cluster's
    four, so the two runs share it at once), and Spark's event log as plain JSON lines. Its JVMs only
    compile with the quick JIT (C1): on runs this short that cuts their CPU by about 40% (64 against
    109 CPU seconds for a sample build's driver), which a 2-core machine running six JVMs needs."""
    from movielake_dagster.code_location import build_resources

    events.mkdir()
    lake_options = build_resources(Settings())["spark"].spark_conf()["spark.driver.extraJavaOptions"]
    return {
        "spark.cores.max": "2",
        "spark.executor.cores": "1",
        "spark.executor.memory": "512m",
        "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "spark.driver.extraJavaOptions": f"{lake_options} -XX:TieredStopAtLevel=1",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
    }


def _as_setting(conf: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in conf.items())


def _movielake_run(processes: Processes, name: str, env: dict[str, str]) -> subprocess.Popen:
    """``movielake run`` as users run it, in a process of its own (its Spark driver JVM is its child)."""
    script = Path(sys.executable).with_name("movielake")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "movielake_dagster.tools.cli"]
    return processes.start(name, [*argv, "run"], env)


def _finished(processes: Processes, name: str, process: subprocess.Popen) -> str:
    try:
        process.wait(RUN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name} did not finish in {RUN_SECONDS} s")
    log = processes.folder / f"{name}.log"
    assert process.returncode == 0, f"{name} failed:\n{_log_excerpt(log)}"
    return log.read_text(errors="replace")


def _start_connect_server(processes: Processes, settings: Settings) -> tuple[subprocess.Popen, int]:
    """A Spark Connect server from pyspark's distribution whose driver runs on the cluster, started with
    the lake's server-side Spark properties: connector jars, Iceberg's SQL extensions, S3A, memory. Its
    client sets the rest (the Iceberg catalog, the time zone, ...) on its own session, as it does on any
    Connect server. Returns once the server's port accepts connections."""
    from movielake_dagster.code_location import build_resources
    from movielake_dagster.resources.spark import session_property

    port = _free_port()
    conf = {
        k: v
        for k, v in build_resources(settings)["spark"].spark_conf().items()
        if not session_property(k) or k.startswith(("spark.hadoop.", "spark.comet."))
    }
    conf.update({"spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": str(port)})
    argv = [
        str(_spark_home() / "bin" / "spark-submit"),
        "--master",
        settings.spark_master,
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
    ]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    server = processes.start("connect-server", [*argv, "spark-internal"], _jvm_env())
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        processes.check_alive()
        assert time.monotonic() < deadline, "the Spark Connect server did not open its port"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.5)


@pytest.fixture(scope="module")
def runs(cluster, s3_server, request):
    """Two lakes built at once on the cluster by ``movielake run``: one with ``MOVIELAKE_SPARK_MASTER``
    (the CLI is the driver), one with ``MOVIELAKE_SPARK_REMOTE`` (the Connect server is the driver);
    meanwhile this process builds the local lake they are compared with."""
    folder, processes = cluster["folder"], cluster["processes"]
    runs = {}
    for name in ("cluster", "connect"):
        runs[name] = {"settings": _lake_settings(name, s3_server, folder), "events": folder / f"events-{name}"}
    master_conf = _app_conf(runs["cluster"]["events"])
    cluster_run = _movielake_run(
        processes,
        "movielake-run-cluster",
        _lake_env(
            runs["cluster"]["settings"],
            MOVIELAKE_SPARK_MASTER=cluster["master"],
            MOVIELAKE_SPARK_CONF=_as_setting(master_conf),
        ),
    )
    server_settings = runs["connect"]["settings"].with_overrides(
        spark_master=cluster["master"], spark_conf=_as_setting(_app_conf(runs["connect"]["events"]))
    )
    server, port = _start_connect_server(processes, server_settings)
    connect_run = _movielake_run(
        processes,
        "movielake-run-connect",
        _lake_env(runs["connect"]["settings"], MOVIELAKE_SPARK_REMOTE=f"sc://127.0.0.1:{port}"),
    )
    runs["local"] = request.getfixturevalue("local_tables")
    runs["cluster"]["output"] = _finished(processes, "movielake-run-cluster", cluster_run)
    runs["connect"]["output"] = _finished(processes, "movielake-run-connect", connect_run)
    processes.stop(server)  # its event log is complete once it stops
    return runs


def _rows(settings: Settings, dataset) -> list[tuple]:
    """A table's rows, sorted; the lineage column ``source_file`` as a file name (the lakes' staging
    locations differ)."""
    from movielake_dagster.code_location import build_resources

    return _sorted_rows(table_rows(build_resources(settings), dataset), dataset)


def _sorted_rows(rows: list[dict], dataset) -> list[tuple]:
    def value(row: dict, column: str):
        return Path(row[column]).name if column == "source_file" and row[column] else row[column]

    return sorted((tuple(value(r, c) for c in dataset.column_names) for r in rows), key=repr)


@pytest.fixture(scope="module")
def local_tables(sample_lake):
    _, _, resources = sample_lake
    return {d.name: _sorted_rows(table_rows(resources, d), d) for d in TABLES}


def _tasks_by_worker(events: Path, cluster) -> dict[int, int]:
    """Worker web UI port -> successful tasks, from the application's event log (Spark's own record:
    each executor's log URLs point at the worker that launched it)."""
    logs = [p for p in events.iterdir() if p.name.startswith("app-")]
    assert len(logs) == 1, [p.name for p in events.iterdir()]
    worker_of: dict[str, int] = {}
    tasks: dict[int, int] = {}
    master = None
    for line in logs[0].read_text().splitlines():
        event = json.loads(line)
        kind = event["Event"]
        if kind == "SparkListenerEnvironmentUpdate":
            master = event["Spark Properties"].get("spark.master")
        elif kind == "SparkListenerExecutorAdded":
            worker_of[event["Executor ID"]] = urlparse(event["Executor Info"]["Log Urls"]["stderr"]).port
        elif kind == "SparkListenerTaskEnd" and event["Task End Reason"]["Reason"] == "Success":
            worker = worker_of[event["Task Info"]["Executor ID"]]
            tasks[worker] = tasks.get(worker, 0) + 1
    assert master == cluster["master"]
    return tasks


def _assert_same_tables(run: dict, local_tables: dict) -> None:
    different = [d.name for d in TABLES if _rows(run["settings"], d) != local_tables[d.name]]
    assert not different, f"tables that differ from a local build's: {different}"
    assert len(local_tables[FCT_RATING.name]) > 0 and len(local_tables[RATINGS.name]) > 0


def test_a_run_on_the_cluster_builds_the_tables_of_a_local_build(runs):
    _assert_same_tables(runs["cluster"], runs["local"])


def test_the_cluster_run_ran_tasks_on_both_workers_with_the_jars_it_shipped(runs, cluster):
    tasks = _tasks_by_worker(runs["cluster"]["events"], cluster)
    assert set(tasks) == set(cluster["worker_uis"]), tasks
    for i in (1, 2):  # each worker's executors fetched the connector jars from their driver
        assert list((cluster["folder"] / f"worker{i}").glob("app-*/*/iceberg-spark-runtime-*.jar"))


def test_a_run_through_spark_connect_builds_the_tables_of_a_local_build(runs):
    _assert_same_tables(runs["connect"], runs["local"])
    assert "Failed to set" not in runs["connect"]["output"]  # the client sets only its session's properties


def test_the_connect_run_ran_tasks_on_both_workers(runs, cluster):
    tasks = _tasks_by_worker(runs["connect"]["events"], cluster)
    assert set(tasks) == set(cluster["worker_uis"]), tasks
