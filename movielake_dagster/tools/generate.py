"""Deterministic generator of synthetic raw MovieLens-like files.

Writes the three seed inputs of the lake (see SPEC.md, "Inputs") into a folder:

* ``movies.dat``: ``movie_id::title (year)::Genre1|Genre2`` (UTF-8)
* ``ratings.dat``: ``user_id::movie_id::rating::unix_seconds``; ratings printed as in
  MovieLens 10M (``5``, ``4.5``, ``0.5``)
* ``users_masterdata.json``: JSON lines ``{"user_id": "169", "firts_name": ..., "last_name": ...}``

The defaults have the shape of MovieLens 10M (10,681 movies, 10,000,054 ratings, 69,878
users): skewed movie popularity and user activity, an evening peak in the time of day,
mostly 3 to 4 stars. The real files' *valid* quirks are always present in a small share of
records (inner parentheses, a year without a space, titles without a year, a marker after
the year, a trailing space, non-ASCII titles, ``(no genres listed)``, re-rated pairs).
With ``bad_record_rate > 0`` deliberately *invalid* lines are mixed in as well and counted
in the report, so tests can reconcile ``lines = cleansed + quarantined`` exactly.

Every random choice comes from a 32-bit integer hash of (seed, purpose, index), computed
identically in Python and in DuckDB SQL with plain integer arithmetic, so the same spec
gives byte-identical files: nothing depends on DuckDB's own hash or random functions, on
thread scheduling or on row order that SQL does not pin down (the few floating-point steps
are plain IEEE arithmetic). The big ratings file is built and written by DuckDB; the small
files by plain Python. Nothing runs at import time.
"""

from __future__ import annotations

import calendar
import json
import math
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from statistics import NormalDist

import duckdb

FILE_NAMES: dict[str, str] = {
    "movies": "movies.dat",
    "ratings": "ratings.dat",
    "users": "users_masterdata.json",
}

# --------------------------------------------------------------------------------------
# Vocabulary and distributions (weights are relative; shapes follow MovieLens 10M)
# --------------------------------------------------------------------------------------

#: The MovieLens 10M genres with their number of movies in the real 10M list.
GENRE_WEIGHTS: dict[str, int] = {
    "Action": 1473,
    "Adventure": 1025,
    "Animation": 286,
    "Children": 528,
    "Comedy": 3703,
    "Crime": 1118,
    "Documentary": 482,
    "Drama": 5339,
    "Fantasy": 543,
    "Film-Noir": 148,
    "Horror": 1013,
    "IMAX": 29,
    "Musical": 436,
    "Mystery": 509,
    "Romance": 1685,
    "Sci-Fi": 754,
    "Thriller": 1706,
    "War": 511,
    "Western": 275,
}
NO_GENRES = "(no genres listed)"
#: How many genres a movie has (1..8), as counted in the real 10M list.
GENRE_COUNT_WEIGHTS: tuple[int, ...] = (3817, 3548, 1892, 688, 163, 32, 3, 1)
#: Share of ratings per half star 0.5, 1.0, ..., 5.0 (MovieLens 10M, per 10,000).
RATING_WEIGHTS: tuple[int, ...] = (95, 384, 118, 790, 370, 2357, 880, 2876, 585, 1545)
#: Relative number of ratings per UTC hour 0..23: a clear evening peak at 20:00.
HOUR_WEIGHTS: tuple[int, ...] = (
    38,
    30,
    22,
    15,
    10,
    7,
    6,
    8,
    12,
    17,
    22,
    27,
    31,
    34,
    37,
    41,
    47,
    55,
    66,
    80,
    100,
    90,
    72,
    52,
)
#: Movie "quality" shifts -2..2 and user "leniency" shifts -1..1 (relative weights).
MOVIE_SHIFT_WEIGHTS: tuple[int, ...] = (1, 2, 4, 2, 1)
USER_SHIFT_WEIGHTS: tuple[int, ...] = (1, 3, 1)
#: Movie popularity by rank share x: exp(-TAIL * x) / (x + OFFSET), fitted to 10M.
POPULARITY_OFFSET = 0.005
POPULARITY_TAIL = 3.5
#: Exponential tilt of the rating distribution per unit of shift.
RATING_TILT = 0.25

FIRST_YEAR, LAST_YEAR = 1915, 2008

ADJECTIVES = (
    "Dark",
    "Silent",
    "Last",
    "Broken",
    "Golden",
    "Hidden",
    "Lost",
    "Wild",
    "Secret",
    "Crimson",
    "Endless",
    "Frozen",
    "Little",
    "Big",
    "Lonely",
    "Midnight",
    "Burning",
    "Savage",
    "Sweet",
    "Bitter",
    "Perfect",
    "Final",
    "Eternal",
    "Forgotten",
    "Electric",
    "Invisible",
    "Dangerous",
    "Happy",
    "Strange",
    "Brave",
    "Naked",
    "Blue",
    "Red",
    "Black",
    "White",
    "Deadly",
    "Crazy",
    "Quiet",
    "American",
    "Private",
    "Empty",
    "Seventh",
    "Lucky",
    "Holy",
    "Wicked",
    "Tender",
    "Cold",
    "Hot",
    "Long",
    "Free",
)
NOUNS = (
    "Night",
    "River",
    "Road",
    "Heart",
    "City",
    "Game",
    "Dream",
    "Kingdom",
    "Shadow",
    "Storm",
    "Garden",
    "Island",
    "Mountain",
    "Stranger",
    "Detective",
    "Doctor",
    "Wedding",
    "Summer",
    "Winter",
    "House",
    "Mirror",
    "Journey",
    "Promise",
    "Legend",
    "Empire",
    "Ghost",
    "Angel",
    "Killer",
    "Family",
    "Lovers",
    "Soldier",
    "Thief",
    "Moon",
    "Sun",
    "Train",
    "Harbor",
    "Castle",
    "Planet",
    "Machine",
    "Affair",
    "Children",
    "Witness",
    "Widow",
    "Sister",
    "Brothers",
    "Frontier",
    "Code",
    "Circus",
    "Hotel",
    "Voyage",
)
CHARACTERS = (
    "Johnny",
    "Maggie",
    "Charlie",
    "Billy",
    "Rosie",
    "Jack",
    "Annie",
    "Max",
    "Eddie",
    "Lola",
    "Dracula",
    "Frankenstein",
    "Hamlet",
    "Casper",
    "Zorro",
    "Tarzan",
)
PLACES = (
    "Paris",
    "Tokyo",
    "Chicago",
    "Texas",
    "Berlin",
    "Brooklyn",
    "Vegas",
    "Manhattan",
    "Rome",
    "Alaska",
    "Hong Kong",
    "Casablanca",
    "Mars",
    "Harlem",
    "Venice",
)
SEQUEL_SUFFIXES = ("2", "3", "II", "Part II", "Part III", "Returns", "Forever")
MARKERS = ("(V)", "(TV)")


