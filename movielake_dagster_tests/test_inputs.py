"""Real-world input layouts: every file a MovieLens user brings is read right or quarantined record by
record, blank lines are skipped and counted, and reconciliation counts records, not lines.

The fixtures are written here (no MovieLens 1M/10M content): each holds the quirk of one kind of
export seen in public bug reports, with the exact rows, quarantine reasons and positions expected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from movielake_dagster.assets.cleanse import USER_SOURCES
from movielake_dagster.checks.reconciliation import staged_records
from movielake_dagster.datasets import (
    DIM_DATE,
    FCT_RATING,
    MOVIES,
    QUARANTINE_MOVIES,
    QUARANTINE_RATINGS,
    QUARANTINE_USERS,
    RATINGS,
    USERS,
)
from movielake_dagster.lake import spark_uri
from movielake_dagster.transforms import layouts
from movielake_dagster.transforms import movies as movie_rules
from movielake_dagster.transforms import ratings as rating_rules
from movielake_dagster.transforms.raw_input import read_raw
from movielake_dagster.transforms.records import accepted, rejected, slim

from .conftest import lake_resources, table_rows

NOW = 1_900_000_000


def _write(tmp_path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def _read_movies(spark, uri):
    raw = read_raw(spark, [uri], layouts.HEADERS["movies"])
    classified = slim(movie_rules.classify_movies(raw.lines, 2031), MOVIES)
    good = {r["movie_id"]: r.asDict() for r in accepted(classified, MOVIES).collect()}
    bad = sorted(
        (r["line_number"], r["reason"], r["raw_record"]) for r in rejected(classified, "movies", raw.offsets).collect()
    )
    return raw, good, bad


def _read_users(spark, uri):
    raw = read_raw(spark, [uri])
    classify, columns, _ = USER_SOURCES["user_masterdata.json"]
    classified = slim(classify(raw.lines), columns)
    good = {r["user_id"]: (r["first_name"], r["last_name"]) for r in accepted(classified, columns).collect()}
    bad = sorted(
        (r["line_number"], r["reason"], r["raw_record"]) for r in rejected(classified, "users", raw.offsets).collect()
    )
    return raw, good, bad


def _read_ratings(spark, uris):
    raw = read_raw(spark, uris, layouts.HEADERS["ratings"])
    checked = rating_rules.classify_ratings(raw.lines, NOW)
    users = spark.createDataFrame([(u,) for u in range(1, 10)], "user_id int")
    movies = spark.createDataFrame([(m,) for m in range(1, 100)], "movie_id int")
    classified = slim(rating_rules.resolve_ratings(checked, users, movies), RATINGS)
    good = sorted(
        tuple(r) for r in accepted(classified, RATINGS, raw.offsets).select("user_id", "movie_id", "rating").collect()
    )
    bad = sorted((r["line_number"], r["reason"]) for r in rejected(classified, "ratings", raw.offsets).collect())
    return raw, good, bad


def _only(raw):
    (entry,) = raw.files.values()
    return entry


# -- 1. CSV as RFC 4180 -------------------------------------------------------------------------------

LATEST_MOVIES_CSV = (
    "\ufeffmovieId,title,genres\r\n"
    '51372,"""Great Performances"" Cats (1998)",Musical\r\n'
    '11,"American President, The (1995)",Comedy|Drama|Romance\r\n'
    '90,"Two\r\nLines (2001)",Drama\r\n'
    "12,Dracula: Dead and Loving It (1995),Comedy|Horror\r\n"
    "\r\n"
    'x13,"Bad Id, The (1990)",Drama\r\n'
    "14,Too,Many,Fields (1999),Drama\r\n"
    "\r\n"
)


def test_quoted_csv_is_read_as_rfc4180_records(spark, tmp_path):
    raw, good, bad = _read_movies(spark, _write(tmp_path, "movies.csv", LATEST_MOVIES_CSV))
    assert (good[51372]["title"], good[51372]["year"]) == ('"Great Performances" Cats', 1998)
    assert good[51372]["raw_title"] == '"Great Performances" Cats (1998)'
    assert (good[11]["title"], good[11]["year"], good[11]["genres"]) == (
        "American President, The",
        1995,
        ["Comedy", "Drama", "Romance"],
    )
    assert (good[90]["title"], good[90]["year"]) == ("Two Lines", 2001)  # a line break inside the quotes
    assert good[12]["genres"] == ["Comedy", "Horror"]
    assert bad == [
        (8, "bad_type", 'x13,"Bad Id, The (1990)",Drama'),
        (9, "malformed", "14,Too,Many,Fields (1999),Drama"),
    ]
    entry = _only(raw)
    assert (entry.read_as, entry.records, entry.blank_lines, entry.header_lines) == ("records", 6, 2, 1)


