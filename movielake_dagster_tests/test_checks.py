"""The asset checks: generated from the declarations, correct on tiny tables, silent on good data.

Faults, blocking and the CLI's exit code are in ``test_fault_injection.py``."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from movielake_dagster.checks import build_checks, checked_datasets
from movielake_dagster.checks.factories import build_dataset_checks, to_result
from movielake_dagster.checks.reconciliation import reconcile_cleanse
from movielake_dagster.checks.rules import evaluate_rows, evaluate_schema, foreign_keys
from movielake_dagster.datasets import (
    FCT_RATING,
    MOVIES,
    QUARANTINE_RATINGS,
    RATINGS,
    USERS,
)
from movielake_dagster.settings import SAMPLE_DATA_DIR

ERROR_CHECKS = {"schema_contract", "not_null", "primary_key_unique", "reconciliation"}


def _specs() -> dict[tuple[str, str], dg.AssetCheckSpec]:
    checks = build_checks()
    return {(s.asset_key.to_user_string(), s.name): s for c in checks for s in c.check_specs}


def test_every_cleanse_and_access_asset_gets_its_checks_from_the_declarations():
    specs = _specs()
    for dataset in checked_datasets():
        asset = dataset.asset_key.to_user_string()
        names = {name for key, name in specs if key == asset}
        expected = {"schema_contract"} | {fk.check_name for fk in foreign_keys(dataset)}
        expected |= {"not_null"} if any(not c.nullable for c in dataset.columns) else set()
        expected |= {"primary_key_unique"} if dataset.primary_key else set()
        assert expected <= names, (asset, expected - names)
    assert {
        ("access/fct_rating", n)
        for n in (
            "user_id_references_dim_user",
            "movie_id_references_dim_movie",
            "date_key_references_dim_date",
            "rating_in_half_stars",
            "rated_at_not_in_future",
            "reconciliation",
        )
    } <= set(specs)
    assert ("access/bridge_movie_genre", "movie_id_references_dim_movie") in specs
    assert ("cleanse/movies", "year_plausible") in specs and ("access/dim_movie", "year_plausible") in specs
    for name in ("movies", "users", "ratings"):
        assert ("cleanse/" + name, "reconciliation") in specs
    assert ("cleanse/quarantine_ratings", "reason_known") in specs


def test_key_integrity_schema_and_reconciliation_checks_block_and_the_rest_do_not():
    for (asset, name), spec in _specs().items():
        error = name in ERROR_CHECKS or "_references_" in name
        assert spec.blocking == error, (asset, name)
    # RI checks read their parent, so the UI shows that lineage
    spec = _specs()[("access/fct_rating", "user_id_references_dim_user")]
    assert [d.asset_key for d in spec.additional_deps] == [dg.AssetKey(["access", "dim_user"])]


def _by_name(outcomes):
    return {o.name: o for o in outcomes}


def test_all_row_rules_of_a_table_are_counted_in_one_pass(spark):
    """Nulls, duplicate keys, orphans and out-of-range values of a tiny ratings table."""
    t = dt.datetime(2001, 1, 1, 12, 30)
    future = dt.datetime.now() + dt.timedelta(days=400)
    rows = [
        (1, 10, 4.0, t, t.date(), "ratings.dat", 1),  # good
        (1, 11, 3.5, t, t.date(), "ratings.dat", 1),  # good
        (2, 10, 4.0, t, t.date(), "ratings.dat", 1),
        (2, 10, 5.0, t, t.date(), "ratings.dat", 1),
        (2, 10, 1.0, t, t.date(), "ratings.dat", 1),  # key 3 times
        (None, 10, 4.0, t, t.date(), "ratings.dat", 1),  # null key
        (3, 99, 4.0, t, t.date(), "ratings.dat", 1),  # unknown movie
        (9, 10, 4.0, t, t.date(), "ratings.dat", 1),  # unknown user
        (1, 12, 7.0, t, t.date(), "ratings.dat", 1),
        (3, 10, 3.3, t, t.date(), "ratings.dat", 1),  # out of range
        (3, 11, 4.0, future, future.date(), "ratings.dat", 2),  # in the future
    ]
    ratings = spark.createDataFrame(rows, RATINGS.spark_ddl())
    users = spark.createDataFrame([(1,), (2,), (3,), (3,)], "user_id int")  # a duplicate parent key is harmless
    movies = spark.createDataFrame([(10,), (11,), (12,)], "movie_id int")
    total, outcomes = evaluate_rows(ratings, RATINGS, {"user_id": users, "movie_id": movies})
    got = _by_name(outcomes)
    assert total == len(rows)
    assert {n: o.failed_rows for n, o in got.items()} == {
        "not_null": 1,
        "rating_in_half_stars": 2,
        "rated_at_not_in_future": 1,
        "user_id_references_users": 1,
        "movie_id_references_movies": 1,
        "primary_key_unique": 2,
        "not_empty": 0,
    }
    assert got["not_null"].extra["nulls_per_column"] == {
        "user_id": 1,
        "movie_id": 0,
        "rating": 0,
        "rated_at": 0,
        "rating_date": 0,
        "source_file": 0,
        "line_number": 0,
    }
    assert sorted(r[2] for r in got["rating_in_half_stars"].sample) == [3.3, 7.0]
    assert got["primary_key_unique"].sample == [(2, 10, 2)]
    assert got["movie_id_references_movies"].sample[0][:2] == (3, 99)
    assert got["rating_in_half_stars"].severity == "WARN" and got["not_null"].severity == "ERROR"
    assert "`rating` * 2 <> floor(`rating` * 2)" in got["rating_in_half_stars"].rule


def test_a_good_table_passes_and_fetches_no_sample(spark):
    movies = spark.createDataFrame([(1, "A", 1995, ["Drama"], "A (1995)"), (2, "B", None, [], "B")], MOVIES.spark_ddl())
    total, outcomes = evaluate_rows(movies, MOVIES)
    assert total == 2 and all(o.passed and not o.sample for o in outcomes)
    assert evaluate_schema(movies, MOVIES).passed


def test_schema_contract_names_every_column_that_differs(spark):
    df = spark.createDataFrame([(1, 2, "4.0", 7)], "user_id int, movie_id int, rating string, surprise int")
    outcome = evaluate_schema(df, RATINGS)
    assert not outcome.passed and outcome.failed_rows == 6  # rating, rated_at, rating_date, lineage x2, surprise
    assert ("rating", "double", "string") in outcome.sample
    assert ("rated_at", "timestamp", "(missing)") in outcome.sample
    assert ("surprise", "(not declared)", "int") in outcome.sample


def test_reconciliation_is_exact_per_file():
    ok = reconcile_cleanse(RATINGS, {"ratings.dat": 10}, 7, {"ratings.dat": {"malformed": 2, "duplicate": 1}}, None)
    assert ok.passed and ok.failed_rows == 0
    lost = reconcile_cleanse(RATINGS, {"ratings.dat": 10}, 6, {"ratings.dat": {"malformed": 2, "duplicate": 1}}, None)
    assert not lost.passed and lost.failed_rows == 1 and lost.sample == [("ratings.dat", 10, 6, 3, 1)]
    reported = {"ratings.dat": {"input": 10, "accepted": 7, "quarantined": 3, "reasons": {"malformed": 3}}}
    lying = reconcile_cleanse(
        RATINGS, {"ratings.dat": 10}, 7, {"ratings.dat": {"malformed": 2, "duplicate": 1}}, reported
    )
    assert not lying.passed and "metadata reasons" in lying.extra["problems"][0]


def test_reconciliation_of_users_from_two_sources_uses_each_files_accepted_count():
    staged = {"user_masterdata.json": 5, "users.dat": 4}
    quarantined = {"user_masterdata.json": {"null_key": 1}}
    reported = {
        "user_masterdata.json": {"input": 5, "accepted": 4, "reasons": {"null_key": 1}},
        "users.dat": {"input": 4, "accepted": 4, "reasons": {}},
    }
    assert reconcile_cleanse(USERS, staged, 5, quarantined, reported).passed  # 4 + 4 users, 3 in both files
    assert not reconcile_cleanse(USERS, staged, 9, quarantined, reported).passed  # more users than accepted


def test_reconciliation_of_rating_batches_needs_every_accepted_rating_stored():
    """Daily batches: a rating replaced by a later batch must be in quarantine, not gone."""
    staged = {"ratings.dat": 10, "2026-11-24.dat": 3}
    reported = {
        "ratings.dat": {"input": 10, "accepted": 10, "reasons": {}},
        "2026-11-24.dat": {"input": 3, "accepted": 3, "reasons": {}},
    }
    assert reconcile_cleanse(RATINGS, staged, 13, {}, reported).passed
    lost = reconcile_cleanse(RATINGS, staged, 12, {}, reported)  # one old rating replaced, not quarantined
    assert not lost.passed and lost.failed_rows == 1


def test_a_failing_check_explains_itself():
    from movielake_dagster.checks.rules import Outcome

    outcome = Outcome(
        "primary_key_unique",
        False,
        "ERROR",
        "unique",
        3,
        "SELECT 1",
        100,
        ["user_id", "movie_id", "extra_rows"],
        [(1, 2, 3)],
    )
    result = to_result(FCT_RATING, outcome, 0.5)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["failed_rows"].value == 3 and result.metadata["rows_checked"].value == 100
    assert "| 1 | 2 | 3 |" in result.metadata["failing_rows"].value
    assert result.metadata["rule"].value == "```sql\nSELECT 1\n```"


def _evaluations(result) -> dict:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def _assert_every_check_ran_and_passed(result):
    evaluations = _evaluations(result)
    assert [k for k, e in evaluations.items() if not e.passed] == []
    assert set(_specs()) == set(evaluations)


@pytest.mark.skipif(not (SAMPLE_DATA_DIR / "ratings.dat").exists(), reason="bundled sample not generated yet")
def test_every_check_passes_on_the_bundled_sample(sample_lake):
    _, result, _ = sample_lake
    _assert_every_check_ran_and_passed(result)
    quarantine = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == QUARANTINE_RATINGS.asset_key
    )
    assert sum(quarantine["movielake/quarantine_reasons"].value.values()) == quarantine["dagster/row_count"].value


def test_one_check_step_per_table():
    checks = build_checks()
    per_asset = [c for c in checks if c.node_def.name.endswith("_checks")]
    assert len(per_asset) == len(checked_datasets())
    assert build_dataset_checks(RATINGS).node_def.name == "cleanse_ratings_checks"