@dataclass(frozen=True)
class _Language:
    """Vocabulary for non-English titles. Every noun has a non-ASCII letter."""

    articles: tuple[str, ...]  # moved behind the title as MovieLens does ("" = none)
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    adjective_first: bool = False


FOREIGN_LANGUAGES: tuple[_Language, ...] = (
    _Language(
        ("La", "Le", "Les"),
        (
            "Cité",
            "Rêve",
            "Fenêtre",
            "Forêt",
            "Château",
            "Mémoire",
            "Été",
            "Cœur",
            "Bête",
            "Fête",
            "Vérité",
            "Étoile",
            "Misérables",
            "Pèlerins",
        ),
        ("perdus", "éternel", "étrange", "doré", "oublié", "blessé", "noir"),
    ),
    _Language(
        ("Die", "Der", "Das"),
        ("Straße", "Mädchen", "Brücke", "Träume", "Nächte", "Großstadt", "Küste", "Höhle", "Sünde", "Schöne"),
        ("Dunkle", "Große", "Verlorene", "Müde", "Letzte", "Stille"),
        adjective_first=True,
    ),
    _Language(
        ("El", "La", "Los", "Las"),
        ("Corazón", "Niño", "Canción", "Mañana", "Días", "Señor", "Pájaros", "Jardín", "Corrupción"),
        ("perdido", "oscuro", "último", "pequeño", "dorado", "salvaje"),
    ),
    _Language(
        ("La", "Il", "Le"),
        ("Città", "Verità", "Libertà", "Età", "Virtù", "Società"),
        ("perduta", "eterna", "dolce", "proibita", "nera"),
    ),
    _Language(
        ("",),  # Japanese, romanised with circumflexes as in MovieLens
        ("Kyôfu", "Tôkyô", "Yûrei", "Ryûjin", "Jûbei", "Kôya", "Sôshi", "Dôjô"),
        ("no yoru", "no mori", "monogatari", "no kettô", "ninpûchô"),
    ),
)

FIRST_NAMES = (
    "Claire",
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Paul",
    "Ashley",
    "Steven",
    "Emily",
    "Andrew",
    "Donna",
    "Kevin",
    "Michelle",
    "Brian",
    "Carol",
    "George",
    "Amanda",
    "Edward",
    "Melissa",
    "Ronald",
    "Deborah",
    "Timothy",
    "Stephanie",
    "Jason",
    "Rebecca",
    "Cheryl",
    "Desire",
    "Mary-Jane",
    "Jean-Luc",
)
#: Picked for about one user in INTERNATIONAL_NAME_ODDS, first and last name alike.
INTERNATIONAL_FIRST_NAMES = ("Zoë", "José", "Björn", "François", "Renée", "Søren", "Chloé", "Łukasz", "Anaïs", "Jürgen")
LAST_NAMES = (
    "Wiggins",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Barre",
    "Mitchell",
    "O'Brien",
    "Smith-Jones",
    "van der Berg",
    "D'Angelo",
    "McDonald",
)
INTERNATIONAL_LAST_NAMES = (
    "Müller",
    "García",
    "Østergaard",
    "Nuñez",
    "Lefèvre",
    "Nguyễn",
    "Šimić",
    "Sørensen",
    "Gonçalves",
    "Öztürk",
)
INTERNATIONAL_NAME_ODDS = 25

# Valid quirks of movies.dat: kind -> (share of movies, at least this many when possible).
MOVIE_QUIRKS: dict[str, tuple[float, int]] = {
    "alternate_title": (0.06, 1),  # Title, The (Titre, Le) (1995)
    "foreign_title": (0.025, 1),  # Misérables, Les (1995)
    "year_without_space": (0.002, 1),  # Associate, The (L'Associe)(1982)
    "no_year": (0.002, 1),  # unknown
    "marker_after_year": (0.004, 1),  # Hamlet (1996) (V)
    "trailing_space": (0.002, 1),  # Two Friends (1986)<space>
    "no_genres": (0.001, 1),  # (no genres listed)
}

# Invalid record kinds injected when bad_record_rate > 0, per file.
BAD_KINDS: dict[str, tuple[str, ...]] = {
    "movies": ("malformed", "non_numeric_id"),
    "ratings": (
        "garbage",
        "wrong_field_count",
        "non_numeric_id",
        "out_of_range_rating",
        "unknown_movie",
        "unknown_user",
    ),
    "users": ("null_user_id", "conflicting_duplicate", "exact_duplicate", "invalid_json"),
}

#: Re-rated (user, movie) pairs: one per this many rating lines (at least one).
RATINGS_PER_DUPLICATE_PAIR = 10_000
#: Most movies a single user rates, as a share of all movies (10M: 7,359 of 10,681).
MAX_USER_SHARE_OF_MOVIES = 0.7
#: Extra popularity draws per user, as a share of their ratings (repeats are dropped).
OVERSAMPLING = 0.25
#: Fewest ratings per user when there are enough ratings (MovieLens: 20).
MIN_RATINGS_PER_USER = 20

