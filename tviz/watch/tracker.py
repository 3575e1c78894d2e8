"""Noticing that a database changed, and rebuilding the pages of the runs that did.

In WAL mode a commit only touches `X.db-wal` (`X.db` changes at checkpoints), so watching
`X.db` alone misses commits: a watchfiles thread watches the database's folder for the file
and its `-wal` and wakes the main loop. `PRAGMA data_version` on an open connection (a few
microseconds) then says exactly whether another connection committed, and `Store.versions()`
(each run's revision) which runs changed. The main loop also looks on a slow timer, so a
missed event (a network file system, an inotify limit) only costs latency. Facts measured:
docs/measurements.md, "Noticing new data".

Several databases (one per node) make one site: each file is looked at as the single file is
(its own connection, `data_version`, deletion and replacement), one watchfiles thread watches
all their folders, and the report builder reads the files that can be read now as one
(`tviz.store.many.StoreSet`). A file that goes away is waited for while the others carry on.

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
# Several folders: how often the watcher checks that none of them went or came back.
FOLDERS_CHECK_MS = 1000
# A database's files that change when it does.
DB_SUFFIXES = ("", "-wal", "-journal")

DbPaths = Path | Sequence[Path]


class PageBuilder(Protocol):
    """What watch needs of `tviz.render.SiteBuilder`."""

    def build(self, run_ids: Sequence[str] | None = None, progress: Any = None) -> Any: ...


# (database, out_dir) -> builder; the database is a list of paths when several are watched.
BuilderFactory = Callable[[Any, Path], PageBuilder]


def db_paths(db_path: DbPaths | str) -> list[Path]:
    """One path or several, as a list without repeats."""
    if isinstance(db_path, (str, os.PathLike)):
        return [Path(db_path)]
    return list(dict.fromkeys(Path(p) for p in db_path))


class FileWatcher:
    """Sets `wake` when a database, its `-wal` or its `-journal` changes, until `stop`.

    `run()` is the body of a thread; one watchfiles watcher covers the folders of every
    database. While watchfiles cannot watch them all (not installed, a folder missing or on a
    network file system, an inotify limit) `fallback` is True: the main loop then looks more
    often.
    """

    def __init__(
        self,
        db_path: DbPaths,
        wake: threading.Event,
        stop: threading.Event,
        log: Callable[[str], None],
    ) -> None:
        self.db_paths = db_paths(db_path)
        self.wake = wake
        self.stop = stop
        self.log = log
        self.folders: dict[Path, set[str]] = {}  # folder -> names of files to wake for
        for path in self.db_paths:
            names = self.folders.setdefault(path.parent, set())
            names.update(path.name + suffix for suffix in DB_SUFFIXES)
        self.polling = False  # for good: some file can only be polled
        self.missing = False  # for now: a folder to watch is not there

    @property
    def fallback(self) -> bool:
        return self.polling or self.missing

    def run(self) -> None:
        """Wake the main loop when a database or its WAL changes; never raises."""
        try:
            import watchfiles
        except ImportError:
            self._fall_back("watchfiles is not installed")
            return
        folders = []
        for folder in self.folders:
            network = network_fs(folder)
            if network:  # a commit made on another machine sends no file event here
                self._fall_back(f"{folder} is on {network}, a network file system")
            else:
                folders.append(folder)
        if not folders:
            return
        names = set().union(*(self.folders[f] for f in folders))

        def ours(_change: Any, path: str) -> bool:
            return os.path.basename(path) in names

        # One folder: wait on it as long as it is there. Several: look up every second
        # whether one went or came back, and watch the ones there are again.
        many = len(folders) > 1
        timeout = {"rust_timeout": FOLDERS_CHECK_MS, "yield_on_timeout": True} if many else {}
        while not self.stop.is_set():
            present = [f for f in folders if f.is_dir()]
            self.missing = len(present) < len(folders)
            if not present:  # nothing to watch yet: the timer looks for the files
                self.stop.wait(FALLBACK_POLL_S)
                continue
            try:
                for changes in watchfiles.watch(
                    *present,
                    watch_filter=ours,
                    step=WATCH_STEP_MS,
                    debounce=WATCH_DEBOUNCE_MS,
                    stop_event=self.stop,
                    recursive=False,  # the folder may be a big one, like the home folder
                    raise_interrupt=False,
                    **timeout,
                ):
                    if changes:
                        self.wake.set()
                    if many and [f for f in folders if f.is_dir()] != present:
                        self.wake.set()  # a file may have gone or come with its folder
                        break
            except Exception as exc:  # e.g. an inotify limit: the timer still notices changes
                if not all(f.is_dir() for f in present):
                    continue  # a folder went away; wait for it to come back
                shown = ", ".join(map(str, present))
                self._fall_back(f"cannot watch {shown} ({exc})")
                return

    def _fall_back(self, why: str) -> None:
        self.polling = True
        what = "the database" if len(self.db_paths) == 1 else "the databases"
        self.log(f"note: {why}; checking {what} every {FALLBACK_POLL_S:g} s instead")


# What looking at a file found.
SAME, CHANGED, OPENED, LOST = "same", "changed", "opened", "lost"


class WatchedFile:
    """One database as the tracker sees it: a read connection kept open (`PRAGMA data_version`
    on it changes exactly when another connection has committed), the file's identity, and
    its runs' versions as last read."""

    def __init__(self, path: Path, log: Callable[[str], None]) -> None:
        self.path = path
        self.log = log
        self.store: Store | None = None
        self.file_id: tuple[int, int] | None = None  # (device, inode) of the open file
        self.data_version: int | None = None
        self.versions: dict[str, tuple] = {}  # Store.versions() as last read
        self.said = ""  # the last thing said about the file, so it is said once

    def look(self) -> str:
        """SAME, CHANGED (someone committed: `versions` read again), OPENED (a new, returned
        or replaced file, now open) or LOST (not readable now; said once)."""
        try:
            st = os.stat(self.path)
        except OSError:
            if self.store is not None:
                self.lost(f"{self.path} was deleted; waiting for it to come back")
            else:
                self.lost(f"waiting for the database {self.path} to be created")
            return LOST
        if st.st_size == 0:
            self.lost(f"waiting for the first data in {self.path}")
            return LOST
        file_id = (st.st_dev, st.st_ino)
        if self.store is not None and file_id != self.file_id:
            self.lost(f"{self.path} was replaced; reading the new file")
        if self.store is None:
            return self._open(file_id)
        try:
            data_version = self.store.data_version()
        except (StoreError, sqlite3.Error) as exc:
            self.lost(f"cannot read {self.path} ({exc}); retrying")
            return LOST
        if data_version == self.data_version:
            return SAME
        self.data_version = data_version
        try:
            self.versions = self.store.versions()
        except (StoreError, sqlite3.Error) as exc:
            self.lost(f"cannot read {self.path} ({exc}); retrying")
            return LOST
        return CHANGED

    def _open(self, file_id: tuple[int, int]) -> str:
        try:
            self.store = Store(self.path, timeout=2.0)
            self.data_version = self.store.data_version()
            self.versions = self.store.versions()
        except (StoreError, sqlite3.Error) as exc:
            self.lost(f"cannot read {self.path} yet ({exc}); waiting for it to change")
            return LOST
        self.file_id = file_id
        if self.said:
            self.log(f"{_clock()} found the database {self.path}")
        return OPENED

    def lost(self, message: str) -> None:
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


