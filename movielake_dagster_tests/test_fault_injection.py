"""Fault injection: every fault class either lands in quarantine with its reason and line, or fails
the check that is meant to catch it, with the right count; and nothing vanishes.

One clean sample is generated (no bad records); independent faults are injected into ONE copy of
it at known lines, that lake is built once, and each fault is asserted on its own. An empty file gets
a lake of its own; a run whose blocking check fails, and stored tables corrupted past the cleansing
rules, run on the same lake: write-audit-publish keeps the failed run off ``main``, and the corrupted
tables are rolled back to their earlier snapshot afterwards.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from movielake_dagster.catalog.iceberg import rollback
from movielake_dagster.code_location import build_definitions
from movielake_dagster.datasets import (
    BRIDGE_MOVIE_GENRE,
    FCT_RATING,
    MOVIES,
    QUARANTINE_MOVIES,
    QUARANTINE_RATINGS,
    QUARANTINE_USERS,
    RATINGS,
    USERS,
)
from movielake_dagster.io_managers.iceberg import table_name
from movielake_dagster.settings import Settings
from movielake_dagster.tools.generate import GeneratorSpec, generate_dataset

from .conftest import build_lake, spark_table, table_rows

CLEAN_SPEC = GeneratorSpec(ratings=300, movies=60, users=40, seed=11, bad_record_rate=0.0)
FILES = {"movies": "movies.dat", "ratings": "ratings.dat", "users": "users_masterdata.json"}
PAST = 978_300_760  # 2001-01-01
FUTURE = int(time.time()) + 10 * 365 * 86400


@dataclass
class Fault:
    name: str
    dataset: str  # movies | ratings | users
    text: bytes  # the injected line
    reason: str | None  # the reason it is quarantined with; None: a valid record; SKIPPED: not a record
    line_number: int = 0  # where it ended up in its file (set by ``inject``)


SKIPPED = "skipped"  # a whitespace-only line: not a record, counted as skipped, never quarantined


def _faults(movie_ids: list[int], user_ids: list[int], pair: tuple[int, int, str, int]) -> list[Fault]:
    """Every fault class of the issue, built on ids that exist in the clean sample."""
    movie, user = movie_ids[0], user_ids[0]
    u, m, stars, ts = pair
    other_stars = "1" if stars != "1" else "5"
    return [
        Fault("garbage_line", "ratings", b"%%% \x01 not a rating at all %%%", "malformed"),
        Fault("wrong_field_count", "ratings", f"{user}::{movie}::4".encode(), "malformed"),
        Fault("non_numeric_id", "ratings", f"abc::{movie}::4::{PAST}".encode(), "bad_type"),
        Fault("rating_7", "ratings", f"{user}::{movie}::7::{PAST}".encode(), "out_of_range"),
        Fault("rating_3_3", "ratings", f"{user}::{movie}::3.3::{PAST}".encode(), "out_of_range"),
        Fault("future_timestamp", "ratings", f"{user}::{movie}::4::{FUTURE}".encode(), "out_of_range"),
        Fault("unknown_user", "ratings", f"99999::{movie}::4::{PAST}".encode(), "unknown_user"),
        Fault("unknown_movie", "ratings", f"{user}::99999::4::{PAST}".encode(), "unknown_movie"),
        # a later rating of a pair rated once: it wins, the earlier line becomes a "duplicate"
        Fault("duplicate_pair_rerated", "ratings", f"{u}::{m}::{other_stars}::{ts + 3600}".encode(), None),
        Fault("null_user_id", "users", b'{"user_id": "", "firts_name": "No", "last_name": "Body"}', "null_key"),
        Fault("missing_user_id", "users", b'{"firts_name": "Also", "last_name": "Nobody"}', "null_key"),
        Fault(
            "conflicting_user",
            "users",
            json.dumps({"user_id": str(user_ids[1]), "firts_name": "Someone", "last_name": "Else"}).encode(),
            "conflicting_duplicate",
        ),
        Fault("latin1_in_utf8", "movies", "9001::Café Society (2016)::Comedy".encode("latin-1"), "encoding"),
        Fault("title_without_year", "movies", b"9002::Untitled Home Movie::Documentary", None),
        Fault("no_genres", "movies", b"9003::Silent Frame (1999)::(no genres listed)", None),
        Fault("blank_line_in_ratings", "ratings", b"", SKIPPED),
        Fault("whitespace_line_in_ratings", "ratings", b"  \t ", SKIPPED),
        Fault("blank_line_in_movies", "movies", b"", SKIPPED),
        Fault("whitespace_line_in_users", "users", b"   ", SKIPPED),
    ]


def inject(clean_dir: Path, out_dir: Path, faults: list[Fault]) -> dict[str, list[bytes]]:
    """Copies the clean files with the faults spread over them; sets each fault's line number."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for dataset, file_name in FILES.items():
        lines = (clean_dir / file_name).read_bytes().splitlines()
        mine = [f for f in faults if f.dataset == dataset]
        for k, fault in reversed(list(enumerate(mine))):
            lines.insert((k + 1) * len(lines) // (len(mine) + 1), fault.text)
        for fault in mine:
            fault.line_number = lines.index(fault.text) + 1
        (out_dir / file_name).write_bytes(b"\n".join(lines) + b"\n")
        files[dataset] = lines
    return files


@pytest.fixture(scope="module")
def clean_sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean-sample")
    report = generate_dataset(out, CLEAN_SPEC)
    assert report.quirks["movies"].get("non_ascii", 0) > 1, "the movie file must be UTF-8 with non-ASCII titles"
    return out, report


def _once_rated_pair(ratings_file: Path) -> tuple[int, int, str, int]:
    seen: dict[tuple[str, str], list[list[str]]] = {}
    for line in ratings_file.read_text().splitlines():
        fields = line.split("::")
        seen.setdefault((fields[0], fields[1]), []).append(fields)
    fields = next(v[0] for v in seen.values() if len(v) == 1)
    return int(fields[0]), int(fields[1]), fields[2], int(fields[3])


@dataclass
class FaultyLake:
    raw_dir: Path
    faults: dict[str, Fault]
    lines: dict[str, list[bytes]]
    displaced_line: int  # the earlier rating of the re-rated pair
    pair: tuple[int, int, str, int]
    lake_dir: Path
    result: object
    resources: dict
    generated: object


@pytest.fixture(scope="module")
def faulty_lake(spark, clean_sample, tmp_path_factory) -> FaultyLake:
    clean_dir, report = clean_sample
    movie_ids = [int(line.split("::")[0]) for line in (clean_dir / "movies.dat").read_text().splitlines()]
    user_ids = [
        int(json.loads(line)["user_id"]) for line in (clean_dir / "users_masterdata.json").read_text().splitlines()
    ]
    pair = _once_rated_pair(clean_dir / "ratings.dat")
    faults = _faults(movie_ids, user_ids, pair)
    raw_dir = tmp_path_factory.mktemp("faulty-raw")
    lines = inject(clean_dir, raw_dir, faults)
    u, m, stars, ts = pair
    displaced = lines["ratings"].index(f"{u}::{m}::{stars}::{ts}".encode()) + 1
    lake_dir = tmp_path_factory.mktemp("faulty-lake")
    result, resources = build_lake(raw_dir, lake_dir, step_retries=0)
    return FaultyLake(raw_dir, {f.name: f for f in faults}, lines, displaced, pair, lake_dir, result, resources, report)


QUARANTINED = {
    "ratings": [
        "garbage_line",
        "wrong_field_count",
        "non_numeric_id",
        "rating_7",
        "rating_3_3",
        "future_timestamp",
        "unknown_user",
        "unknown_movie",
    ],
    "users": ["null_user_id", "missing_user_id", "conflicting_user"],
    "movies": ["latin1_in_utf8"],
}
QUARANTINES = {"movies": QUARANTINE_MOVIES, "ratings": QUARANTINE_RATINGS, "users": QUARANTINE_USERS}
CLEANSED = {"movies": MOVIES, "ratings": RATINGS, "users": USERS}


def _table(lake: FaultyLake, dataset):
    return spark_table(lake.resources, dataset)


def _quarantine(lake: FaultyLake, dataset: str) -> list:
    return _table(lake, QUARANTINES[dataset]).collect()


@pytest.mark.parametrize("name", [n for names in QUARANTINED.values() for n in names])
def test_each_rejected_fault_is_in_quarantine_with_its_reason_and_line(faulty_lake, name):
    fault = faulty_lake.faults[name]
    rows = [r for r in _quarantine(faulty_lake, fault.dataset) if r["line_number"] == fault.line_number]
    assert len(rows) == 1, f"{name}: expected one quarantined row at line {fault.line_number}, got {rows}"
    row = rows[0]
    assert row["reason"] == fault.reason, (name, row)
    assert row["dataset"] == fault.dataset and row["source_file"].endswith(
        "user_masterdata.json" if fault.dataset == "users" else FILES[fault.dataset]
    )
    assert row["detail"], "every quarantined record says why"
    if name == "conflicting_user":
        assert "other values" in row["detail"]
    if name == "latin1_in_utf8":
        assert row["raw_record"].startswith("9001::Caf") and row["raw_record"].endswith("(2016)::Comedy")
    else:
        assert row["raw_record"] == fault.text.decode("utf-8")


def test_quarantine_holds_exactly_the_faults_and_superseded_ratings(faulty_lake):
    """Nothing else is rejected: the clean sample has no bad records, only its own re-rated pairs."""
    lake = faulty_lake
    for dataset, names in QUARANTINED.items():
        got = sorted((r["line_number"], r["reason"]) for r in _quarantine(lake, dataset))
        expected = [(lake.faults[n].line_number, lake.faults[n].reason) for n in names]
        if dataset == "ratings":
            expected.append((lake.displaced_line, "duplicate"))
            duplicates = [g for g in got if g[1] == "duplicate"]
            assert len(duplicates) == lake.generated.duplicate_pairs + 1
            got = [g for g in got if g[1] != "duplicate"] + [(lake.displaced_line, "duplicate")]
        assert sorted(got) == sorted(expected), dataset


def test_rerated_pair_keeps_the_latest_rating_and_quarantines_the_earlier_line(faulty_lake):
    u, m, stars, _ = faulty_lake.pair
    rows = _table(faulty_lake, RATINGS).where(f"user_id = {u} AND movie_id = {m}").collect()
    assert len(rows) == 1 and rows[0]["rating"] != float(stars)
    displaced = [r for r in _quarantine(faulty_lake, "ratings") if r["line_number"] == faulty_lake.displaced_line]
    assert [r["reason"] for r in displaced] == ["duplicate"]
    assert displaced[0]["raw_record"].startswith(f"{u}::{m}::{stars}::")


def test_conflicting_master_data_keeps_the_first_row(faulty_lake):
    conflicting = json.loads(faulty_lake.faults["conflicting_user"].text)
    rows = _table(faulty_lake, USERS).where(f"user_id = {conflicting['user_id']}").collect()
    assert len(rows) == 1 and rows[0]["first_name"] != "Someone"


def test_title_without_year_is_kept_with_a_null_year(faulty_lake):
    rows = _table(faulty_lake, MOVIES).where("movie_id = 9002").collect()
    assert [(r["title"], r["year"]) for r in rows] == [("Untitled Home Movie", None)]


def test_movie_without_genres_is_kept_with_no_genre_and_no_bridge_row(faulty_lake):
    rows = _table(faulty_lake, MOVIES).where("movie_id = 9003").collect()
    assert [(r["title"], r["year"], r["genres"]) for r in rows] == [("Silent Frame", 1999, [])]
    assert _table(faulty_lake, BRIDGE_MOVIE_GENRE).where("movie_id = 9003").count() == 0


def _evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_reconciliation_holds_and_every_check_passes_despite_the_faults(faulty_lake):
    """The faults are all handled by the cleansing rules: no check may fail, the books balance."""
    lake = faulty_lake
    evaluations = _evaluations(lake.result)
    assert [k for k, e in evaluations.items() if not e.passed] == []
    materialized = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in lake.result.get_asset_materialization_events()
    }
    for dataset in FILES:
        blank = [f for f in lake.faults.values() if f.dataset == dataset and f.reason == SKIPPED]
        records = len(lake.lines[dataset]) - len(blank)  # whitespace-only lines are not records
        cleansed, quarantined = _table(lake, CLEANSED[dataset]).count(), len(_quarantine(lake, dataset))
        assert records == cleansed + quarantined, dataset
        check = evaluations[(f"cleanse/{dataset}", "reconciliation")]
        assert check.passed and check.metadata["input_records"].value == records
        assert check.metadata["quarantined_records"].value == quarantined
        assert f"| {records} | {cleansed} | {quarantined} | 0 |" in check.metadata["accounts"].value
        skipped = materialized[f"cleanse/{dataset}"]["movielake/skipped_lines"].value
        assert skipped == {"blank_lines": len(blank), "header_lines": 0}, dataset
    for dataset in FILES:  # the per-reason counts the UI shows are the stored ones
        stored: dict[str, int] = {}
        for row in _quarantine(lake, dataset):
            stored[row["reason"]] = stored.get(row["reason"], 0) + 1
        assert materialized[f"cleanse/quarantine_{dataset}"]["movielake/quarantine_reasons"].value == stored