_MASK32 = 0xFFFFFFFF
_HASH_MULTIPLIER = 0x45D9F3B
_TWO_32 = 4294967296.0
_SECONDS_PER_DAY = 86_400


def _max_ratings_per_user(movies: int) -> int:
    """The most ratings one user may have: a share of all movies, at least one."""
    return max(1, math.ceil(MAX_USER_SHARE_OF_MOVIES * movies))


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


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
        if self.ratings > self.users * _max_ratings_per_user(self.movies):
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


def generate_dataset(out_dir: Path, spec: GeneratorSpec | None = None) -> GenerationReport:
    """Write movies.dat, ratings.dat and users_masterdata.json for ``spec`` (default: ``GeneratorSpec()``)
    into ``out_dir``."""
    spec = spec or GeneratorSpec()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: out_dir / file_name for name, file_name in FILE_NAMES.items()}

    movies = _build_movies(spec)
    users = _build_users(spec)
    movie_bad = _bad_lines("movies", spec, len(movies.lines), _bad_movie_line, movies.lines)
    user_bad = _bad_lines("users", spec, len(users.lines), _bad_user_line, users.lines)
    _write_text(files["movies"], _interleave(movies.lines, movie_bad))
    _write_text(files["users"], _interleave(users.lines, user_bad))
    ratings = _write_ratings(files["ratings"], spec, movies)

    injected = {
        "movies": _count_kinds(movie_bad),
        "ratings": ratings.injected,
        "users": _count_kinds(user_bad),
    }
    lines = {
        "movies": len(movies.lines) + len(movie_bad),
        "ratings": spec.ratings + sum(ratings.injected.values()),
        "users": len(users.lines) + len(user_bad),
    }
    return GenerationReport(
        spec=spec,
        files=files,
        lines=lines,
        injected=injected,
        quirks={"movies": movies.quirks, "ratings": ratings.quirks, "users": users.quirks},
        expected_clean={"movies": spec.movies, "ratings": spec.ratings - ratings.duplicate_pairs, "users": spec.users},
        duplicate_pairs=ratings.duplicate_pairs,
        distinct_users_rated=ratings.distinct_users,
        distinct_movies_rated=ratings.distinct_movies,
        ratings_by_hour=ratings.by_hour,
    )


# --------------------------------------------------------------------------------------
# Deterministic pseudo-randomness (same arithmetic in Python and in SQL)
# --------------------------------------------------------------------------------------


def _h32(x: int) -> int:
    """A bijective 32-bit integer hash (xor-shift-multiply), the SQL macro ``ml_h32``."""
    x &= _MASK32
    x = ((x ^ (x >> 16)) * _HASH_MULTIPLIER) & _MASK32
    x = ((x ^ (x >> 16)) * _HASH_MULTIPLIER) & _MASK32
    return x ^ (x >> 16)


def _mix(key: int, index: int) -> int:
    """The ``index``-th value of the stream ``key``: the SQL macro ``ml_mix``."""
    return _h32(_h32(index) ^ key)


def _stream(seed: int, purpose: str) -> int:
    """The key of the random stream for one ``purpose`` under ``seed`` (modulo 2**32)."""
    return _h32(_h32(seed) ^ zlib.crc32(purpose.encode("utf-8")))


def _unit(value: int) -> float:
    """A 32-bit hash value as a float in (0, 1)."""
    return (value + 0.5) / _TWO_32


class _Rng:
    """Successive draws for one entity (a movie, a user, a bad line) of one stream."""

    def __init__(self, key: int, index: int) -> None:
        self._state = _mix(key, index)
        self._counter = 0

    def next(self) -> int:
        """The next 32-bit value."""
        self._counter += 1
        return _mix(self._state, self._counter)

    def unit(self) -> float:
        """The next value as a float in (0, 1)."""
        return _unit(self.next())

    def below(self, n: int) -> int:
        """The next value as an int in [0, n)."""
        return self.next() % n

    def pick(self, items: Sequence[str]) -> str:
        """One of ``items``, uniformly."""
        return items[self.below(len(items))]

    def weighted(self, weights: Sequence[float]) -> int:
        """An index drawn with probability proportional to ``weights``."""
        target = self.unit() * math.fsum(weights)
        for index, weight in enumerate(weights):
            target -= weight
            if target < 0:
                return index
        return len(weights) - 1


_SQL_MACROS = f"""
CREATE OR REPLACE TEMP MACRO ml_fold(x) AS xor(x, x >> 16);
CREATE OR REPLACE TEMP MACRO ml_h32(x) AS ml_fold(
    (ml_fold((ml_fold((x)::BIGINT & {_MASK32}) * {_HASH_MULTIPLIER}) & {_MASK32})
     * {_HASH_MULTIPLIER}) & {_MASK32});
CREATE OR REPLACE TEMP MACRO ml_mix(key, i) AS ml_h32(xor(ml_h32(i), key));
"""


# --------------------------------------------------------------------------------------
# Small numeric helpers
# --------------------------------------------------------------------------------------


def _allocate(weights: Sequence[float], total: int, minimum: int = 0) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder).

    Every part gets at least ``minimum``; ties go to the lower index, so it is exact and
    deterministic.
    """
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError("total too small for the minimum")
    weight_sum = math.fsum(weights)  # exact, so the same on every Python version
    exact = [spare * w / weight_sum for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[: spare - sum(parts)]:
        parts[i] += 1
    return [minimum + p for p in parts]


def _allocate_capped(weights: Sequence[float], total: int, minimum: int, cap: int) -> list[int]:
    """Like :func:`_allocate` but no part exceeds ``cap`` (excess goes to the others)."""
    parts = [0] * len(weights)
    fixed: set[int] = set()
    while True:
        free = [i for i in range(len(weights)) if i not in fixed]
        left = total - cap * len(fixed)
        shares = _allocate([weights[i] for i in free], left, minimum)
        over = [i for i, share in zip(free, shares) if share > cap]
        if not over:
            for i, share in zip(free, shares):
                parts[i] = share
            for i in fixed:
                parts[i] = cap
            return parts
        fixed.update(over)


def _tilted(weights: Sequence[float], values: Sequence[float], tilt: float) -> list[float]:
    """``weights`` exponentially tilted towards high (tilt > 0) or low ``values``."""
    tilted = [w * math.exp(tilt * v) for w, v in zip(weights, values)]
    total = math.fsum(tilted)
    return [t / total for t in tilted]


def _write_text(path: Path, lines: Sequence[str]) -> None:
    """Write ``lines`` as UTF-8 with ``\\n`` endings (one line each, newline at the end)."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(line + "\n" for line in lines)


