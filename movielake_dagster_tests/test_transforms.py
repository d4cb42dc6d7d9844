"""Unit tests of the pure Spark transforms on tiny, tricky inputs (real MovieLens lines among them)."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from movielake_dagster.datasets import MOVIES, RATINGS
from movielake_dagster.transforms import movies as movie_rules
from movielake_dagster.transforms import ratings as rating_rules
from movielake_dagster.transforms import star_schema
from movielake_dagster.transforms import users as user_rules
from movielake_dagster.transforms.layouts import HEADERS
from movielake_dagster.transforms.raw_input import read_raw
from movielake_dagster.transforms.raw_lines import (
    choose_encoding,
    split_fields,
)
from movielake_dagster.transforms.records import accepted, rejected, slim

from .conftest import REAL_DATA

NOW = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())


def _raw_file(tmp_path, name: str, lines: list[str] | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode("utf-8"))
    return str(path)


def _decoded(spark, uri: str, header=None):
    raw = read_raw(spark, [uri], header)
    return raw.lines, raw.files, raw.offsets


def _movies(spark, tmp_path, lines, name="movies.dat"):
    decoded, _, offsets = _decoded(spark, _raw_file(tmp_path, name, lines), HEADERS["movies"])
    classified = slim(movie_rules.classify_movies(decoded, 2031), MOVIES)
    good = {r["movie_id"]: r.asDict() for r in accepted(classified, MOVIES).collect()}
    bad = [r.asDict() for r in rejected(classified, "movies", offsets).collect()]
    return good, bad


TITLE_CASES = [
    (
        "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
        "City of Lost Children, The (Cité des enfants perdus, La)",
        1995,
    ),
    ("Associate, The (L'Associe)(1982)", "Associate, The (L'Associe)", 1982),
    ("Hamlet (1996) (V)", "Hamlet (V)", 1996),
    ("unknown", "unknown", None),
    ("  Toy Story (1995)   ", "Toy Story", 1995),
    ("1984 (1984)", "1984", 1984),
    ("Brothers (2009)", "Brothers", 2009),
]


@pytest.mark.parametrize("raw_title, title, year", TITLE_CASES)
def test_title_and_year_are_split_from_the_last_year(spark, raw_title, title, year):
    row = (
        spark.createDataFrame([(raw_title,)], "raw string")
        .select(*[c.alias(n) for c, n in zip(movie_rules.split_title(F.trim("raw")), ("title", "year"))])
        .first()
    )
    assert (row["title"], row["year"]) == (title, year)


def test_movies_keep_genres_and_reject_bad_lines_with_line_numbers(spark, tmp_path):
    good, bad = _movies(
        spark,
        tmp_path,
        [
            "1::Toy Story (1995)::Adventure|Animation|Children|Comedy|Fantasy",
            "2::Good Morning (1971)::(no genres listed)",
            "garbage without separators",
            "x1::Bad Id (1999)::Drama",
            "1::Toy Story again (1995)::Comedy",
            "3::Far Future (2999)::Drama",
            "::No Id (1990)::Drama",
        ],
    )
    assert good[1]["genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert good[2]["genres"] == [] and good[2]["year"] == 1971
    assert good[1]["raw_title"] == "Toy Story (1995)"
    assert sorted((r["line_number"], r["reason"]) for r in bad) == [
        (3, "malformed"),
        (4, "bad_type"),
        (5, "duplicate"),
        (6, "out_of_range"),
        (7, "null_key"),
    ]
    assert {r["raw_record"] for r in bad} >= {"garbage without separators", "x1::Bad Id (1999)::Drama"}


def test_latin1_file_is_decoded_as_latin1(spark, tmp_path):
    content = "1001::Associate, The (L'Associe)(1982)::Comedy\n1002::Cité des enfants (1995)::Drama\n"
    good, bad = _movies(spark, tmp_path, content.encode("latin-1"))
    assert bad == []
    assert good[1002]["title"] == "Cité des enfants"


def test_utf8_file_with_a_stray_latin1_line_quarantines_that_line(spark, tmp_path):
    content = "1::Amélie (2001)::Comedy\n2::Señor (1999)::Drama\n".encode() + "3::Caché (2005)::Drama\n".encode(
        "latin-1"
    )
    good, bad = _movies(spark, tmp_path, content)
    assert good[1]["title"] == "Amélie" and good[2]["title"] == "Señor"
    assert [(r["line_number"], r["reason"]) for r in bad] == [(3, "encoding")]


def test_encoding_choice():
    assert choose_encoding(0, 10) == "UTF-8"
    assert choose_encoding(5, 0) == "ISO-8859-1"
    assert choose_encoding(1, 10) == "UTF-8"


def test_movies_csv_layout_with_quoted_titles(spark, tmp_path):
    uri = _raw_file(
        tmp_path,
        "movies.csv",
        [
            "movieId,title,genres",
            '11,"American President, The (1995)",Comedy|Drama|Romance',
            "12,Dracula: Dead and Loving It (1995),Comedy|Horror",
        ],
    )
    decoded, _, _ = _decoded(spark, uri, HEADERS["movies"])
    rows = {
        r["movie_id"]: r for r in accepted(slim(movie_rules.classify_movies(decoded, 2031), MOVIES), MOVIES).collect()
    }
    assert rows[11]["title"] == "American President, The" and rows[11]["year"] == 1995
    assert rows[12]["genres"] == ["Comedy", "Horror"]


def _ratings(spark, tmp_path, lines, users=(1, 2), movies=(10, 20)):
    decoded, _, offsets = _decoded(spark, _raw_file(tmp_path, "ratings.dat", lines))
    checked = rating_rules.classify_ratings(decoded, NOW)
    user_df = spark.createDataFrame([(u,) for u in users], "user_id int")
    movie_df = spark.createDataFrame([(m,) for m in movies], "movie_id int")
    classified = slim(rating_rules.resolve_ratings(checked, user_df, movie_df), RATINGS)
    good = {(r["user_id"], r["movie_id"]): r.asDict() for r in accepted(classified, RATINGS, offsets).collect()}
    bad = sorted((r["line_number"], r["reason"]) for r in rejected(classified, "ratings", offsets).collect())
    return good, bad


def test_ratings_rules(spark, tmp_path):
    good, bad = _ratings(
        spark,
        tmp_path,
        [
            "1::10::4.5::1111111111",  # half star, 2005-03-18 01:58:31 UTC
            "1::20::3::1000000000",  # superseded by line 3
            "1::20::5::1000000500",  # re-rated later: wins
            "2::10::7::1000000000",  # out of range
            "2::20::3.3::1000000000",  # not a half step
            "2::10::4::99999999999",  # future
            "x::10::4::1000000000",  # non-numeric id
            "::10::4::1000000000",  # empty id
            "1::10::4",  # truncated
            "3::10::4::1000000000",  # unknown user
            "2::99::4::1000000000",  # unknown movie
            "2::10::0.5::1000000000",  # lowest half star
        ],
    )
    assert good[(1, 10)]["rating"] == 4.5
    assert good[(1, 10)]["rated_at"] == dt.datetime(2005, 3, 18, 1, 58, 31)
    assert good[(1, 10)]["rating_date"] == dt.date(2005, 3, 18)
    assert good[(1, 20)]["rating"] == 5.0
    assert good[(2, 10)]["rating"] == 0.5
    assert len(good) == 3
    assert bad == [
        (2, "duplicate"),
        (4, "out_of_range"),
        (5, "out_of_range"),
        (6, "out_of_range"),
        (7, "bad_type"),
        (8, "null_key"),
        (9, "malformed"),
        (10, "unknown_user"),
        (11, "unknown_movie"),
    ]


def test_masterdata_rules(spark, tmp_path):
    uri = _raw_file(
        tmp_path,
        "user_masterdata.json",
        [
            '{"user_id": "169", "firts_name": "Claire", "last_name": "Wiggins"}',
            '{"user_id": "170", "first_name": "Ann", "last_name": "Lee"}',
            '{"user_id": "169", "firts_name": "Claire", "last_name": "Wiggins"}',
            '{"user_id": "170", "firts_name": "Anna", "last_name": "Lee"}',
            '{"user_id": null, "firts_name": "No", "last_name": "Body"}',
            '{"user_id": "abc", "firts_name": "Bad", "last_name": "Id"}',
            "not json at all",
            "{'user_id': '171', 'firts_name': 'Single', 'last_name': 'Quotes'}",
        ],
    )
    decoded, _, offsets = _decoded(spark, uri)
    from movielake_dagster.assets.cleanse import USER_SOURCES

    _, columns, _ = USER_SOURCES["user_masterdata.json"]
    classified = slim(user_rules.classify_masterdata(decoded), columns)
    good = {r["user_id"]: (r["first_name"], r["last_name"]) for r in accepted(classified, columns).collect()}
    bad = sorted((r["line_number"], r["reason"]) for r in rejected(classified, "users", offsets).collect())
    assert good == {169: ("Claire", "Wiggins"), 170: ("Ann", "Lee")}
    assert bad == [
        (3, "duplicate"),
        (4, "conflicting_duplicate"),
        (5, "null_key"),
        (6, "bad_type"),
        (7, "malformed"),
        (8, "malformed"),
    ]


@pytest.mark.skipif(not (REAL_DATA / "ml-1m" / "users.dat").exists(), reason="real MovieLens 1M files absent")
def test_real_ml1m_users_are_enriched(spark):
    decoded, _, _ = _decoded(spark, str(REAL_DATA / "ml-1m" / "users.dat"))
    from movielake_dagster.assets.cleanse import USER_SOURCES

    _, columns, _ = USER_SOURCES["users.dat"]
    rows = {
        r["user_id"]: r for r in accepted(slim(user_rules.classify_ml1m_users(decoded), columns), columns).collect()
    }
    assert len(rows) == 6040
    assert (rows[1]["gender"], rows[1]["age_group"], rows[1]["occupation"], rows[1]["zip"]) == (
        "F",
        "Under 18",
        "K-12 student",
        "48067",
    )


def test_fact_and_date_dimension(spark):
    ratings = spark.createDataFrame(
        [(1, 10, 4.5, dt.datetime(2003, 7, 14, 22, 5), dt.date(2003, 7, 14), "ratings.dat", 7)], RATINGS.spark_ddl()
    )
    fact = star_schema.build_fct_rating(ratings).first()
    assert (fact["date_key"], fact["hour_of_day"], fact["rating_year"]) == (20030714, 22, 2003)
    days = {
        r["date_key"]: r
        for r in star_schema.build_dim_date(dt.date(2003, 7, 12), dt.date(2003, 7, 14), spark).collect()
    }
    assert sorted(days) == [20030712, 20030713, 20030714]
    assert (days[20030712]["day_of_week"], days[20030712]["is_weekend"]) == (6, True)  # a Saturday
    assert (days[20030714]["day_of_week"], days[20030714]["quarter"]) == (1, 3)  # a Monday in Q3


def test_bridge_has_one_row_per_movie_and_genre(spark):
    movies = spark.createDataFrame(
        [(1, "A", 1995, ["Drama", "Comedy"], "A (1995)"), (2, "B", None, [], "B")], MOVIES.spark_ddl()
    )
    assert sorted(tuple(r) for r in star_schema.build_bridge_movie_genre(movies).collect()) == [
        (1, "Comedy"),
        (1, "Drama"),
    ]


SPLIT_LINES = [
    "1::2::3.5::100",
    "1:::2::3::4",
    "1::2::3::4::",
    ":1::2::3::4",
    "1::2:3::4",
    "",
    "1::2::3",
    "a::b::c::d",
    "1: :2::3::4",
    "1::2::3::4:",
    "::::::",
    ":::::::",
    "1::2::3::4::5",
    "é::ü::ß::ø",
    None,
]


@pytest.mark.parametrize("separator", ["::", "||", "--"])
def test_split_fields_gives_exactly_the_fields_of_a_plain_split(spark, separator):
    """The single-character fast path never changes a field or the malformed flag."""
    lines = [None if line is None else line.replace(":", separator[0]) for line in SPLIT_LINES]
    df = spark.createDataFrame([(line,) for line in lines], "text string")
    fields, malformed = split_fields(F.col("text"), separator, 4)
    plain = F.split(F.col("text"), separator)
    rows = df.select(
        fields.alias("fast"), malformed.alias("bad"), plain.alias("plain"), (F.size(plain) != 4).alias("plain_bad")
    ).collect()
    assert [(r["fast"], r["bad"]) for r in rows] == [(r["plain"], r["plain_bad"]) for r in rows]


def test_lines_are_read_back_by_number_byte_for_byte(tmp_path):
    """The daily path finds a replaced rating's line by the line number its row carries: any line of a
    Latin-1 or CRLF file comes back exactly as it stands, the last one without a line break too."""
    from movielake_dagster.lake import ObjectStore

    text = "1::10::4::100\r\n2::20::3::200\r\nCaf\xe9 line\r\n3::30::5::300 \xe9\r\n2::20::1::400"
    path = tmp_path / "ratings.dat"
    path.write_bytes(text.encode("latin-1"))
    lines = ObjectStore().lines_at(str(path), {2, 4, 5, 9})
    assert lines == {2: b"2::20::3::200", 4: "3::30::5::300 \xe9".encode("latin-1"), 5: b"2::20::1::400"}
    big = tmp_path / "big.dat"
    big.write_bytes(b"".join(b"%d::1::4::100\n" % i for i in range(1, 400_001)))  # several 1 MiB chunks
    assert ObjectStore().lines_at(str(big), {1, 123_457, 400_000}) == {
        1: b"1::1::4::100",
        123_457: b"123457::1::4::100",
        400_000: b"400000::1::4::100",
    }
