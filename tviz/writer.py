"""The writer: the one thread that turns log calls into rows of a tviz database.

`TvizLogger`'s calls put ops (tuples) on a byte-counted queue (`tviz.backlog`) and return; a
daemon thread takes what is waiting and writes it in one transaction, so a burst of calls costs
one commit. A healthy database loses nothing: a caller that outruns the disk waits for room.
When the file cannot be written (locked, full, read-only, an I/O error) the ops are kept in
memory and retried with a growing pause, and the training loop gets one warning, never an
exception; once the queue's byte limit is reached, calls are refused (the backlog says when).
A call holding a value that cannot be stored is skipped alone: the batch is written again one
call at a time, each in a savepoint. A file deleted or replaced under the writer gets the run
written into a new one. With `strict` (tests) every op is written at once in the caller's
thread, and errors raise. The SQL of each op is `tviz.rows`.

Each writer registers itself in the `writers` table while it writes (`tviz.presence`): one that
finds no other live writer of its run is a resume, and the rollouts of a step it logs again
replace those an earlier session logged; a rank, a forked child or a second process that joins
a live run never deletes another's groups.

After `os.fork()` the child's copy of a writer has no thread, and its queue and connection are
the parent's: `after_fork_in_child` gives it empty ones (the parent writes what it queued; the
child's calls are written by a thread of its own, started by its first call).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tviz import exits, presence, rows, schema
from tviz.backlog import Backlog
from tviz.values import clean_text, plain_scalar

__all__ = ["DEFAULT_QUEUE_BYTES", "Writer"]

# The queue's default byte limit (TvizLogger(queue_mb=...), $TVIZ_QUEUE_MB).
DEFAULT_QUEUE_BYTES = 256 * 2**20
# Ops whose last element is the time they were logged: they move the run's last_ts.
_TIMED_OPS = frozenset({"metrics", "rollouts", "text"})
# Connections a forked child inherited: never closed there (they are the parent's), so that
# their finalizer cannot touch the parent's file.
_INHERITED: list[sqlite3.Connection] = []


class Writer:
    """Owns the connection. Async: a daemon thread drains a queue; strict: inline.

    The ops `submit` takes, one per log call (`ts`: Unix seconds):
    `("run",)`, `("config", config)`, `("metrics", step or None, {name: value}, ts)`,
    `("rollouts", step, [rollout dict], ts)`, `("text", key, text, ts)`, `("end", status, ts)`,
    and an importer's `("forget", metric steps, rollout steps)`.
    """

    def __init__(
        self,
        path: Path,
        run_row: dict[str, Any],
        *,
        strict: bool,
        warn: Callable[[str], None],
        rank: int | None = None,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self.path = path
        self.run = run_row
        self.strict = strict
        self.rank = rank
        self.queue_bytes = queue_bytes
        self.inherited = False  # a forked child's copy of its parent's writer
        self._warn = warn  # the logger's: never raises, says "tviz:" and TvizWarning
        self.conn: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._rollout_steps: set[int] = set()
        self._stopped = False
        self._fresh_state()
        if not strict:
            self._start()
        exits.register(self)

    def _fresh_state(self) -> None:
        self.backlog = Backlog(self.queue_bytes)
        self._batch_bytes = max(self.queue_bytes // 4, 1 << 20)
        self._pending: list[tuple[tuple, int]] = []  # taken off the queue, not yet committed
        self._failing: str | None = None  # the warning currently in force, shown once
        self._refused_said = False  # the refusals of this outage were warned about
        self._refused_before = 0  # backlog.refused when writing last worked again
        self._refused_flushed = 0  # backlog.refused at the last flush()
        self._writer_id = uuid.uuid4().hex
        self._registered = False  # this writer's row and the run's are in the open file
        self._resumed_below: int | None = None
        self._last_beat = 0.0
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- the caller's side

    def submit(self, op: tuple, nbytes: int = 0) -> None:
        if self.strict:
            self._write([(op, nbytes)])
        elif not self._stopped:
            if self._thread is None:  # a forked child's first call
                self._start()
            if not self.backlog.put(op, nbytes):
                self._refused()

    def flush(self, timeout: float | None) -> bool:
        if self.strict:
            return not self._pending
        refused = self.backlog.refused
        ok = refused == self._refused_flushed  # nothing refused since the last flush
        self._refused_flushed = refused
        thread = self._thread
        if thread is None or not thread.is_alive():
            return ok and not self._pending and not self.backlog.held
        done = threading.Event()
        result: list[bool] = []
        self.backlog.put_marker(("flush", done, result))
        return done.wait(timeout) and all(result) and ok

    def stop(self, status: str | None = None, timeout: float = 30.0) -> None:
        """Write `("end", status)` if a status is given, everything queued, and release the
        file; waits up to `timeout` for the thread."""
        exits.unregister(self)
        if self._stopped:
            return
        if status is not None:
            self.submit(("end", status, time.time()))
        if self.strict:
            self._stopped = True
            self._release()
            return
        self._stopped = True
        thread = self._thread
        if thread is None:
            return
        self.backlog.put_marker(("stop",))
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                self._warn(
                    f"the writer did not finish within {timeout:g} s; up to "
                    f"{self.backlog.held // 1024 + 1} KB of log calls may not be written"
                )

    def at_exit(self, crashed: bool) -> None:
        """The interpreter (or a multiprocessing child) exits: write what is queued. A forked
        child's copy of its parent's writer does not end the parent's run; a strict writer
        (tests) leaves its run as it is, as it always did."""
        if self.strict or self.inherited:
            self.stop(None)
        else:
            self.stop("crashed" if crashed else "finished")

    def after_fork_in_child(self) -> None:
        """In a child of `os.fork()`: the parent's thread is gone and its queue and connection
        are the parent's. Start empty; the first call starts a thread of this process."""
        if self.conn is not None:
            _INHERITED.append(self.conn)
        self.conn = None
        self._file_id = None
        self._rollout_steps = set()
        self.inherited = True
        self._fresh_state()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stopped:
                thread = threading.Thread(target=self._loop, name="tviz-writer", daemon=True)
                thread.start()
                self._thread = thread
                exits.thread_started()

    def _refused(self) -> None:
        """A call was refused: say so once an outage, with the reason."""
        if not self._refused_said:
            self._refused_said = True
            self._warn(
                f"{self.path} cannot take data ({self.backlog.why()}) and"
                f" {self.backlog.limit / 2**20:g} MB of log calls already wait for it: calls"
                " are refused until it can; this one was not logged"
            )

    # -- the thread

    def _loop(self) -> None:
        backoff = 0.0
        while True:
            idle_wait = presence.HEARTBEAT_S if self._registered else None
            batch = self.backlog.take(backoff or idle_wait, self._batch_bytes)
            if not batch and not backoff:
                self._heartbeat()
                continue
            waiters = [op for op, _ in batch if op[0] == "flush"]
            stop = any(op[0] == "stop" for op, _ in batch)
            work = [item for item in batch if item[0][0] not in ("flush", "stop")]
            try:
                ok = self._write(work, final=stop)
            except Exception:  # never let the thread die: later calls would vanish silently
                ok = False
            backoff = 0.0 if ok else min(max(backoff * 2, 0.25), 5.0)
            for _, event, result in waiters:
                result.append(ok)
                event.set()
            if stop:
                if not ok:  # one last try, briefly, then give up with a count of what is lost
                    time.sleep(0.5)
                    if not self._write([], final=True):
                        self._warn(f"{len(self._pending)} log calls could not be written")
                self._close_conn()
                self.backlog.alive = False
                return

    # -- writing

    def _write(self, ops: list[tuple[tuple, int]], *, final: bool = False) -> bool:
        """Write pending ops then `ops` in one transaction; keep them if that fails."""
        self._pending.extend(ops)
        if not self._pending and not (final and self._registered):
            return True
        if not self._pending and self._file_moved():  # a goodbye makes no new file
            self._close_conn()
            return True
        steps = set(self._rollout_steps)
        if self.strict:  # nothing is kept for a retry: the caller sees the error
            try:
                self._transaction(isolated=False, final=final)
            except BaseException:
                self._rollout_steps = steps
                raise
            finally:
                self._pending.clear()
            return True
        try:
            try:
                self._transaction(isolated=False, final=final)
            except sqlite3.OperationalError:
                raise
            except Exception:
                # A call holds something that cannot be stored. Write the batch again one
                # call at a time (savepoints: slower), so that only that call is skipped.
                self._rollout_steps = set(steps)
                self._transaction(isolated=True, final=final)
        except (sqlite3.Error, OSError, schema.SchemaError) as exc:
            self._rollout_steps = steps  # rolled back: those steps were not logged after all
            self._trouble(f"cannot write to {self.path} ({exc}); will retry, training goes on")
            self.backlog.failed(str(exc))
            if not isinstance(exc, sqlite3.OperationalError):
                self._close_conn()  # maybe a broken handle: reopen next time
            return False
        except Exception as exc:  # a bug of ours: never retry it forever, never kill the thread
            self._warn(f"dropped {len(self._pending)} log calls: {type(exc).__name__}: {exc}")
        nbytes = sum(n for _, n in self._pending)
        count = len(self._pending)
        self._pending.clear()
        self.backlog.done(nbytes, count)
        if self._failing or self._refused_said:
            refused = self.backlog.refused - self._refused_before
            lost = f"; {refused} log calls were refused meanwhile" if refused else ""
            self._warn(f"writing to {self.path} works again{lost}")
            self._failing = None
            self._refused_said = False
            self._refused_before = self.backlog.refused
        return True

    def _transaction(self, *, isolated: bool, final: bool) -> None:
        conn = self._connection()
        self.backlog.locking_since = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            self.backlog.locking_since = None
        try:
            if not self._registered:
                self._register(conn)
            for op, _ in self._pending:
                if isolated:
                    self._apply_isolated(conn, op)
                else:
                    self._apply(conn, op)
            stamps = [op[-1] for op, _ in self._pending if op[0] in _TIMED_OPS]
            last = max(stamps) if stamps else None
            if self._pending:
                conn.execute(
                    "UPDATE runs SET revision = revision + 1, last_ts = CASE WHEN ? IS NULL"
                    " THEN last_ts ELSE max(COALESCE(last_ts, 0), ?) END WHERE id = ?",
                    (last, last, self.run["id"]),
                )
            beat = self._beat(conn, final)
            conn.execute("COMMIT")
        except BaseException:
            self._registered = False  # rolled back with the rest: again next time
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._registered = not final
        if beat:
            self._last_beat = time.monotonic()

    def _register(self, conn: sqlite3.Connection) -> None:
        """This writer's row, the run's row, and whether this session resumes the run."""
        run_id = self.run["id"]
        live = presence.join(conn, self._writer_id, run_id, self.rank)
        self._last_beat = time.monotonic()
        rows.upsert_run(conn, self.run, reopen=not (self.rank or self.inherited))
        # Rollouts up to this id were logged by an earlier session of this run (this rank's):
        # unless another writer of it is live, this one resumes it and replaces them.
        self._resumed_below = (
            None
            if live
            else conn.execute(
                "SELECT max(id) FROM rollouts WHERE run_id = ? AND COALESCE(rank, 0) = ?",
                (run_id, self.rank or 0),
            ).fetchone()[0]
        )
        self._registered = True

    def _beat(self, conn: sqlite3.Connection, final: bool) -> bool:
        """Refresh (or, `final`, remove) this writer's row; False if it was fresh already."""
        if final:
            presence.leave(conn, self._writer_id)
            return False
        if time.monotonic() - self._last_beat < presence.HEARTBEAT_S / 10:
            return False  # refreshed a moment ago: no update on every busy commit
        presence.beat(conn, self._writer_id, self.run["id"], self.rank)
        return True

    def _heartbeat(self) -> None:
        """Idle: keep this writer's row fresh, so that other writers know it lives."""
        if self.conn is None or not self._registered:
            return
        if time.monotonic() - self._last_beat < presence.HEARTBEAT_S:
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self._beat(self.conn, False)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self._last_beat = time.monotonic()
        except sqlite3.Error:
            pass  # the next write says what is wrong, if anything

    def _trouble(self, message: str) -> None:
        if self._failing is None:
            self._warn(message)
        self._failing = message

    def _file_moved(self) -> bool:
        """The open connection's file was deleted or replaced."""
        if self.conn is None or self._file_id is None:
            return False
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._file_id

    def _connection(self) -> sqlite3.Connection:
        if self._file_moved():
            self._warn(f"{self.path} was deleted or replaced; writing this run into a new file")
            self._close_conn()
        if self.conn is None:
            self.conn = schema.connect(self.path)
            st = os.stat(self.path)
            self._file_id = (st.st_dev, st.st_ino)
            # A new or replaced file needs this writer's row and the run's before anything.
            self._registered = False
        return self.conn

    def _release(self) -> None:
        """Strict mode's stop: say goodbye in the writers table, close the file."""
        if self.conn is not None and self._registered:
            try:
                self._write([], final=True)
            except sqlite3.Error:
                pass
        self._close_conn()

    def _close_conn(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
            self.conn = None
            self._registered = False

    def _apply_isolated(self, conn: sqlite3.Connection, op: tuple) -> None:
        """One log call, all or nothing: a value that cannot be stored skips that call only.

        Only `sqlite3.OperationalError` (locked, full, I/O) escapes, so that the whole batch is
        kept and retried.
        """
        conn.execute("SAVEPOINT op")
        steps = set(self._rollout_steps)
        try:
            self._apply(conn, op)
        except sqlite3.OperationalError:
            raise
        except Exception as exc:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            self._rollout_steps = steps
            self._warn(f"skipped a {op[0]} call: {type(exc).__name__}: {exc}")
            return
        conn.execute("RELEASE op")

    def _apply(self, conn: sqlite3.Connection, op: tuple) -> None:
        kind = op[0]
        run_id = self.run["id"]
        if kind == "metrics":
            _, step, metrics, ts = op
            rows.write_metrics(conn, run_id, step, metrics, ts, self.rank)
        elif kind == "rollouts":
            step = int(plain_scalar(op[1]))
            # A resumed run logs this step again: its new groups replace the old session's,
            # as its metrics do. Groups this session already logged for the step are kept.
            replace = None if step in self._rollout_steps else self._resumed_below
            self._rollout_steps.add(step)
            rows.write_rollouts(conn, run_id, step, op[2], self.rank, replace)
        elif kind == "run":
            rows.upsert_run(conn, self.run, reopen=not (self.rank or self.inherited))
        elif kind == "config":
            text = rows.merge_config(conn, run_id, op[1], keep_old=bool(self.rank))
            self.run["config"] = text
        elif kind == "text":
            _, key, text, ts = op
            conn.execute(
                "INSERT INTO texts (run_id, key, text, ts) VALUES (?, ?, ?, ?)",
                (run_id, key, clean_text(text), ts),
            )
        elif kind == "forget":
            rows.forget_steps(conn, run_id, op[1], op[2])
        elif kind == "end" and not self.inherited and (not self.rank or op[1] != "finished"):
            # A rank other than 0 ends the run only by failing: rank 0 says when it finished.
            # A forked child's copy of the parent's logger never ends the parent's run.
            rows.end_run(conn, run_id, op[1], op[2])
