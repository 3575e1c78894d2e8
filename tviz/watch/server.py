"""The HTTP side of `tviz watch`: a stdlib ThreadingHTTPServer for the output folder.

Loopback only unless asked, GET and HEAD only, no path out of the folder, only the `.html`
pages the builder writes (and the comparisons of `compare`, under `compare/`), no foreign Host
header (DNS rebinding) and no request a browser marks as coming from another site. HTML gets
the reload script at serve time (see `inject`), and a tiny version endpoint answers the
script's polls: polling, since server-sent events use up Chromium's six connections per host
and a seventh tab could not load. `GET /compare?run=ID&run=ID` builds a comparison and
redirects to it (see `compare`).
"""

from __future__ import annotations

import errno
import hashlib
import html
import ipaddress
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tviz.names import DEFAULT_BUDGET_BYTES
from tviz.watch.compare import COMPARE_PATH, CompareBuilds, CompareRefused
from tviz.watch.inject import VERSION_HEADER, VERSION_PATH, inject_reload
from tviz.watch.tracker import db_paths

# A page asking for its version while pages are being rebuilt gets its answer when they are
# written (at most this much later) instead of the old version: it then learns of the change
# at once, not one poll interval after the rebuild (150 ms on average at 300 ms).
REBUILD_HOLD_S = 2.0
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# No file system takes a longer name or path: longer ones are answered without looking.
MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 4096


class WatchError(Exception):
    """A reason `tviz watch` cannot start; the message is one line for a person."""


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
    # The listen queue. Python's default of 5 drops connections when a page's few requests
    # from several tabs or people arrive at once: the browser then waits for its SYN retry
    # (1 s, 3 s, ...). The kernel caps this at net.core.somaxconn.
    request_queue_size = 1024

    def __init__(
        self,
        host: str,
        port: int,
        root: Path,
        *,
        db_path: Path | Sequence[Path] | None = None,
        poll_ms: int = 300,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        """`db_path`: the database served, or the databases (one site over several)."""
        if host == "localhost":
            # It may name 127.0.0.1 and ::1; binding only the first would let another server
            # answer on the other under the same URL. The printed URL names the one we bind.
            host = "127.0.0.1"
        self.root = root.resolve()
        paths = [] if db_path is None else db_paths(db_path)
        self.db_paths = paths
        self.db_path = paths[0] if paths else None
        self.poll_ms = poll_ms
        self._versions: dict[Path, tuple[tuple[int, int, int], str]] = {}
        self._lock = threading.Lock()
        self._built = threading.Condition()
        self._building = False
        self.compares = CompareBuilds(self.root, db_path, budget_bytes)
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, naming neither the request nor the file: socketserver's default prints a
        traceback holding whatever path the requester chose."""
        kind = sys.exc_info()[0]
        name = kind.__name__ if kind is not None else "error"
        print(f"tviz watch: a request could not be answered ({name})", file=sys.stderr)

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
        several), NUL, escapes that are not UTF-8, `.` and `..` segments, hidden names (the
        builder's temp files), names or paths longer than a file system takes, and anything
        whose real path, symlinks followed, leaves the root.
        """
        if not url_path.startswith("/") or "\\" in url_path or len(url_path) > MAX_PATH_BYTES:
            return None
        if re.search(r"%(2f|5c|00)", url_path, re.IGNORECASE):
            return None
        try:
            parts = [p for p in unquote(url_path, errors="strict").split("/") if p]
        except UnicodeDecodeError:  # not UTF-8
            return None
        if any(p.startswith(".") or "\x00" in p or "\\" in p for p in parts):
            return None
        if any(len(p.encode("utf-8")) > MAX_SEGMENT_BYTES for p in parts):
            return None
        target = self.root.joinpath(*parts)
        try:
            if target.is_dir():
                target = target / "index.html"
            # Resolved last, after index.html was added: a symlinked index.html that points out
            # of the root is refused like any other.
            real = target.resolve(strict=True)
            if self.root not in real.parents or not real.is_file():
                return None
        except (OSError, RuntimeError, ValueError):  # a path the system cannot take
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
        if len(self.path) > MAX_PATH_BYTES:
            self._send(HTTPStatus.REQUEST_URI_TOO_LONG, b"path too long\n", head=head)
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
        if url.path == COMPARE_PATH:
            self._compare(url.query, head)
            return
        path = self.server.resolve(url.path)
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
            with open(path, "rb") as f:  # a page: resolve() lets nothing else through
                body = f.read()
                version = self.server.page_version(path, f.fileno())
                body = inject_reload(body, version, self.server.poll_ms)
                # The version of exactly these bytes: an in-place update fetches the page
                # and must not take a page rebuilt since its poll for the one it got.
                extra = {VERSION_HEADER: version}
                self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", head=head, extra=extra)
        except OSError:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", head=head)

    def _version(self, query: str, head: bool) -> None:
        self.server.wait_for_rebuild()
        page = parse_qs(query).get("page", ["/"])[0]
        path = self.server.resolve(page)
        body = json.dumps({"version": self.server.page_version(path)}).encode()
        self._send(HTTPStatus.OK, body, "application/json", head=head)

    def _compare(self, query: str, head: bool) -> None:
        """Build the comparison of the runs named and redirect to it (see `compare`)."""
        if head:  # a build is never a side effect of HEAD
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED, b"only GET\n", head=True, extra={"Allow": "GET"}
            )
            return
        # A build writes files: the request must say it comes from our pages or the reader
        # (a link, the address bar); a browser too old to say is refused, not trusted.
        if self.headers.get("Sec-Fetch-Site") not in ("none", "same-origin"):
            self._send(HTTPStatus.FORBIDDEN, b"cross-site request\n")
            return
        try:
            page = self.server.compares.page_for(query)
        except CompareRefused as refused:
            self._send(refused.status, refused.message.encode("utf-8", "replace") + b"\n")
            return
        self._send(HTTPStatus.SEE_OTHER, f"see {page}\n".encode(), extra={"Location": page})

    def _waiting_page(self, head: bool) -> None:
        # Before the first build (or while the database does not exist) the address already
        # works and reloads itself once the index is written. Each file in a <code> of its
        # own: a logger asks whether this watch serves its file (`cookbook_api.watch_url`).
        paths = self.server.db_paths
        db = ", ".join(f"<code>{html.escape(str(p))}</code>" for p in paths)
        page = (
            "<!doctype html><html><head><meta charset=utf-8><title>tviz watch</title></head>"
            "<body style='font-family:sans-serif;margin:3em'><h1>tviz watch</h1>"
            f"<p>Waiting for runs in {db or '<code>the database</code>'}."
            " This page reloads by itself.</p>"
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
