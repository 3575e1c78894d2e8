"""The read side: runs, their config, metric series and rollouts, as plain dataclasses.

The only module that reads SQL. Everything one page needs is read inside one transaction,
so a page never mixes two moments of a run that is still being written.

Nothing in the file is trusted: another program may have written any type into any column
(SQLite lets it), text that is not UTF-8, JSON nested thousands deep, times in nanoseconds.
What the dataclasses below hold is what they say: a time is None or Unix seconds a page can
show, text is `str` (bad bytes decoded with U+FFFD), a step is an int (rows whose step is not
are left out, and `RunData.notices` says so). The checks are made in SQL or once per run, so
reading a big run costs what it did.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tviz import schema
from tviz.names import LEGACY_COLUMNS, REWARD_METRICS, run_page, run_slug

# A run with no end and no data for this long is shown as quiet rather than running.
QUIET_AFTER_S = 300.0

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# Unix seconds a page can show: from 1970 to the end of year 9999. Anything else in a time
# column (nanoseconds, 1e20, infinity, a year-0 date, text) is not a time: shown as unknown.
MAX_TIME = 253_402_300_800.0
# Config levels shown; deeper ones become a short note (no real config comes near it, and the
# page draws the config as a nested tree).
MAX_CONFIG_DEPTH = 32

T = TypeVar("T")


class StoreError(Exception):
    """The database cannot be read; the message is one line for a person."""


class RunNotFound(StoreError):
    """`load_run` was asked for a run the file does not hold (any more)."""


@dataclass(frozen=True)
class RunSummary:
    id: str
    name: str
    type: str
    modality: str
    status: str  # "running", "finished" or "crashed", as the writer left it
    started_at: float | None  # Unix seconds
    ended_at: float | None
    last_data_at: float | None
    num_steps: int
    last_step: int | None
    latest_reward: float | None
    best_reward: float | None
    num_rollouts: int
    num_trajectories: int
    num_tokens: int  # sampled (action) tokens, summed over steps
    model: str | None
    tviz_version: str | None

    @property
    def slug(self) -> str:
        return run_slug(self.name, self.id)

    @property
    def page(self) -> str:
        """The run's page, relative to the site's folder (and so to the index)."""
        return run_page(self.name, self.id)

    @property
    def duration_s(self) -> float | None:
        end = self.ended_at or self.last_data_at
        if self.started_at is None or end is None:
            return None
        return max(0.0, end - self.started_at)

    def is_quiet(self, now: float | None = None) -> bool:
        """Still marked running, but nothing arrived for QUIET_AFTER_S."""
        if self.status != "running" or self.last_data_at is None:
            return False
        return (now if now is not None else time.time()) - self.last_data_at > QUIET_AFTER_S


@dataclass(frozen=True)
class Series:
    """One metric over steps. Non-finite values are kept as float nan / inf."""

    name: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class Trajectory:
    idx: int
    reward: float
    output_text: str | None = None
    output_tokens: list[int] | None = None
    logprobs: list[float | None] | None = None
    step_rewards: list[float] | None = None
    turns: list[dict[str, Any]] | None = None
    pred_lat: float | None = None
    pred_lon: float | None = None
    distance_km: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rollout:
    """One prompt's group of sampled trajectories at one step."""

    id: int
    step: int
    group_idx: int
    prompt_text: str | None
    trajectories: list[Trajectory]
    mean_reward: float | None = None
    best_reward: float | None = None
    image_path: str | None = None
    gt_lat: float | None = None
    gt_lon: float | None = None
    city: str | None = None
    country: str | None = None
    prompt_tokens: list[int] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LongText:
    key: str
    text: str
    ts: float | None


@dataclass(frozen=True)
class RunData:
    """Everything about one run, read at one moment."""

    summary: RunSummary
    config: dict[str, Any]
    metrics: dict[str, Series]  # numeric metrics by the name they were logged with
    text_metrics: dict[str, list[tuple[int, str]]]  # non-numeric ones: (step, text)
    summaries: dict[str, float | str | None]  # values logged without a step
    rollouts: list[Rollout]  # ordered by step, then group
    long_texts: list[LongText]
    schema_version: int
    db_name: str
    # What of the run the file holds in a form no page can show, one sentence each: rows
    # whose step is not a whole number, left out.
    notices: list[str] = field(default_factory=list)

    def reward_series(self) -> Series | None:
        """The run's main reward metric, by the names tinker-cookbook and 0.2.x use."""
        for name in REWARD_METRICS:
            if name in self.metrics:
                return self.metrics[name]
        return None


