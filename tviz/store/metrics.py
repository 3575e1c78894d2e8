"""A run's metrics: every series and text value, read by name, and read again only where
they changed.

`tviz watch` builds a run's page again after each commit; a run of 10,000 steps x 40 metrics
has 400,000 values, and reading them all again is most of a rebuild. So each name's rows have
a fingerprint, made in SQL (count, last step, sums of the values, of the values times their
steps, and of the texts' lengths): a name whose fingerprint is the one read before is not read
again, and one that only gained steps past the last one read is read from there (its
fingerprint must then add up). Anything else (a value rewritten, a step forgotten) reads the
name whole.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from tviz.names import LEGACY_COLUMNS
from tviz.store.cells import _json_dict, _text
from tviz.store.data import _NONFINITE, Series

# A name's fingerprint: rows, the last step (text or a fraction there: read whole), sums of
# values and of values x steps, texts and their lengths. Plain aggregates: ~60 ms for 400,000
# values, where a fresh read of them takes ~300 ms.
_FINGERPRINTS = """
SELECT name, count(*), max(step), total(value), total(value * step), count(text),
       total(length(text))
FROM metrics WHERE run_id = CAST(? AS TEXT) GROUP BY name
"""


@dataclass
class _Name:
    """One name's values as read: what the page shows, and what they were read as."""

    fingerprint: tuple
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    dropped: int = 0  # values at a step that is not a whole number
    last: int | None = None  # the last whole step read


@dataclass
class MetricsCache:
    """A run's metrics as read last time (`read_metrics`), kept by whoever reads it again."""

    names: dict[Any, _Name] = field(default_factory=dict)


def read_metrics(
    conn: sqlite3.Connection, key: str | bytes, cache: MetricsCache | None = None
) -> tuple[dict[str, Series], dict[str, list[tuple[int, str]]], int]:
    """The run's metrics by name: numeric series and text values, and how many values were
    left out for a step that is not a whole number. With `cache` (the same run's, from an
    earlier call), only what changed since is read.

    Rows are read one name at a time, in the table's own order, straight into each series'
    lists; metrics logged at the same steps share one list of steps. So a run of 50,000
    steps x 50 metrics holds its 2.5M values (about 80 MB), never its rows."""
    cache = cache if cache is not None else MetricsCache()
    found = {row[0]: tuple(row[1:]) for row in conn.execute(_FINGERPRINTS, (key,))}
    for name in set(cache.names) - set(found):
        del cache.names[name]
    for name, fingerprint in found.items():
        old = cache.names.get(name)
        if old is not None and old.fingerprint == fingerprint:
            continue
        cache.names[name] = _read_name(conn, key, name, fingerprint, old)
    numeric: dict[Any, tuple[list[int], list[float]]] = {}
    texts: dict[Any, dict[int, str]] = {}
    have: set[int] = set()  # steps that have a value
    shared: list[int] | None = None
    for name in sorted(cache.names, key=lambda n: (type(n) is not str, n)):
        read = cache.names[name]
        if read.texts:
            texts[name] = dict(read.texts)
            have.update(read.texts)
        if not read.steps:
            continue
        if read.steps == shared:  # the same steps as the metric before: one list for both
            numeric[name] = (shared, list(read.values))
        else:
            shared = list(read.steps)
            numeric[name] = (shared, list(read.values))
            have.update(shared)
    dropped = sum(read.dropped for read in cache.names.values())
    legacy = _legacy_metrics(conn, key, have)
    for name, by_step in legacy.items():
        added = [(step, cell) for step, cell in by_step.items() if isinstance(cell, float)]
        for step, cell in by_step.items():
            if not isinstance(cell, float):
                texts.setdefault(name, {})[step] = cell
        if added:
            old_steps, old_values = numeric.get(name, ([], []))
            merged = sorted([*zip(old_steps, old_values, strict=True), *added])
            numeric[name] = ([s for s, _ in merged], [v for _, v in merged])
    if any(type(name) is not str for name in (*numeric, *texts)):  # a blob for a name
        numeric = {_text(n): v for n, v in numeric.items()}
        texts = {_text(n): v for n, v in texts.items()}
    series = {name: Series(name, *numeric[name]) for name in sorted(numeric)}
    text_metrics = {name: sorted(by_step.items()) for name, by_step in sorted(texts.items())}
    return series, text_metrics, dropped


