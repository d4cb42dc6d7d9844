"""Deterministic pseudo-randomness, the same arithmetic in Python and in DuckDB SQL, and the
allocation of integer totals by weights."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from pathlib import Path

from movielake_dagster.tools.generate.vocabulary import HASH_MULTIPLIER, MASK32, TWO_32


def _h32(x: int) -> int:
    """A bijective 32-bit integer hash (xor-shift-multiply), the SQL macro ``ml_h32``."""
    x &= MASK32
    x = ((x ^ (x >> 16)) * HASH_MULTIPLIER) & MASK32
    x = ((x ^ (x >> 16)) * HASH_MULTIPLIER) & MASK32
    return x ^ (x >> 16)


def mix(key: int, index: int) -> int:
    """The ``index``-th value of the stream ``key``: the SQL macro ``ml_mix``."""
    return _h32(_h32(index) ^ key)


def stream(seed: int, purpose: str) -> int:
    """The key of the random stream for one ``purpose`` under ``seed`` (modulo 2**32)."""
    return _h32(_h32(seed) ^ zlib.crc32(purpose.encode("utf-8")))


def unit_interval(value: int) -> float:
    """A 32-bit hash value as a float in (0, 1)."""
    return (value + 0.5) / TWO_32


class Rng:
    """Successive draws for one entity (a movie, a user, a bad line) of one stream."""

    def __init__(self, key: int, index: int) -> None:
        self._state = mix(key, index)
        self._counter = 0

    def next(self) -> int:
        """The next 32-bit value."""
        self._counter += 1
        return mix(self._state, self._counter)

    def unit(self) -> float:
        """The next value as a float in (0, 1)."""
        return unit_interval(self.next())

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


SQL_MACROS = f"""
CREATE OR REPLACE TEMP MACRO ml_fold(x) AS xor(x, x >> 16);
CREATE OR REPLACE TEMP MACRO ml_h32(x) AS ml_fold(
    (ml_fold((ml_fold((x)::BIGINT & {MASK32}) * {HASH_MULTIPLIER}) & {MASK32})
     * {HASH_MULTIPLIER}) & {MASK32});
CREATE OR REPLACE TEMP MACRO ml_mix(key, i) AS ml_h32(xor(ml_h32(i), key));
"""


def allocate(weights: Sequence[float], total: int, minimum: int = 0) -> list[int]:
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


def allocate_capped(weights: Sequence[float], total: int, minimum: int, cap: int) -> list[int]:
    """Like :func:`allocate` but no part exceeds ``cap`` (excess goes to the others)."""
    parts = [0] * len(weights)
    fixed: set[int] = set()
    while True:
        free = [i for i in range(len(weights)) if i not in fixed]
        left = total - cap * len(fixed)
        shares = allocate([weights[i] for i in free], left, minimum)
        over = [i for i, share in zip(free, shares) if share > cap]
        if not over:
            for i, share in zip(free, shares):
                parts[i] = share
            for i in fixed:
                parts[i] = cap
            return parts
        fixed.update(over)


def tilted_weights(weights: Sequence[float], values: Sequence[float], tilt: float) -> list[float]:
    """``weights`` exponentially tilted towards high (tilt > 0) or low ``values``."""
    tilted = [w * math.exp(tilt * v) for w, v in zip(weights, values)]
    total = math.fsum(tilted)
    return [t / total for t in tilted]


def write_text(path: Path, lines: Sequence[str]) -> None:
    """Write ``lines`` as UTF-8 with ``\\n`` endings (one line each, newline at the end)."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(line + "\n" for line in lines)