def run_job(raw_dir: Path, lake_dir: Path, job: str = "materialize_lake", assets: list[str] | None = None):
    """Runs one of the code location's jobs (optionally on some assets only) in this process."""
    settings = Settings.from_env(landing=str(raw_dir), lake=str(lake_dir), step_retries=0)
    job_def = build_definitions(settings).resolve_job_def(job)
    selection = [dg.AssetKey.from_user_string(a) for a in assets] if assets else None
    result = job_def.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, asset_selection=selection
    )
    return result, settings


@pytest.fixture(scope="module")
def empty_file_run(clean_sample, tmp_path_factory):
    """An empty ratings.dat: the whole lake built from it, on a lake of its own."""
    clean_dir, _ = clean_sample
    raw = tmp_path_factory.mktemp("empty-raw")
    shutil.copytree(clean_dir, raw, dirs_exist_ok=True)
    (raw / "ratings.dat").write_bytes(b"")
    result, _ = run_job(raw, tmp_path_factory.mktemp("empty-lake"))
    return result


def test_an_empty_file_is_reconciled_and_warned_about(empty_file_run):
    evaluations = _evaluations(empty_file_run)
    reconciliation = evaluations[("cleanse/ratings", "reconciliation")]
    assert reconciliation.passed and reconciliation.metadata["input_records"].value == 0
    empty = evaluations[("cleanse/ratings", "not_empty")]
    assert not empty.passed and empty.severity == dg.AssetCheckSeverity.WARN
    assert [k for k, e in evaluations.items() if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR] == []


