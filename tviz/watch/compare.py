"""`tviz watch`'s compare endpoint: `GET /compare?run=ID&run=ID` builds the comparison of
those runs (what `tviz compare` writes) and redirects to it.

The page is written to `compare/<hash of the sorted ids>.html` in the served folder, through a
temp file and a rename, and is then served like any page the builder wrote (with the reload
script: asking again rebuilds it and its open tab reloads). Builds run in worker threads, at
most BUILD_WORKERS at once; the request waits for its build and answers 303 to the page. Two
requests for the same runs share one build. Only ids of runs in the database are accepted (an
unknown one is a 404, never looked up by name or prefix), at most MAX_RUNS of them, and the
folder keeps the newest MAX_PAGES comparisons. A watch of several databases compares runs of
any of them (those files that can be read at the time of the request).

The server checks Host and Sec-Fetch-Site before it gets here; a build is also refused when the
request does not say where it comes from (see `ReportHandler._compare`).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

from tviz.names import DEFAULT_BUDGET_BYTES

COMPARE_PATH = "/compare"
COMPARE_DIR = "compare"
MAX_RUNS = 12
BUILD_WORKERS = 2
# Distinct sets of runs being built or waiting for a worker; past it, a 503.
MAX_PENDING = 16
MAX_PAGES = 64
# How long a request waits for its build before answering "still building" (asking again
# joins the same build).
BUILD_WAIT_S = 120.0


class CompareRefused(Exception):
    """An answer other than the redirect: an HTTP status and one line for a person."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def page_name(run_ids: Sequence[str]) -> str:
    """The comparison's page, relative to the served folder: one name per set of runs."""
    key = "\x00".join(sorted(set(run_ids))).encode("utf-8", "surrogatepass")
    return f"{COMPARE_DIR}/{hashlib.blake2b(key, digest_size=8).hexdigest()}.html"


def requested_runs(query: str) -> list[str]:
    """The distinct `run` values of a query string, in order (400 when unusable)."""
    try:
        fields = parse_qs(query, max_num_fields=4 * MAX_RUNS, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise CompareRefused(HTTPStatus.BAD_REQUEST, "bad query") from None
    runs = list(dict.fromkeys(fields.get("run", [])))
    if not runs:
        raise CompareRefused(HTTPStatus.BAD_REQUEST, "name runs to compare: ?run=ID&run=ID")
    if len(runs) > MAX_RUNS:
        raise CompareRefused(HTTPStatus.BAD_REQUEST, f"at most {MAX_RUNS} runs at once")
    return runs


@dataclass
class _Build:
    done: threading.Event = field(default_factory=threading.Event)
    error: str = ""


class CompareBuilds:
    """The comparisons built for one served folder from one database, or several."""

    def __init__(
        self,
        root: Path,
        db_path: Path | Sequence[Path] | None,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self.root = root
        if db_path is None or isinstance(db_path, (str, os.PathLike)):
            self.db_paths = [] if db_path is None else [Path(db_path)]
        else:
            self.db_paths = list(dict.fromkeys(Path(p) for p in db_path))
        self.db_path = self.db_paths[0] if self.db_paths else None
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self._builds: dict[str, _Build] = {}
        self._slots = threading.BoundedSemaphore(BUILD_WORKERS)

    def page_for(self, query: str, wait_s: float = BUILD_WAIT_S) -> str:
        """Build the comparison `query` asks for; its URL path. Raises CompareRefused."""
        ids, dbs = self._known_runs(requested_runs(query))
        page = page_name(ids)
        with self._lock:
            build = self._builds.get(page)
            if build is None:
                if len(self._builds) >= MAX_PENDING:
                    raise CompareRefused(
                        HTTPStatus.SERVICE_UNAVAILABLE, "too many comparisons being built"
                    )
                build = self._builds[page] = _Build()
                threading.Thread(
                    target=self._build,
                    args=(ids, dbs, page, build),
                    name="tviz-compare",
                    daemon=True,  # a build in progress does not hold Ctrl-C
                ).start()
        if not build.done.wait(wait_s):
            raise CompareRefused(
                HTTPStatus.SERVICE_UNAVAILABLE, "still building this comparison: reload soon"
            )
        if build.error:
            raise CompareRefused(HTTPStatus.INTERNAL_SERVER_ERROR, build.error)
        return "/" + page

    def known_runs(self, wanted: list[str]) -> list[str]:
        """`wanted`, in the database's order (newest first), if each is the id of a run."""
        return self._known_runs(wanted)[0]

    def _known_runs(self, wanted: list[str]) -> tuple[list[str], list[Path]]:
        """As `known_runs`, and the databases read (those of several that can be read now)."""
        from tviz.store import Store, StoreError

        if not self.db_paths:
            raise CompareRefused(HTTPStatus.NOT_FOUND, "no database")
        if len(self.db_paths) == 1:
            try:
                with Store(self.db_paths[0], timeout=2.0) as store:
                    ids = [r.id for r in store.list_runs()]
            except (StoreError, sqlite3.Error, OSError):
                raise CompareRefused(HTTPStatus.NOT_FOUND, "no runs in the database yet") from None
            dbs = list(self.db_paths)
        else:
            # A file gone or not written yet leaves its runs out; the others are compared.
            # Newest first as in the merged index: a run in several files by its first start.
            started: dict[str, float] = {}
            dbs = []
            for path in self.db_paths:
                try:
                    with Store(path, timeout=2.0) as store:
                        runs = store.list_runs()
                except (StoreError, sqlite3.Error, OSError):
                    continue
                dbs.append(path)
                for run in runs:
                    at = run.started_at or 0.0
                    started[run.id] = min(started.get(run.id, at), at)
            if not dbs:
                raise CompareRefused(HTTPStatus.NOT_FOUND, "no runs in the databases yet")
            ids = sorted(started, key=lambda i: (-started[i], i))
        known = set(ids)
        for run in wanted:
            if run not in known:
                shown = run if len(run) <= 80 else run[:80] + "…"
                raise CompareRefused(HTTPStatus.NOT_FOUND, f"no run with id {shown!r}")
        chosen = set(wanted)
        return [i for i in ids if i in chosen], dbs

    def _build(self, ids: list[str], dbs: list[Path], page: str, build: _Build) -> None:
        try:
            with self._slots:
                from tviz.render.compare import write_comparison
                from tviz.store import StoreError

                try:
                    write_comparison(ids, dbs, self.root / page, budget_bytes=self.budget_bytes)
                    self._prune(keep=page)
                except (StoreError, sqlite3.Error, OSError) as exc:
                    build.error = f"could not build the comparison: {exc}".splitlines()[0]
        except Exception as exc:  # one line, as the server's other errors: no traceback
            build.error = f"could not build the comparison ({type(exc).__name__})"
            print(f"tviz watch: {build.error}", file=sys.stderr)
        finally:
            with self._lock:
                self._builds.pop(page, None)
            build.done.set()

    def _prune(self, keep: str) -> None:
        """Keep the newest MAX_PAGES comparisons (each can be as big as the page budget)."""
        try:
            pages = sorted(
                (p for p in (self.root / COMPARE_DIR).glob("*.html") if p.is_file()),
                key=lambda p: p.stat().st_mtime_ns,
                reverse=True,
            )
            for old in pages[MAX_PAGES:]:
                if f"{COMPARE_DIR}/{old.name}" != keep:
                    old.unlink(missing_ok=True)
        except OSError:
            pass  # a page removed meanwhile: pruning is best effort
