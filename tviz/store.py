"""The read side: runs, their config, metric series and rollouts, as plain dataclasses.

The only module that reads SQL. Everything one page needs is read inside one transaction,
so a page never mixes two moments of a run that is still being written.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tviz import schema
from tviz.names import LEGACY_COLUMNS, REWARD_METRICS, run_page, run_slug

# A run with no end and no data for this long is shown as quiet rather than running.
QUIET_AFTER_S = 300.0

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StoreError(Exception):
    """The database cannot be read; the message is one line for a person."""


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

    def _open(self, timeout: float) -> sqlite3.Connection:
        try:
            return schema.connect(self.path, timeout=timeout, create=False)
        except schema.SchemaError as exc:
            if "read-only" not in str(exc):
                raise StoreError(str(exc)) from None
        return self._open_read_only(timeout)

    def _open_read_only(self, timeout: float) -> sqlite3.Connection:
        """Never write the file; an old schema is upgraded in an in-memory copy."""
        try:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro",
                uri=True,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
            )
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

    # -- queries -------------------------------------------------------------------------------

    def list_runs(self) -> list[RunSummary]:
        """All runs, newest first."""
        with self.snapshot() as conn:
            return _summaries(conn, None)

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
        """Sampled tokens per UTC day ('YYYY-MM-DD'), over all runs, by each step's time."""
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT date(ts, 'unixepoch') AS day, sum(total_ac_tokens) FROM steps"
                " WHERE total_ac_tokens IS NOT NULL AND ts IS NOT NULL GROUP BY day ORDER BY day"
            )
            return {day: int(total) for day, total in rows if day is not None}

    def data_version(self) -> int:
        """Changes whenever another connection commits to the file (5 µs; see SQLite's
        PRAGMA data_version): the cheap check before `versions()`."""
        try:
            return self.conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    def versions(self) -> dict[str, tuple]:
        """A cheap fingerprint per run that changes whenever the run gains data."""
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT runs.id, runs.revision, runs.last_ts, runs.status, runs.config, runs.name,"
                " (SELECT max(id) FROM rollouts WHERE run_id = runs.id),"
                " (SELECT max(id) FROM steps WHERE run_id = runs.id) FROM runs"
            ).fetchall()
        return {r[0]: tuple(r[1:]) for r in rows}

    def rollout_index(self, run_id: str) -> dict[int, tuple[int, int]]:
        """step -> (number of rollout groups, highest rollout id): changes when a step does."""
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT step, count(*), max(id) FROM rollouts WHERE run_id = ? GROUP BY step",
                (run_id,),
            )
            return {step: (count, max_id) for step, count, max_id in rows}

    def load_run(self, run_id: str, *, rollout_steps: Iterable[int] | None = None) -> RunData:
        """One run's config, metrics and rollouts, read in one transaction.

        `rollout_steps` limits the rollouts read to those steps (a renderer that cached the
        others); None reads them all.
        """
        with self.snapshot() as conn:
            found = _summaries(conn, run_id)
            if not found:
                raise StoreError(f"no run with id {run_id!r} in {self.path}")
            summary = found[0]
            config_text = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,))
            metrics, text_metrics = _metrics(conn, run_id)
            return RunData(
                summary=summary,
                config=_json_dict(config_text.fetchone()[0]),
                metrics=metrics,
                text_metrics=text_metrics,
                summaries=_summary_values(conn, run_id),
                rollouts=_rollouts(conn, run_id, rollout_steps),
                long_texts=[
                    LongText(*row)
                    for row in conn.execute(
                        "SELECT key, text, ts FROM texts WHERE run_id = ? ORDER BY id", (run_id,)
                    )
                ],
                schema_version=schema.schema_version(conn),
                db_name=self.path.name,
            )


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json_dict(text: str | None) -> dict[str, Any]:
    value = _json(text)
    if isinstance(value, dict):
        return value
    return {} if value is None else {"config": value}


def _cell(value: float | None, text: str | None) -> float | str | None:
    if value is not None:
        return value
    if text in _NONFINITE:
        return _NONFINITE[text]
    return text


