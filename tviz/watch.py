"""`tviz watch`: rebuild the report as a run trains, serve it, and reload the open pages.

Three small parts, in the spirit of mkdocs' livereload:

- noticing: in WAL mode a commit only touches `X.db-wal` (MEASUREMENTS.md), so a watchfiles
  thread watches the database's folder for the file and its `-wal` and wakes the main loop;
  `PRAGMA data_version` on an open connection then says exactly whether anyone committed, and
  `Store.versions()` which runs changed. A slow timer checks the same things, so a missed event
  (a network file system, an inotify limit) only costs latency.
- re-rendering: only the pages of the runs that changed, plus the index, by the report builder
  (which writes each page atomically, so the server never sends half a page).
- serving: a stdlib ThreadingHTTPServer for the output folder, loopback only unless asked,
  GET and HEAD only, no path out of the folder, no foreign Host header. HTML gets a small
  reload script at serve time (the files stay exactly as `tviz build` writes them): it polls a
  tiny version endpoint, since server-sent events use up Chromium's six connections per host.
  On a change it fetches the new page and lets the page update itself in place (its charts
  keep their Vega views, zoom and the reader's place), reloading only when it cannot.
"""

from __future__ import annotations

import errno
import hashlib
import html
import ipaddress
import json
import mimetypes
import os
import re
import signal
import socket
import sqlite3
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from tviz.names import DEFAULT_BUDGET_BYTES
from tviz.store import Store, StoreError

__all__ = ["WatchError", "WatchOptions", "LiveSite", "watch"]

VERSION_PATH = "/__tviz/version"
VERSION_HEADER = "X-Tviz-Version"
# watchfiles: yield after 20 ms without new events, at most 100 ms after the first one.
# A 10 ms step noticed a commit in 15-19 ms (MEASUREMENTS.md; the defaults took 94 ms), but
# its loop takes the GIL every step: 0.45% of a core when idle, 0.22% at 20 ms.
WATCH_STEP_MS = 20
WATCH_DEBOUNCE_MS = 100
# How often the main loop checks the file without an event. PRAGMA data_version costs
# microseconds, so this only bounds how late a change watchfiles missed is noticed.
SAFETY_POLL_S = 1.0
FALLBACK_POLL_S = 0.25  # the same, once watchfiles cannot run
# A page asking for its version while pages are being rebuilt gets its answer when they are
# written (at most this much later) instead of the old version: it then learns of the change
# at once, not one poll interval after the rebuild (150 ms on average at 300 ms).
REBUILD_HOLD_S = 2.0
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class WatchError(Exception):
    """A reason `tviz watch` cannot start; the message is one line for a person."""


class PageBuilder(Protocol):
    """What watch needs of `tviz.render.SiteBuilder`."""

    def build(self, run_ids: Sequence[str] | None = None, progress: Any = None) -> Any: ...


BuilderFactory = Callable[[Path, Path], PageBuilder]


@dataclass(frozen=True)
class WatchOptions:
    db_path: Path
    out_dir: Path
    host: str = "127.0.0.1"
    port: int = 3003  # 0 picks a free port (the printed URL names it)
    open_browser: bool = False
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    poll_ms: int = 300  # how often an open page asks whether it changed


def watch(
    options: WatchOptions,
    *,
    log: Callable[[str], None] | None = None,
    builder_factory: BuilderFactory | None = None,
) -> None:
    """Build, serve and rebuild until Ctrl-C. Raises WatchError if it cannot start."""
    site = LiveSite(options, log=log, builder_factory=builder_factory)
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
    def make(db_path: Path, out_dir: Path) -> PageBuilder:
        # Imported on first use: altair and friends take a while, the server need not wait.
        from tviz.render import SiteBuilder

        return SiteBuilder(db_path, out_dir, budget_bytes=budget_bytes)

    return make


