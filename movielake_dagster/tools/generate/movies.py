"""The movies file: titles with their valid quirks, genres, popularity."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from movielake_dagster.tools.generate.rng import Rng, mix, stream
from movielake_dagster.tools.generate.spec import GeneratorSpec
from movielake_dagster.tools.generate.vocabulary import (
    ADJECTIVES,
    CHARACTERS,
    FIRST_YEAR,
    FOREIGN_LANGUAGES,
    GENRE_COUNT_WEIGHTS,
    GENRE_WEIGHTS,
    LAST_YEAR,
    MARKERS,
    MOVIE_QUIRKS,
    MOVIE_SHIFT_WEIGHTS,
    NO_GENRES,
    NOUNS,
    PLACES,
    POPULARITY_OFFSET,
    POPULARITY_TAIL,
    SEQUEL_SUFFIXES,
)


@dataclass(frozen=True)
class Movies:
    """The movie lines plus what the ratings need to know about each movie."""

    lines: list[str]
    quirks: dict[str, int]
    popularity: list[float]  # per movie (index = movie_id - 1), relative
    rank: list[int]  # per movie: popularity rank, 0 = most popular
    shift: list[int]  # per movie: rating shift -2..2


def build_movies(spec: GeneratorSpec) -> Movies:
    """Movie lines with their quirks, popularity weights and rating shifts."""
    quirk_of = _assign_quirks(spec.movies, stream(spec.seed, "movies.quirks"))
    key = stream(spec.seed, "movies")
    lines = []
    for index in range(spec.movies):
        rng = Rng(key, index)
        quirk = quirk_of.get(index, "")
        title = _movie_title(rng, quirk)
        genres = NO_GENRES if quirk == "no_genres" else "|".join(_genres(rng))
        lines.append(f"{index + 1}::{title}::{genres}")
    assigned = Counter(quirk_of.values())
    quirks = {kind: assigned[kind] for kind in MOVIE_QUIRKS}
    quirks["non_ascii"] = sum(1 for line in lines if not line.isascii())
    ranks = _popularity_ranks(spec)
    return Movies(lines, quirks, _popularity(ranks), ranks, _movie_shifts(spec))


def _assign_quirks(movies: int, key: int) -> dict[int, str]:
    """Which movie index gets which valid quirk: exact counts, hash-chosen movies."""
    order = sorted(range(movies), key=lambda i: (mix(key, i), i))
    assigned: dict[int, str] = {}
    position = 0
    for kind, (share, at_least) in MOVIE_QUIRKS.items():
        count = min(max(at_least, round(share * movies)), movies - position)
        for index in order[position : position + count]:
            assigned[index] = kind
        position += count
    return assigned


def _movie_title(rng: Rng, quirk: str) -> str:
    """A plausible raw MovieLens title, shaped by ``quirk``."""
    year = LAST_YEAR - math.floor((LAST_YEAR - FIRST_YEAR + 1) * rng.unit() ** 2.2)
    if quirk == "foreign_title":
        return f"{_foreign_title(rng)} ({year})"
    english = english_title(rng)
    if quirk == "alternate_title":
        alternate = f"a.k.a. {english_title(rng)}" if rng.below(5) == 0 else _foreign_title(rng)
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


def english_title(rng: Rng) -> str:
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


def _foreign_title(rng: Rng) -> str:
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


def _genres(rng: Rng) -> list[str]:
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
    key = stream(spec.seed, "movies.popularity")
    order = sorted(range(spec.movies), key=lambda i: (mix(key, i), i))
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
    key = stream(spec.seed, "movies.shift")
    return [Rng(key, i).weighted(MOVIE_SHIFT_WEIGHTS) - 2 for i in range(spec.movies)]