def _summaries(conn: sqlite3.Connection, run_id: str | None) -> list[RunSummary]:
    where = "WHERE runs.id = ?" if run_id is not None else ""
    params = (run_id,) if run_id is not None else ()
    rows = conn.execute(
        f"""
        SELECT runs.id, runs.name, runs.type, runs.modality, runs.status, runs.started_ts,
               runs.ended_ts, runs.last_ts, runs.config, runs.tviz_version,
               (SELECT count(*) FROM (SELECT DISTINCT step FROM metrics WHERE run_id = runs.id
                 UNION SELECT step FROM steps WHERE run_id = runs.id
                 UNION SELECT DISTINCT step FROM rollouts WHERE run_id = runs.id)),
               (SELECT max(s) FROM (SELECT max(step) AS s FROM metrics WHERE run_id = runs.id
                 UNION ALL SELECT max(step) FROM steps WHERE run_id = runs.id
                 UNION ALL SELECT max(step) FROM rollouts WHERE run_id = runs.id)),
               (SELECT reward_mean FROM steps WHERE run_id = runs.id
                 AND reward_mean IS NOT NULL ORDER BY step DESC LIMIT 1),
               (SELECT max(reward_mean) FROM steps WHERE run_id = runs.id),
               (SELECT count(*) FROM rollouts WHERE run_id = runs.id),
               (SELECT count(*) FROM trajectories JOIN rollouts ON rollouts.id = rollout_id
                 WHERE rollouts.run_id = runs.id),
               (SELECT COALESCE(sum(total_ac_tokens), 0) FROM steps WHERE run_id = runs.id)
        FROM runs {where}
        ORDER BY COALESCE(runs.started_ts, 0) DESC, runs.id
        """,
        params,
    ).fetchall()
    out = []
    for row in rows:
        config = _json_dict(row[8])
        model = config.get("model_name") or config.get("base_model") or config.get("model")
        out.append(
            RunSummary(
                id=row[0],
                name=row[1],
                type=row[2] or "rl",
                modality=row[3] or "text",
                status=row[4] or ("finished" if row[6] else "running"),
                started_at=row[5],
                ended_at=row[6],
                last_data_at=row[7],
                num_steps=row[10] or 0,
                last_step=row[11],
                latest_reward=row[12],
                best_reward=row[13],
                num_rollouts=row[14],
                num_trajectories=row[15],
                num_tokens=int(row[16] or 0),
                model=str(model) if model is not None else None,
                tviz_version=row[9],
            )
        )
    return out


def _metrics(
    conn: sqlite3.Connection, run_id: str
) -> tuple[dict[str, Series], dict[str, list[tuple[int, str]]]]:
    numeric: dict[str, dict[int, float]] = {}
    texts: dict[str, dict[int, str]] = {}

    def add(name: str, step: int, cell: float | str | None) -> None:
        if isinstance(cell, float):
            numeric.setdefault(name, {})[step] = cell
        elif cell is not None:
            texts.setdefault(name, {})[step] = cell

    rows = conn.execute(
        "SELECT name, step, value, text FROM metrics WHERE run_id = ?", (run_id,)
    ).fetchall()
    for name, step, value, text in rows:
        add(name, step, _cell(value, text))
    # Steps a tviz 0.2.x logger wrote into this file after its upgrade: their values live only
    # in the 0.2.x columns and `extras`, under the names the migration gives them.
    have = {step for by_step in (*numeric.values(), *texts.values()) for step in by_step}
    rows = conn.execute(
        f"SELECT step, extras, {', '.join(LEGACY_COLUMNS)} FROM steps WHERE run_id = ?",
        (run_id,),
    ).fetchall()
    for step, extras, *values in rows:
        if step in have:
            continue
        for column, value in zip(LEGACY_COLUMNS, values, strict=True):
            if value is not None:
                add(column, step, float(value))
        for name, value in _json_dict(extras).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                add(name, step, float(value))
            elif isinstance(value, str):
                add(name, step, value)
    series = {
        name: Series(name, sorted(by_step), [by_step[k] for k in sorted(by_step)])
        for name, by_step in sorted(numeric.items())
    }
    return series, {name: sorted(by_step.items()) for name, by_step in sorted(texts.items())}


def _summary_values(conn: sqlite3.Connection, run_id: str) -> dict[str, float | str | None]:
    rows = conn.execute(
        "SELECT name, value, text FROM summaries WHERE run_id = ? ORDER BY name", (run_id,)
    )
    return {name: _cell(value, text) for name, value, text in rows}


def _rollouts(
    conn: sqlite3.Connection, run_id: str, steps: Iterable[int] | None = None
) -> list[Rollout]:
    step_filter, params = "", [run_id]
    if steps is not None:
        wanted = sorted({int(s) for s in steps})
        if not wanted:
            return []
        step_filter = f" AND r.step IN ({', '.join('?' * len(wanted))})"
        params += wanted
    trajectories: dict[int, list[Trajectory]] = {}
    rows = conn.execute(
        f"""
        SELECT t.rollout_id, t.trajectory_idx, t.reward, t.output_text, t.output_tokens,
               t.logprobs, t.step_rewards, t.turns, t.pred_lat, t.pred_lon, t.distance_km,
               t.extras
        FROM trajectories t JOIN rollouts r ON r.id = t.rollout_id
        WHERE r.run_id = ?{step_filter} ORDER BY t.rollout_id, t.trajectory_idx, t.id
        """,
        params,
    )
    for row in rows:
        extras = _json_dict(row[11])
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
        FROM rollouts r WHERE run_id = ?{step_filter} ORDER BY step, group_idx, id
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
            extras=_json_dict(row[12]),
        )
        for row in rows
    ]
