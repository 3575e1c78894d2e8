"""TvizLogger: the training loop's side of tviz, and the only writer of the database.

The log calls only snapshot their arguments and put them on a queue; a background thread
turns them into rows and commits them in batches. So a log call costs microseconds, and a
slow, locked, full or vanished database costs the training loop a warning, never an
exception or a stall. `strict=True` writes synchronously and raises instead (for tests).

The API is that of tviz 0.2.x and of tinker-cookbook's `ml_log.Logger`, so a TvizLogger can
be appended to a cookbook `MultiplexLogger`.
"""

from __future__ import annotations

import atexit
import dataclasses
import enum
import json
import math
import os
import queue
import re
import sqlite3
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

from tviz import __version__, schema
from tviz.names import DEFAULT_PORT, LEGACY_INDEX, LEGACY_INTEGER_COLUMNS, run_page

__all__ = ["TvizLogger", "TvizWarning"]


class TvizWarning(UserWarning):
    """Something kept tviz from writing; the training loop goes on."""


# How long the writer waits for more work before it commits what it has (seconds).
_COMMIT_INTERVAL = 0.1
# Ops held in memory while the database cannot be written; past this, new ones are dropped.
_MAX_PENDING = 200_000
_NONFINITE_TEXT = {math.inf: "inf", -math.inf: "-inf"}
_NONFINITE_TEXTS = frozenset({"nan", "inf", "-inf"})
_SIMPLE_TYPES = frozenset({float, int, str, bool, type(None)})
# Ops whose last element is the time they were logged: they move the run's last_ts.
_TIMED_OPS = frozenset({"metrics", "rollouts", "text"})
_SURROGATES = re.compile("[\ud800-\udfff]")

_ROLLOUT_FIELDS = ("group_idx", "image_path", "gt_lat", "gt_lon", "city", "country")
_ROLLOUT_KNOWN = frozenset(
    (*_ROLLOUT_FIELDS, "prompt_text", "prompt_tokens", "trajectories", "mean_reward", "best_reward")
)
_TRAJ_KNOWN = frozenset(
    (
        "trajectory_idx",
        "reward",
        "output_text",
        "output_tokens",
        "logprobs",
        "pred_lat",
        "pred_lon",
        "distance_km",
        "step_rewards",
        "turns",
    )
)


