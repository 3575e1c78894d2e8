"""A run's headline series (reward, KL, entropy, output length) read without its other metrics.

The index page shows these four per run. `Store.load_run` reads every metric of a run (50,000
steps x 50 metrics is 2.5 million rows); this reads the run's metric *names* by walking the
metrics table's primary key (run_id, name, step), one seek per name, picks the name that fills
each role with `tviz.catalog.find`, and reads only those names' rows.

The values are those `load_run(...).metrics[name]` holds (`metrics.read_metrics`): a step that is
not a whole number is left out, NaN and infinities are kept as float nan / inf, a name with no
numeric value at all is no metric (the role then goes to the next name the catalog has), and a
step a tviz 0.2.x logger wrote into an upgraded file without `metrics` rows counts through its
0.2.x columns and `extras`. Which steps those are is found cheaply: the `steps` rows whose step
none of the names read holds, then checked against the other names one at a time (a seek per
step and name), and only those rows are read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tviz import catalog
from tviz.store.cells import _text
from tviz.store.data import _NONFINITE, Series
from tviz.store.metrics import legacy_cells

# The roles the index page draws for every run, in the order its metric picker offers them.
HEADLINE_ROLES: tuple[str, ...] = ("reward", "kl", "entropy", "output_length")

# Every distinct metric name of a run, one index seek each: (name as sqlite3 reads it, its
# bytes, its type). TEXT sorts before BLOB, so `>` walks both.
_NAMES = """
WITH RECURSIVE walk(name) AS (
    SELECT (SELECT name FROM metrics WHERE run_id = CAST(?1 AS TEXT) ORDER BY name LIMIT 1)
    UNION ALL
    SELECT (SELECT m.name FROM metrics AS m WHERE m.run_id = CAST(?1 AS TEXT)
            AND m.name > walk.name ORDER BY m.name LIMIT 1)
    FROM walk WHERE walk.name IS NOT NULL
)
SELECT name, CAST(name AS BLOB), typeof(name) FROM walk WHERE name IS NOT NULL
"""
# The name bound as the bytes it is stored as: `CAST(? AS TEXT)` for text (also text that is
# not UTF-8, which Python reads back changed), the bytes themselves for a blob.
_BIND = {"text": "CAST(?2 AS TEXT)", "blob": "?2"}
# A cell `metrics.read_metrics` counts (a value or a text, numeric or not) at a whole-number step.
_COUNTED = "typeof(step) = 'integer' AND (value IS NOT NULL OR text IS NOT NULL)"


@dataclass
class _Name:
    key: Any  # the name as sqlite3 read it (str, or bytes for a blob): what `read_metrics` keys by
    raw: bytes
    kind: str  # 'text' or 'blob'
    rank: int  # its place in the primary key's order
    numeric: dict[int, float] | None = None  # step -> value, once read
    have: set[int] = field(default_factory=set)  # the whole-number steps it holds a cell at


def _bind(name: _Name) -> str:
    return _BIND.get(name.kind, "CAST(?2 AS TEXT)")


def _read_name(conn: sqlite3.Connection, key: str | bytes, name: _Name) -> None:
    """Fill `name.numeric` and `name.have` from its rows (as `read_metrics` reads a cell)."""
    numeric: dict[int, float] = {}
    rows = conn.execute(
        f"SELECT step, value, text FROM metrics WHERE run_id = CAST(?1 AS TEXT)"
        f" AND name = {_bind(name)}",
        (key, name.raw),
    )
    for step, value, text in rows:
        if type(step) is not int:
            continue  # left out of every metric: not a whole number
        if value is not None:
            cell = value
        elif text is None:
            continue  # nothing: `read_metrics` does not count the step
        else:
            cell = _NONFINITE.get(text, text) if isinstance(text, str) else text
        name.have.add(step)
        if isinstance(cell, float):
            numeric[step] = cell
    name.numeric = numeric


def _names(conn: sqlite3.Connection, key: str | bytes) -> list[_Name]:
    rows = conn.execute(_NAMES, (key,)).fetchall()
    return [_Name(name, bytes(raw), kind, i) for i, (name, raw, kind) in enumerate(rows)]


def _legacy_steps(
    conn: sqlite3.Connection, key: str | bytes, names: list[_Name], held: set[int]
) -> list[int]:
    """The run's `steps` rows whose step no metric holds (see the module's docstring): the
    steps `held` (by the names read already) are out at once, the rest checked name by name."""
    rows = conn.execute(
        "SELECT step FROM steps WHERE run_id = CAST(?1 AS TEXT) AND typeof(step) = 'integer'",
        (key,),
    )
    remaining = {step for (step,) in rows} - held
    for name in names:
        if not remaining:
            break
        if name.numeric is not None:
            remaining -= name.have
            continue
        found = conn.execute(
            "SELECT j.value FROM json_each(?3) AS j WHERE EXISTS (SELECT 1 FROM metrics"
            f" WHERE run_id = CAST(?1 AS TEXT) AND name = {_bind(name)} AND step = j.value"
            f" AND {_COUNTED})",
            (key, name.raw, "[" + ",".join(map(str, sorted(remaining))) + "]"),
        )
        remaining -= {step for (step,) in found}
    return sorted(remaining)


def _legacy_values(
    conn: sqlite3.Connection, key: str | bytes, steps: list[int]
) -> dict[str, dict[int, float]]:
    """Name -> step -> value of the 0.2.x columns and `extras` of these steps' rows (numbers
    only, read as `read_metrics` reads them)."""
    numeric = {
        name: {step: v for step, v in by_step.items() if isinstance(v, float)}
        for name, by_step in legacy_cells(conn, key, steps).items()
    }
    return {name: by_step for name, by_step in numeric.items() if by_step}


class _Run:
    """One run's names, the ones read so far, and the 0.2.x values of its legacy steps."""

    def __init__(self, conn: sqlite3.Connection, key: str | bytes) -> None:
        self.conn, self.key = conn, key
        self.names = _names(conn, key)
        self.by_label: dict[str, list[_Name]] = {}
        for name in self.names:
            self.by_label.setdefault(_text(name.key), []).append(name)
        self.legacy: dict[str, dict[int, float]] = {}

    def labels(self) -> set[str]:
        return set(self.by_label) | set(self.legacy)

    def values(self, label: str) -> dict[int, float]:
        """step -> value of the metric `label` as `load_run` gives it ({} if it has none)."""
        # `read_metrics` collects by the name as read (rows in key order, the 0.2.x values last,
        # under `str` names), then turns blob names into text: the metric made last wins.
        by_key: dict[Any, tuple[tuple[int, int], dict[int, float]]] = {}
        for name in self.by_label.get(label, []):
            if name.numeric is None:
                _read_name(self.conn, self.key, name)
            if name.numeric:
                at, values = by_key.get(name.key, ((0, name.rank), {}))
                values.update(name.numeric)
                by_key[name.key] = (at, values)
        if label in self.legacy:
            at, values = by_key.get(label, ((1, 0), {}))
            by_key[label] = (at, {**values, **self.legacy[label]})
        made = sorted(by_key.values(), key=lambda m: m[0])
        return made[-1][1] if made else {}

    def choose(self, role: str) -> tuple[str, dict[int, float]] | None:
        """The metric filling `role` (the catalog's first name the run has numbers for)."""
        pool = self.labels()
        while True:
            found = catalog.find(role, pool)
            if found is None:
                return None
            values = self.values(found[0])
            if values:
                return found[0], values
            pool.discard(found[0])


