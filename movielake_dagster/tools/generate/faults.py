"""Deliberately invalid lines, mixed into each file when ``bad_record_rate > 0``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from movielake_dagster.tools.generate.movies import english_title
from movielake_dagster.tools.generate.rng import Rng, stream
from movielake_dagster.tools.generate.spec import GeneratorSpec, epoch_bounds
from movielake_dagster.tools.generate.users import user_line, user_name
from movielake_dagster.tools.generate.vocabulary import BAD_KINDS, GENRE_WEIGHTS, LAST_NAMES


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


def _bad_plan(spec: GeneratorSpec, dataset: str, valid: int) -> list[tuple[int, str, Rng]]:
    """(insert after n valid lines, kind, rng) for each invalid line, spread over the file.

    Kinds go round-robin; each line sits at a hash-chosen place in its own slice of the
    file, so positions are distinct whenever there are fewer bad lines than valid ones.
    """
    count = _bad_count(spec, dataset, valid)
    kinds = BAD_KINDS[dataset]
    key = stream(spec.seed, f"{dataset}.bad")
    gap = max(1, valid // count) if count else 1
    plan = []
    for j in range(count):
        rng = Rng(key, j)
        after = min(valid, j * valid // count + 1 + rng.below(gap))
        plan.append((after, kinds[j % len(kinds)], rng))
    return plan


def bad_lines(
    dataset: str,
    spec: GeneratorSpec,
    valid: int,
    make: Callable[[str, Rng, GeneratorSpec, str], str],
    valid_lines: Sequence[str] = (),
) -> list[_BadLine]:
    """Invalid lines for one file; ``make(kind, rng, spec, previous_valid_line)`` writes one."""
    return [
        _BadLine(after, kind, make(kind, rng, spec, valid_lines[after - 1] if valid_lines else ""))
        for after, kind, rng in _bad_plan(spec, dataset, valid)
    ]


def interleave(valid: Sequence[str], bad: Sequence[_BadLine]) -> list[str]:
    """The valid lines with each bad line placed after ``bad.after`` valid lines."""
    by_position: dict[int, list[str]] = {}
    for line in bad:
        by_position.setdefault(line.after, []).append(line.text)
    out = list(by_position.get(0, []))
    for n, line in enumerate(valid, start=1):
        out.append(line)
        out.extend(by_position.get(n, []))
    return out


def count_kinds(bad: Sequence[_BadLine]) -> dict[str, int]:
    """Count of invalid lines per kind."""
    return dict(Counter(line.kind for line in bad))


def bad_movie_line(kind: str, rng: Rng, spec: GeneratorSpec, _previous: str) -> str:
    """An invalid movies.dat line; ids beyond the valid range so they never clash."""
    movie_id = spec.movies + 1 + rng.below(1000)
    title = f"{english_title(rng)} ({1990 + rng.below(19)})"
    if kind == "non_numeric_id":
        return f"{rng.pick(('tt', 'id-', 'm'))}{movie_id}::{title}::{rng.pick(list(GENRE_WEIGHTS))}"
    if rng.below(2):
        return f"{movie_id}::{title}"  # genres field missing
    return f"{movie_id}|{title}|Drama"  # wrong delimiter: one field


def bad_user_line(kind: str, rng: Rng, _spec: GeneratorSpec, previous: str) -> str:
    """An invalid users line; duplicates repeat the user of the line just before."""
    first, last = user_name(rng)
    if kind == "null_user_id":
        return user_line(None, first, last)
    if kind == "exact_duplicate":
        return previous
    record = json.loads(previous)
    if kind == "conflicting_duplicate":
        other_names = [name for name in LAST_NAMES if name != record["last_name"]]
        return user_line(record["user_id"], record["firts_name"], rng.pick(other_names))
    truncated = previous[: len(previous) // 2]
    return rng.pick((truncated, f"{{'user_id': '{record['user_id']}', 'firts_name': '{first}'}}"))


def bad_rating_line(kind: str, rng: Rng, spec: GeneratorSpec, _previous: str) -> str:
    """An invalid ratings.dat line (only these ever reference unknown users or movies)."""
    user = 1 + rng.below(spec.users)
    movie = 1 + rng.below(spec.movies)
    stars = rng.pick(("1", "2", "3", "3.5", "4", "4.5", "5"))
    start, end = epoch_bounds(spec)
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