class Store:
    """Read a tviz database. Opening it upgrades a 0.2.x file in place (or, if the file is
    read-only, an in-memory copy of it)."""

    def __init__(
        self, path: str | Path, *, timeout: float = schema.BUSY_TIMEOUT_S, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise StoreError(f"no database at {self.path}")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a database file")
        if self.path.stat().st_size == 0:
            raise StoreError(f"{self.path} is empty: no tviz runs logged there yet")
        self.conn = self._open_read_only(timeout) if read_only else self._open(timeout)
        self._depth = 0
        # Run ids with U+FFFD in them (ids that are not UTF-8 in the file read so): the id a
        # summary shows -> the bytes stored.
        self._raw_ids: dict[str, bytes] = {}

    def _open(self, timeout: float) -> sqlite3.Connection:
        try:
            return schema.connect(self.path, timeout=timeout, create=False)
        except schema.SchemaError as exc:
            message = str(exc)
        # A file this process cannot write (a read-only mount, or a 0444 file in a 0555 folder
        # for a user): SQLite cannot make its -shm there, which it says as "read-only" or
        # "unable to open". Read it without writing anything.
        if not any(why in message for why in ("read-only", "readonly", "unable to open")):
            raise StoreError(message)
        try:
            return self._open_read_only(timeout)
        except StoreError as exc:
            if "-wal" in str(exc):
                raise
            raise StoreError(message) from None

    def _open_read_only(self, timeout: float) -> sqlite3.Connection:
        """Never write the file; an old schema is upgraded in an in-memory copy."""
        # A URI, so the path is quoted: '#', '?' or '%' in a folder's name would otherwise
        # name another file (and `?` drop mode=ro, creating it).
        uri = self.path.absolute().as_uri()
        try:
            try:
                conn = self._connect(f"{uri}?mode=ro", timeout)
            except sqlite3.OperationalError:
                # A WAL file on read-only media: without a -shm file (which cannot be made
                # there) only an immutable open reads it, and that ignores the -wal.
                wal = Path(f"{self.path}-wal")
                if wal.exists() and wal.stat().st_size > 0:
                    raise StoreError(
                        f"{self.path} is read-only and its last changes are in {wal.name}, which"
                        " SQLite cannot read without writing next to it: copy the database and"
                        " its -wal file to a writable folder"
                    ) from None
                conn = self._connect(f"{uri}?mode=ro&immutable=1", timeout)
            version = schema.schema_version(conn)
            if version == schema.SCHEMA_VERSION:
                return conn
            mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            conn.backup(mem)
            conn.close()
            schema.migrate(mem)
            return mem
        except sqlite3.Error as exc:
            raise StoreError(schema.describe_error(self.path, exc)) from None
        except schema.SchemaError as exc:
            raise StoreError(str(exc)) from None

    @staticmethod
    def _connect(uri: str, timeout: float) -> sqlite3.Connection:
        """Open `uri` read-only and read from it (opening alone reads nothing)."""
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same moment. Nests."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        try:
            self.conn.execute("BEGIN")
            self._depth = 1
            try:
                yield self.conn
            finally:
                self._depth = 0
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    def _read(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """`read(conn)` in a snapshot. Text that is not UTF-8 (written by another program)
        makes sqlite3 fail the whole query: then it is read again, in the same transaction,
        with bad bytes decoded as U+FFFD, and so is everything after it on this connection
        (decoding in Python costs a little; good files never pay for it)."""
        with self.snapshot() as conn:
            try:
                return read(conn)
            except sqlite3.OperationalError as exc:
                if "decode" not in str(exc):  # "Could not decode to UTF-8 column ..."
                    raise
            conn.text_factory = _lenient_text
            return read(conn)

    def _key(self, run_id: str) -> str | bytes:
        """What to bind for `run_id = CAST(? AS TEXT)`: the id, or the bytes it was read from
        when they may not be UTF-8."""
        if "\ufffd" in run_id and run_id not in self._raw_ids:
            self.list_runs()  # learns the stored bytes of such ids
        return self._raw_ids.get(run_id, run_id)

    def _summaries(self, conn: sqlite3.Connection, run_id: str | None) -> list[RunSummary]:
        summaries, raw_ids = _summaries(conn, None if run_id is None else self._key(run_id))
        self._raw_ids.update(raw_ids)
        return summaries

    # -- queries -------------------------------------------------------------------------------

    def list_runs(self) -> list[RunSummary]:
        """All runs, newest first."""
        return self._read(lambda conn: self._summaries(conn, None))

    def find_run(self, name_or_id: str) -> RunSummary:
        """A run by exact id, else by exact name (the newest of that name), else by a prefix
        of its id that only it has."""
        if not name_or_id:
            raise StoreError("an empty run name or id matches nothing")
        runs = self.list_runs()
        for pick in (
            [r for r in runs if r.id == name_or_id],
            [r for r in runs if r.name == name_or_id],
        ):
            if pick:
                return pick[0]
        prefixed = [r for r in runs if r.id.startswith(name_or_id)]
        if len(prefixed) == 1:
            return prefixed[0]
        if prefixed:
            ids = ", ".join(r.id for r in prefixed[:5])
            raise StoreError(f"{name_or_id!r} is the start of several run ids ({ids}): say more")
        raise StoreError(f"no run named or with id {name_or_id!r} in {self.path}")

    def tokens_by_day(self) -> dict[str, int]:
        """Sampled tokens per UTC day ('YYYY-MM-DD'), over all runs, by each step's own time
        (steps without a time a page can show are left out)."""
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT date(ts, 'unixepoch') AS day, total(total_ac_tokens) FROM steps"
                f" WHERE {_NUMBER.format('total_ac_tokens')} AND {_TIME.format('ts')}"
                " GROUP BY day ORDER BY day"
            )
            return {day: _count(total) for day, total in rows if day is not None}

    def data_version(self) -> int:
        """Changes whenever another connection commits to the file (5 µs; see SQLite's
        PRAGMA data_version): the cheap check before `versions()`."""
        try:
            return self.conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    def versions(self) -> dict[str, tuple]:
        """A cheap fingerprint per run that changes whenever the run gains data."""

        def read(conn: sqlite3.Connection) -> list[tuple]:
            return conn.execute(
                "SELECT CAST(runs.id AS TEXT), runs.revision, runs.last_ts, runs.status,"
                " runs.config, runs.name,"
                " (SELECT max(id) FROM rollouts WHERE run_id = runs.id),"
                " (SELECT max(id) FROM steps WHERE run_id = runs.id) FROM runs"
                " WHERE runs.id IS NOT NULL"
            ).fetchall()

        return {r[0]: tuple(r[1:]) for r in self._read(read)}

    def rollout_index(self, run_id: str) -> dict[int, tuple[int, int]]:
        """step -> (number of rollout groups, highest rollout id): changes when a step does."""
        key = self._key(run_id)
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT step, count(*), max(id) FROM rollouts"
                " WHERE run_id = CAST(? AS TEXT) AND typeof(step) = 'integer' GROUP BY step",
                (key,),
            )
            return {step: (count, max_id) for step, count, max_id in rows}

    def load_run(self, run_id: str, *, rollout_steps: Iterable[int] | None = None) -> RunData:
        """One run's config, metrics and rollouts, read in one transaction.

        `rollout_steps` limits the rollouts read to those steps (a renderer that cached the
        others); None reads them all.
        """
        key = self._key(run_id)
        steps = None if rollout_steps is None else sorted({int(s) for s in rollout_steps})

        def read(conn: sqlite3.Connection) -> RunData:
            found = self._summaries(conn, run_id)
            if not found:
                raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
            config = conn.execute("SELECT config FROM runs WHERE id = CAST(? AS TEXT)", (key,))
            metrics, text_metrics, dropped = _metrics(conn, key)
            return RunData(
                summary=found[0],
                config=_bounded(_json_dict(config.fetchone()[0], "config")),
                metrics=metrics,
                text_metrics=text_metrics,
                summaries=_summary_values(conn, key),
                rollouts=_rollouts(conn, key, steps),
                long_texts=[
                    LongText(*row)
                    for row in conn.execute(
                        "SELECT CAST(key AS TEXT), CAST(text AS TEXT),"
                        f" CASE WHEN {_TIME.format('ts')} THEN ts END"
                        " FROM texts WHERE run_id = CAST(? AS TEXT) ORDER BY id",
                        (key,),
                    )
                ],
                schema_version=schema.schema_version(conn),
                db_name=self.path.name,
                notices=_left_out(conn, key, dropped),
            )

        return self._read(read)