def test_an_empty_file_builds_an_empty_star_schema(empty_file_run):
    assert empty_file_run.success
    failed = sorted(k for k, e in _evaluations(empty_file_run).items() if not e.passed)
    assert failed == [
        ("access/dim_date", "not_empty"),
        ("access/fct_rating", "not_empty"),
        ("cleanse/ratings", "not_empty"),
    ]


RATINGS_AND_DOWNSTREAM = [
    "staging/ratings",
    "cleanse/ratings",
    "cleanse/quarantine_ratings",
    "cleanse/rating_changes",
    "access/fct_rating",
    "access/dim_date",
]


@pytest.fixture(scope="module")
def blocked_run(faulty_lake):
    """A real run, on the faulty lake itself, in which a bug duplicates one user: the blocking unique-key
    check must stop it, and write-audit-publish must keep it off main."""
    from movielake_dagster.transforms import users as user_rules

    iceberg = faulty_lake.resources["catalog"].iceberg()
    before = {d.name: iceberg.table(d.layer, d.name).metadata.current_snapshot_id for d in (USERS, QUARANTINE_USERS)}
    rows_before = sorted(tuple(r.values()) for r in table_rows(faulty_lake.resources, USERS))
    merge = user_rules.merge_user_sources
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(user_rules, "merge_user_sources", lambda *a: (lambda df: df.unionByName(df.limit(1)))(merge(*a)))
        result, settings = run_job(
            faulty_lake.raw_dir,
            faulty_lake.lake_dir,
            assets=[
                "staging/users",
                "cleanse/users",
                "cleanse/quarantine_users",
                "access/dim_user",
                *RATINGS_AND_DOWNSTREAM,
            ],
        )
    return result, settings, before, rows_before