def test_csv_without_quotes_is_split_by_spark_with_or_without_a_header(spark, tmp_path):
    with_header = _write(
        tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.0,978300760\n2,20,3.5,978300761\n"
    )
    (tmp_path / "batch").mkdir()
    without = _write(tmp_path / "batch", "2001-01-02.csv", "1,11,5.0,978400000\n\n   \n3,30,1.0,978400001\n")
    raw, good, bad = _read_ratings(spark, [with_header, without])
    assert good == [(1, 10, 4.0), (1, 11, 5.0), (2, 20, 3.5), (3, 30, 1.0)]
    assert bad == []
    by_name = {f.name: f for f in raw.files.values()}
    assert (by_name["ratings.csv"].records, by_name["ratings.csv"].header_lines) == (2, 1)
    assert (
        by_name["2001-01-02.csv"].records,
        by_name["2001-01-02.csv"].blank_lines,
        by_name["2001-01-02.csv"].header_lines,
    ) == (2, 2, 0)
    assert {f.read_as for f in raw.files.values()} == {"lines"}


def test_a_header_is_decided_by_content_not_by_position(spark, tmp_path):
    """A bad first record is quarantined, never dropped as if it were a header."""
    uri = _write(tmp_path, "ratings.csv", "user,movie,stars,when\n1,10,4.0,978300760\n")
    raw, good, bad = _read_ratings(spark, [uri])
    assert good == [(1, 10, 4.0)] and bad == [(1, "bad_type")]
    assert _only(raw).header_lines == 0 and _only(raw).records == 2


def test_the_csv_parser_splits_records_like_pythons_csv():
    parsed = layouts.parse_csv('a,"b\n""c"", d",e\n\n1,2,3\n', None)
    assert [(r.line_number, r.fields) for r in parsed.records] == [(1, ("a", 'b\n"c", d', "e")), (4, ("1", "2", "3"))]
    assert parsed.blank_lines == 1
    unclosed = layouts.parse_csv('1,"open\n2,b,c\n', None)
    assert [(r.line_number, r.fields) for r in unclosed.records] == [(1, ("1", "open\n2,b,c\n"))]


# -- 2. master data as JSON lines, one array, pretty-printed -------------------------------------------

ONE_ARRAY_PER_LINE = (
    '[{"user_id":"1","firts_name":"Ann","last_name":"Lee"},\n'
    '{"user_id":"2","firts_name":"Bo","last_name":"Ek"},\n'
    '{"user_id":"3","first_name":"Cy","last_name":"Oh"}]\n'
)
PRETTY_ARRAY = """[
  {
    "user_id": "1",
    "firts_name": "Ann",
    "last_name": "Lee"
  },

  {
    "user_id": "2",
    "firts_name": "Bo
  },
  {
    "user_id": 3,
    "firts_name": "Cy",
    "last_name": "Oh"
  },
  "not an object"
]
"""


def test_a_json_array_with_one_element_per_line_loses_no_user(spark, tmp_path):
    raw, good, bad = _read_users(spark, _write(tmp_path, "user_masterdata.json", ONE_ARRAY_PER_LINE))
    assert good == {1: ("Ann", "Lee"), 2: ("Bo", "Ek"), 3: ("Cy", "Oh")}
    assert bad == []
    assert (_only(raw).read_as, _only(raw).records) == ("records", 3)


def test_a_pretty_printed_array_is_read_element_by_element_and_a_broken_one_quarantined(spark, tmp_path):
    raw, good, bad = _read_users(spark, _write(tmp_path, "user_masterdata.json", PRETTY_ARRAY))
    assert good == {1: ("Ann", "Lee"), 3: ("Cy", "Oh")}
    assert [(line, reason) for line, reason, _ in bad] == [(8, "malformed"), (17, "malformed")]
    assert bad[0][2] == '{\n    "user_id": "2",\n    "firts_name": "Bo\n  }'
    assert bad[1][2] == '"not an object"'
    assert _only(raw).records == 4


