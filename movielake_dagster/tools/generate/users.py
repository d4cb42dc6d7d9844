"""The user master data (JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from movielake_dagster.tools.generate.rng import Rng, stream
from movielake_dagster.tools.generate.spec import GeneratorSpec
from movielake_dagster.tools.generate.vocabulary import (
    FIRST_NAMES,
    INTERNATIONAL_FIRST_NAMES,
    INTERNATIONAL_LAST_NAMES,
    INTERNATIONAL_NAME_ODDS,
    LAST_NAMES,
)


@dataclass(frozen=True)
class _Users:
    """The master-data lines and their valid quirks."""

    lines: list[str]
    quirks: dict[str, int]


def user_line(user_id: object, first_name: str, last_name: str) -> str:
    """One master-data JSON line, keys as in the seed (``firts_name`` sic)."""
    record = {"user_id": user_id, "firts_name": first_name, "last_name": last_name}
    return json.dumps(record, ensure_ascii=False)


def user_name(rng: Rng) -> tuple[str, str]:
    """A (first, last) name pair, now and then with non-ASCII letters."""
    return (_name(rng, FIRST_NAMES, INTERNATIONAL_FIRST_NAMES), _name(rng, LAST_NAMES, INTERNATIONAL_LAST_NAMES))


def _name(rng: Rng, common: Sequence[str], international: Sequence[str]) -> str:
    """Mostly a common name, about one in INTERNATIONAL_NAME_ODDS an international one."""
    names = international if rng.below(INTERNATIONAL_NAME_ODDS) == 0 else common
    return rng.pick(names)


def build_users(spec: GeneratorSpec) -> _Users:
    """One line per user id 1..users, in id order."""
    key = stream(spec.seed, "users.names")
    lines = [user_line(str(u), *user_name(Rng(key, u))) for u in range(1, spec.users + 1)]
    return _Users(lines, {"non_ascii": sum(1 for line in lines if not line.isascii())})
