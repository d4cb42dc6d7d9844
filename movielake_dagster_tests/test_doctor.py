"""``movielake doctor``: one line per check, and a problem always names its fix."""

from __future__ import annotations

import pytest

from movielake_dagster.settings import SAMPLE_DATA_DIR, Settings
from movielake_dagster.tools import doctor
from movielake_dagster.tools.cli import main


def _problems(findings) -> dict[str, str]:
    return {f.check: f.line() for f in findings if not f.ok}


def test_a_local_setup_with_the_sample_has_no_problems(spark, tmp_path):
    findings = doctor.run_checks(Settings(lake=str(tmp_path / "lake"), landing=str(SAMPLE_DATA_DIR)))
    assert _problems(findings) == {}
    assert [f.check for f in findings] == [
        "java",
        "connector jars",
        "lake",
        "landing",
        "s3 credentials",
        "catalog",
        "settings",
        "engine",
    ]
    assert "Spark's own engine" in findings[-1].detail  # Comet is opt-in


def test_the_engine_check_starts_spark_with_comet_on_a_scratch_lake(spark, tmp_path):
    """The test run's JVM has no Comet plugin: the check starts Spark as a run would (here: gets the
    running session) and reports that Comet is not in it, with the way out; nothing is created."""
    finding = doctor.check_engine(Settings(lake=str(tmp_path / "lake"), spark_engine="comet"))
    assert not finding.ok and "Comet did not load: the Comet plugin is not in spark.plugins" in finding.detail
    assert "MOVIELAKE_SPARK_ENGINE=spark" in finding.fix
    assert not (tmp_path / "lake").exists()


def test_the_engine_check_names_a_missing_comet_jar_and_the_way_out(tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"), jars_dir=str(tmp_path / "no-jars"), spark_engine="comet")
    assert "comet-spark (the Comet engine" in _problems([doctor.check_jars(settings)])["connector jars"]
    engine = doctor.check_engine(settings)
    assert not engine.ok and "Spark did not start" in engine.detail and "make setup" in engine.fix
    spark_only = doctor.check_engine(settings.with_overrides(spark_engine="spark"))
    assert spark_only.ok and "Spark's own engine" in spark_only.detail


@pytest.mark.parametrize(
    "version, problem",
    [
        (None, "install a JDK 17 or 21"),
        ('java version "1.8.0_292"', "Java 8 found"),
        ('openjdk version "21.0.2" 2024-01-16', None),
    ],
)
def test_java_is_found_and_recent_enough(version, problem):
    finding = doctor.check_java(Settings(), java=lambda: version)
    assert finding.ok == (problem is None)
    if problem:
        assert problem in finding.line() and " -> " in finding.line()


def test_spark_connect_needs_no_local_java():
    assert doctor.check_java(Settings(spark_remote="sc://spark:15002"), java=lambda: None).ok


def test_missing_landing_files_and_folders_are_named_with_the_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    lines = _problems(doctor.run_checks(Settings(lake=str(tmp_path / "lake"), landing=str(tmp_path / "empty"))))
    assert set(lines) == {"landing"}
    assert "no raw movies file" in lines["landing"] and "MOVIELAKE_LANDING" in lines["landing"]
    lines = _problems(doctor.run_checks(Settings(lake=str(tmp_path / "lake"), landing=str(tmp_path / "nowhere"))))
    assert "is not a folder" in lines["landing"]


def test_an_s3_lake_without_connector_jars_or_a_reachable_endpoint(tmp_path):
    settings = Settings(
        lake="s3://", landing=str(SAMPLE_DATA_DIR), s3_endpoint="http://127.0.0.1:9", jars_dir=str(tmp_path / "no-jars")
    )
    lines = _problems(doctor.run_checks(settings, checks=(doctor.check_jars, doctor.check_lake)))
    assert "make setup" in lines["connector jars"]
    assert "cannot reach the S3 endpoint http://127.0.0.1:9" in lines["lake"]
    (tmp_path / "jars").mkdir()
    for name in (
        "hadoop-aws-3.4.2.jar",
        "iceberg-spark-runtime-4.1_2.13-1.12.0.jar",
        "sqlite-jdbc-3.54.1.0.jar",
        "comet-spark-spark4.1_2.13-1.2.0.jar",
    ):
        (tmp_path / "jars" / name).write_bytes(b"")
    missing = doctor.check_jars(Settings(lake="s3://", jars_dir=str(tmp_path / "jars"), spark_engine="comet"))
    assert not missing.ok and "iceberg-aws-bundle" in missing.detail  # S3FileIO and Glue need it
    (tmp_path / "jars" / "iceberg-aws-bundle-1.12.0.jar").write_bytes(b"")
    assert doctor.check_jars(Settings(lake="s3://", jars_dir=str(tmp_path / "jars"))).ok
    local = doctor.check_jars(Settings(lake=str(tmp_path / "lake"), jars_dir=str(tmp_path / "no-jars")))
    assert not local.ok and "iceberg-spark-runtime" in local.detail  # a local lake is Iceberg too


@pytest.mark.s3
def test_s3_lake_credentials_and_glue_catalog_on_the_local_server(s3_server):
    settings = Settings(
        lake="s3://doctor-{layer}",
        landing=str(SAMPLE_DATA_DIR),
        s3_endpoint=s3_server,
        catalog="glue",
        glue_endpoint=s3_server,
    )
    findings = {
        f.check: f
        for f in doctor.run_checks(
            settings, checks=(doctor.check_lake, doctor.check_s3_credentials, doctor.check_catalog)
        )
    }
    assert all(f.ok for f in findings.values()), [f.line() for f in findings.values()]
    assert "created on the first run: doctor-staging" in findings["lake"].detail
    assert "AWS Glue" in findings["catalog"].detail


def test_bad_settings_and_catalog_backend_are_reported():
    lines = _problems(
        doctor.run_checks(
            Settings(catalog="hive", fresh_by="seven"), checks=(doctor.check_catalog, doctor.check_definitions)
        )
    )
    assert "use one of local, glue" in lines["catalog"]
    assert "MOVIELAKE_FRESH_BY" in lines["settings"]


def test_the_command_prints_one_line_per_check_and_fails_on_a_problem(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MOVIELAKE_CATALOG_PATH", str(tmp_path / "catalog.db"))
    assert main(["doctor", "--raw", str(tmp_path / "nowhere"), "--lake", str(tmp_path / "lake")]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == len(doctor.CHECKS) + 1
    problems = [line for line in out if line.startswith("problem")]
    assert len(problems) == 1 and " -> " in problems[0]
    assert out[-1] == "movielake doctor: 1 problem(s) found"