def test_json_lines_stay_a_parallel_line_read_with_blank_lines_skipped(spark, tmp_path):
    text = '{"user_id": "1", "firts_name": "Ann", "last_name": "Lee"}\n\n{"user_id": "2", "last_name": "Ek"}\n \n'
    raw, good, bad = _read_users(spark, _write(tmp_path, "user_masterdata.json", text))
    assert good == {1: ("Ann", "Lee"), 2: (None, "Ek")} and bad == []
    entry = _only(raw)
    assert (entry.read_as, entry.records, entry.blank_lines) == ("lines", 2, 2)


# -- 3. empty exports -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", ["", "userId,movieId,rating,timestamp\n", "\n\n"], ids=["zero_bytes", "header_only", "blank_lines_only"]
)
def test_an_export_without_records_reads_as_zero_records(spark, tmp_path, content):
    raw, good, bad = _read_ratings(spark, [_write(tmp_path, "ratings.csv", content)])
    assert good == [] and bad == []
    assert raw.total_records == 0 and raw.lines.count() == 0
    assert [f.name for f in raw.files.values()] == ["ratings.csv"]


# -- 5. blank lines are not records ----------------------------------------------------------------------


def test_blank_and_whitespace_lines_are_skipped_and_counted_not_quarantined(spark, tmp_path):
    text = "1::Toy Story (1995)::Comedy\n\n2::Heat (1995)::Action\n \t \n3::Up (2009)::Animation\n\n"
    raw, good, bad = _read_movies(spark, _write(tmp_path, "movies.dat", text))
    assert sorted(good) == [1, 2, 3] and bad == []
    assert (_only(raw).records, _only(raw).blank_lines) == (3, 3)


def test_a_byte_order_mark_is_not_part_of_the_first_record(spark, tmp_path):
    _raw, good, bad = _read_movies(spark, _write(tmp_path, "movies.dat", "\ufeff1::Toy Story (1995)::Comedy\n"))
    assert list(good) == [1] and bad == []


# -- reconciliation counts records, independently of the reader -------------------------------------------


def test_the_reconciliation_count_is_records_not_lines(spark, tmp_path):
    files = {
        "movies.csv": LATEST_MOVIES_CSV,
        "ratings.csv": "userId,movieId,rating,timestamp\n1,10,4.0,978300760\n\n",
        "user_masterdata.json": PRETTY_ARRAY,
        "empty.csv": "",
    }
    uris = {name: spark_uri(_write(tmp_path, name, text)) for name, text in files.items()}
    assert staged_records(spark, [uris["movies.csv"]], "movies") == {"movies.csv": 6}
    assert staged_records(spark, [uris["ratings.csv"], uris["empty.csv"]], "ratings") == {
        "ratings.csv": 1,
        "empty.csv": 0,
    }
    assert staged_records(spark, [uris["user_masterdata.json"]], "users") == {"user_masterdata.json": 4}
    assert len(json.loads(ONE_ARRAY_PER_LINE)) == 3


# -- the whole lake on each layout: `movielake run --raw DIR` ends with exit 0, never a stack trace --------

MOVIES_DAT = "1::Toy Story (1995)::Animation|Comedy\n2::Heat (1995)::Action\n11::Nixon (1995)::Drama\n"