class ChangeTracker:
    """Knows what the pages on disk show, and rebuilds the ones the databases have outgrown.

    Used by the main loop only. `db_path` is one database or several (one site over all of
    them, a run found in several merged); each is looked at on its own (see `WatchedFile`).
    """

    def __init__(
        self,
        db_path: DbPaths,
        out_dir: Path,
        builder_factory: BuilderFactory,
        log: Callable[[str], None],
    ) -> None:
        paths = db_paths(db_path)
        self.files = [WatchedFile(path, log) for path in paths]
        self.many = len(self.files) > 1
        self.db_path = paths[0]
        self.out_dir = out_dir
        self.builder_factory = builder_factory
        self.log = log
        self.builder: PageBuilder | None = None  # kept between builds: it caches
        self.built_from: tuple[Path, ...] = ()  # the files the builder reads
        self.versions: dict[str, tuple] = {}  # the runs' versions as of the pages on disk
        self.failed = ""  # the last build error, said once
        self.conflicted: set[str] = set()  # runs whose conflicts between files were said
        # Around each build: the server's `rebuilding` once there is a server.
        self.building: Callable[[], AbstractContextManager[Any]] = nullcontext

    @property
    def waiting(self) -> bool:
        """Some file is not open (missing, empty, unreadable): worth looking at more often."""
        return any(f.store is None for f in self.files)

    def update(self) -> None:
        """Look at the databases and rebuild what changed; problems are reported, never raised."""
        found = [(f, f.look()) for f in self.files]
        opened = [f for f, seen in found if seen == OPENED]
        changed = any(seen == CHANGED for _, seen in found)
        present = [f for f in self.files if f.store is not None]
        if not present:
            return
        if opened or (changed and tuple(f.path for f in present) != self.built_from):
            # A new, returned or replaced file, or one gone since the last build: caches of
            # the files read before mean nothing, build everything.
            self._build_all(present, opened)
        elif changed:
            self._rebuild_changed(present)

    def _versions(self, present: list[WatchedFile]) -> dict[str, tuple]:
        if not self.many:
            return dict(present[0].versions)
        out: dict[str, tuple] = {}
        for f in present:
            i = self.files.index(f)
            for run_id, version in f.versions.items():
                out[run_id] = (*out.get(run_id, ()), i, *version)
        return out

    def _build_all(self, present: list[WatchedFile], opened: list[WatchedFile]) -> None:
        self.builder = None
        self.built_from = tuple(f.path for f in present)
        versions = self._versions(present)
        if not self._build(None, f"built {len(versions)} run(s)"):
            self.versions = {}
            for f in present:
                f.data_version = None  # try again at the next tick
            return
        self.versions = versions
        for f in opened:
            f.said = ""

    def _rebuild_changed(self, present: list[WatchedFile]) -> None:
        versions = self._versions(present)
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
            for f in present:
                f.data_version = None  # look again at the next tick (a second at most)

    def _build(self, run_ids: list[str] | None, done: str) -> bool:
        start = time.perf_counter()
        try:
            if self.builder is None:
                paths = list(self.built_from)
                self.builder = self.builder_factory(paths if self.many else paths[0], self.out_dir)
            with self.building():
                report = self.builder.build(run_ids=run_ids)
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
        self._say_conflicts(report)
        return True

    def _say_conflicts(self, report: Any) -> None:
        """Values two files disagree on: one line per run, the first time it has any (its
        page lists them all). A run rebuilt without conflicts is forgotten."""
        conflicts: dict[str, list[str]] = getattr(report, "conflicts", None) or {}
        for run in getattr(report, "runs", None) or []:
            if not conflicts.get(run.id):
                self.conflicted.discard(run.id)
        for run_id, lines in conflicts.items():
            if not lines or run_id in self.conflicted:
                continue
            self.conflicted.add(run_id)
            more = f" (and {len(lines) - 1} more: see its page)" if len(lines) > 1 else ""
            self.log(f"{_clock()} warning: run {run_id}: {lines[0]}{more}")

    def close(self) -> None:
        for f in self.files:
            f.close()


def _clock() -> str:
    return time.strftime("%H:%M:%S")