# --------------------------------------------------------------------------------------
# Movies
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Movies:
    """The movie lines plus what the ratings need to know about each movie."""

    lines: list[str]
    quirks: dict[str, int]
    popularity: list[float]  # per movie (index = movie_id - 1), relative
    rank: list[int]  # per movie: popularity rank, 0 = most popular
    shift: list[int]  # per movie: rating shift -2..2


def _build_movies(spec: GeneratorSpec) -> _Movies:
    """Movie lines with their quirks, popularity weights and rating shifts."""
    quirk_of = _assign_quirks(spec.movies, _stream(spec.seed, "movies.quirks"))
    key = _stream(spec.seed, "movies")
    lines = []
    for index in range(spec.movies):
        rng = _Rng(key, index)
        quirk = quirk_of.get(index, "")
        title = _movie_title(rng, quirk)
        genres = NO_GENRES if quirk == "no_genres" else "|".join(_genres(rng))
        lines.append(f"{index + 1}::{title}::{genres}")
    assigned = Counter(quirk_of.values())
    quirks = {kind: assigned[kind] for kind in MOVIE_QUIRKS}
    quirks["non_ascii"] = sum(1 for line in lines if not line.isascii())
    ranks = _popularity_ranks(spec)
    return _Movies(lines, quirks, _popularity(ranks), ranks, _movie_shifts(spec))


def _assign_quirks(movies: int, key: int) -> dict[int, str]:
    """Which movie index gets which valid quirk: exact counts, hash-chosen movies."""
    order = sorted(range(movies), key=lambda i: (_mix(key, i), i))
    assigned: dict[int, str] = {}
    position = 0
    for kind, (share, at_least) in MOVIE_QUIRKS.items():
        count = min(max(at_least, round(share * movies)), movies - position)
        for index in order[position : position + count]:
            assigned[index] = kind
        position += count
    return assigned


def _movie_title(rng: _Rng, quirk: str) -> str:
    """A plausible raw MovieLens title, shaped by ``quirk``."""
    year = LAST_YEAR - math.floor((LAST_YEAR - FIRST_YEAR + 1) * rng.unit() ** 2.2)
    if quirk == "foreign_title":
        return f"{_foreign_title(rng)} ({year})"
    english = _english_title(rng)
    if quirk == "alternate_title":
        alternate = f"a.k.a. {_english_title(rng)}" if rng.below(5) == 0 else _foreign_title(rng)
        return f"{english} ({alternate}) ({year})"
    if quirk == "year_without_space":
        return f"{english} ({_foreign_title(rng)})({year})"
    if quirk == "no_year":
        return english
    if quirk == "marker_after_year":
        return f"{english} ({year}) {rng.pick(MARKERS)}"
    if quirk == "trailing_space":
        return f"{english} ({year}) "
    return f"{english} ({year})"


def _english_title(rng: _Rng) -> str:
    """An English title, its leading article moved to the end as MovieLens does."""
    adjective, noun, noun2 = rng.pick(ADJECTIVES), rng.pick(NOUNS), rng.pick(NOUNS)
    character, place = rng.pick(CHARACTERS), rng.pick(PLACES)
    patterns = (
        f"The {adjective} {noun}",
        f"{adjective} {noun}",
        f"{noun} of the {adjective} {noun2}",
        f"{character}'s {noun}",
        f"{adjective} {noun} in {place}",
        f"{character}: The {adjective} {noun}",
        f"A {noun} for {character}",
        f"Goodbye, {character}",
        f"{noun}, {noun2} and {character}",
        f"{place}",
        f"{adjective} {noun} {rng.pick(SEQUEL_SUFFIXES)}",
        f"The {noun} and the {noun2}",
    )
    return _move_article(rng.pick(patterns), ("The", "A", "An"))


def _foreign_title(rng: _Rng) -> str:
    """A non-English title with accented letters, article moved to the end."""
    language = FOREIGN_LANGUAGES[rng.below(len(FOREIGN_LANGUAGES))]
    noun, adjective = rng.pick(language.nouns), rng.pick(language.adjectives)
    words = f"{adjective} {noun}" if language.adjective_first else f"{noun} {adjective}"
    article = rng.pick(language.articles)
    return f"{words}, {article}" if article else words


def _move_article(title: str, articles: Sequence[str]) -> str:
    """``The Big Night`` -> ``Big Night, The``."""
    for article in articles:
        if title.startswith(article + " "):
            return f"{title[len(article) + 1 :]}, {article}"
    return title


def _genres(rng: _Rng) -> list[str]:
    """1..8 distinct genres, weighted like MovieLens 10M, sorted alphabetically."""
    count = rng.weighted(GENRE_COUNT_WEIGHTS) + 1
    names, weights = list(GENRE_WEIGHTS), list(GENRE_WEIGHTS.values())
    chosen = []
    for _ in range(count):
        index = rng.weighted(weights)
        chosen.append(names.pop(index))
        weights.pop(index)
    return sorted(chosen)


def _popularity_ranks(spec: GeneratorSpec) -> list[int]:
    """Per movie its popularity rank (0 = most rated): a hash permutation of the ids."""
    key = _stream(spec.seed, "movies.popularity")
    order = sorted(range(spec.movies), key=lambda i: (_mix(key, i), i))
    ranks = [0] * spec.movies
    for rank, index in enumerate(order):
        ranks[index] = rank
    return ranks


