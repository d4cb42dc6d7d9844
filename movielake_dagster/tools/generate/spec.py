"""What to generate (``GeneratorSpec``), what was generated (``GenerationReport``), the file names."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from movielake_dagster.tools.generate.vocabulary import SECONDS_PER_DAY, max_ratings_per_user

FILE_NAMES: dict[str, str] = {
    "movies": "movies.dat",
    "ratings": "ratings.dat",
    "users": "users_masterdata.json",
}


@dataclass(frozen=True)
class GeneratorSpec:
    """What to generate. ``ratings`` counts valid rating lines, re-ratings included.

    ``bad_record_rate`` is the share of deliberately invalid lines added per file (about
    ``rate * valid records``, at least one line of every kind when the rate is > 0).
    ``start`` and ``end`` are the first and last rating dates (UTC, inclusive).
    """

    ratings: int = 10_000_054
    movies: int = 10_681
    users: int = 69_878
    seed: int = 42
    bad_record_rate: float = 0.0
    start: str = "1995-01-09"
    end: str = "2009-01-05"

    def __post_init__(self) -> None:
        if self.movies < 1 or self.users < 1 or self.ratings < 0:
            raise ValueError("need movies >= 1, users >= 1 and ratings >= 0")
        if not 0.0 <= self.bad_record_rate < 0.5:
            raise ValueError("bad_record_rate must be in [0, 0.5)")
        if date.fromisoformat(self.end) < date.fromisoformat(self.start):
            raise ValueError("end must not be before start")
        if self.ratings > self.users * max_ratings_per_user(self.movies):
            raise ValueError("too many ratings for that many users and movies")


@dataclass(frozen=True)
class GenerationReport:
    """Exact facts about one generated dataset (what tests reconcile against)."""

    spec: GeneratorSpec
    files: dict[str, Path]  # "movies"/"ratings"/"users" -> path
    lines: dict[str, int]  # lines written per file
    injected: dict[str, dict[str, int]]  # per file: kind of invalid line -> count
    quirks: dict[str, dict[str, int]]  # per file: kind of valid quirk -> count
    expected_clean: dict[str, int]  # rows a correct cleanse keeps per dataset
    duplicate_pairs: int  # (user, movie) pairs rated twice
    distinct_users_rated: int  # users with at least one rating
    distinct_movies_rated: int  # movies with at least one rating
    ratings_by_hour: tuple[int, ...]  # cleansed ratings per UTC hour 0..23

    @property
    def peak_hour(self) -> int:
        """The UTC hour in which most (cleansed) ratings were submitted."""
        return max(range(24), key=lambda hour: (self.ratings_by_hour[hour], -hour))

    @property
    def expected_quarantined(self) -> dict[str, int]:
        """Records a correct cleanse quarantines: every injected line plus superseded ratings."""
        return {name: self.lines[name] - self.expected_clean[name] for name in self.lines}


#: The bundled demo sample in ``movielake_dagster/sample_data/`` was made with this spec.
SAMPLE_SPEC = GeneratorSpec(ratings=30_000, movies=1_000, users=600, seed=7, bad_record_rate=0.001)


def epoch_bounds(spec: GeneratorSpec) -> tuple[int, int]:
    """First and last second (unix, UTC) of the rating period."""
    start = calendar.timegm(date.fromisoformat(spec.start).timetuple())
    end = calendar.timegm(date.fromisoformat(spec.end).timetuple()) + SECONDS_PER_DAY - 1
    return start, end
