"""An independent, plain-Python reading of the SPEC's cleanse rules, used as the tests' oracle.

It shares no code with the lake: if a Spark transform drifts from the SPEC, the counts and values
computed here stop matching.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

YEAR_AT_END = re.compile(r"^(.*)\((\d{4})\)((?:\s*\([^()]*\))*)\s*$")


def _lines(path: Path) -> list[str | None]:
    """Decoded lines; None for a line that is not valid UTF-8 in a UTF-8 file."""
    raw = path.read_bytes().split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    decoded = []
    for line in raw:
        line = line.rstrip(b"\r")
        try:
            decoded.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            decoded.append(None)
    invalid = sum(1 for d in decoded if d is None)
    multibyte = sum(1 for d in decoded if d is not None and not d.isascii())
    if invalid > multibyte:  # a Latin-1 file
        return [line.rstrip(b"\r").decode("latin-1") for line in raw]
    return decoded


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if re.fullmatch(r"[+-]?\d+", text) and abs(int(text)) < 2**31 else None


@dataclass
class Cleansed:
    rows: dict = field(default_factory=dict)
    rejected: dict[int, str] = field(default_factory=dict)  # line number -> reason


def movies(path: Path, max_year: int = 2031) -> Cleansed:
    out = Cleansed()
    for number, line in enumerate(_lines(path), start=1):
        parts = None if line is None else line.split("::")
        if line is None:
            out.rejected[number] = "encoding"
        elif len(parts) != 3:
            out.rejected[number] = "malformed"
        elif parts[0].strip() == "":
            out.rejected[number] = "null_key"
        elif _int(parts[0]) is None:
            out.rejected[number] = "bad_type"
        else:
            raw_title = parts[1].strip()
            match = YEAR_AT_END.match(raw_title)
            year = int(match.group(2)) if match else None
            title = re.sub(r"\s+", " ", (match.group(1) + match.group(3)) if match else raw_title).strip()
            genres = [] if parts[2].strip() in ("", "(no genres listed)") else parts[2].strip().split("|")
            movie_id = _int(parts[0])
            if title == "":
                out.rejected[number] = "malformed"
            elif year is not None and not 1870 <= year <= max_year:
                out.rejected[number] = "out_of_range"
            elif movie_id in out.rows:
                out.rejected[number] = "duplicate"
            else:
                out.rows[movie_id] = {"title": title, "year": year, "genres": genres}
    return out


def users(path: Path) -> Cleansed:
    out = Cleansed()
    for number, line in enumerate(_lines(path), start=1):
        try:
            record = json.loads(line) if line is not None else None
        except ValueError:
            record = None
        if line is None:
            out.rejected[number] = "encoding"
            continue
        if not isinstance(record, dict):
            out.rejected[number] = "malformed"
            continue
        raw_id = record.get("user_id")
        raw_id = "" if raw_id is None else str(raw_id).strip()
        first = record.get("firts_name", record.get("first_name"))
        names = (
            first.strip() if isinstance(first, str) else first,
            record.get("last_name").strip() if isinstance(record.get("last_name"), str) else None,
        )
        if raw_id == "":
            out.rejected[number] = "null_key"
        elif _int(raw_id) is None:
            out.rejected[number] = "bad_type"
        elif _int(raw_id) in out.rows:
            same = out.rows[_int(raw_id)] == names
            out.rejected[number] = "duplicate" if same else "conflicting_duplicate"
        else:
            out.rows[_int(raw_id)] = names
    return out


def ratings(path: Path, known_users, known_movies, now_epoch: int) -> Cleansed:
    out = Cleansed()
    best: dict[tuple[int, int], tuple[int, int]] = {}  # (user, movie) -> (epoch, line)
    values: dict[int, tuple] = {}
    for number, line in enumerate(_lines(path), start=1):
        parts = None if line is None else line.split("::")
        if line is None:
            out.rejected[number] = "encoding"
            continue
        if len(parts) != 4:
            out.rejected[number] = "malformed"
            continue
        user, movie = _int(parts[0]), _int(parts[1])
        try:
            rating = float(parts[2])
        except ValueError:
            rating = None
        epoch = _int(parts[3]) if re.fullmatch(r"\s*\d+\s*", parts[3]) else None
        if parts[0].strip() == "" or parts[1].strip() == "":
            out.rejected[number] = "null_key"
        elif user is None or movie is None or rating is None or epoch is None:
            out.rejected[number] = "bad_type"
        elif not (0.5 <= rating <= 5.0 and rating * 2 == int(rating * 2)) or not 0 <= epoch <= now_epoch:
            out.rejected[number] = "out_of_range"
        elif user not in known_users:
            out.rejected[number] = "unknown_user"
        elif movie not in known_movies:
            out.rejected[number] = "unknown_movie"
        else:
            values[number] = (user, movie, rating, epoch)
            key = (user, movie)
            if key in best:
                loser = min(best[key], (epoch, number))
                out.rejected[loser[1]] = "duplicate"
                best[key] = max(best[key], (epoch, number))
            else:
                best[key] = (epoch, number)
    out.rows = {key: values[number] for key, (_, number) in best.items()}
    return out