def test_a_failing_blocking_check_leaves_main_unchanged_and_the_rejected_rows_on_the_run_branch(
    faulty_lake, blocked_run
):
    from movielake_dagster.catalog.iceberg import run_branch

    result, _, before, rows_before = blocked_run
    iceberg = faulty_lake.resources["catalog"].iceberg()
    users = iceberg.table(USERS.layer, USERS.name)
    assert users.metadata.current_snapshot_id == before[USERS.name]  # main: not published
    assert sorted(tuple(r.values()) for r in table_rows(faulty_lake.resources, USERS)) == rows_before
    branch = run_branch(result.run_id)
    rejected = users.scan(snapshot_id=users.metadata.refs[branch].snapshot_id).to_arrow().to_pylist()
    assert len(rejected) == len(rows_before) + 1  # the duplicated user is there, for inspection
    quarantine = iceberg.table(QUARANTINE_USERS.layer, QUARANTINE_USERS.name)
    assert quarantine.metadata.current_snapshot_id != before[QUARANTINE_USERS.name]  # its own checks passed
    materialized = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert materialized["cleanse/users"]["movielake/branch"].value == branch
    assert materialized["cleanse/users"]["movielake/published"].value.startswith("pending")
    evaluations = _evaluations(result)
    assert (
        evaluations[("cleanse/users", "primary_key_unique")]
        .metadata["movielake/published"]
        .value.startswith("no: blocked by")
    )