class LiveSite:
    """The server, the file watcher and the rebuild loop of one `tviz watch`.

    `start()` binds the port and starts the threads, `run()` rebuilds until stopped (call it
    from the main thread to get Ctrl-C), `close()` stops and joins everything.
    """

    def __init__(
        self,
        options: WatchOptions,
        *,
        log: Callable[[str], None] | None = None,
        builder_factory: BuilderFactory | None = None,
    ) -> None:
        self.options = options
        self.log = log or _print
        self.db_path = Path(options.db_path).expanduser().absolute()
        self.out_dir = Path(options.out_dir).expanduser().absolute()
        self.tracker = ChangeTracker(
            self.db_path,
            self.out_dir,
            builder_factory or _site_builder(options.budget_bytes),
            self.log,
        )
        self.wake = threading.Event()  # set by the file watcher: look at the database now
        self.stop = threading.Event()
        self.server: ReportServer | None = None
        self._threads: list[threading.Thread] = []
        self._fallback = False
        self.url = ""

    def start(self) -> str:
        """Bind the port (failing fast if it is taken), start serving and watching."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.server = ReportServer(
            self.options.host,
            self.options.port,
            self.out_dir,
            db_path=self.db_path,
            poll_ms=self.options.poll_ms,
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
        self._spawn("tviz-watchfiles", self._watch_files)
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
            # Waiting for the file, or without watchfiles: a stat() every 0.25 s is nothing.
            fast = self._fallback or self.tracker.store is None
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

    # -- noticing commits ---------------------------------------------------------------------

    def _watch_files(self) -> None:
        """Wake the main loop when the database or its WAL changes; never raises."""
        try:
            import watchfiles
        except ImportError:
            self._fall_back("watchfiles is not installed")
            return
        names = {self.db_path.name + suffix for suffix in ("", "-wal", "-journal")}

        def ours(_change: Any, path: str) -> bool:
            return os.path.basename(path) in names

        folder = self.db_path.parent
        while not self.stop.is_set():
            if not folder.is_dir():  # nothing to watch yet: the timer looks for the file
                self._fallback = True
                self.stop.wait(FALLBACK_POLL_S)
                continue
            self._fallback = False
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
        self._fallback = True
        self.log(f"note: {why}; checking the database every {FALLBACK_POLL_S:g} s instead")


# -- change detection and rebuilding ---------------------------------------------------------


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
        self.building: Callable[[], AbstractContextManager[Any]] = nullcontext  # the server's

    def update(self) -> list[str] | None:
        """Look at the database and rebuild what changed; returns the runs rebuilt
        (None when the whole site was). Problems are reported, never raised."""
        try:
            st = os.stat(self.db_path)
        except OSError:
            if self.store is not None:
                self._lost(f"{self.db_path} was deleted; waiting for it to come back")
            else:
                self._lost(f"waiting for the database {self.db_path} to be created")
            return []
        if st.st_size == 0:
            self._lost(f"waiting for the first data in {self.db_path}")
            return []
        file_id = (st.st_dev, st.st_ino)
        if self.store is not None and file_id != self.file_id:
            self._lost(f"{self.db_path} was replaced; reading the new file")
        if self.store is None:
            return self._open(file_id)
        try:
            data_version = self.store.data_version()
        except (StoreError, sqlite3.Error) as exc:
            self._lost(f"cannot read {self.db_path} ({exc}); retrying")
            return []
        if data_version == self.data_version:
            return []
        self.data_version = data_version
        return self._rebuild_changed()

    def _open(self, file_id: tuple[int, int]) -> list[str] | None:
        try:
            self.store = Store(self.db_path, timeout=2.0)
            self.data_version = self.store.data_version()
            versions = self.store.versions()
        except (StoreError, sqlite3.Error) as exc:
            self._lost(f"cannot read {self.db_path} yet ({exc}); waiting for it to change")
            self.close()
            return []
        self.file_id = file_id
        if self.said:
            self.log(f"{_clock()} found the database {self.db_path}")
        # A new or replaced file: caches of the old one mean nothing, build everything.
        self.builder = None
        if not self._build(None, f"built {len(versions)} run(s)"):
            self.versions = {}
            self.data_version = None  # try again at the next tick
            return []
        self.versions = versions
        self.said = ""
        return None

    def _rebuild_changed(self) -> list[str]:
        assert self.store is not None
        try:
            versions = self.store.versions()
        except StoreError as exc:
            self._lost(f"cannot read {self.db_path} ({exc}); retrying")
            return []
        changed = [run_id for run_id, v in versions.items() if self.versions.get(run_id) != v]
        gone = set(self.versions) - set(versions)
        if not changed and not gone:
            return []  # a commit that changed no run (a checkpoint, a no-op)
        what = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        if self._build(changed, f"re-rendered {what or 'the index'}"):
            self.versions = versions
        else:
            self.data_version = None  # look again at the next tick (a second at most)
        return changed

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


# -- serving ---------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True if every address `host` names is a loopback one."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


class ReportServer(ThreadingHTTPServer):
    """Serves one folder to the browsers of this machine (or, if asked, the network)."""

    # Request threads are not waited for on close: a browser's idle preconnect, or a client
    # that trickles its headers, would otherwise hold Ctrl-C for as long as it likes. They
    # are daemons, so they end with the process.
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, host: str, port: int, root: Path, *, db_path: Path | None = None, poll_ms: int = 300
    ) -> None:
        if host == "localhost":
            # It may name 127.0.0.1 and ::1; binding only the first would let another server
            # answer on the other under the same URL. The printed URL names the one we bind.
            host = "127.0.0.1"
        self.root = root.resolve()
        self.db_path = db_path
        self.poll_ms = poll_ms
        self._versions: dict[Path, tuple[tuple[int, int, int], str]] = {}
        self._lock = threading.Lock()
        self._built = threading.Condition()
        self._building = False
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise WatchError(
                f"cannot serve on host {host!r} ({exc}); try --host 127.0.0.1"
            ) from None
        self.address_family = infos[0][0]
        try:
            super().__init__(infos[0][4][:2], ReportHandler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WatchError(
                    f"port {port} on {host} is already in use; pick another with --port"
                ) from None
            raise WatchError(f"cannot serve on {host}:{port} ({exc.strerror or exc})") from None
        self.port = self.server_address[1]
        shown = host if is_loopback(host) or not _is_wildcard(host) else "127.0.0.1"
        shown = f"[{shown}]" if ":" in shown else shown
        self.url = f"http://{shown}:{self.port}/"
        self.allowed_hosts = _allowed_hosts(host, self.port)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the machine's full name, which can stall for
        # seconds on a machine with a broken resolver; we never use it.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def host_allowed(self, header: str | None) -> bool:
        """Refuse DNS rebinding: a page of evil.example whose name now points at 127.0.0.1
        still sends `Host: evil.example:PORT`."""
        if not header:
            return False
        header = header.strip().lower()
        if header in self.allowed_hosts:
            return True
        if "*" in self.allowed_hosts:  # bound to every interface, by request
            host, _, port = header.rpartition(":")
            if port != str(self.port):
                return False
            try:
                ipaddress.ip_address(host.strip("[]"))
                return True
            except ValueError:
                return False
        return False

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """Around a rebuild: version requests wait for its end (see REBUILD_HOLD_S)."""
        with self._built:
            self._building = True
        try:
            yield
        finally:
            with self._built:
                self._building = False
                self._built.notify_all()

    def wait_for_rebuild(self, timeout: float = REBUILD_HOLD_S) -> None:
        with self._built:
            self._built.wait_for(lambda: not self._building, timeout)

    def resolve(self, url_path: str) -> Path | None:
        """The file under the root that `url_path` (still percent-encoded) names, or None.

        Refused outright: encoded slashes and backslashes (they let one segment act as
        several), NUL, `.` and `..` segments, hidden names (the builder's temp files), and
        anything whose real path, symlinks followed, leaves the root.
        """
        if not url_path.startswith("/") or "\\" in url_path:
            return None
        if re.search(r"%(2f|5c|00)", url_path, re.IGNORECASE):
            return None
        parts = [p for p in unquote(url_path, errors="strict").split("/") if p]
        if any(p.startswith(".") or "\x00" in p or "\\" in p for p in parts):
            return None
        target = self.root.joinpath(*parts)
        if target.is_dir():
            target = target / "index.html"
        try:
            # Resolved last, after index.html was added: a symlinked index.html that points out
            # of the root is refused like any other.
            real = target.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if self.root not in real.parents or not real.is_file():
            return None
        # Only the pages the builder writes: never the database (`tviz demo --out X` keeps it
        # in X), its -wal, or whatever else shares the folder.
        if real.suffix != ".html":
            return None
        return real

    def page_version(self, path: Path | None, fd: int | None = None) -> str:
        """A short hash of a page's bytes, so that unchanged bytes (a deterministic rebuild,
        a server restart) never reload a tab. Cached by inode, mtime and size.

        With `fd`, the version of the bytes read from that open file (not of whatever the
        builder has since renamed over its path).
        """
        if path is None:
            return "none"
        try:
            if fd is None:
                with open(path, "rb") as f:
                    return self.page_version(path, f.fileno())
            st = os.fstat(fd)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            with self._lock:
                cached = self._versions.get(path)
            if cached and cached[0] == key:
                return cached[1]
            digest = hashlib.blake2b(os.pread(fd, st.st_size, 0), digest_size=8).hexdigest()
        except OSError:
            return "none"
        with self._lock:
            if len(self._versions) > 4096:  # pages of runs long gone
                self._versions.clear()
            self._versions[path] = (key, digest)
        return digest


def _is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("", "0.0.0.0", "::")


def _allowed_hosts(host: str, port: int) -> set[str]:
    names = {host.lower().strip("[]")}
    if is_loopback(host):
        names.update(_LOOPBACK_NAMES)
    if _is_wildcard(host):
        names.update(_LOOPBACK_NAMES)
        names.update(n.lower() for n in (socket.gethostname(), socket.getfqdn()) if n)
    allowed = {f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names}
    if port == 80:  # browsers leave the default port out
        allowed.update(f"[{n}]" if ":" in n else n for n in names)
    if _is_wildcard(host):
        allowed.add("*")
    return allowed


class ReportHandler(BaseHTTPRequestHandler):
    server: ReportServer
    server_version = "tviz-watch"
    timeout = 10  # seconds a client may stall before its thread gives up
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler answers 501 to a method it has no do_X for; every method
        # other than GET and HEAD is one we refuse on purpose, which is a 405.
        if name.startswith("do_"):
            return self._refuse_method
        raise AttributeError(name)

    def _refuse_method(self) -> None:
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED, b"only GET and HEAD\n", extra={"Allow": "GET, HEAD"}
        )

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every open tab polls a few times a second: an access log would be all noise

    def _respond(self, *, head: bool) -> None:
        if not self.server.host_allowed(self.headers.get("Host")):
            self._send(HTTPStatus.FORBIDDEN, b"unexpected Host header\n", head=head)
            return
        # Another website's page may ask too (a no-cors fetch, an image, a frame) and its
        # browser sends the right Host: refuse what browsers mark as coming from elsewhere.
        if self.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
            self._send(HTTPStatus.FORBIDDEN, b"cross-site request\n", head=head)
            return
        try:
            url = urlsplit(self.path)
        except ValueError:
            self._send(HTTPStatus.BAD_REQUEST, b"bad request\n", head=head)
            return
        if url.scheme or url.netloc:
            self._send(HTTPStatus.BAD_REQUEST, b"bad request\n", head=head)
            return
        if url.path == VERSION_PATH:
            self._version(url.query, head)
            return
        try:
            path = self.server.resolve(url.path)
        except UnicodeDecodeError:
            path = None
        if path is None:
            if url.path in ("/", "/index.html") and not (self.server.root / "index.html").exists():
                self._waiting_page(head)
                return
            if url.path == "/favicon.ico":  # asked for by every tab: no console error
                self._send(HTTPStatus.NO_CONTENT, b"", head=True)
                return
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", head=head)
            return
        try:
            with open(path, "rb") as f:
                if path.suffix.lower() in (".html", ".htm"):
                    body = f.read()
                    version = self.server.page_version(path, f.fileno())
                    body = inject_reload(body, version, self.server.poll_ms)
                    # The version of exactly these bytes: an in-place update fetches the page
                    # and must not take a page rebuilt since its poll for the one it got.
                    extra = {VERSION_HEADER: version}
                    self._send(
                        HTTPStatus.OK, body, "text/html; charset=utf-8", head=head, extra=extra
                    )
                else:
                    self._send(HTTPStatus.OK, f.read(), _content_type(path), head=head)
        except OSError:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", head=head)

    def _version(self, query: str, head: bool) -> None:
        self.server.wait_for_rebuild()
        page = parse_qs(query).get("page", ["/"])[0]
        try:
            path = self.server.resolve(page)
        except UnicodeDecodeError:
            path = None
        body = json.dumps({"version": self.server.page_version(path)}).encode()
        self._send(HTTPStatus.OK, body, "application/json", head=head)

    def _waiting_page(self, head: bool) -> None:
        # Before the first build (or while the database does not exist) the address already
        # works and reloads itself once the index is written.
        db = html.escape(str(self.server.db_path or "the database"))
        page = (
            "<!doctype html><html><head><meta charset=utf-8><title>tviz watch</title></head>"
            "<body style='font-family:sans-serif;margin:3em'><h1>tviz watch</h1>"
            f"<p>Waiting for runs in <code>{db}</code>. This page reloads by itself.</p>"
            "</body></html>"
        ).encode()
        body = inject_reload(page, "none", self.server.poll_ms)
        self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", head=head)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        head: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            # Always revalidate: a reload must fetch the page that was just rebuilt.
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the tab went away mid-answer


def _content_type(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("json") else kind


# -- the reload script -----------------------------------------------------------------------

# Kept in its own scope: the Vega bundle declares ~1,500 globals (MEASUREMENTS.md).
# When the page's version changes it first tries an update in place: it fetches the new page
# and hands it, parsed into an inert document, to the page's own `window.tvizUpdate(doc,
# rest)` (run.js, index.js), which refreshes the data the page shows without restarting Vega
# (a reload of a 16 MB page blanks its charts for over a second). Opened from file:// the hook
# is never called. Without a hook, or when it throws or returns false (the page changed
# shape: other charts), it reloads the page. Before reloading it saves the reader's place in
# sessionStorage, read generically from the DOM: the scroll position, which <details> are
# open and which `aria-expanded` toggles are expanded, selected tabs, and the values of
# inputs with ids; plus whatever the page's own `window.tvizState = {get, set}` hooks choose
# to keep. Elements are named by the ids or first data-* attributes of their ancestors
# (`[data-step="5"] [data-group="2"]`), since pages build step lists on the fly without ids.
# After the reload, once the page's scripts have run, it puts everything back, retrying for a
# moment for content that is filled in asynchronously (a step's rollouts are decompressed
# when it opens).
RELOAD_JS = """
(function () {
  "use strict";
  var VERSION = "%(version)s", EVERY = %(poll_ms)d, page = location.pathname;
  var KEY = "tviz-watch:" + page, HOLD_MS = 2000;
  function hooks() {
    var s = window.tvizState;
    return s && typeof s === "object" ? s : null;
  }
  function part(el) {
    if (el.id) return "#" + CSS.escape(el.id);
    for (var i = 0; i < el.attributes.length; i++) {
      var a = el.attributes[i];
      if (a.name.indexOf("data-") === 0) return "[" + a.name + '="' + CSS.escape(a.value) + '"]';
    }
    return "";
  }
  function nameOf(el, self) {
    var own = part(el), tag = el.tagName.toLowerCase();
    if (own.charAt(0) === "#") return own;
    var parts = [own ? tag + own : self || tag];
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      var bit = part(p);
      if (bit) parts.unshift(bit);
      if (bit.charAt(0) === "#") break;
    }
    return parts.join(" ");
  }
  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  // [kind, selector, which match of the selector, open?] for the elements `sel` finds.
  function places(kind, sel, self, isOpen) {
    var seen = {};
    return all(sel).map(function (el) {
      var name = nameOf(el, self), k = seen[name] = (seen[name] || 0) + 1;
      return [kind, name, k - 1, isOpen(el)];
    });
  }
  function save() {
    var st = {x: scrollX, y: scrollY};
    st.places = places("details", "details", "details", function (d) { return d.open; })
      .concat(places("expanded", "[aria-expanded]", "[aria-expanded]", function (el) {
        return el.getAttribute("aria-expanded") === "true";
      }))
      .concat(places("tab", '[role="tab"]', '[role="tab"]', function (el) {
        return el.getAttribute("aria-selected") === "true";
      }));
    st.values = places("value", "input, select, textarea", null, function (el) {
      if (el.type === "password" || el.type === "file" || el.type === "hidden") return null;
      if (el.type === "checkbox" || el.type === "radio") return el.checked;
      // A reader following the newest step keeps following it as steps arrive.
      return el.type === "range" && el.value === el.max ? {max: true} : el.value;
    }).filter(function (item) { return item[3] !== null; });
    try { var h = hooks(); if (h && h.get) st.custom = h.get(); } catch (e) {}
    try { sessionStorage.setItem(KEY, JSON.stringify(st)); } catch (e) {}
  }
  function setValue(el, v) {
    if (!("value" in el)) return;
    if (el.type === "checkbox" || el.type === "radio") {
      if (el.checked === v) return;
      el.checked = v;
    } else {
      if (v && v.max) v = el.max;
      if (el.value === v) return;
      el.value = v;
    }
    el.dispatchEvent(new Event("input", {bubbles: true}));
    el.dispatchEvent(new Event("change", {bubbles: true}));
  }
  function pick(name, k) {
    try { return document.querySelectorAll(name)[k] || null; } catch (e) { return null; }
  }
  // One pass over what is still to restore; returns what is left for the next pass.
  function reopen(todo) {
    return todo.filter(function (item) {
      var el = pick(item[1], item[2]), want = item[3];
      if (!el) return true;
      if (item[0] === "value") setValue(el, want);
      else if (item[0] === "details") { if (el.open !== want) el.open = want; }
      else if (item[0] === "tab") {
        if (want && el.getAttribute("aria-selected") !== "true") el.click();
      } else if ((el.getAttribute("aria-expanded") === "true") !== want) el.click();
      return false;
    });
  }
  function restore() {
    var st = null;
    try { st = JSON.parse(sessionStorage.getItem(KEY)); sessionStorage.removeItem(KEY); }
    catch (e) {}
    if (!st) return;
    // Values first: they may change what is listed (filters, the replayed step).
    var todo = reopen(st.values || []).concat(st.places || []);
    try { var h = hooks(); if (h && h.set && "custom" in st) h.set(st.custom); } catch (e) {}
    // Charts draw asynchronously and move the layout: hold the scroll position for a
    // moment, unless the reader starts scrolling.
    if ("scrollRestoration" in history) history.scrollRestoration = "manual";
    var moved = false, until = Date.now() + HOLD_MS;
    ["wheel", "touchstart", "keydown", "mousedown"].forEach(function (ev) {
      addEventListener(ev, function () { moved = true; }, {once: true, passive: true});
    });
    (function hold() {
      if (todo.length) todo = reopen(todo);
      if (!moved) scrollTo(st.x, st.y);
      if (Date.now() < until && !(moved && !todo.length)) setTimeout(hold, 50);
    })();
  }
  function reload() { save(); location.reload(); }
  // In place when the page can. The new page is fetched and, as soon as the part before its
  // compressed rollouts (the last and largest part of a run page) has arrived, parsed (inert:
  // nothing in it runs) and handed to the page's `window.tvizUpdate(doc, rest)`; `rest` is a
  // promise of the compressed blocks' texts by id, cut out of the rest of the text by string
  // search. The hook returns false (or a promise of false) or throws when it cannot update
  // the page: then, and without a hook, the page reloads.
  var TAG = '\\x3cscript type="application/gzip-base64" id="';  // "<" escaped: inline
  function blocksOf(text) {
    var blocks = new Map(), at = text.indexOf(TAG), id, end;
    while (at >= 0) {
      id = text.indexOf('">', at);
      end = text.indexOf("<\\/script>", id);  // escaped: this script is inline
      if (id < 0 || end < 0) break;
      blocks.set(text.slice(at + TAG.length, id), text.slice(id + 2, end));
      at = text.indexOf(TAG, end);
    }
    return blocks;
  }
  function update(version) {
    var hook = window.tvizUpdate;
    if (typeof hook !== "function") return reload();
    fetch(page, {cache: "no-store"}).then(function (r) {
      if (!r.ok || !r.body) return reload();
      var reader = r.body.getReader(), decoder = new TextDecoder();
      var head = "", tail = [], hooked = null, done = null;
      var rest = new Promise(function (resolve) { done = resolve; });
      function read() {
        return reader.read().catch(function () { throw lost; }).then(function (got) {
          var text = got.done ? decoder.decode() : decoder.decode(got.value, {stream: true});
          if (hooked) tail.push(text);
          else {
            var cut = (head += text).indexOf(TAG, Math.max(0, head.length - text.length - 64));
            if (cut >= 0 || got.done) {
              if (cut < 0) cut = head.length;
              tail.push(head.slice(cut));
              var doc = new DOMParser().parseFromString(head.slice(0, cut), "text/html");
              hooked = hook(doc, rest);
              if (hooked === false) throw new Error("the page changed shape");
              hooked = Promise.resolve(hooked);
            }
          }
          if (!got.done) return read();
          done(blocksOf(tail.join("")));
          return hooked;
        });
      }
      return read().then(function (ok) {
        if (ok === false) throw new Error("the page changed shape");
        VERSION = r.headers.get("%(header)s") || version;
        later(EVERY);
      });
    }, function () { throw lost; })
      .catch(function (e) {
        // The server went away (restarting): ask again in a moment, which also finishes an
        // update cut short. Anything else: reload.
        if (e === lost) return later(Math.max(EVERY, 1000));
        if (window.console) console.warn("tviz watch: reloading:", e);
        reload();
      });
  }
  var lost = new Error("the server went away");
  function check() {
    fetch("%(endpoint)s?page=" + encodeURIComponent(page), {cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (d && d.version && d.version !== VERSION) update(d.version);
        else later(EVERY);
      })
      .catch(function () { later(Math.max(EVERY, 1000)); });  // server restarting: wait
  }
  var timer = null;
  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(check, document.hidden ? Math.max(ms, 2000) : ms);
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) later(0);
  });
  if (document.readyState === "complete") setTimeout(restore, 0);
  else addEventListener("load", function () { setTimeout(restore, 0); });
  later(EVERY);
})();
"""


def reload_script(version: str, poll_ms: int = 300) -> str:
    # The version is our own hex digest (or "none"), never text from the page or request.
    assert re.fullmatch(r"[0-9a-z]+", version), version
    js = RELOAD_JS % {
        "version": version,
        "poll_ms": poll_ms,
        "endpoint": VERSION_PATH,
        "header": VERSION_HEADER,
    }
    return f'<script data-tviz-watch="1">{js}</script>'


_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


def inject_reload(page: bytes, version: str, poll_ms: int = 300) -> bytes:
    """`page` with the reload script just before its last `</body>` (or at its end)."""
    script = reload_script(version, poll_ms).encode()
    # The pages' Content-Security-Policy allows their own scripts by hash and no requests:
    # the renderer's hook adds this script's hash and `connect-src 'self'` to the served copy.
    from tviz.render.csp import allow_served_script

    page = allow_served_script(page, script)
    ends = list(_BODY_END.finditer(page[-4096:]))  # look near the end only: pages are big
    if ends:
        cut = len(page) - len(page[-4096:]) + ends[-1].start()
        return page[:cut] + script + page[cut:]
    return page + script
