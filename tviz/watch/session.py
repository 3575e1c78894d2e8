"""One `tviz watch`: the server, the file watcher and the rebuild loop, started and stopped
together.

The main thread builds once, then sleeps until the file watcher wakes it (or a slow timer
fires) and lets the change tracker rebuild what changed; the server answers from its own
threads, holding version polls while a rebuild is being written.
"""

from __future__ import annotations

import signal
import threading
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tviz.names import DEFAULT_BUDGET_BYTES, DEFAULT_PORT
from tviz.watch.server import ReportServer, is_loopback
from tviz.watch.tracker import (
    FALLBACK_POLL_S,
    SAFETY_POLL_S,
    BuilderFactory,
    ChangeTracker,
    FileWatcher,
    PageBuilder,
    db_paths,
)


@dataclass(frozen=True)
class WatchOptions:
    # One database, or several (one per node): one site over all of them. Globs are the
    # command's to expand; the files named here are the ones watched.
    db_path: Path | Sequence[Path]
    out_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0 picks a free port (the printed URL names it)
    open_browser: bool = False
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    poll_ms: int = 300  # how often an open page asks whether it changed


def watch(options: WatchOptions, *, log: Callable[[str], None] | None = None) -> None:
    """Build, serve and rebuild until Ctrl-C. Raises WatchError if it cannot start."""
    site = LiveSite(options, log=log)
    try:
        site.start()
        site.run()
    except KeyboardInterrupt:
        pass
    finally:
        with _sigint_ignored():  # a second Ctrl-C must not cut the clean-up short
            site.close()
    site.log("stopped")


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may touch signal handlers; it gets SIGINT anyway
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print(message: str) -> None:
    print(message, flush=True)


def _site_builder(budget_bytes: int) -> BuilderFactory:
    def make(db_path: Any, out_dir: Path) -> PageBuilder:
        # Imported on first use: altair and friends take a while, the server need not wait.
        from tviz.render import SiteBuilder

        return SiteBuilder(db_path, out_dir, budget_bytes=budget_bytes)

    return make


class LiveSite:
    """The server, the file watcher and the rebuild loop of one `tviz watch`.

    `start()` binds the port and starts the threads, `run()` rebuilds until stopped (call it
    from the main thread to get Ctrl-C), `close()` stops and joins everything.
    """

    def __init__(self, options: WatchOptions, *, log: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.log = log or _print
        paths = db_paths([p.expanduser().absolute() for p in db_paths(options.db_path)])
        self.db_paths = paths
        self.db_path = paths[0]
        # One file: exactly the one-file watch (its builder reads a Store, not a StoreSet).
        watched: Path | list[Path] = paths if len(paths) > 1 else paths[0]
        self.out_dir = Path(options.out_dir).expanduser().absolute()
        self.tracker = ChangeTracker(
            watched, self.out_dir, _site_builder(options.budget_bytes), self.log
        )
        self.wake = threading.Event()  # set by the file watcher: look at the databases now
        self.stop = threading.Event()
        self.files = FileWatcher(watched, self.wake, self.stop, self.log)
        self.server: ReportServer | None = None
        self._threads: list[threading.Thread] = []
        self.url = ""

    def start(self) -> str:
        """Bind the port (failing fast if it is taken), start serving and watching."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.server = ReportServer(
            self.options.host,
            self.options.port,
            self.out_dir,
            db_path=self.db_paths if len(self.db_paths) > 1 else self.db_path,
            poll_ms=self.options.poll_ms,
            budget_bytes=self.options.budget_bytes,
        )
        self.url = self.server.url
        self.tracker.building = self.server.rebuilding
        if not is_loopback(self.options.host):
            self.log(
                f"warning: serving on {self.options.host}: anyone who can reach this machine "
                "on the network can read these pages (configs, prompts, model outputs)"
            )
        server = self.server
        # A short poll interval: it is how long Ctrl-C waits for the server to stop.
        self._spawn("tviz-http", lambda: server.serve_forever(poll_interval=0.2))
        self._spawn("tviz-watchfiles", self.files.run)
        if len(self.db_paths) > 1:
            shown = ", ".join(map(str, self.db_paths))
            self.log(f"watching {len(self.db_paths)} databases as one site: {shown}")
        self.log(f"serving {self.out_dir} at {self.url}  (Ctrl-C to stop)")
        return self.url

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def run(self, stop: threading.Event | None = None) -> None:
        """Build once, then rebuild what changed until `stop` (or this site's own) is set."""
        stop = stop or self.stop
        self.tracker.update()
        if self.options.open_browser:
            webbrowser.open(self.url)
        while not stop.is_set() and not self.stop.is_set():
            # Waiting for a file, or without watchfiles: a stat() every 0.25 s is nothing.
            fast = self.files.fallback or self.tracker.waiting
            poll = FALLBACK_POLL_S if fast else SAFETY_POLL_S
            self.wake.wait(poll)
            # Cleared before looking, so a commit landing during the rebuild wakes us again:
            # a burst of commits costs one rebuild now and at most one more after it.
            self.wake.clear()
            if stop.is_set() or self.stop.is_set():
                break
            self.tracker.update()

    def close(self) -> None:
        """Stop the threads and wait for them; safe to call twice."""
        self.stop.set()
        self.wake.set()
        if self.server is not None:
            if any(t.name == "tviz-http" and t.is_alive() for t in self._threads):
                self.server.shutdown()
            self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self.tracker.close()