def _popularity(ranks: Sequence[int]) -> list[float]:
    """Relative rating frequency per movie: Zipf-Mandelbrot with an exponential tail.

    With the 10M defaults the most rated movies get about 30,000 ratings, the median
    movie about 110 and the least rated about 10, close to MovieLens 10M.
    """
    movies = len(ranks)
    return [math.exp(-POPULARITY_TAIL * r / movies) / (r / movies + POPULARITY_OFFSET) for r in ranks]


def _movie_shifts(spec: GeneratorSpec) -> list[int]:
    """Per movie, how much better or worse than average it is rated (-2..2)."""
    key = _stream(spec.seed, "movies.shift")
    return [_Rng(key, i).weighted(MOVIE_SHIFT_WEIGHTS) - 2 for i in range(spec.movies)]


# --------------------------------------------------------------------------------------
# Users (master data)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Users:
    """The master-data lines and their valid quirks."""

    lines: list[str]
    quirks: dict[str, int]


def _user_line(user_id: object, first_name: str, last_name: str) -> str:
    """One master-data JSON line, keys as in the seed (``firts_name`` sic)."""
    record = {"user_id": user_id, "firts_name": first_name, "last_name": last_name}
    return json.dumps(record, ensure_ascii=False)


def _user_name(rng: _Rng) -> tuple[str, str]:
    """A (first, last) name pair, now and then with non-ASCII letters."""
    return (_name(rng, FIRST_NAMES, INTERNATIONAL_FIRST_NAMES), _name(rng, LAST_NAMES, INTERNATIONAL_LAST_NAMES))


def _name(rng: _Rng, common: Sequence[str], international: Sequence[str]) -> str:
    """Mostly a common name, about one in INTERNATIONAL_NAME_ODDS an international one."""
    names = international if rng.below(INTERNATIONAL_NAME_ODDS) == 0 else common
    return rng.pick(names)


def _build_users(spec: GeneratorSpec) -> _Users:
    """One line per user id 1..users, in id order."""
    key = _stream(spec.seed, "users.names")
    lines = [_user_line(str(u), *_user_name(_Rng(key, u))) for u in range(1, spec.users + 1)]
    return _Users(lines, {"non_ascii": sum(1 for line in lines if not line.isascii())})


# --------------------------------------------------------------------------------------
# Deliberately invalid lines
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BadLine:
    """One deliberately invalid line and where it goes."""

    after: int  # inserted after this many valid lines
    kind: str
    text: str


def _bad_count(spec: GeneratorSpec, dataset: str, valid: int) -> int:
    """How many invalid lines to inject into one file."""
    if spec.bad_record_rate <= 0:
        return 0
    return max(len(BAD_KINDS[dataset]), round(spec.bad_record_rate * valid))