# SQL conditions: a column holds a number; a time a page can show (Unix seconds, see MAX_TIME).
_NUMBER = "typeof({0}) IN ('integer', 'real')"
_TIME = f"typeof({{0}}) IN ('integer', 'real') AND {{0}} >= 0 AND {{0}} < {MAX_TIME:.0f}"
# A metrics or summaries cell as (value, text): a number in `value`, anything else as text.
_CELL = (
    f"CASE WHEN {_NUMBER.format('value')} THEN CAST(value AS REAL) END,"
    f" CASE WHEN {_NUMBER.format('value')} THEN NULL ELSE CAST(COALESCE(text, value) AS TEXT) END"
)


def _lenient_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _time(value: Any) -> float | None:
    """Unix seconds a page can show, else None."""
    if isinstance(value, (int, float)) and 0 <= value < MAX_TIME:
        return value
    return None


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) else None


def _count(value: Any) -> int:
    """A sum of counts as an int (0 when it is not a finite number)."""
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _too_deep(text: str | bytes) -> str:
    return f"(JSON nested too deep to show: {len(text):,} characters)"


def _json(text: Any) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
    except RecursionError:  # nested thousands deep
        return _too_deep(text)
    except TypeError:  # a number where JSON text belongs: shown as it is
        return text


def _json_dict(text: Any, key: str | None = None) -> dict[str, Any]:
    """A JSON object; any other value under `key` (None: left out)."""
    value = _json(text)
    if isinstance(value, dict):
        return value
    return {} if value is None or key is None else {key: value}


