"""Noticing that the database changed, and rebuilding the pages of the runs that did.

In WAL mode a commit only touches `X.db-wal` (`X.db` changes at checkpoints), so watching
`X.db` alone misses commits: a watchfiles thread watches the database's folder for the file
and its `-wal` and wakes the main loop. `PRAGMA data_version` on an open connection (a few
microseconds) then says exactly whether another connection committed, and `Store.versions()`
(each run's revision) which runs changed. The main loop also looks on a slow timer, so a
missed event (a network file system, an inotify limit) only costs latency. Facts measured:
docs/measurements.md, "Noticing new data".

Rebuilding is the report builder's (`tviz.render.SiteBuilder`): only the pages of the runs
that changed, plus the index, each written atomically so the server never sends half a page.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from tviz.mounts import network_fs
from tviz.store import Store, StoreError

# watchfiles: yield after 20 ms without new events, at most 100 ms after the first one.
# A 10 ms step noticed a commit in 15-19 ms (the defaults took 94 ms), but its loop takes the
# GIL every step: 0.45% of a core when idle, 0.22% at 20 ms.
WATCH_STEP_MS = 20
WATCH_DEBOUNCE_MS = 100
# How often the main loop checks the file without an event. PRAGMA data_version costs
# microseconds, so this only bounds how late a change watchfiles missed is noticed.
SAFETY_POLL_S = 1.0
FALLBACK_POLL_S = 0.25  # the same, once watchfiles cannot run


class PageBuilder(Protocol):
    """What watch needs of `tviz.render.SiteBuilder`."""

    def build(self, run_ids: Sequence[str] | None = None, progress: Any = None) -> Any: ...


BuilderFactory = Callable[[Path, Path], PageBuilder]


class FileWatcher:
    """Sets `wake` when the database, its `-wal` or its `-journal` changes, until `stop`.

    `run()` is the body of a thread. While watchfiles cannot watch (not installed, the folder
    missing, an inotify limit) `fallback` is True: the main loop then looks more often.
    """

    def __init__(
        self,
        db_path: Path,
        wake: threading.Event,
        stop: threading.Event,
        log: Callable[[str], None],
    ) -> None:
        self.db_path = db_path
        self.wake = wake
        self.stop = stop
        self.log = log
        self.fallback = False

    def run(self) -> None:
        """Wake the main loop when the database or its WAL changes; never raises."""
        try:
            import watchfiles
        except ImportError:
            self._fall_back("watchfiles is not installed")
            return
        network = network_fs(self.db_path.parent)
        if network:  # a commit made on another machine sends no file event here
            self._fall_back(f"{self.db_path.parent} is on {network}, a network file system")
            return
        names = {self.db_path.name + suffix for suffix in ("", "-wal", "-journal")}

        def ours(_change: Any, path: str) -> bool:
            return os.path.basename(path) in names

        folder = self.db_path.parent
        while not self.stop.is_set():
            if not folder.is_dir():  # nothing to watch yet: the timer looks for the file
                self.fallback = True
                self.stop.wait(FALLBACK_POLL_S)
                continue
            self.fallback = False
            try:
                for _changes in watchfiles.watch(
                    folder,
                    watch_filter=ours,
                    step=WATCH_STEP_MS,
                    debounce=WATCH_DEBOUNCE_MS,
                    stop_event=self.stop,
                    recursive=False,  # the folder may be a big one, like the home folder
                    raise_interrupt=False,
                ):
                    self.wake.set()
            except Exception as exc:  # e.g. an inotify limit: the timer still notices changes
                if not folder.is_dir():
                    continue  # the folder went away; wait for it to come back
                self._fall_back(f"cannot watch {folder} ({exc})")
                return

    def _fall_back(self, why: str) -> None:
        self.fallback = True
        self.log(f"note: {why}; checking the database every {FALLBACK_POLL_S:g} s instead")


class ChangeTracker:
    """Knows what the pages on disk show, and rebuilds the ones the database has outgrown.

    Used by the main loop only. It keeps one read connection open: `PRAGMA data_version`
    on it changes exactly when another connection has committed.
    """

    def __init__(
        self,
        db_path: Path,
        out_dir: Path,
        builder_factory: BuilderFactory,
        log: Callable[[str], None],
    ) -> None:
        self.db_path = db_path
        self.out_dir = out_dir
        self.builder_factory = builder_factory
        self.log = log
        self.store: Store | None = None
        self.builder: PageBuilder | None = None  # kept between builds: it caches
        self.file_id: tuple[int, int] | None = None  # (device, inode) of the open file
        self.data_version: int | None = None
        self.versions: dict[str, tuple] = {}  # Store.versions() as of the pages on disk
        self.said = ""  # the last thing said about the file, so it is said once
        self.failed = ""  # the last build error, likewise
        # Around each build: the server's `rebuilding` once there is a server.
        self.building: Callable[[], AbstractContextManager[Any]] = nullcontext

    def update(self) -> None:
        """Look at the database and rebuild what changed; problems are reported, never raised."""
        try:
            st = os.stat(self.db_path)
        except OSError:
            if self.store is not None:
                self._lost(f"{self.db_path} was deleted; waiting for it to come back")
            else:
                self._lost(f"waiting for the database {self.db_path} to be created")
            return
        if st.st_size == 0:
            self._lost(f"waiting for the first data in {self.db_path}")
            return
        file_id = (st.st_dev, st.st_ino)
        if self.store is not None and file_id != self.file_id:
            self._lost(f"{self.db_path} was replaced; reading the new file")
        if self.store is None:
            self._open(file_id)
            return
        try:
            data_version = self.store.data_version()
        except (StoreError, sqlite3.Error) as exc:
            self._lost(f"cannot read {self.db_path} ({exc}); retrying")
            return
        if data_version == self.data_version:
            return
        self.data_version = data_version
        self._rebuild_changed()

    def _open(self, file_id: tuple[int, int]) -> None:
        try:
            self.store = Store(self.db_path, timeout=2.0)
            self.data_version = self.store.data_version()
            versions = self.store.versions()
        except (StoreError, sqlite3.Error) as exc:
            self._lost(f"cannot read {self.db_path} yet ({exc}); waiting for it to change")
            return
        self.file_id = file_id
        if self.said:
            self.log(f"{_clock()} found the database {self.db_path}")
        # A new or replaced file: caches of the old one mean nothing, build everything.
        self.builder = None
        if not self._build(None, f"built {len(versions)} run(s)"):
            self.versions = {}
            self.data_version = None  # try again at the next tick
            return
        self.versions = versions
        self.said = ""

    def _rebuild_changed(self) -> None:
        assert self.store is not None
        try:
            versions = self.store.versions()
        except StoreError as exc:
            self._lost(f"cannot read {self.db_path} ({exc}); retrying")
            return
        changed = [run_id for run_id, v in versions.items() if self.versions.get(run_id) != v]
        gone = set(self.versions) - set(versions)
        if not changed and not gone:
            return  # a commit that changed no run (a checkpoint, a no-op)
        what = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        if self._build(changed, f"re-rendered {what or 'the index'}"):
            self.versions = versions
        else:
            self.data_version = None  # look again at the next tick (a second at most)

    def _build(self, run_ids: list[str] | None, done: str) -> bool:
        start = time.perf_counter()
        try:
            if self.builder is None:
                self.builder = self.builder_factory(self.db_path, self.out_dir)
            with self.building():
                self.builder.build(run_ids=run_ids)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a watcher outlives one bad moment: it tries again later
            message = f"rebuild failed: {type(exc).__name__}: {exc}"
            if message != self.failed:  # said once, not at every retry
                self.log(f"{_clock()} {message}")
                self.failed = message
            if not isinstance(exc, (StoreError, sqlite3.Error)):
                self.builder = None  # not a busy or vanished file: distrust its caches
            return False
        self.failed = ""
        self.log(f"{_clock()} {done} in {time.perf_counter() - start:.2f} s")
        return True

    def _lost(self, message: str) -> None:
        self.close()
        self.file_id = None
        self.versions = {}
        if self.said != message:
            self.log(f"{_clock()} {message}")
            self.said = message

    def close(self) -> None:
        if self.store is not None:
            try:
                self.store.close()
            except sqlite3.Error:
                pass
            self.store = None
        self.data_version = None


def _clock() -> str:
    return time.strftime("%H:%M:%S")
