"""Tests of the synthetic raw-data generator (plain Python, no Spark).

The files are checked with a parser written here from SPEC.md alone, independent of the
generator, so a generator bug cannot hide behind a shared helper.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from movielake_dagster.settings import SAMPLE_DATA_DIR
from movielake_dagster.tools.generate import (
    SAMPLE_SPEC,
    GenerationReport,
    GeneratorSpec,
    generate_dataset,
)

# The MovieLens 10M genre list (SPEC: genres from the 10M list, or the no-genre marker).
GENRES_10M = {
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
}
NO_GENRES = "(no genres listed)"
HALF_STARS = {"0.5", "1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5"}
YEAR = re.compile(r"\((\d{4})\)")

DIRTY = GeneratorSpec(ratings=20_000, movies=500, users=300, seed=11, bad_record_rate=0.002)
CLEAN = GeneratorSpec(ratings=5_000, movies=200, users=100, seed=5)


# ----------------------------------------------------------------------------------------
# An independent parser of the seed formats
# ----------------------------------------------------------------------------------------


@dataclass
class Parsed:
    """What a careful reader finds in the three files."""

    movies: dict[int, tuple[str, list[str]]] = field(default_factory=dict)
    users: dict[int, tuple[str, str]] = field(default_factory=dict)
    ratings: list[tuple[int, int, str, int]] = field(default_factory=list)
    bad: dict[str, Counter] = field(
        default_factory=lambda: {"movies": Counter(), "ratings": Counter(), "users": Counter()}
    )


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file that ends with a newline and uses only ``\\n``."""
    data = path.read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data
    return data.decode("utf-8").split("\n")[:-1]


def movie_problem(line: str) -> str | None:
    """Why a movies.dat line is invalid, or None."""
    fields = line.split("::")
    if len(fields) != 3 or not fields[1].strip():
        return "malformed"
    if not fields[0].isdigit():
        return "non_numeric_id"
    genres = fields[2]
    if genres != NO_GENRES and not set(genres.split("|")) <= GENRES_10M:
        return "malformed"
    return None