def _bad_plan(spec: GeneratorSpec, dataset: str, valid: int) -> list[tuple[int, str, _Rng]]:
    """(insert after n valid lines, kind, rng) for each invalid line, spread over the file.

    Kinds go round-robin; each line sits at a hash-chosen place in its own slice of the
    file, so positions are distinct whenever there are fewer bad lines than valid ones.
    """
    count = _bad_count(spec, dataset, valid)
    kinds = BAD_KINDS[dataset]
    key = _stream(spec.seed, f"{dataset}.bad")
    gap = max(1, valid // count) if count else 1
    plan = []
    for j in range(count):
        rng = _Rng(key, j)
        after = min(valid, j * valid // count + 1 + rng.below(gap))
        plan.append((after, kinds[j % len(kinds)], rng))
    return plan


def _bad_lines(
    dataset: str,
    spec: GeneratorSpec,
    valid: int,
    make: Callable[[str, _Rng, GeneratorSpec, str], str],
    valid_lines: Sequence[str] = (),
) -> list[_BadLine]:
    """Invalid lines for one file; ``make(kind, rng, spec, previous_valid_line)`` writes one."""
    return [
        _BadLine(after, kind, make(kind, rng, spec, valid_lines[after - 1] if valid_lines else ""))
        for after, kind, rng in _bad_plan(spec, dataset, valid)
    ]


def _interleave(valid: Sequence[str], bad: Sequence[_BadLine]) -> list[str]:
    """The valid lines with each bad line placed after ``bad.after`` valid lines."""
    by_position: dict[int, list[str]] = {}
    for line in bad:
        by_position.setdefault(line.after, []).append(line.text)
    out = list(by_position.get(0, []))
    for n, line in enumerate(valid, start=1):
        out.append(line)
        out.extend(by_position.get(n, []))
    return out


def _count_kinds(bad: Sequence[_BadLine]) -> dict[str, int]:
    """Count of invalid lines per kind."""
    return dict(Counter(line.kind for line in bad))


def _bad_movie_line(kind: str, rng: _Rng, spec: GeneratorSpec, _previous: str) -> str:
    """An invalid movies.dat line; ids beyond the valid range so they never clash."""
    movie_id = spec.movies + 1 + rng.below(1000)
    title = f"{_english_title(rng)} ({1990 + rng.below(19)})"
    if kind == "non_numeric_id":
        return f"{rng.pick(('tt', 'id-', 'm'))}{movie_id}::{title}::{rng.pick(list(GENRE_WEIGHTS))}"
    if rng.below(2):
        return f"{movie_id}::{title}"  # genres field missing
    return f"{movie_id}|{title}|Drama"  # wrong delimiter: one field


def _bad_user_line(kind: str, rng: _Rng, _spec: GeneratorSpec, previous: str) -> str:
    """An invalid users line; duplicates repeat the user of the line just before."""
    first, last = _user_name(rng)
    if kind == "null_user_id":
        return _user_line(None, first, last)
    if kind == "exact_duplicate":
        return previous
    record = json.loads(previous)
    if kind == "conflicting_duplicate":
        other_names = [name for name in LAST_NAMES if name != record["last_name"]]
        return _user_line(record["user_id"], record["firts_name"], rng.pick(other_names))
    truncated = previous[: len(previous) // 2]
    return rng.pick((truncated, f"{{'user_id': '{record['user_id']}', 'firts_name': '{first}'}}"))


def _bad_rating_line(kind: str, rng: _Rng, spec: GeneratorSpec, _previous: str) -> str:
    """An invalid ratings.dat line (only these ever reference unknown users or movies)."""
    user = 1 + rng.below(spec.users)
    movie = 1 + rng.below(spec.movies)
    stars = rng.pick(("1", "2", "3", "3.5", "4", "4.5", "5"))
    start, end = _epoch_bounds(spec)
    stamp = start + rng.below(end - start + 1)
    if kind == "garbage":
        return rng.pick(
            (
                "<<<<<<< corrupted block >>>>>>>",
                "NULL",
                "#N/A",
                "\\N\\N\\N",
                "ÿþ\u00a0?",
                "ERROR 500 Internal Server Error",
            )
        )
    if kind == "wrong_field_count":
        return rng.pick(
            (
                f"{user}::{movie}::{stars}",
                f"{user}::{movie}",
                f"{user}::{movie}::{stars}::{stamp}::{stamp}",
                f"{user}::{movie}:",
            )
        )
    if kind == "non_numeric_id":
        return rng.pick(
            (
                f"u{user}::{movie}::{stars}::{stamp}",
                f"{user}::{movie}b::{stars}::{stamp}",
                f"abc::{movie}::{stars}::{stamp}",
            )
        )
    if kind == "out_of_range_rating":
        bad = rng.pick(("7", "3.3", "0", "-1", "5.5", "10", "0.0"))
        return f"{user}::{movie}::{bad}::{stamp}"
    if kind == "unknown_movie":
        return f"{user}::{spec.movies + 1 + rng.below(100_000)}::{stars}::{stamp}"
    return f"{spec.users + 1 + rng.below(100_000)}::{movie}::{stars}::{stamp}"


# --------------------------------------------------------------------------------------
# Ratings (built and written by DuckDB)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RatingsResult:
    """Exact facts about the written ratings file."""

    injected: dict[str, int]
    quirks: dict[str, int]
    duplicate_pairs: int
    distinct_users: int
    distinct_movies: int
    by_hour: tuple[int, ...]


def _epoch_bounds(spec: GeneratorSpec) -> tuple[int, int]:
    """First and last second (unix, UTC) of the rating period."""
    start = calendar.timegm(date.fromisoformat(spec.start).timetuple())
    end = calendar.timegm(date.fromisoformat(spec.end).timetuple()) + _SECONDS_PER_DAY - 1
    return start, end


def _ratings_per_user(spec: GeneratorSpec) -> list[int]:
    """Ratings per user: at least 20 where possible, log-normally skewed, capped."""
    if spec.ratings >= spec.users:
        minimum = min(MIN_RATINGS_PER_USER, max(1, spec.ratings // (2 * spec.users)))
    else:
        minimum = 0
    cap = _max_ratings_per_user(spec.movies)
    key = _stream(spec.seed, "users.activity")
    normal = NormalDist(0.0, 1.35)
    weights = [math.exp(normal.inv_cdf(_unit(_mix(key, u)))) for u in range(spec.users)]
    return _allocate_capped(weights, spec.ratings, min(minimum, cap), cap)


def _load_plan(con: duckdb.DuckDBPyConnection, spec: GeneratorSpec, movies: _Movies) -> None:
    """Create the small planning tables ``plan_user``, ``plan_movie`` and the lookups."""
    counts = _ratings_per_user(spec)
    draws = [c + math.ceil(OVERSAMPLING * c) + 2 if c else 0 for c in counts]
    user_key = _stream(spec.seed, "users.plan")
    user_rngs = [_Rng(user_key, u) for u in range(spec.users)]
    windows = [_active_window(rng, _period_days(spec)) for rng in user_rngs]
    con.execute(
        """CREATE TEMP TABLE plan_user AS SELECT
             unnest($ids) AS user_id, unnest($cnt) AS cnt, unnest($draws) AS ndraw,
             unnest($draw_off) AS draw_off, unnest($row_off) AS row_off,
             unnest($first_day) AS first_day, unnest($active_days) AS active_days,
             unnest($shift) AS ushift""",
        {
            "ids": list(range(1, spec.users + 1)),
            "cnt": counts,
            "draws": draws,
            "draw_off": _offsets(draws),
            "row_off": _offsets(counts),
            "first_day": [first for first, _ in windows],
            "active_days": [length for _, length in windows],
            "shift": [r.weighted(USER_SHIFT_WEIGHTS) - 1 for r in user_rngs],
        },
    )
    keep_below, alias = _alias_table(movies.popularity)
    con.execute(
        """CREATE TEMP TABLE plan_movie AS SELECT
             unnest($ids) AS movie_id, unnest($rank) AS rank, unnest($keep) AS keep_below,
             unnest($alias) AS alias_id, unnest($shift) AS mshift""",
        {
            "ids": list(range(1, spec.movies + 1)),
            "rank": movies.rank,
            "keep": keep_below,
            "alias": [a + 1 for a in alias],
            "shift": movies.shift,
        },
    )
    _categorical_table(con, "hour_bucket", {0: list(HOUR_WEIGHTS)})
    values = [(i + 1) / 2 for i in range(10)]
    _categorical_table(
        con, "rating_bucket", {s: _tilted(RATING_WEIGHTS, values, RATING_TILT * s) for s in range(-3, 4)}
    )


def _alias_table(weights: Sequence[float]) -> tuple[list[int], list[int]]:
    """Walker's alias table in exact integers, for O(1) weighted draws in SQL.

    Draw a column ``i`` uniformly and a 32-bit ``h``: the result is ``i`` when
    ``h < keep_below[i]``, else ``alias[i]``. Each column holds 2**32 units of weight.
    """
    full = 1 << 32
    units = _allocate(weights, len(weights) * full)
    keep_below, alias = [full] * len(weights), list(range(len(weights)))
    small = [i for i, u in enumerate(units) if u < full]
    large = [i for i, u in enumerate(units) if u > full]
    while small and large:
        low, high = small.pop(), large[-1]
        keep_below[low], alias[low] = units[low], high
        units[high] -= full - units[low]
        if units[high] <= full:
            large.pop()
            if units[high] < full:
                small.append(high)
    return keep_below, alias


def _period_days(spec: GeneratorSpec) -> int:
    """Number of days from the first to the last rating date, both included."""
    return (date.fromisoformat(spec.end) - date.fromisoformat(spec.start)).days + 1


def _active_window(rng: _Rng, days: int) -> tuple[int, int]:
    """(first day, number of days) a user is active: often short, always inside the period."""
    v = rng.unit()
    length = 1 + math.floor((days - 1) * v * v * v * v)
    return rng.below(days - length + 1), length


def _offsets(counts: Sequence[int]) -> list[int]:
    """Running start offsets of consecutive blocks of ``counts``."""
    offsets, total = [], 0
    for c in counts:
        offsets.append(total)
        total += c
    return offsets


_CATEGORY_BITS = 16


def _categorical_table(con: duckdb.DuckDBPyConnection, name: str, weights_by_group: dict[int, Sequence[float]]) -> None:
    """Table ``name(grp, bucket, value)``: a 16-bit bucket maps to a weighted category."""
    groups, values, starts, sizes = [], [], [], []
    for group, weights in weights_by_group.items():
        group_sizes = _allocate(weights, 1 << _CATEGORY_BITS)
        groups += [group] * len(weights)
        values += list(range(len(weights)))
        starts += _offsets(group_sizes)
        sizes += group_sizes
    con.execute(
        f"""CREATE TEMP TABLE {name} AS
                    SELECT grp, unnest(range(lo, lo + size)) AS bucket, value
                    FROM (SELECT unnest($g) AS grp, unnest($v) AS value,
                                 unnest($lo) AS lo, unnest($n) AS size)""",
        {"g": groups, "v": values, "lo": starts, "n": sizes},
    )


def _pick_movies(con: duckdb.DuckDBPyConnection, spec: GeneratorSpec) -> None:
    """Table ``picks(user_id, movie_id, slot)``: ``cnt`` distinct movies per user.

    Popularity-weighted draws, repeats dropped, the first ``cnt`` kept (``slot`` is the
    0-based position in the user's block of lines). Users still short (heavy raters) get
    the most popular movies they have not picked yet, which is what weighted sampling
    without replacement does.
    """
    pair = spec.movies + 1  # (user, movie) packed into one key: user * pair + movie
    con.execute(f"""
        CREATE TEMP TABLE picks AS
        WITH d AS (
            SELECT user_id, g,
                   1 + ((ml_mix({_stream(spec.seed, "r.column")}, g) * {spec.movies}) >> 32) AS col,
                   ml_mix({_stream(spec.seed, "r.alias")}, g) AS h
            FROM (SELECT user_id, draw_off + unnest(range(ndraw)) AS g FROM plan_user)
        ), firsts AS (
            SELECT d.user_id * {pair}
                   + CASE WHEN d.h < a.keep_below THEN a.movie_id ELSE a.alias_id END AS key,
                   min(d.g) AS g
            FROM d JOIN plan_movie a ON a.movie_id = d.col
            GROUP BY key
        ), ranked AS (
            SELECT key // {pair} AS user_id, key % {pair} AS movie_id,
                   row_number() OVER (PARTITION BY key // {pair} ORDER BY g) - 1 AS slot
            FROM firsts
        )
        SELECT r.user_id, r.movie_id, r.slot
        FROM ranked r JOIN plan_user u USING (user_id) WHERE r.slot < u.cnt
    """)
    con.execute("""
        INSERT INTO picks
        WITH short AS (
            SELECT u.user_id, u.cnt, coalesce(p.n, 0) AS have
            FROM plan_user u
            LEFT JOIN (SELECT user_id, count(*) AS n FROM picks GROUP BY user_id) p USING (user_id)
            WHERE u.cnt > coalesce(p.n, 0)
        ), walk AS (
            SELECT s.user_id, s.cnt, s.have, s.j, m.movie_id
            FROM (SELECT *, unnest(range(cnt)) AS j FROM short) s
            JOIN plan_movie m ON m.rank = s.j
        )
        SELECT user_id, movie_id,
               have + row_number() OVER (PARTITION BY user_id ORDER BY j) - 1 AS slot
        FROM walk
        WHERE NOT EXISTS (SELECT 1 FROM picks p
                          WHERE p.user_id = walk.user_id AND p.movie_id = walk.movie_id)
        QUALIFY slot < cnt
    """)


def _rate(con: duckdb.DuckDBPyConnection, spec: GeneratorSpec) -> None:
    """Table ``rating_rows(n, user_id, slot, movie_id, idx, ts, superseded)``, one per line.

    ``n`` is the line order, ``idx`` the half-star index 0..9 (0.5..5.0). A user's
    ratings fall in their active window, most near its start; the hour follows the
    evening-heavy profile; the stars depend on the movie's and the user's shift.
    """
    seed = spec.seed
    start, _end = _epoch_bounds(spec)
    category_shift = 32 - _CATEGORY_BITS
    con.execute(f"""
        CREATE TEMP TABLE rating_rows AS
        WITH rows AS (
            SELECT p.user_id, p.slot, p.movie_id, u.first_day, u.active_days,
                   u.ushift + m.mshift AS shift, u.row_off + p.slot AS n
            FROM picks p JOIN plan_user u USING (user_id) JOIN plan_movie m USING (movie_id)
        ), drawn AS (
            SELECT *,
                   ml_mix({_stream(seed, "r.day")}, n) / {_TWO_32} AS u,
                   ml_mix({_stream(seed, "r.hour")}, n) >> {category_shift} AS hour_bucket,
                   ml_mix({_stream(seed, "r.second")}, n) % 3600 AS second,
                   ml_mix({_stream(seed, "r.stars")}, n) >> {category_shift} AS star_bucket
            FROM rows
        )
        SELECT n, user_id, slot, movie_id, r.value::TINYINT AS idx,
               {start} + (first_day + floor(active_days * u * u)::BIGINT) * {_SECONDS_PER_DAY}
                   + hb.value * 3600 + second AS ts,
               false AS superseded
        FROM drawn
        JOIN hour_bucket hb ON hb.bucket = drawn.hour_bucket
        JOIN rating_bucket r ON r.grp = drawn.shift AND r.bucket = drawn.star_bucket
    """)


def _duplicate_pairs(con: duckdb.DuckDBPyConnection, spec: GeneratorSpec) -> dict[str, int]:
    """Turn some rows into re-ratings of the user's previous row; returns their counts.

    Pairs are (even slot, odd slot) of one user so they never overlap. The re-rating has
    a different rating and a later timestamp; in about half of the pairs the later one
    comes first in the file, so only ``rated_at`` (not line order) tells which wins.
    """
    eligible = con.execute("SELECT count(*) FROM rating_rows WHERE slot % 2 = 1").fetchone()[0]
    target = max(1, spec.ratings // RATINGS_PER_DUPLICATE_PAIR) if spec.ratings >= 2 else 0
    pairs = min(target, eligible)
    start, end = _epoch_bounds(spec)
    max_delta = max(1, min(180 * _SECONDS_PER_DAY, (end - start) // 2))
    seed = spec.seed
    con.execute(f"""
        CREATE TEMP TABLE dup_fix AS
        WITH chosen AS (
            SELECT n FROM rating_rows WHERE slot % 2 = 1
            ORDER BY ml_mix({_stream(seed, "dup.choose")}, n), n LIMIT {pairs}
        ), p AS (
            SELECT o.n AS n_first, c.n AS n_second, o.movie_id, o.idx, o.ts,
                   1 + ml_mix({_stream(seed, "dup.delta")}, c.n) % {max_delta} AS delta,
                   ml_mix({_stream(seed, "dup.flip")}, c.n) % 2 AS flip,
                   (o.idx + 1 + ml_mix({_stream(seed, "dup.stars")}, c.n) % 9) % 10 AS idx_late
            FROM chosen c JOIN rating_rows o ON o.n = c.n - 1
        ), q AS (SELECT *, least(ts + delta, {end}) AS t_late FROM p)
        SELECT CASE WHEN flip = 0 THEN n_first ELSE n_second END AS n,
               movie_id, idx, t_late - delta AS ts, true AS superseded, flip FROM q
        UNION ALL
        SELECT CASE WHEN flip = 0 THEN n_second ELSE n_first END,
               movie_id, idx_late, t_late, false, flip FROM q
    """)
    con.execute("""UPDATE rating_rows SET movie_id = f.movie_id, idx = f.idx, ts = f.ts,
                   superseded = f.superseded FROM dup_fix f WHERE rating_rows.n = f.n""")
    later_first = con.execute("SELECT count(*) FROM dup_fix WHERE flip = 1 AND NOT superseded").fetchone()[0]
    return {"duplicate_pairs": pairs, "later_rating_first": later_first}


def _write_ratings(path: Path, spec: GeneratorSpec, movies: _Movies) -> _RatingsResult:
    """Generate ratings.dat with DuckDB and return its exact facts."""
    bad = _bad_lines("ratings", spec, spec.ratings, _bad_rating_line)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # a library call prints nothing
        con.execute(_SQL_MACROS)
        quirks = {"duplicate_pairs": 0, "later_rating_first": 0}
        if spec.ratings:
            _load_plan(con, spec, movies)
            _pick_movies(con, spec)
            _rate(con, spec)
            quirks = _duplicate_pairs(con, spec)
        else:
            con.execute(
                "CREATE TEMP TABLE rating_rows (n BIGINT, user_id BIGINT, slot BIGINT,"
                " movie_id BIGINT, idx TINYINT, ts BIGINT, superseded BOOLEAN)"
            )
        con.execute(
            "CREATE TEMP TABLE bad_rows AS SELECT unnest($after::BIGINT[]) AS after, "
            "unnest($line::VARCHAR[]) AS line, unnest(range(len($after::BIGINT[]))) AS j",
            {"after": [b.after for b in bad], "line": [b.text for b in bad]},
        )
        _copy_ratings(con, path)
        return _ratings_facts(con, quirks, _count_kinds(bad))
    finally:
        con.close()


_RATING_TEXT_SQL = "CASE WHEN idx % 2 = 1 THEN ((idx + 1) // 2)::VARCHAR ELSE (idx // 2)::VARCHAR || '.5' END"


def _copy_ratings(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Write valid rows in order ``n`` with each bad line after its valid predecessor."""
    target = str(path).replace("'", "''")
    con.execute(f"""
        COPY (
            SELECT line FROM (
                SELECT n + 1 AS pos, -1 AS sub,
                       concat_ws('::', user_id, movie_id, {_RATING_TEXT_SQL}, ts) AS line
                FROM rating_rows
                UNION ALL
                SELECT after, j, line FROM bad_rows
            ) ORDER BY pos, sub
        ) TO '{target}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')
    """)


def _ratings_facts(con: duckdb.DuckDBPyConnection, quirks: dict[str, int], injected: dict[str, int]) -> _RatingsResult:
    """Exact counts over the valid rating lines; hours only over those a cleanse keeps."""
    users, movies, half = con.execute(
        "SELECT count(DISTINCT user_id), count(DISTINCT movie_id), count(*) FILTER (WHERE idx % 2 = 0) FROM rating_rows"
    ).fetchone()
    hours = dict(
        con.execute(
            "SELECT (ts % 86400) // 3600 AS hour, count(*) FROM rating_rows WHERE NOT superseded GROUP BY hour"
        ).fetchall()
    )
    return _RatingsResult(
        injected=injected,
        quirks={**quirks, "half_star": half},
        duplicate_pairs=quirks["duplicate_pairs"],
        distinct_users=users,
        distinct_movies=movies,
        by_hour=tuple(hours.get(h, 0) for h in range(24)),
    )
