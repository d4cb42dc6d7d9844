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

from pathlib import Path

from movielake_dagster.tools.generate.faults import (
    bad_lines,
    bad_movie_line,
    bad_user_line,
    count_kinds,
    interleave,
)
from movielake_dagster.tools.generate.movies import build_movies
from movielake_dagster.tools.generate.ratings import write_ratings
from movielake_dagster.tools.generate.rng import write_text
from movielake_dagster.tools.generate.spec import FILE_NAMES, SAMPLE_SPEC, GenerationReport, GeneratorSpec
from movielake_dagster.tools.generate.users import build_users


def generate_dataset(out_dir: Path, spec: GeneratorSpec | None = None) -> GenerationReport:
    """Write movies.dat, ratings.dat and users_masterdata.json for ``spec`` (default: ``GeneratorSpec()``)
    into ``out_dir``."""
    spec = spec or GeneratorSpec()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: out_dir / file_name for name, file_name in FILE_NAMES.items()}

    movies = build_movies(spec)
    users = build_users(spec)
    movie_bad = bad_lines("movies", spec, len(movies.lines), bad_movie_line, movies.lines)
    user_bad = bad_lines("users", spec, len(users.lines), bad_user_line, users.lines)
    write_text(files["movies"], interleave(movies.lines, movie_bad))
    write_text(files["users"], interleave(users.lines, user_bad))
    ratings = write_ratings(files["ratings"], spec, movies)

    injected = {
        "movies": count_kinds(movie_bad),
        "ratings": ratings.injected,
        "users": count_kinds(user_bad),
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


__all__ = ["FILE_NAMES", "SAMPLE_SPEC", "GenerationReport", "GeneratorSpec", "generate_dataset"]
