"""The ratings file, built and written by DuckDB."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from statistics import NormalDist

import duckdb

from movielake_dagster.tools.generate.faults import bad_lines, bad_rating_line, count_kinds
from movielake_dagster.tools.generate.movies import Movies
from movielake_dagster.tools.generate.rng import (
    SQL_MACROS,
    Rng,
    allocate,
    allocate_capped,
    mix,
    stream,
    tilted_weights,
    unit_interval,
)
from movielake_dagster.tools.generate.spec import GeneratorSpec, epoch_bounds
from movielake_dagster.tools.generate.vocabulary import (
    HOUR_WEIGHTS,
    MIN_RATINGS_PER_USER,
    OVERSAMPLING,
    RATING_TILT,
    RATING_WEIGHTS,
    RATINGS_PER_DUPLICATE_PAIR,
    SECONDS_PER_DAY,
    TWO_32,
    USER_SHIFT_WEIGHTS,
    max_ratings_per_user,
)


@dataclass(frozen=True)
class _RatingsResult:
    """Exact facts about the written ratings file."""

    injected: dict[str, int]
    quirks: dict[str, int]
    duplicate_pairs: int
    distinct_users: int
    distinct_movies: int
    by_hour: tuple[int, ...]


def _ratings_per_user(spec: GeneratorSpec) -> list[int]:
    """Ratings per user: at least 20 where possible, log-normally skewed, capped."""
    if spec.ratings >= spec.users:
        minimum = min(MIN_RATINGS_PER_USER, max(1, spec.ratings // (2 * spec.users)))
    else:
        minimum = 0
    cap = max_ratings_per_user(spec.movies)
    key = stream(spec.seed, "users.activity")
    normal = NormalDist(0.0, 1.35)
    weights = [math.exp(normal.inv_cdf(unit_interval(mix(key, u)))) for u in range(spec.users)]
    return allocate_capped(weights, spec.ratings, min(minimum, cap), cap)


def _load_plan(con: duckdb.DuckDBPyConnection, spec: GeneratorSpec, movies: Movies) -> None:
    """Create the small planning tables ``plan_user``, ``plan_movie`` and the lookups."""
    counts = _ratings_per_user(spec)
    draws = [c + math.ceil(OVERSAMPLING * c) + 2 if c else 0 for c in counts]
    user_key = stream(spec.seed, "users.plan")
    user_rngs = [Rng(user_key, u) for u in range(spec.users)]
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
        con, "rating_bucket", {s: tilted_weights(RATING_WEIGHTS, values, RATING_TILT * s) for s in range(-3, 4)}
    )


def _alias_table(weights: Sequence[float]) -> tuple[list[int], list[int]]:
    """Walker's alias table in exact integers, for O(1) weighted draws in SQL.

    Draw a column ``i`` uniformly and a 32-bit ``h``: the result is ``i`` when
    ``h < keep_below[i]``, else ``alias[i]``. Each column holds 2**32 units of weight.
    """
    full = 1 << 32
    units = allocate(weights, len(weights) * full)
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


def _active_window(rng: Rng, days: int) -> tuple[int, int]:
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
        group_sizes = allocate(weights, 1 << _CATEGORY_BITS)
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
                   1 + ((ml_mix({stream(spec.seed, "r.column")}, g) * {spec.movies}) >> 32) AS col,
                   ml_mix({stream(spec.seed, "r.alias")}, g) AS h
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
    start, _end = epoch_bounds(spec)
    category_shift = 32 - _CATEGORY_BITS
    con.execute(f"""
        CREATE TEMP TABLE rating_rows AS
        WITH rows AS (
            SELECT p.user_id, p.slot, p.movie_id, u.first_day, u.active_days,
                   u.ushift + m.mshift AS shift, u.row_off + p.slot AS n
            FROM picks p JOIN plan_user u USING (user_id) JOIN plan_movie m USING (movie_id)
        ), drawn AS (
            SELECT *,
                   ml_mix({stream(seed, "r.day")}, n) / {TWO_32} AS u,
                   ml_mix({stream(seed, "r.hour")}, n) >> {category_shift} AS hour_bucket,
                   ml_mix({stream(seed, "r.second")}, n) % 3600 AS second,
                   ml_mix({stream(seed, "r.stars")}, n) >> {category_shift} AS star_bucket
            FROM rows
        )
        SELECT n, user_id, slot, movie_id, r.value::TINYINT AS idx,
               {start} + (first_day + floor(active_days * u * u)::BIGINT) * {SECONDS_PER_DAY}
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
    start, end = epoch_bounds(spec)
    max_delta = max(1, min(180 * SECONDS_PER_DAY, (end - start) // 2))
    seed = spec.seed
    con.execute(f"""
        CREATE TEMP TABLE dup_fix AS
        WITH chosen AS (
            SELECT n FROM rating_rows WHERE slot % 2 = 1
            ORDER BY ml_mix({stream(seed, "dup.choose")}, n), n LIMIT {pairs}
        ), p AS (
            SELECT o.n AS n_first, c.n AS n_second, o.movie_id, o.idx, o.ts,
                   1 + ml_mix({stream(seed, "dup.delta")}, c.n) % {max_delta} AS delta,
                   ml_mix({stream(seed, "dup.flip")}, c.n) % 2 AS flip,
                   (o.idx + 1 + ml_mix({stream(seed, "dup.stars")}, c.n) % 9) % 10 AS idx_late
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


def write_ratings(path: Path, spec: GeneratorSpec, movies: Movies) -> _RatingsResult:
    """Generate ratings.dat with DuckDB and return its exact facts."""
    bad = bad_lines("ratings", spec, spec.ratings, bad_rating_line)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # a library call prints nothing
        con.execute(SQL_MACROS)
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
        return _ratings_facts(con, quirks, count_kinds(bad))
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
