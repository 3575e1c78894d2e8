"""The writer: the one thread that turns log calls into rows of a tviz database.

`TvizLogger`'s calls put ops (tuples) on a queue and return; a daemon thread takes all that is
waiting and writes it in one transaction, so a burst of calls costs one commit. When the file
cannot be written (locked, full, read-only, an I/O error) the ops are kept in memory and retried
with a growing pause, and the training loop gets one warning, never an exception or a stall. A
call holding a value that cannot be stored is skipped alone: the batch is written again one call
at a time, each in a savepoint. A file deleted or replaced under the writer gets the run written
into a new one. With `strict` (tests) every op is written at once in the caller's thread, and
errors raise.

Besides tviz's own tables the writer fills the 0.2.x columns (`steps`, the rollout and trajectory
columns, their `extras` JSON), so that the 0.2.x dashboard can still read a new file.
"""

from __future__ import annotations

import json
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tviz import __version__, schema
from tviz.names import LEGACY_INDEX, LEGACY_INTEGER_COLUMNS
from tviz.records import ROLLOUT_KEYS, TRAJECTORY_KEYS
from tviz.values import (
    NONFINITE_TEXTS,
    clean_text,
    finite_number,
    json_text,
    jsonable,
    metric_cell,
    nonfinite_text,
    plain_scalar,
)

__all__ = ["Writer"]

# Ops held in memory while the database cannot be written; past this, new ones are dropped.
_MAX_PENDING = 200_000
# Ops whose last element is the time they were logged: they move the run's last_ts.
_TIMED_OPS = frozenset({"metrics", "rollouts", "text"})
# The rollout keys with a scalar column of their own (numpy scalars are read as Python ones).
_ROLLOUT_FIELDS = ("group_idx", "image_path", "gt_lat", "gt_lon", "city", "country")