def _bounded(value: Any, depth: int = MAX_CONFIG_DEPTH) -> Any:
    """`value` with what is nested deeper than `depth` levels replaced by a short note."""
    if isinstance(value, (dict, list)) and value:
        if depth <= 0:
            return "(nested too deep to show)"
        if isinstance(value, dict):
            return {k: _bounded(v, depth - 1) for k, v in value.items()}
        return [_bounded(v, depth - 1) for v in value]
    return value


def _cell(value: float | None, text: str | None) -> float | str | None:
    if value is not None:
        return value
    if text in _NONFINITE:
        return _NONFINITE[text]
    return text


def _summaries(
    conn: sqlite3.Connection, key: str | bytes | None
) -> tuple[list[RunSummary], dict[str, bytes]]:
    """The runs (all, or the one whose id is `key`), and the stored bytes of ids that are not
    UTF-8."""
    where = "AND runs.id = CAST(? AS TEXT)" if key is not None else ""
    params = (key,) if key is not None else ()
    # Text sorts above numbers: a range keeps it out of max(step) and keeps the index's
    # shortcut for max(), which a typeof() test would lose.
    below = "step <= 9223372036854775807"
    reward = _NUMBER.format("reward_mean")
    tokens = f"CASE WHEN {_NUMBER.format('total_ac_tokens')} THEN total_ac_tokens END"
    rows = conn.execute(
        f"""
        SELECT CAST(runs.id AS TEXT), CAST(runs.name AS TEXT), CAST(runs.type AS TEXT),
               CAST(runs.modality AS TEXT), CAST(runs.status AS TEXT), runs.started_ts,
               runs.ended_ts, runs.last_ts, CAST(runs.config AS TEXT),
               CAST(runs.tviz_version AS TEXT),
               (SELECT count(*) FROM (SELECT DISTINCT step FROM metrics WHERE run_id = runs.id
                 UNION SELECT step FROM steps WHERE run_id = runs.id
                 UNION SELECT DISTINCT step FROM rollouts WHERE run_id = runs.id)
                 WHERE typeof(step) = 'integer'),
               (SELECT max(s) FROM (SELECT max(step) AS s FROM metrics WHERE run_id = runs.id
                 AND {below} UNION ALL SELECT max(step) FROM steps WHERE run_id = runs.id
                 AND {below} UNION ALL SELECT max(step) FROM rollouts WHERE run_id = runs.id
                 AND {below})),
               (SELECT reward_mean FROM steps WHERE run_id = runs.id
                 AND {reward} ORDER BY step DESC LIMIT 1),
               (SELECT max(CASE WHEN {reward} THEN reward_mean END) FROM steps
                 WHERE run_id = runs.id),
               (SELECT count(*) FROM rollouts WHERE run_id = runs.id),
               (SELECT count(*) FROM trajectories JOIN rollouts ON rollouts.id = rollout_id
                 WHERE rollouts.run_id = runs.id),
               (SELECT total({tokens}) FROM steps WHERE run_id = runs.id),
               CAST(runs.id AS BLOB)
        FROM runs WHERE runs.id IS NOT NULL {where}
        ORDER BY COALESCE(runs.started_ts, 0) DESC, runs.id
        """,
        params,
    ).fetchall()
    out = []
    raw_ids: dict[str, bytes] = {}
    for row in rows:
        run_id = row[0]
        if "\ufffd" in run_id:
            raw_ids[run_id] = row[17]
        config = _json_dict(row[8])
        model = config.get("model_name") or config.get("base_model") or config.get("model")
        out.append(
            RunSummary(
                id=run_id,
                name=row[1] if row[1] is not None else "",
                type=row[2] or "rl",
                modality=row[3] or "text",
                status=row[4] or ("finished" if _time(row[6]) else "running"),
                started_at=_time(row[5]),
                ended_at=_time(row[6]),
                last_data_at=_time(row[7]),
                num_steps=row[10] or 0,
                last_step=row[11] if isinstance(row[11], int) else None,
                latest_reward=_number(row[12]),
                best_reward=_number(row[13]),
                num_rollouts=row[14],
                num_trajectories=row[15],
                num_tokens=_count(row[16]),
                model=_text(model) if model is not None else None,
                tviz_version=row[9],
            )
        )
    return out, raw_ids