def _layout(tmp_path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    if name == "latest_csv_and_json_array":
        (folder / "movies.csv").write_text(LATEST_MOVIES_CSV, encoding="utf-8")
        (folder / "ratings.csv").write_text(  # no header line; blank lines
            "1,51372,4.0,978300760\n\n1,11,3.5,978300761\n2,90,5.0,978300762\n3,12,2.0,978300763\n \n", "utf-8"
        )
        (folder / "users_masterdata.json").write_text(PRETTY_ARRAY, encoding="utf-8")
        return folder
    (folder / "movies.dat").write_text(MOVIES_DAT)
    (folder / "users_masterdata.json").write_text(ONE_ARRAY_PER_LINE)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" if name == "header_only_ratings" else "")
    return folder


PROGRESS_LINE = re.compile(
    r"^ +(\d+\.\d)s  (\S+) +(\d[\d,]*) (rows|bytes)$|^ +(\d+\.\d)s  (\S+) +(\d+)/(\d+) checks passed(?:, failed: .+)?$"
)


def _progress_lines(out: str) -> list[tuple]:
    """(kind, asset, seconds, count) of each progress line, in the order printed: ``rows`` or ``bytes``
    for a stored asset (count: its rows or bytes), ``checks`` for a check step (count: (passed, evaluated))."""
    lines = []
    for match in filter(None, map(PROGRESS_LINE.match, out.splitlines())):
        if match[1] is not None:
            lines.append((match[4], match[2], float(match[1]), int(match[3].replace(",", ""))))
        else:
            lines.append(("checks", match[6], float(match[5]), (int(match[7]), int(match[8]))))
    return lines


def _assert_progress(progress: list[tuple], out: str) -> None:
    """A line per stored asset, with its seconds and rows, as each finished (before the final tables)."""
    stored = [(asset, count) for kind, asset, _, count in progress if kind in ("rows", "bytes")]
    assert len(stored) == len({a for a, _ in stored}) == 22, stored
    table = out[out.index("rows (or bytes)") :].split("\n\n")[0].splitlines()[2:]  # the final asset table
    assert dict(stored) == {line.split()[0]: int(line.split()[1]) for line in table}
    at = {(kind == "checks", asset): i for i, (kind, asset, _, _) in enumerate(progress)}  # in order of completion
    assert (
        at[False, "cleanse/movies"]
        < at[True, "cleanse/movies"]
        < at[False, "access/dim_movie"]
        < at[False, "analytics/top_movies"]
    )
    assert (
        at[False, "cleanse/ratings"]
        < at[True, "cleanse/ratings"]
        < at[False, "access/fct_rating"]
        < at[True, "access/fct_rating"]
        < at[False, "analytics/genres_by_year"]
    )
    assert (True, "cleanse/quarantine_movies") in at
    assert all(seconds >= 0 for _, _, seconds, _ in progress)
    summary = re.search(
        r"^movielake: 22 assets materialized, (\d+) checks passed, (\d+) failed, in [\d.]+ s$", out, re.M
    )
    checks = [c for kind, _, _, c in progress if kind == "checks"]
    assert summary and (int(summary[1]), int(summary[2])) == (sum(p for p, _ in checks), sum(n - p for p, n in checks))
    assert out.index(summary[0]) < out.index("rows (or bytes)")  # the lines come first, then the tables


@pytest.mark.parametrize("layout", ["latest_csv_and_json_array", "header_only_ratings"])
def test_movielake_run_on_a_real_world_layout_ends_with_exit_0_and_queryable_tables(spark, tmp_path, capsys, layout):
    from movielake_dagster.tools.cli import main

    raw, lake = _layout(tmp_path, layout), tmp_path / "lake"
    quiet = layout == "header_only_ratings"  # one of the runs is --quiet: today's output, no progress lines
    code = main(["run", "--raw", str(raw), "--lake", str(lake), *(["--quiet"] if quiet else [])])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in out + err
    assert "Q: Top genres by number of ratings" in out
    progress = _progress_lines(out)
    if quiet:
        assert not progress and "assets materialized" not in out
    else:
        _assert_progress(progress, out)
    assert main(["query", "--lake", str(lake), "SELECT COUNT(*) AS facts FROM fct_rating"]) == 0
    facts = capsys.readouterr().out
    for table in ("staging.users", "staging.ratings", "cleanse.users", "access.dim_date"):
        assert main(["query", "--lake", str(lake), f"SELECT COUNT(*) FROM {table}"]) == 0, table
    capsys.readouterr()
    resources = lake_resources(lake)
    if layout != "latest_csv_and_json_array":  # no records: every table exists, empty, with its schema
        assert re.search(r"\| 0 +\|", facts)
        assert table_rows(resources, FCT_RATING) == [] and table_rows(resources, DIM_DATE) == []
        assert [
            f.name for f in resources["catalog"].iceberg().table("access", "fct_rating").schema().fields
        ] == FCT_RATING.column_names
        return
    movies = {r["movie_id"]: r for r in table_rows(resources, MOVIES)}
    assert (movies[51372]["title"], movies[51372]["year"]) == ('"Great Performances" Cats', 1998)
    assert sorted((r["line_number"], r["reason"]) for r in table_rows(resources, QUARANTINE_MOVIES)) == [
        (8, "bad_type"),
        (9, "malformed"),
    ]
    assert sorted(r["user_id"] for r in table_rows(resources, USERS)) == [1, 3]
    assert sorted((r["line_number"], r["reason"]) for r in table_rows(resources, QUARANTINE_USERS)) == [
        (8, "malformed"),
        (17, "malformed"),
    ]
    assert sorted((r["user_id"], r["movie_id"]) for r in table_rows(resources, RATINGS)) == [
        (1, 11),
        (1, 51372),
        (3, 12),
    ]
    assert sorted((r["line_number"], r["reason"]) for r in table_rows(resources, QUARANTINE_RATINGS)) == [
        (4, "unknown_user")
    ]  # user 2 is in the broken array element
    assert re.search(r"\| 3 +\|", facts)
