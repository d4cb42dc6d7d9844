"""The benchmark's pieces: generated files read by the lake's own readers, and a small end-to-end run.

No timing is asserted anywhere: the numbers depend on the machine and its load. (The generator's
determinism, same seed -> same bytes, is tested in ``test_generate.py``.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from movielake_dagster.tools.bench import (
    BenchResult,
    bench_spec,
    format_report,
    one_day_batch,
    run_bench,
    tree_rss,
)
from movielake_dagster.tools.cli import main
from movielake_dagster.tools.generate import GeneratorSpec, generate_dataset
from movielake_dagster.tools.progress import Progress

SPEC = GeneratorSpec(ratings=3_000, movies=150, users=60, seed=3, bad_record_rate=0.01)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    return generate_dataset(folder, SPEC)


def test_generated_files_parse_with_the_lakes_readers_with_the_expected_counts(spark, generated):
    from movielake_dagster.transforms import movies, ratings, users
    from movielake_dagster.transforms.layouts import HEADERS
    from movielake_dagster.transforms.raw_input import read_raw
    from movielake_dagster.transforms.raw_lines import REASON

    def split(classified):
        rows = classified.groupBy(classified[REASON].isNull().alias("ok")).count().collect()
        counts = {r["ok"]: r["count"] for r in rows}
        return counts.get(True, 0), counts.get(False, 0)

    raw = {
        name: read_raw(spark, [str(generated.files[name].resolve())], HEADERS.get(name))
        for name in ("movies", "ratings", "users")
    }
    for name, read in raw.items():
        assert read.total_records == generated.lines[name], name
    classified = {
        "movies": movies.classify_movies(raw["movies"].lines, 2100),
        "users": users.classify_masterdata(raw["users"].lines),
    }
    known_users = classified["users"].where(classified["users"][REASON].isNull())
    known_movies = classified["movies"].where(classified["movies"][REASON].isNull())
    checked = ratings.classify_ratings(raw["ratings"].lines, 2_000_000_000)
    classified["ratings"] = ratings.resolve_ratings(checked, known_users, known_movies)
    for name, df in classified.items():
        assert split(df) == (generated.expected_clean[name], generated.expected_quarantined[name]), name


def test_bench_spec_scales_the_movielens_10m_shape():
    assert bench_spec(10_000_054).ratings == 10_000_054
    assert (bench_spec(10_000_054).movies, bench_spec(10_000_054).users) == (10_681, 69_878)
    small = bench_spec(2_000)
    assert small.ratings == 2_000 and small.movies >= 100 and small.users >= 20


def test_one_day_batch_has_one_average_day_of_valid_ratings(generated):
    text, count = one_day_batch(generated, __import__("datetime").date(2009, 1, 6))
    lines = text.splitlines()
    assert count == len(lines) >= 1
    for line in lines:
        _user, movie, rating, epoch = line.split("::")
        assert 1 <= int(movie) <= SPEC.movies and float(rating) * 2 == int(float(rating) * 2)
        assert 1231200000 <= int(epoch) < 1231200000 + 86_400  # 2009-01-06 UTC


def test_process_tree_memory_includes_this_process():
    assert tree_rss() > 10 * 2**20


def test_generate_command_writes_the_three_files(tmp_path: Path, capsys):
    assert main(["generate", "--ratings", "400", "--movies", "40", "--users", "25", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"movies.dat", "ratings.dat", "users_masterdata.json"}
    assert len((tmp_path / "ratings.dat").read_text().splitlines()) == 400
    assert "valid records" in capsys.readouterr().out


@pytest.mark.slow  # four Dagster runs of the whole graph and the seed pipeline twice
def test_bench_runs_end_to_end_at_small_scale(spark, tmp_path: Path):
    # no warm-up build: the test session's JVM is warm already
    logged, lines = [], []
    result = run_bench(
        2_000,
        tmp_path / "bench",
        baseline=True,
        days=2,
        warm_up=False,
        log=logged.append,
        progress=Progress(write=lines.append),
    )
    assert isinstance(result, BenchResult)
    # a line per finished phase, and a progress line per stored asset of each build and daily load
    assert logged[0].startswith("generated ")
    assert [line.split(":")[0].split(" (")[0] for line in logged[1:]] == [
        "Spark session started",
        "full build",
        "incremental",
        "last day",
        "compaction",
        "after compaction",
        "seed baseline",
    ]
    assert re.search(r"^full build: [\d.]+ s, [\d,]+ input lines, [\d,]+ ratings cleansed", logged[2]), logged
    stored = [line.split()[1] for line in lines if line.endswith(" rows")]
    assert stored.count("cleanse/ratings") == 1 + 3  # the full build, then three daily loads
    assert stored.count("analytics/top_movies") == 1 + 3 and stored.count("cleanse/movies") == 1
    assert result.build.success and not result.failed_checks
    assert result.counts_match_generator
    assert result.phases["incremental"].success
    assert "warm_up" not in result.phases
    # the daily run is what the schedule requests: the day's batch and what depends on it
    daily = {s.name for s in result.phases["incremental"].steps}
    assert "staging__rating_batch" in daily and "cleanse_ratings" in daily and "cleanse_movies" not in daily
    steps = {s.name for s in result.build.steps}
    assert {"cleanse_ratings", "access__fct_rating", "cleanse_ratings_checks"} <= steps, steps
    assert {s.name for s in result.phases["seed_baseline"].steps} >= {"seed_cleanse_ratings", "seed_checks"}
    assert (tmp_path / "bench" / "seed-lake").exists() is False  # removed without --keep
    assert (tmp_path / "bench" / "bench.json").exists()
    assert result.peak_rss > 0 and result.ratio is not None
    report = format_report(result)
    assert "full build" in report and "faster" in report and "warm-up" not in report
    assert "seed baseline (Spark default SQL settings)" in report
    # two consecutive days, the compaction, then one more day, each with its share of the full build
    assert all(result.phases[p].success for p in ("last_day", "compaction", "after_compaction"))
    share = round(100 * result.phases["incremental"].seconds / result.build.seconds)
    assert f"one-day load / full build: {share}%" in report.splitlines()
    assert "the day after the compaction" in report


def test_seed_baseline_runs_with_sparks_default_sql_settings(spark, monkeypatch, tmp_path):
    """The notebook had Spark's defaults; the lake's tuning must not speed up its baseline."""
    from movielake_dagster.tools import seed_baseline
    from movielake_dagster.tools.seed_baseline import notebook_sql_conf

    tuned = spark.conf.get("spark.sql.shuffle.partitions")
    assert tuned != "200"
    with notebook_sql_conf(spark):
        assert spark.conf.get("spark.sql.shuffle.partitions") == "200"
        assert spark.conf.get("spark.sql.adaptive.advisoryPartitionSizeInBytes") == str(64 << 20) + "b"
    assert spark.conf.get("spark.sql.shuffle.partitions") == tuned
    # run_seed_pipeline's cells see the defaults unless asked for the lake's settings
    seen = []
    monkeypatch.setattr(
        seed_baseline,
        "_run_cells",
        lambda session, *_: seen.append(session.conf.get("spark.sql.shuffle.partitions")) or [],
    )
    seed_baseline.run_seed_pipeline(spark, tmp_path, tmp_path)
    seed_baseline.run_seed_pipeline(spark, tmp_path, tmp_path, lake_conf=True)
    assert seen == ["200", tuned]


def test_scale_sizes_parse_with_suffixes_and_name_a_bad_item():
    from movielake_dagster.errors import ConfigurationError
    from movielake_dagster.tools.bench_cold import parse_sizes

    assert parse_sizes("1M, 3M,10m,500k,20000,1.5M") == [1_000_000, 3_000_000, 10_000_000, 500_000, 20_000, 1_500_000]
    with pytest.raises(ConfigurationError, match="'ten'"):
        parse_sizes("1M,ten")


def test_a_cold_run_measures_its_childs_process_tree(tmp_path: Path):
    """run_cold times a separate process and samples the memory of its tree (a grandchild holding
    300 MB counts), and keeps the child's output and exit code."""
    import sys

    from movielake_dagster.tools.bench_cold import run_cold

    holder = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {holder!r}]); print('done'); sys.exit(3)"
    run = run_cold("child", [sys.executable, "-c", child], ratings=3_000, log_file=tmp_path / "child.log")
    assert run.returncode == 3 and (tmp_path / "child.log").read_text().strip() == "done"
    assert run.seconds >= 1.5 and run.rows_per_second == 3_000 / run.seconds
    assert run.peak_rss > 300 * 2**20