def _metrics(
    conn: sqlite3.Connection, key: str | bytes
) -> tuple[dict[str, Series], dict[str, list[tuple[int, str]]], int]:
    """The run's metrics by name: numeric series and text values, and how many values were
    left out for a step that is not a whole number. Odd types are sorted out per distinct
    name and step, never per row: a big run has hundreds of thousands of rows."""
    numeric: dict[str, dict[int, float]] = {}
    texts: dict[str, dict[int, str]] = {}

    def add(name: str, step: int, cell: float | str | None) -> None:
        if isinstance(cell, float):
            numeric.setdefault(name, {})[step] = cell
        elif cell is not None:  # text, or bytes in the file
            texts.setdefault(name, {})[step] = cell if isinstance(cell, str) else _text(cell)

    rows = conn.execute(
        "SELECT name, step, value, text FROM metrics WHERE run_id = CAST(? AS TEXT)", (key,)
    ).fetchall()
    for name, step, value, text in rows:
        add(name, step, _cell(value, text))
    have = {step for by_step in (*numeric.values(), *texts.values()) for step in by_step}
    dropped = _drop_steps(numeric, texts, {s for s in have if type(s) is not int})
    have = {s for s in have if type(s) is int}
    # Steps a tviz 0.2.x logger wrote into this file after its upgrade: their values live only
    # in the 0.2.x columns and `extras`, under the names the migration gives them.
    rows = conn.execute(
        f"SELECT step, extras, {', '.join(LEGACY_COLUMNS)} FROM steps"
        " WHERE run_id = CAST(? AS TEXT) AND typeof(step) = 'integer'",
        (key,),
    ).fetchall()
    for step, extras, *values in rows:
        if step in have:
            continue
        for column, value in zip(LEGACY_COLUMNS, values, strict=True):
            if isinstance(value, (int, float)):
                add(column, step, float(value))
        for name, value in _json_dict(extras).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    add(name, step, float(value))
                except OverflowError:  # a JSON integer past a double's range
                    add(name, step, str(value))
            elif isinstance(value, str):
                add(name, step, value)
    if any(type(name) is not str for name in (*numeric, *texts)):  # a blob for a name
        numeric = {_text(n): v for n, v in numeric.items()}
        texts = {_text(n): v for n, v in texts.items()}
    series = {
        name: Series(name, sorted(by_step), [by_step[k] for k in sorted(by_step)])
        for name, by_step in sorted(numeric.items())
    }
    text_metrics = {name: sorted(by_step.items()) for name, by_step in sorted(texts.items())}
    return series, text_metrics, dropped


