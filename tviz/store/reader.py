"""`Store`: open a database read-only in spirit (upgrading a 0.2.x file in place, or reading a
read-only file as it is) and read runs, each page's data inside one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tviz import schema
from tviz.store import figures
from tviz.store.cells import _NUMBER, _TIME, _bounded, _count, _json_dict, _lenient_text
from tviz.store.data import (
    LongText,
    Rollout,
    RunData,
    RunNotFound,
    RunSummary,
    StoreError,
    find_run_in,
)
from tviz.store.figures import GroupFigures
from tviz.store.metrics import MetricsCache, read_metrics
from tviz.store.queries import _left_out, _rollouts, _summaries, _summary_values
from tviz.store.series import HEADLINE_ROLES, Series, headline_series

T = TypeVar("T")


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

    def run_order(self) -> list[str]:
        """Every run's id in `list_runs`'s order (newest first), without their summaries."""

        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT CAST(id AS TEXT) FROM runs WHERE id IS NOT NULL"
                " ORDER BY COALESCE(started_ts, 0) DESC, id"
            )
            return [row[0] for row in rows]

        return self._read(read)

    def run_summary(self, run_id: str) -> RunSummary:
        """One run's row, as `list_runs` has it."""
        found = self._read(lambda conn: self._summaries(conn, run_id))
        if not found:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
        return found[0]

    def find_run(self, name_or_id: str) -> RunSummary:
        """A run by exact id, else by exact name (the newest of that name), else by a prefix
        of its id that only it has."""
        return find_run_in(self.list_runs(), name_or_id, str(self.path))

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

    def headline_series(
        self, run_id: str, roles: Iterable[str] = HEADLINE_ROLES
    ) -> dict[str, Series]:
        """Role -> the run's metric that fills it (reward, KL, entropy, output length), with
        the values `load_run(run_id).metrics[name]` holds, reading none of its other metrics
        (store/series.py). Roles the run has no metric for are left out."""
        key = self._key(run_id)

        def read(conn: sqlite3.Connection) -> dict[str, Series]:
            if conn.execute("SELECT 1 FROM runs WHERE id = CAST(? AS TEXT)", (key,)).fetchone():
                return headline_series(conn, key, roles)
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")

        return self._read(read)

    def config(self, run_id: str) -> dict[str, Any]:
        """The run's config, as `load_run(run_id).config` (one row read)."""
        key = self._key(run_id)

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            row = conn.execute("SELECT config FROM runs WHERE id = CAST(? AS TEXT)", (key,))
            found = row.fetchone()
            if found is None:
                raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
            return _bounded(_json_dict(found[0], "config"))

        return self._read(read)

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
        """step -> (number of training rollout groups, highest rollout id): changes when a
        step does."""
        key = self._key(run_id)
        with self.snapshot() as conn:
            rows = conn.execute(
                "SELECT step, count(*), max(id) FROM rollouts"
                " WHERE run_id = CAST(? AS TEXT) AND typeof(step) = 'integer'"
                " AND eval_name IS NULL GROUP BY step",
                (key,),
            )
            return {step: (count, max_id) for step, count, max_id in rows}

    def step_figures(self, run_id: str, step: int) -> list[GroupFigures]:
        """The figures of the run's training groups at `step` (store/figures.py): no texts."""
        key = self._key(run_id)
        return self._read(lambda conn: figures.step_figures(conn, key, step))

    def groups(self, run_id: str, keys: Sequence[int]) -> list[Rollout]:
        """The training groups with these keys (`GroupFigures.key`), whole, in that order."""
        key = self._key(run_id)
        return self._read(lambda conn: figures.groups(conn, key, keys))

    def load_run(
        self,
        run_id: str,
        *,
        rollout_steps: Iterable[int] | None = None,
        evals: bool = True,
        summary: RunSummary | None = None,
        metrics: MetricsCache | None = None,
    ) -> RunData:
        """One run's config, metrics and rollouts, read in one transaction.

        `rollout_steps` limits the training rollouts read to those steps (a renderer that
        cached the others); None reads them all. `evals`: read the eval rollouts (all of them).
        `summary`: the run's row, read in the snapshot this call is in (not read again).
        `metrics`: the run's metrics as an earlier call read them from this file (only what
        changed since is read; store/metrics.py).
        """
        key = self._key(run_id)
        steps = None if rollout_steps is None else sorted({int(s) for s in rollout_steps})

        def read(conn: sqlite3.Connection) -> RunData:
            found = [summary] if summary is not None else self._summaries(conn, run_id)
            if not found:
                raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
            config = conn.execute("SELECT config FROM runs WHERE id = CAST(? AS TEXT)", (key,))
            series, text_metrics, dropped = read_metrics(conn, key, metrics)
            return RunData(
                summary=found[0],
                config=_bounded(_json_dict(config.fetchone()[0], "config")),
                metrics=series,
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
                eval_rollouts=_rollouts(conn, key, None, evals=True) if evals else [],
            )

        return self._read(read)


# SQL conditions: a column holds a number; a time a page can show (Unix seconds, see MAX_TIME).
