"""Vocabulary and distributions (weights are relative; shapes follow MovieLens 10M)."""

from __future__ import annotations

import math
from dataclasses import dataclass

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

MASK32 = 0xFFFFFFFF
HASH_MULTIPLIER = 0x45D9F3B
TWO_32 = 4294967296.0
SECONDS_PER_DAY = 86_400


def max_ratings_per_user(movies: int) -> int:
    """The most ratings one user may have: a share of all movies, at least one."""
    return max(1, math.ceil(MAX_USER_SHARE_OF_MOVIES * movies))