class TvizLogger:
    """Log one training run into a tviz SQLite database.

    Args:
        db_path: the database file; default `$TVIZ_DB_PATH`, else `~/.tviz/tviz.db`.
        run_name: a readable name; default the run id.
        modality: "text" or "vision" (or another plugin's name).
        run_id: resume this run (its steps, rollouts and config are kept) or create it with
            this id; default a new random id.
        run_type: "rl" (default) or "sl" for supervised fine-tuning.
        config: logged as the run's config right away (same as `log_hparams`).
        started_at: the run's start as Unix seconds, default now (an importer of an old run).
        strict: write synchronously and raise on any error, for tests.

    The log calls take an optional `timestamp` (Unix seconds, default now) for the same reason.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        run_name: str | None = None,
        modality: str = "text",
        *,
        run_id: str | None = None,
        run_type: str = "rl",
        config: Any = None,
        started_at: float | None = None,
        strict: bool = False,
    ) -> None:
        self.db_path = Path(db_path).expanduser() if db_path else schema.default_db_path()
        self.run_id: str = str(run_id) if run_id else uuid.uuid4().hex[:8]
        self.run_name: str = str(run_name) if run_name else self.run_id
        self.modality = str(modality)
        self.run_type = str(getattr(run_type, "value", run_type))
        self.strict = strict
        self._closed = False
        self._writer = _Writer(self.db_path, self._run_row(started_at), strict=strict)
        if not strict:
            _live_loggers.add(self)
        self._writer.submit(("run",))
        if config is not None:
            self.log_hparams(config)

    def _run_row(self, started_at: float | None) -> dict[str, Any]:
        return {
            "id": self.run_id,
            "name": self.run_name,
            "type": self.run_type,
            "modality": self.modality,
            "started_ts": time.time() if started_at is None else float(started_at),
        }

    # -- tinker-cookbook ml_log.Logger interface -------------------------------------------

    def log_hparams(self, config: Any) -> None:
        """Store the run's config (dataclasses, pydantic models, dicts, Paths, enums...).

        A later call merges its keys over the earlier ones.
        """
        self._submit(("config", config))

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, *, timestamp: float | None = None
    ) -> None:
        """Log scalar metrics for `step`; with no step they are kept as latest values."""
        if self._closed:
            return self._after_close()
        try:
            # Plain numbers are copied as they are; anything else (numpy scalars, 0-d tensors)
            # is read now, so a value the loop later changes in place is logged as it was.
            snapshot = {k: v if type(v) in _SIMPLE_TYPES else _plain(v) for k, v in metrics.items()}
        except Exception as exc:
            return self._bad_input(f"log_metrics needs a mapping of name -> value ({exc})")
        self._submit(("metrics", step, snapshot, timestamp or time.time()))

    def log_summary(self, metrics: Mapping[str, Any]) -> None:
        """Record latest values outside the step history (tinker-cookbook)."""
        self.log_metrics(metrics, step=None)

    def log_metrics_event(
        self,
        metrics: Mapping[str, Any],
        step: int,
        step_metric: str,
        metric_axes: Mapping[str, str] | None = None,
    ) -> None:
        """tinker-cookbook's event API: metrics that refer to model step `step`."""
        self.log_metrics({**metrics, step_metric: step}, step=step)

    def enable_event_steps(self) -> None:
        """tinker-cookbook hook for concurrent producers; steps are explicit here already."""

    def log_long_text(self, key: str, text: str) -> None:
        if self._closed:
            return self._after_close()
        self._submit(("text", str(key), text, time.time()))

    def log_rollouts(
        self,
        rollouts: Iterable[Mapping[str, Any]],
        step: int,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Log a step's rollout groups: dicts with `prompt_text` and `trajectories`.

        The lists inside (tokens, logprobs) are read later by the writer thread: do not
        change them in place after the call.
        """
        if self._closed:
            return self._after_close()
        try:
            snapshot = [
                {**r, "trajectories": [dict(t) for t in r.get("trajectories") or ()]}
                for r in rollouts
            ]
        except Exception as exc:
            return self._bad_input(f"log_rollouts needs a list of rollout dicts ({exc})")
        self._submit(("rollouts", step, snapshot, timestamp or time.time()))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything logged so far is committed; False if that did not happen."""
        return self._writer.flush(timeout)

    def sync(self) -> None:
        """tinker-cookbook / 0.2.x name for flush()."""
        self.flush()

    def close(self, status: str | None = "finished", *, timestamp: float | None = None) -> None:
        """Mark the run ended with `status`, write everything and release the file.

        `status=None` releases the file but leaves the run open (an importer that will come
        back for more). Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if status is not None:
            self._writer.submit(("end", status, timestamp or time.time()))
        self._writer.stop()
        _live_loggers.discard(self)

    def get_logger_url(self) -> str | None:
        """Where `tviz watch` (default port) serves this run's page."""
        return f"http://127.0.0.1:{DEFAULT_PORT}/{run_page(self.run_name, self.run_id)}"

    @property
    def store(self) -> None:
        """tinker-cookbook's TrainingRunStore hook: tviz keeps no such store."""
        return None

    # -- conveniences -----------------------------------------------------------------------

    def __enter__(self) -> TvizLogger:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("finished" if exc_type is None else "crashed")

    def __repr__(self) -> str:
        return f"TvizLogger(run_id={self.run_id!r}, run_name={self.run_name!r}, db={self.db_path})"

    # -- internals --------------------------------------------------------------------------

    def _submit(self, op: tuple) -> None:
        self._writer.submit(op)

    def _bad_input(self, message: str) -> None:
        if self.strict:
            raise TypeError(message)
        _warn(message)

    def _after_close(self) -> None:
        self._bad_input(f"{self!r} is closed; the value was not logged")


def _warn(message: str) -> None:
    try:
        warnings.warn(f"tviz: {message}", TvizWarning, stacklevel=3)
    except Exception:  # warnings turned into errors (-W error) must not break the loop
        pass


# -- turning Python values into column values ------------------------------------------------


def _plain(value: Any) -> Any:
    """numpy scalars, 0-d tensors and the like -> Python scalars; others unchanged."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except Exception:
            pass
    return value


def _metric_cell(value: Any) -> tuple[float | None, str | None]:
    """(value, text) for the metrics table; see schema.V1_DDL."""
    kind = type(value)
    if kind is not float and kind is not int:  # the common case skips all this
        value = _plain(value)
        if value is None:
            return None, None
        if isinstance(value, str):
            return None, clean_text(value)
        if not isinstance(value, (bool, int, float)):
            return None, _to_json(value)
    try:
        number = float(value)
    except OverflowError:  # an int too large for a double: keep its digits
        return None, str(value)
    if math.isfinite(number):
        return number, None
    return None, _NONFINITE_TEXT.get(number, "nan")


def _finite(value: Any) -> float | None:
    value = _plain(value)
    if isinstance(value, (bool, int, float)):
        try:
            return value if math.isfinite(value) else None
        except OverflowError:
            return None
    return None


def clean_text(text: Any) -> str | None:
    """Text SQLite and a page can hold: lone surrogates (from tokenizers) become U+FFFD."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a tokenizer: SQLite would refuse them
        text = _SURROGATES.sub("\ufffd", text)
    return text


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A config or value as plain JSON data: dataclasses, pydantic models, enums, Paths, numpy.

    Nesting past 64 levels (a structure that contains itself) is cut to its repr.
    """
    if _depth > 64:
        return f"<nested too deep: {type(value).__name__}>"
    depth = _depth + 1
    value = _plain(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value, depth)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), depth) for f in dataclasses.fields(value)}
    for method in ("model_dump", "to_dict", "dict"):  # pydantic v2, others, pydantic v1
        dump = getattr(value, method, None)
        if callable(dump) and not isinstance(value, type):
            try:
                return jsonable(dump(), depth)
            except Exception:
                pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return jsonable(tolist(), depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"
    if hasattr(value, "__dict__"):
        return {k: jsonable(v, depth) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def _to_json(value: Any) -> str | None:
    if value is None:
        return None
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(jsonable(value), ensure_ascii=False)
    else:
        if "NaN" in text or "Infinity" in text:  # rare: redo, turning them into null
            text = json.dumps(jsonable(value), ensure_ascii=False)
    return clean_text(text)


def _json_list(value: Any) -> str | None:
    """0.2.x semantics: empty or missing lists are stored as NULL."""
    if value is None:
        return None
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    if not value:
        return None
    return _to_json(value)


def _list_field(fields: Mapping[str, Any], key: str, extras: dict[str, Any]) -> str | None:
    """A list column's JSON; a value that is no list goes to `extras` (readers expect lists)."""
    value = fields.get(key)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    if value is None or isinstance(value, (list, tuple)):
        return _json_list(value)
    extras[key] = jsonable(value)
    return None


# -- the writer -------------------------------------------------------------------------------


class _Writer:
    """Owns the connection. Async: a daemon thread drains a queue; strict: inline."""

    def __init__(self, path: Path, run_row: dict[str, Any], *, strict: bool) -> None:
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
                        _warn(f"{self._pending_count()} log calls could not be written")
                self._close_conn()
                return

    def _pending_count(self) -> int:
        return len(self._pending)

    # -- writing

    def _write(self, ops: list[tuple]) -> bool:
        """Write pending ops then `ops` in one transaction; keep them if that fails."""
        self._pending.extend(ops)
        if len(self._pending) > _MAX_PENDING:
            extra = len(self._pending) - _MAX_PENDING
            del self._pending[_MAX_PENDING:]
            self._dropped += extra
            _warn(f"database unwritable for long; dropped {self._dropped} log calls so far")
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
            _warn(f"dropped {len(self._pending)} log calls: {type(exc).__name__}: {exc}")
        self._pending.clear()
        if self._failing:
            _warn(f"writing to {self.path} works again")
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
            _warn(message)
        self._failing = message

    def _connection(self) -> sqlite3.Connection:
        if self.conn is not None and self._file_id is not None:
            try:
                st = os.stat(self.path)
                moved = (st.st_dev, st.st_ino) != self._file_id
            except FileNotFoundError:
                moved = True
            if moved:
                _warn(f"{self.path} was deleted or replaced; writing this run into a new file")
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
            _warn(f"skipped a {op[0]} call: {type(exc).__name__}: {exc}")
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
            " status, tviz_version)"
            " VALUES (?, ?, ?, ?, ?, datetime(?, 'unixepoch'), ?, ?, 'running', ?)"
            " ON CONFLICT(id) DO UPDATE SET status = 'running', ended_at = NULL,"
            " ended_ts = NULL, last_ts = max(COALESCE(last_ts, 0), excluded.last_ts)",
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
        text = _to_json({**old, **data})
        self.run["config"] = text
        conn.execute("UPDATE runs SET config = ? WHERE id = ?", (text, self.run["id"]))

    def _metrics(self, conn: sqlite3.Connection, step: Any, metrics: dict, ts: float) -> None:
        run_id = self.run["id"]
        if step is None:
            conn.executemany(
                "INSERT OR REPLACE INTO summaries (run_id, name, value, text, ts)"
                " VALUES (?, ?, ?, ?, ?)",
                [(run_id, str(k), *_metric_cell(v), ts) for k, v in metrics.items()],
            )
            return
        step = int(_plain(step))
        # One pass: the metrics rows, the 0.2.x columns (merged into any row this step
        # already has) and the 0.2.x `extras` JSON for the other names (finite values only:
        # the 0.2.x dashboard parses it).
        rows = []
        legacy: dict[str, Any] = {}
        ranks: dict[str, int] = {}
        extras: dict[str, Any] = {}
        for key, raw in metrics.items():
            key = str(key)
            value, text = _metric_cell(raw)
            rows.append((run_id, key, step, value, text, ts))
            hit = LEGACY_INDEX.get(key)
            if hit is None:
                if value is not None:
                    extras[key] = value
                elif text is not None and text not in _NONFINITE_TEXTS:
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
            (run_id, step, ts, _to_json(extras) if extras else None, *legacy.values()),
        )

    def _rollouts(self, conn: sqlite3.Connection, step: Any, rollouts: list, ts: float) -> None:
        run_id = self.run["id"]
        step = int(_plain(step))
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
            extras = {k: jsonable(v) for k, v in rollout.items() if k not in _ROLLOUT_KNOWN}
            fields = {k: _plain(rollout.get(k)) for k in _ROLLOUT_FIELDS}
            if fields["group_idx"] is None:
                fields["group_idx"] = group_idx
            cursor = conn.execute(
                "INSERT INTO rollouts (run_id, step, group_idx, image_path, gt_lat, gt_lon, city,"
                " country, prompt_text, prompt_tokens, mean_reward, best_reward, extras)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    step,
                    int(fields["group_idx"]),
                    clean_text(fields["image_path"]),
                    _finite(fields["gt_lat"]),
                    _finite(fields["gt_lon"]),
                    clean_text(fields["city"]),
                    clean_text(fields["country"]),
                    clean_text(rollout.get("prompt_text")),
                    _list_field(rollout, "prompt_tokens", extras),
                    sum(finite) / len(finite) if finite else None,
                    max(finite) if finite else None,
                    _to_json(extras) if extras else None,
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
    value = _plain(traj.get("reward"))
    if value is None:
        return 0.0  # 0.2.x default; the column is NOT NULL
    return float(value)


def _trajectory_row(rollout_id: int, idx: int, traj: dict, reward: float) -> tuple:
    extras = {k: jsonable(v) for k, v in traj.items() if k not in _TRAJ_KNOWN}
    if not math.isfinite(reward):
        # The 0.2.x column is NOT NULL and NaN would bind as NULL: keep the truth in extras.
        extras["reward"] = "nan" if math.isnan(reward) else _NONFINITE_TEXT[reward]
        reward = 0.0 if math.isnan(reward) else reward
    index = _plain(traj.get("trajectory_idx"))
    return (
        rollout_id,
        int(index) if index is not None else idx,
        reward,
        clean_text(traj.get("output_text")),
        _list_field(traj, "output_tokens", extras),
        _list_field(traj, "logprobs", extras),
        _finite(traj.get("pred_lat")),
        _finite(traj.get("pred_lon")),
        _finite(traj.get("distance_km")),
        _list_field(traj, "step_rewards", extras),
        _list_field(traj, "turns", extras),
        _to_json(extras) if extras else None,
    )


# -- interpreter exit ----------------------------------------------------------------------------

_live_loggers: weakref.WeakSet[TvizLogger] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Write what is queued. An uncaught exception marks the run crashed, else finished."""
    crashed = getattr(sys, "last_value", None) is not None or getattr(sys, "last_exc", None)
    for logger in list(_live_loggers):
        try:
            logger.close("crashed" if crashed else "finished")
        except Exception:
            pass