def _drop_steps(numeric: dict[str, dict], texts: dict[str, dict], odd: set[Any]) -> int:
    """Take the values at `odd` steps (text, a fraction) out of every metric; how many."""
    dropped = 0
    for table in (numeric, texts):
        for name, by_step in list(table.items()):
            for step in odd & by_step.keys():
                del by_step[step]
                dropped += 1
            if not by_step:
                del table[name]
    return dropped


def _summary_values(conn: sqlite3.Connection, key: str | bytes) -> dict[str, float | str | None]:
    rows = conn.execute(
        f"SELECT CAST(name AS TEXT), {_CELL} FROM summaries WHERE run_id = CAST(? AS TEXT)"
        " ORDER BY name",
        (key,),
    )
    return {name: _cell(value, text) for name, value, text in rows}


def _left_out(conn: sqlite3.Connection, key: str | bytes, metric_values: int) -> list[str]:
    """A sentence on the rows of the run that no page can place: those whose step is not a
    whole number (another program wrote them); `metric_values` of them were metrics."""
    rows, groups = conn.execute(  # index-only scans: a millisecond for 20,000 groups
        "SELECT (SELECT count(*) FROM steps WHERE run_id = CAST(?1 AS TEXT)"
        "        AND typeof(step) != 'integer'),"
        "       (SELECT count(*) FROM rollouts WHERE run_id = CAST(?1 AS TEXT)"
        "        AND typeof(step) != 'integer')",
        (key,),
    ).fetchone()
    counts = zip(
        (metric_values, rows, groups), ("metric values", "step rows", "rollout groups"), strict=True
    )
    what = [f"{n:,} {noun}" for n, noun in counts if n]
    if not what:
        return []
    return [
        f"Left out of this page: {', '.join(what)} whose step is not a whole number"
        " (the database holds them as another program wrote them)."
    ]


def _rollouts(
    conn: sqlite3.Connection, key: str | bytes, steps: list[int] | None = None
) -> list[Rollout]:
    step_filter, params = " AND typeof(r.step) = 'integer'", [key]
    if steps is not None:
        if not steps:
            return []
        step_filter = f" AND r.step IN ({', '.join('?' * len(steps))})"
        params += steps
    trajectories: dict[int, list[Trajectory]] = {}
    rows = conn.execute(
        f"""
        SELECT t.rollout_id, t.trajectory_idx, t.reward, t.output_text, t.output_tokens,
               t.logprobs, t.step_rewards, t.turns, t.pred_lat, t.pred_lon, t.distance_km,
               t.extras
        FROM trajectories t JOIN rollouts r ON r.id = t.rollout_id
        WHERE r.run_id = CAST(? AS TEXT){step_filter}
        ORDER BY t.rollout_id, t.trajectory_idx, t.id
        """,
        params,
    )
    for row in rows:
        extras = _json_dict(row[11], "extras")
        reward = row[2]
        true_reward = extras.pop("reward", None)
        if true_reward in _NONFINITE:
            reward = _NONFINITE[true_reward]
        trajectories.setdefault(row[0], []).append(
            Trajectory(
                idx=row[1],
                reward=reward,
                output_text=row[3],
                output_tokens=_json(row[4]),
                logprobs=_json(row[5]),
                step_rewards=_json(row[6]),
                turns=_json(row[7]),
                pred_lat=row[8],
                pred_lon=row[9],
                distance_km=row[10],
                extras=extras,
            )
        )
    rows = conn.execute(
        f"""
        SELECT id, step, group_idx, prompt_text, mean_reward, best_reward, image_path,
               gt_lat, gt_lon, city, country, prompt_tokens, extras
        FROM rollouts r WHERE run_id = CAST(? AS TEXT){step_filter} ORDER BY step, group_idx, id
        """,
        params,
    )
    return [
        Rollout(
            id=row[0],
            step=row[1],
            group_idx=row[2],
            prompt_text=row[3],
            trajectories=trajectories.get(row[0], []),
            mean_reward=row[4],
            best_reward=row[5],
            image_path=row[6],
            gt_lat=row[7],
            gt_lon=row[8],
            city=row[9],
            country=row[10],
            prompt_tokens=_json(row[11]),
            extras=_json_dict(row[12], "extras"),
        )
        for row in rows
    ]