def headline_series(
    conn: sqlite3.Connection, key: str | bytes, roles: Iterable[str] = HEADLINE_ROLES
) -> dict[str, Series]:
    """Role -> the run's metric that fills it (`Series.name`: the name it was logged with), for
    the `roles` the run has; read inside the caller's transaction."""
    roles = list(roles)
    run = _Run(conn, key)
    for role in roles:  # the names the 0.2.x rows could not change: most runs need no more
        run.choose(role)
    held = {s for n in run.names if n.numeric is not None for s in n.have}
    run.legacy = _legacy_values(conn, key, _legacy_steps(conn, key, run.names, held))
    out: dict[str, Series] = {}
    for role in roles:
        found = run.choose(role)
        if found is not None:
            name, values = found
            steps = sorted(values)
            out[role] = Series(name, steps, [values[s] for s in steps])
    return out


def _rank(role: str, name: str) -> tuple[int, int, str]:
    """Where `name` stands among the catalog's names for `role` (what `find` would prefer)."""
    found = catalog.find(role, [name])
    entry = catalog.ENTRIES.index(found[1]) if found else len(catalog.ENTRIES)
    return entry, len(name), name


def merge_headlines(parts: Sequence[dict[str, Series]]) -> dict[str, Series]:
    """One run's headline series from its files' (in order), as `many.merge_runs` merges
    metrics: each role's name is the one the catalog prefers among the files' (what `find`
    over every file's names gives), its values the union by step, the first file's kept."""
    out: dict[str, Series] = {}
    for role in dict.fromkeys(r for part in parts for r in part):
        found = [part[role] for part in parts if role in part]
        name = min((s.name for s in found), key=lambda n: _rank(role, n))
        at: dict[int, float] = {}
        for series in found:
            if series.name == name:
                for step, value in zip(series.steps, series.values, strict=True):
                    at.setdefault(step, value)
        steps = sorted(at)
        out[role] = Series(name, steps, [at[s] for s in steps])
    return out