def test_a_failing_blocking_check_stops_the_downstream_assets(blocked_run):
    result, _, _, _ = blocked_run
    assert not result.success
    evaluations = _evaluations(result)
    failed = {k: e.metadata["failed_rows"].value for k, e in evaluations.items() if not e.passed}
    assert failed == {("cleanse/users", "primary_key_unique"): 1, ("cleanse/users", "reconciliation"): 1}
    assert all(evaluations[k].blocking for k in failed)
    materialized = {e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"staging/users", "cleanse/users", "cleanse/quarantine_users", "staging/ratings"} == materialized
    skipped = {"access/dim_user", "cleanse/ratings", "access/fct_rating", "access/dim_date"}
    assert not materialized & skipped


def test_movielake_run_exits_non_zero_naming_the_failed_error_checks(blocked_run, monkeypatch, capsys):
    from movielake_dagster.tools import cli

    result, settings, _, _ = blocked_run
    monkeypatch.setattr(cli, "materialize_all", lambda *a, **k: (result, {}))
    code = cli.main(["run", "--raw", settings.landing, "--lake", settings.lake])
    out, err = capsys.readouterr()
    assert code == 1
    assert "cleanse/users:primary_key_unique" in err
    assert "primary_key_unique (ERROR: 1)" in out  # the per-asset check table


def _append(lake: FaultyLake, dataset, extra_rows: list[dict]) -> int:
    """Appends rows to a stored table's main (a bug or a hand edit that got past the cleanse); returns the
    snapshot to roll back to."""
    iceberg = lake.resources["catalog"].iceberg()
    previous = iceberg.table(dataset.layer, dataset.name).metadata.current_snapshot_id
    original = _table(lake, dataset)
    original.sparkSession.createDataFrame(extra_rows, original.schema).writeTo(table_name(dataset)).append()
    return previous