def _read_name(
    conn: sqlite3.Connection, key: str | bytes, name: Any, fingerprint: tuple, old: _Name | None
) -> _Name:
    """`name`'s values: what `old` had plus the steps past its last, if that adds up to the
    fingerprint; else every row of the name."""
    if old is not None and type(fingerprint[1]) is int and type(old.fingerprint[1]) is int:
        grown = _Name(fingerprint, old.steps, old.values, old.texts, old.dropped, old.last)
        tail = conn.execute(
            "SELECT step, value, text FROM metrics WHERE run_id = CAST(? AS TEXT) AND name = ?"
            " AND step > ? ORDER BY step",
            (key, name, old.last),
        ).fetchall()
        if _adds_up(old.fingerprint, tail, fingerprint):
            _add(grown, tail)
            return grown
    read = _Name(fingerprint)
    rows = conn.execute(
        "SELECT step, value, text FROM metrics WHERE run_id = CAST(? AS TEXT) AND name = ?"
        " ORDER BY step",
        (key, name),
    )
    _add(read, rows)
    return read


def _add(read: _Name, rows: Any) -> None:
    """Rows (step, value, text) of one name, in step order, into `read`."""
    steps, values, texts = read.steps, read.values, read.texts
    for step, value, text in rows:
        cell = value
        if cell is None:
            cell = _NONFINITE.get(text, text) if isinstance(text, str) else text
        if type(step) is int:
            read.last = step
        if cell is None:
            continue
        if type(step) is not int:  # text or a fraction: no page can place it
            read.dropped += 1
        elif type(cell) is float:
            steps.append(step)
            values.append(cell)
        else:  # text, or bytes in the file
            texts[step] = cell if isinstance(cell, str) else _text(cell)


def _adds_up(before: tuple, tail: list[tuple], now: tuple) -> bool:
    """Whether the rows before plus `tail` make the fingerprint `now` (nothing else changed)."""
    count, last, total, weighted, n_text, text_len = before
    values = [v for _, v, _ in tail if v is not None]
    texts = [t for _, _, t in tail if t is not None]
    ints = (
        count + len(tail),
        max([last, *(s for s, _, _ in tail)]) if tail else last,
        n_text + len(texts),
        text_len + sum(len(t) if isinstance(t, (str, bytes)) else len(str(t)) for t in texts),
    )
    if ints != (now[0], now[1], now[4], now[5]):
        return False
    sums = (total + sum(values), weighted + sum(s * v for s, v, _ in tail if v is not None))
    scale = 1e-9 * (abs(now[2]) + abs(now[3]) + now[0] + 1.0)
    return all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=scale)
        for a, b in zip(sums, (now[2], now[3]), strict=True)
    )


def _legacy_metrics(
    conn: sqlite3.Connection, key: str | bytes, have: set[int]
) -> dict[str, dict[int, float | str]]:
    """Values of steps a tviz 0.2.x logger wrote into this file after its upgrade, which
    `metrics` does not hold (no value at that step in `have`)."""
    steps = conn.execute(  # the run's index alone: a run's steps rows are its metrics again
        "SELECT step FROM steps WHERE run_id = CAST(? AS TEXT) AND typeof(step) = 'integer'",
        (key,),
    )
    return legacy_cells(conn, key, [step for (step,) in steps if step not in have])


def legacy_cells(
    conn: sqlite3.Connection, key: str | bytes, steps: list[int]
) -> dict[str, dict[int, float | str]]:
    """Name -> step -> value of these steps' 0.2.x columns and `extras`: where a 0.2.x logger
    kept them, under the names the migration gives them (a number, or text)."""
    out: dict[str, dict[int, float | str]] = {}
    if not steps:
        return out
    rows = conn.execute(
        f"SELECT step, extras, {', '.join(LEGACY_COLUMNS)} FROM steps"
        " WHERE run_id = CAST(?1 AS TEXT) AND typeof(step) = 'integer'"
        " AND step IN (SELECT value FROM json_each(?2))",
        (key, "[" + ",".join(map(str, steps)) + "]"),
    )
    for step, extras, *values in rows:
        for column, value in zip(LEGACY_COLUMNS, values, strict=True):
            if isinstance(value, (int, float)):
                out.setdefault(column, {})[step] = float(value)
        for name, value in _json_dict(extras).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    out.setdefault(name, {})[step] = float(value)
                except OverflowError:  # a JSON integer past a double's range
                    out.setdefault(name, {})[step] = str(value)
            elif isinstance(value, str):
                out.setdefault(name, {})[step] = value
    return out