def user_problem(line: str, seen: dict[str, str]) -> str | None:
    """Why a users line is invalid (``seen``: user_id -> first line), or None."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return "invalid_json"
    assert set(record) == {"user_id", "firts_name", "last_name"}
    if record["user_id"] is None:
        return "null_user_id"
    assert isinstance(record["user_id"], str) and record["user_id"].isdigit()
    if record["user_id"] not in seen:
        seen[record["user_id"]] = line
        return None
    return "exact_duplicate" if seen[record["user_id"]] == line else "conflicting_duplicate"


def rating_problem(line: str, parsed: Parsed, first: int, last: int) -> str | None:
    """Why a ratings.dat line is invalid, or None."""
    fields = line.split("::")
    if len(fields) == 1:
        return "garbage"
    if len(fields) != 4:
        return "wrong_field_count"
    user, movie, stars, stamp = fields
    if not (user.isdigit() and movie.isdigit() and stamp.isdigit()):
        return "non_numeric_id"
    if stars not in HALF_STARS:
        return "out_of_range_rating"
    assert first <= int(stamp) <= last, line
    if int(movie) not in parsed.movies:
        return "unknown_movie"
    if int(user) not in parsed.users:
        return "unknown_user"
    return None


def parse(report: GenerationReport) -> Parsed:
    """Parse the three files of ``report`` with the rules above."""
    parsed = Parsed()
    for line in read_lines(report.files["movies"]):
        problem = movie_problem(line)
        if problem:
            parsed.bad["movies"][problem] += 1
            continue
        movie_id, title, genres = line.split("::")
        assert int(movie_id) not in parsed.movies
        parsed.movies[int(movie_id)] = (title, [] if genres == NO_GENRES else genres.split("|"))
    seen: dict[str, str] = {}
    for line in read_lines(report.files["users"]):
        problem = user_problem(line, seen)
        if problem:
            parsed.bad["users"][problem] += 1
            continue
        record = json.loads(line)
        parsed.users[int(record["user_id"])] = (record["firts_name"], record["last_name"])
    spec = report.spec
    first = calendar.timegm(date.fromisoformat(spec.start).timetuple())
    last = calendar.timegm(date.fromisoformat(spec.end).timetuple()) + 86_399
    for line in read_lines(report.files["ratings"]):
        problem = rating_problem(line, parsed, first, last)
        if problem:
            parsed.bad["ratings"][problem] += 1
            continue
        user, movie, stars, stamp = line.split("::")
        parsed.ratings.append((int(user), int(movie), stars, int(stamp)))
    return parsed


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerationReport, Parsed]:
    report = generate_dataset(tmp_path_factory.mktemp("dirty"), DIRTY)
    return report, parse(report)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerationReport, Parsed]:
    report = generate_dataset(tmp_path_factory.mktemp("clean"), CLEAN)
    return report, parse(report)


# ----------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------


def test_same_spec_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_dataset(tmp_path / "a", DIRTY)
    second = generate_dataset(tmp_path / "b", DIRTY)
    other = generate_dataset(
        tmp_path / "c",
        GeneratorSpec(
            ratings=DIRTY.ratings,
            movies=DIRTY.movies,
            users=DIRTY.users,
            seed=DIRTY.seed + 1,
            bad_record_rate=DIRTY.bad_record_rate,
        ),
    )
    for name in ("movies", "ratings", "users"):
        assert sha256(first.files[name]) == sha256(second.files[name]), name
        assert sha256(first.files[name]) != sha256(other.files[name]), name
    assert first.lines == second.lines and first.injected == second.injected


@pytest.mark.parametrize("fixture", ["dirty", "clean"])
def test_line_counts_match_the_report(fixture: str, request: pytest.FixtureRequest) -> None:
    report, _ = request.getfixturevalue(fixture)
    for name, path in report.files.items():
        assert len(read_lines(path)) == report.lines[name], name
    assert report.lines["ratings"] == report.spec.ratings + sum(report.injected["ratings"].values())
    assert report.lines["movies"] == report.spec.movies + sum(report.injected["movies"].values())
    assert report.lines["users"] == report.spec.users + sum(report.injected["users"].values())


@pytest.mark.parametrize("fixture", ["dirty", "clean"])
def test_valid_lines_parse_and_reconcile(fixture: str, request: pytest.FixtureRequest) -> None:
    report, parsed = request.getfixturevalue(fixture)
    spec = report.spec
    assert sorted(parsed.movies) == list(range(1, spec.movies + 1))
    assert sorted(parsed.users) == list(range(1, spec.users + 1))
    assert len(parsed.ratings) == spec.ratings
    pairs = Counter((user, movie) for user, movie, _, _ in parsed.ratings)
    assert sum(n - 1 for n in pairs.values()) == report.duplicate_pairs
    assert len(pairs) == report.expected_clean["ratings"]
    assert len({user for user, _ in pairs}) == report.distinct_users_rated == spec.users
    assert len({movie for _, movie in pairs}) == report.distinct_movies_rated
    for name in report.lines:
        assert report.expected_clean[name] + report.expected_quarantined[name] == report.lines[name]


def test_injected_bad_records_are_found_by_kind(dirty: tuple[GenerationReport, Parsed]) -> None:
    report, parsed = dirty
    expected_kinds = {
        "movies": {"malformed", "non_numeric_id"},
        "ratings": {
            "garbage",
            "wrong_field_count",
            "non_numeric_id",
            "out_of_range_rating",
            "unknown_movie",
            "unknown_user",
        },
        "users": {"null_user_id", "conflicting_duplicate", "exact_duplicate", "invalid_json"},
    }
    for name, kinds in expected_kinds.items():
        assert set(report.injected[name]) == kinds, name
        assert all(count >= 1 for count in report.injected[name].values()), name
        assert dict(parsed.bad[name]) == report.injected[name], name


def test_bad_records_are_spread_through_the_file(dirty: tuple[GenerationReport, Parsed]) -> None:
    report, _ = dirty
    lines = read_lines(report.files["ratings"])
    bad_at = [i for i, line in enumerate(lines) if not re.fullmatch(r"\d+::\d+::[\d.]+::\d+", line)]
    assert bad_at[0] < len(lines) // 4 and bad_at[-1] > 3 * len(lines) // 4


def test_no_bad_records_without_a_rate(clean: tuple[GenerationReport, Parsed]) -> None:
    report, parsed = clean
    assert report.injected == {"movies": {}, "ratings": {}, "users": {}}
    assert all(not counter for counter in parsed.bad.values())


@pytest.mark.parametrize("fixture", ["dirty", "clean"])
def test_valid_quirks_are_present(fixture: str, request: pytest.FixtureRequest) -> None:
    report, parsed = request.getfixturevalue(fixture)
    titles = [title for title, _ in parsed.movies.values()]
    assert any(re.search(r"\(.*,.*\) \(\d{4}\)$", t) for t in titles), "inner parens and commas"
    assert any(re.search(r"\S\(\d{4}\)$", t) for t in titles), "year without a space"
    assert any(not YEAR.search(t) for t in titles), "no year"
    assert any(re.search(r"\(\d{4}\) \(\w+\)$", t) for t in titles), "marker after the year"
    assert any(t.endswith(") ") for t in titles), "trailing space"
    assert any(not t.isascii() for t in titles), "non-ASCII title"
    assert any(genres == [] for _, genres in parsed.movies.values()), NO_GENRES
    years = [int(m[-1]) for t in titles if (m := YEAR.findall(t))]
    assert min(years) >= 1915 and max(years) <= 2008
    stars = Counter(s for _, _, s, _ in parsed.ratings)
    assert set(stars) == HALF_STARS
    assert stars["3"] + stars["3.5"] + stars["4"] > len(parsed.ratings) / 2, "mostly 3 to 4"
    assert report.quirks["ratings"]["half_star"] == sum(stars[s] for s in HALF_STARS if "." in s)


def test_duplicate_pairs_are_later_re_ratings(dirty: tuple[GenerationReport, Parsed]) -> None:
    report, parsed = dirty
    by_pair: dict[tuple[int, int], list[tuple[int, str]]] = {}
    for user, movie, stars, stamp in parsed.ratings:
        by_pair.setdefault((user, movie), []).append((stamp, stars))
    twice = [sorted(v) for v in by_pair.values() if len(v) > 1]
    assert len(twice) == report.duplicate_pairs >= 1
    for (early, early_stars), (late, late_stars) in twice:
        assert early < late and early_stars != late_stars


def test_ratings_by_hour_and_skew(dirty: tuple[GenerationReport, Parsed]) -> None:
    report, parsed = dirty
    latest: dict[tuple[int, int], int] = {}
    for user, movie, _, stamp in parsed.ratings:
        latest[(user, movie)] = max(stamp, latest.get((user, movie), stamp))
    hours = Counter((stamp % 86_400) // 3600 for stamp in latest.values())
    assert tuple(hours[h] for h in range(24)) == report.ratings_by_hour
    assert 18 <= report.peak_hour <= 22
    per_movie = sorted(Counter(m for _, m, _, _ in parsed.ratings).values(), reverse=True)
    top_share = sum(per_movie[: len(per_movie) // 10]) / len(parsed.ratings)
    assert top_share > 0.3, "a few movies get most ratings"
    per_user = sorted(Counter(u for u, _, _, _ in parsed.ratings).values())
    assert per_user[0] >= 20 and per_user[-1] > 5 * per_user[len(per_user) // 2]


def test_spec_is_validated() -> None:
    with pytest.raises(ValueError):
        GeneratorSpec(ratings=1_000, movies=2, users=3)
    with pytest.raises(ValueError):
        GeneratorSpec(bad_record_rate=0.9)
    with pytest.raises(ValueError):
        GeneratorSpec(start="2009-01-01", end="2008-01-01")


def test_bundled_sample_is_a_fresh_generation(tmp_path: Path) -> None:
    report = generate_dataset(tmp_path, SAMPLE_SPEC)
    for path in report.files.values():
        bundled = SAMPLE_DATA_DIR / path.name
        assert bundled.read_bytes() == path.read_bytes(), f"{bundled} is stale"
    assert sum(p.stat().st_size for p in report.files.values()) < 2_000_000
    readme = (SAMPLE_DATA_DIR / "README.md").read_text(encoding="utf-8")
    for name, count in report.lines.items():
        assert f"{count:,}" in readme, (name, count)
    for kinds in report.injected.values():
        assert all(kind in readme for kind in kinds)


@pytest.mark.slow
def test_default_spec_has_the_movielens_10m_shape(tmp_path: Path) -> None:
    report = generate_dataset(tmp_path, GeneratorSpec())
    assert report.lines == {"movies": 10_681, "ratings": 10_000_054, "users": 69_878}
    assert report.distinct_users_rated == 69_878
    assert report.distinct_movies_rated > 10_000
    assert report.peak_hour == 20
    assert report.duplicate_pairs == 1_000