@pytest.fixture
def corrupted_lake(faulty_lake):
    """The faulty lake with rows appended to cleanse/ratings and fct_rating; rolled back afterwards."""
    import datetime as dt

    good = _table(faulty_lake, RATINGS).first().asDict()
    when = dt.datetime(2001, 1, 1, 12, 0)
    undo = [
        (
            RATINGS,
            _append(
                faulty_lake,
                RATINGS,
                [
                    {**good, "rating": 1.0 if good["rating"] != 1.0 else 2.0},  # a second row for an existing key
                    {**good, "user_id": 77777},  # a user that is not in cleanse/users
                    {**good, "movie_id": 9002, "rating": 7.0},  # out of range
                    {**good, "movie_id": None},  # null key
                    {**good, "movie_id": 9003, "rated_at": when.replace(year=2100), "rating_date": dt.date(2100, 1, 1)},
                ],
            ),
        )
    ]
    fct_good = _table(faulty_lake, FCT_RATING).first().asDict()
    undo.append((FCT_RATING, _append(faulty_lake, FCT_RATING, [{**fct_good, "movie_id": 9002, "date_key": 18990101}])))
    yield faulty_lake, good
    iceberg = faulty_lake.resources["catalog"].iceberg()
    for dataset, snapshot in undo:
        rollback(iceberg.table(dataset.layer, dataset.name), snapshot)


def test_corrupted_stored_tables_fail_the_right_checks_with_the_right_counts(corrupted_lake):
    """What the cleansing rules cannot see (a bug, a hand edit) the checks do; run them alone."""
    faulty_lake, good = corrupted_lake
    result, _ = run_job(faulty_lake.raw_dir, faulty_lake.lake_dir, job="check_lake")
    evaluations = _evaluations(result)
    failed = {k: e.metadata["failed_rows"].value for k, e in evaluations.items() if not e.passed}
    assert failed == {
        ("cleanse/ratings", "primary_key_unique"): 1,
        ("cleanse/ratings", "user_id_references_users"): 1,
        ("cleanse/ratings", "rating_in_half_stars"): 1,
        ("cleanse/ratings", "not_null"): 1,
        ("cleanse/ratings", "rated_at_not_in_future"): 1,
        ("cleanse/ratings", "reconciliation"): 5,
    }
    unique = evaluations[("cleanse/ratings", "primary_key_unique")]
    assert unique.severity == dg.AssetCheckSeverity.ERROR and unique.blocking
    assert f"| {good['user_id']} | {good['movie_id']} | 1 |" in unique.metadata["failing_rows"].value
    assert "GROUP BY user_id, movie_id HAVING count(*) > 1" in unique.metadata["rule"].value
    orphan = evaluations[("cleanse/ratings", "user_id_references_users")]
    assert "77777" in orphan.metadata["failing_rows"].value and "LEFT ANTI JOIN" in orphan.metadata["rule"].value
    assert evaluations[("cleanse/ratings", "rating_in_half_stars")].severity == dg.AssetCheckSeverity.WARN
    assert evaluations[("cleanse/ratings", "not_null")].metadata["nulls_per_column"].value["movie_id"] == 1
    # fct_rating's checks read cleanse/ratings (to reconcile), so the failed blocking checks skip them
    assert not [k for k in evaluations if k[0] == "access/fct_rating"]

    # ... evaluated directly, they find the orphan date and the rows that do not reconcile
    from movielake_dagster.checks.factories import evaluate_dataset
    from movielake_dagster.datasets import DIM_DATE, DIM_MOVIE, DIM_USER

    def table(dataset):
        return _table(faulty_lake, dataset)

    inputs = {
        "table": table(FCT_RATING),
        "parent_user_id": table(DIM_USER),
        "parent_movie_id": table(DIM_MOVIE),
        "parent_date_key": table(DIM_DATE),
        "source": table(RATINGS),
    }
    direct = {o.name: o.failed_rows for o, _ in evaluate_dataset(None, FCT_RATING, inputs) if not o.passed}
    assert direct == {"date_key_references_dim_date": 1, "reconciliation": 4}  # 5 more ratings, 1 more fact


def test_whitespace_only_lines_are_skipped_not_quarantined(faulty_lake):
    for fault in (f for f in faulty_lake.faults.values() if f.reason == SKIPPED):
        at_line = [r for r in _quarantine(faulty_lake, fault.dataset) if r["line_number"] == fault.line_number]
        assert at_line == [], fault.name