class Writer:
    """Owns the connection. Async: a daemon thread drains a queue; strict: inline.

    The ops `submit` takes, one per log call (`ts`: Unix seconds):
    `("run",)`, `("config", config)`, `("metrics", step or None, {name: value}, ts)`,
    `("rollouts", step, [rollout dict], ts)`, `("text", key, text, ts)`, `("end", status, ts)`.
    """

    def __init__(
        self,
        path: Path,
        run_row: dict[str, Any],
        *,
        strict: bool,
        warn: Callable[[str], None],
    ) -> None:
        self.path = path
        self.run = run_row
        self.strict = strict
        self.conn: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._resumed_below: int | None = None
        self._rollout_steps: set[int] = set()
        self._pending: list[tuple] = []
        self._failing: str | None = None  # the warning currently in force, shown once
        self._dropped = 0
        self._warn = warn  # the logger's: never raises, says "tviz:" and TvizWarning
        self._queue: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False
        if not strict:
            self._thread = threading.Thread(target=self._loop, name="tviz-writer", daemon=True)
            self._thread.start()

    def submit(self, op: tuple) -> None:
        if self.strict:
            self._write([op])
        elif not self._stopped:
            self._queue.put(op)

    def flush(self, timeout: float | None) -> bool:
        if self.strict or self._thread is None or not self._thread.is_alive():
            return not self._pending
        done = threading.Event()
        result: list[bool] = []
        self._queue.put(("flush", done, result))
        return done.wait(timeout) and all(result)

    def stop(self, timeout: float = 30.0) -> None:
        if self.strict:
            self._close_conn()
            return
        if self._stopped:
            return
        self._stopped = True
        self._queue.put(("stop",))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the thread

    def _loop(self) -> None:
        backoff = 0.0
        while True:
            try:
                op = self._queue.get(timeout=backoff or None)
            except queue.Empty:
                op = None
            batch = [op] if op is not None else []
            while True:  # take all that is waiting: one transaction for the lot
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            waiters = [o for o in batch if o[0] == "flush"]
            stop = any(o[0] == "stop" for o in batch)
            work = [o for o in batch if o[0] not in ("flush", "stop")]
            try:
                ok = self._write(work)
            except Exception:  # never let the thread die: later calls would vanish silently
                ok = False
            backoff = 0.0 if ok else min(max(backoff * 2, 0.25), 5.0)
            for _, event, result in waiters:
                result.append(ok)
                event.set()
            if stop:
                if not ok:  # one last try, briefly, then give up with a count of what is lost
                    time.sleep(0.5)
                    if not self._write([]):
                        self._warn(f"{len(self._pending)} log calls could not be written")
                self._close_conn()
                return

    # -- writing

    def _write(self, ops: list[tuple]) -> bool:
        """Write pending ops then `ops` in one transaction; keep them if that fails."""
        self._pending.extend(ops)
        if len(self._pending) > _MAX_PENDING:
            extra = len(self._pending) - _MAX_PENDING
            del self._pending[_MAX_PENDING:]
            self._dropped += extra
            self._warn(f"database unwritable for long; dropped {self._dropped} log calls so far")
        if not self._pending:
            return True
        if self.strict:  # nothing is kept for a retry: the caller sees the error
            try:
                self._transaction(isolated=False)
            finally:
                self._pending.clear()
            return True
        try:
            try:
                self._transaction(isolated=False)
            except sqlite3.OperationalError:
                raise
            except Exception:
                # A call holds something that cannot be stored. Write the batch again one
                # call at a time (savepoints: slower), so that only that call is skipped.
                self._transaction(isolated=True)
        except (sqlite3.Error, OSError, schema.SchemaError) as exc:
            self._trouble(f"cannot write to {self.path} ({exc}); will retry, training goes on")
            if not isinstance(exc, sqlite3.OperationalError):
                self._close_conn()  # maybe a broken handle: reopen next time
            return False
        except Exception as exc:  # a bug of ours: never retry it forever, never kill the thread
            self._warn(f"dropped {len(self._pending)} log calls: {type(exc).__name__}: {exc}")
        self._pending.clear()
        if self._failing:
            self._warn(f"writing to {self.path} works again")
            self._failing = None
        return True

    def _transaction(self, *, isolated: bool) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in self._pending:
                if isolated:
                    self._apply_isolated(conn, op)
                else:
                    self._apply(conn, op)
            stamps = [op[-1] for op in self._pending if op[0] in _TIMED_OPS]
            last = max(stamps) if stamps else None
            conn.execute(
                "UPDATE runs SET revision = revision + 1, last_ts = CASE WHEN ? IS NULL"
                " THEN last_ts ELSE max(COALESCE(last_ts, 0), ?) END WHERE id = ?",
                (last, last, self.run["id"]),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _trouble(self, message: str) -> None:
        if self._failing is None:
            self._warn(message)
        self._failing = message

    def _connection(self) -> sqlite3.Connection:
        if self.conn is not None and self._file_id is not None:
            try:
                st = os.stat(self.path)
                moved = (st.st_dev, st.st_ino) != self._file_id
            except FileNotFoundError:
                moved = True
            if moved:
                self._warn(f"{self.path} was deleted or replaced; writing this run into a new file")
                self._close_conn()
        if self.conn is None:
            self.conn = schema.connect(self.path)
            st = os.stat(self.path)
            self._file_id = (st.st_dev, st.st_ino)
            # Rollouts up to this id were logged by an earlier session of this run.
            self._resumed_below = self.conn.execute(
                "SELECT max(id) FROM rollouts WHERE run_id = ?", (self.run["id"],)
            ).fetchone()[0]
            # A new or replaced file needs the run row again before anything else.
            self._pending.insert(0, ("run",))
        return self.conn

    def _close_conn(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
            self.conn = None

    def _apply_isolated(self, conn: sqlite3.Connection, op: tuple) -> None:
        """One log call, all or nothing: a value that cannot be stored skips that call only.

        Only `sqlite3.OperationalError` (locked, full, I/O) escapes, so that the whole batch is
        kept and retried.
        """
        conn.execute("SAVEPOINT op")
        try:
            self._apply(conn, op)
        except sqlite3.OperationalError:
            raise
        except Exception as exc:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            self._warn(f"skipped a {op[0]} call: {type(exc).__name__}: {exc}")
            return
        conn.execute("RELEASE op")

    def _apply(self, conn: sqlite3.Connection, op: tuple) -> None:
        kind = op[0]
        if kind == "run":
            self._upsert_run(conn)
        elif kind == "config":
            self._config(conn, op[1])
        elif kind == "metrics":
            self._metrics(conn, *op[1:])
        elif kind == "rollouts":
            self._rollouts(conn, *op[1:])
        elif kind == "text":
            _, key, text, ts = op
            conn.execute(
                "INSERT INTO texts (run_id, key, text, ts) VALUES (?, ?, ?, ?)",
                (self.run["id"], key, clean_text(text), ts),
            )
        elif kind == "end":
            _, status, ts = op
            conn.execute(
                "UPDATE runs SET ended_at = datetime(?, 'unixepoch'), ended_ts = ?,"
                " status = ? WHERE id = ?",
                (ts, ts, status, self.run["id"]),
            )

    def _upsert_run(self, conn: sqlite3.Connection) -> None:
        run = self.run
        conn.execute(
            "INSERT INTO runs (id, name, type, modality, config, started_at, started_ts, last_ts,"
            " status, tviz_version, project, run_group)"
            " VALUES (?, ?, ?, ?, ?, datetime(?, 'unixepoch'), ?, ?, 'running', ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET status = 'running', ended_at = NULL,"
            " ended_ts = NULL, last_ts = max(COALESCE(last_ts, 0), excluded.last_ts),"
            " project = COALESCE(excluded.project, project),"
            " run_group = COALESCE(excluded.run_group, run_group)",
            (
                run["id"],
                run["name"],
                run["type"],
                run["modality"],
                run.get("config"),
                run["started_ts"],
                run["started_ts"],
                run["started_ts"],
                __version__,
                run.get("project"),
                run.get("group"),
            ),
        )

    def _config(self, conn: sqlite3.Connection, config: Any) -> None:
        data = jsonable(config)
        if not isinstance(data, dict):
            data = {"config": data} if data is not None else {}
        row = conn.execute("SELECT config FROM runs WHERE id = ?", (self.run["id"],)).fetchone()
        old: dict[str, Any] = {}
        if row and row[0]:
            try:
                loaded = json.loads(row[0])
                old = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                pass
        text = json_text({**old, **data})
        self.run["config"] = text
        conn.execute("UPDATE runs SET config = ? WHERE id = ?", (text, self.run["id"]))

    def _metrics(self, conn: sqlite3.Connection, step: Any, metrics: dict, ts: float) -> None:
        run_id = self.run["id"]
        if step is None:
            conn.executemany(
                "INSERT OR REPLACE INTO summaries (run_id, name, value, text, ts)"
                " VALUES (?, ?, ?, ?, ?)",
                [(run_id, str(k), *metric_cell(v), ts) for k, v in metrics.items()],
            )
            return
        step = int(plain_scalar(step))
        # One pass: the metrics rows, the 0.2.x columns (merged into any row this step
        # already has) and the 0.2.x `extras` JSON for the other names (finite values only:
        # the 0.2.x dashboard parses it).
        rows = []
        legacy: dict[str, Any] = {}
        ranks: dict[str, int] = {}
        extras: dict[str, Any] = {}
        for key, raw in metrics.items():
            key = str(key)
            value, text = metric_cell(raw)
            rows.append((run_id, key, step, value, text, ts))
            hit = LEGACY_INDEX.get(key)
            if hit is None:
                if value is not None:
                    extras[key] = value
                elif text is not None and text not in NONFINITE_TEXTS:
                    extras[key] = text
                continue
            column, rank = hit
            if ranks.get(column, rank + 1) > rank:
                if value is not None and column in LEGACY_INTEGER_COLUMNS:
                    value = int(value)
                legacy[column] = value
                ranks[column] = rank
        conn.executemany(
            "INSERT OR REPLACE INTO metrics (run_id, name, step, value, text, ts)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        columns = list(legacy)
        names = ", ".join(["run_id", "step", "ts", "extras", *columns])
        marks = ", ".join("?" * (4 + len(columns)))
        updates = "".join(f", {c} = COALESCE(excluded.{c}, {c})" for c in columns)
        conn.execute(
            f"INSERT INTO steps ({names}) VALUES ({marks}) ON CONFLICT(run_id, step) DO UPDATE"
            f" SET ts = excluded.ts, extras = CASE WHEN extras IS NULL OR NOT json_valid(extras)"
            f" THEN excluded.extras WHEN excluded.extras IS NULL THEN extras"
            f" ELSE json_patch(extras, excluded.extras) END{updates}",
            (run_id, step, ts, json_text(extras) if extras else None, *legacy.values()),
        )

    def _rollouts(self, conn: sqlite3.Connection, step: Any, rollouts: list, ts: float) -> None:
        run_id = self.run["id"]
        step = int(plain_scalar(step))
        if self._resumed_below is not None and step not in self._rollout_steps:
            # A resumed run logs this step again: its new groups replace the old session's,
            # as its metrics do. Groups this session already logged for the step are kept.
            old = "SELECT id FROM rollouts WHERE run_id = ? AND step = ? AND id <= ?"
            args = (run_id, step, self._resumed_below)
            conn.execute(f"DELETE FROM trajectories WHERE rollout_id IN ({old})", args)
            conn.execute(f"DELETE FROM rollouts WHERE id IN ({old})", args)
        self._rollout_steps.add(step)
        for group_idx, rollout in enumerate(rollouts):
            trajectories = rollout["trajectories"]
            rewards = [_reward(t) for t in trajectories]
            finite = [r for r in rewards if math.isfinite(r)]
            extras = {k: jsonable(v) for k, v in rollout.items() if k not in ROLLOUT_KEYS}
            fields = {k: plain_scalar(rollout.get(k)) for k in _ROLLOUT_FIELDS}
            if fields["group_idx"] is None:
                fields["group_idx"] = group_idx
            cursor = conn.execute(
                "INSERT INTO rollouts (run_id, step, group_idx, image_path, gt_lat, gt_lon, city,"
                " country, prompt_text, prompt_tokens, mean_reward, best_reward, extras, eval_name)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    step,
                    int(fields["group_idx"]),
                    clean_text(fields["image_path"]),
                    finite_number(fields["gt_lat"]),
                    finite_number(fields["gt_lon"]),
                    clean_text(fields["city"]),
                    clean_text(fields["country"]),
                    clean_text(rollout.get("prompt_text")),
                    _list_field(rollout, "prompt_tokens", extras),
                    sum(finite) / len(finite) if finite else None,
                    max(finite) if finite else None,
                    json_text(extras) if extras else None,
                    clean_text(plain_scalar(rollout.get("eval_name"))) or None,
                ),
            )
            rollout_id = cursor.lastrowid
            conn.executemany(
                "INSERT INTO trajectories (rollout_id, trajectory_idx, reward, output_text,"
                " output_tokens, logprobs, pred_lat, pred_lon, distance_km, step_rewards, turns,"
                " extras) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    _trajectory_row(rollout_id, idx, traj, reward)
                    for idx, (traj, reward) in enumerate(zip(trajectories, rewards, strict=True))
                ],
            )


def _reward(traj: Mapping[str, Any]) -> float:
    value = plain_scalar(traj.get("reward"))
    if value is None:
        return 0.0  # 0.2.x default; the column is NOT NULL
    return float(value)


def _trajectory_row(rollout_id: int, idx: int, traj: dict, reward: float) -> tuple:
    extras = {k: jsonable(v) for k, v in traj.items() if k not in TRAJECTORY_KEYS}
    if not math.isfinite(reward):
        # The 0.2.x column is NOT NULL and NaN would bind as NULL: keep the truth in extras.
        extras["reward"] = nonfinite_text(reward)
        reward = 0.0 if math.isnan(reward) else reward
    index = plain_scalar(traj.get("trajectory_idx"))
    return (
        rollout_id,
        int(index) if index is not None else idx,
        reward,
        clean_text(traj.get("output_text")),
        _list_field(traj, "output_tokens", extras),
        _list_field(traj, "logprobs", extras),
        finite_number(traj.get("pred_lat")),
        finite_number(traj.get("pred_lon")),
        finite_number(traj.get("distance_km")),
        _list_field(traj, "step_rewards", extras),
        _list_field(traj, "turns", extras),
        json_text(extras) if extras else None,
    )


def _list_field(fields: Mapping[str, Any], key: str, extras: dict[str, Any]) -> str | None:
    """A list column's JSON; a value that is no list goes to `extras` (readers expect lists).

    As in 0.2.x, an empty or missing list is stored as NULL.
    """
    value = fields.get(key)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    if value is None or isinstance(value, (list, tuple)):
        return json_text(value) if value else None
    extras[key] = jsonable(value)
    return None
