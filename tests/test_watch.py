"""`tviz watch` as a user runs it: a subprocess on a free port, a real database written by
other processes, answers checked over HTTP (and, for the reload, in headless Chromium)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser is a fixture)

import tviz.watch.session as watch_module
from tviz.render import SiteBuilder
from tviz.watch import (
    ChangeTracker,
    LiveSite,
    ReportServer,
    WatchOptions,
    inject_reload,
    is_loopback,
    reload_script,
)

ROOT = Path(__file__).resolve().parents[1]
WATCH = [sys.executable, "-m", "tviz.cli", "watch"]
VIEWPORT = {"width": 900, "height": 500}
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def wait_until(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def log_steps(db: Path, name: str, steps: range, run_id: str = "run1") -> None:
    """Log `steps` of run `run_id` from another process, as a training loop would."""
    code = textwrap.dedent(
        """
        import sys
        from tviz import TvizLogger
        db, name, run_id, lo, hi = sys.argv[1:]
        logger = TvizLogger(db, run_name=name, run_id=run_id)
        for step in range(int(lo), int(hi)):
            logger.log_metrics({"env/all/reward/total": step / 10, "optim/kl": 0.01}, step=step)
            logger.log_rollouts(
                [{"prompt_text": f"prompt {step}",
                  "trajectories": [{"reward": 1.0, "output_text": f"answer {step}"}]}],
                step=step,
            )
        assert logger.flush()
        """
    )
    args = [str(db), name, run_id, str(steps.start), str(steps.stop)]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Watching:
    """A running `tviz watch` and what it has printed so far."""

    proc: subprocess.Popen
    out_dir: Path
    lines: list[str] = field(default_factory=list)
    url: str = ""
    port: int = 0
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def request(
        self,
        path: str,
        method: str = "GET",
        host: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            if host == "default":
                host = f"127.0.0.1:{self.port}"
            if host is not None:
                conn.putheader("Host", host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            return Response(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()

    def version(self, page: str) -> str:
        resp = self.request(f"/__tviz/version?page={page}")
        assert resp.status == 200
        return json.loads(resp.body)["version"]

    def stop(self) -> tuple[int, str, str]:
        """Ctrl-C, then the exit code, stdout and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("tviz watch did not stop within 10 s of Ctrl-C") from None
        if self._reader is not None:
            self._reader.join(timeout=5)
        assert self.proc.stderr is not None
        return self.proc.returncode, "\n".join(self.lines), self.proc.stderr.read()


def start_watch(db: Path, out_dir: Path, *extra: str, port: int = 0) -> Watching:
    proc = subprocess.Popen(
        [*WATCH, "--db", str(db), "--out", str(out_dir), "--port", str(port), *extra],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watching = Watching(proc, out_dir)
    watching.start_reading()
    return watching


def serving(watching: Watching) -> Watching:
    def url() -> str | None:
        if watching.proc.poll() is not None:
            raise AssertionError(f"tviz watch exited: {watching.proc.stderr.read()}")
        for line in watching.lines:
            if "http://127.0.0.1:" in line:
                return line.split("http://", 1)[1].split()[0]
        return None

    address = wait_until(url, "the URL", timeout=30)
    watching.url = f"http://{address}"
    watching.port = int(address.split(":")[1].strip("/"))
    return watching


def watch_one_run(folder: Path) -> Watching:
    """`tviz watch` over a database holding one run of 5 steps, its first build done."""
    db = folder / "runs.db"
    log_steps(db, "first", range(5))
    watching = serving(start_watch(db, folder / "site"))
    wait_until(lambda: watching.said("built"), "the first build", timeout=60)
    return watching


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Watching]:
    """A watch of its own, for a test that changes the database or stops the server."""
    watching = watch_one_run(tmp_path)
    yield watching
    watching.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watching]:
    """One watch for the many tests that only ask it questions."""
    folder = tmp_path_factory.mktemp("shared")
    watching = watch_one_run(folder)
    secret = folder / "secret.txt"
    secret.write_text("do not serve")
    (watching.out_dir / "link-out").symlink_to(folder, target_is_directory=True)
    (watching.out_dir / "secret-link.txt").symlink_to(secret)
    (watching.out_dir / ".hidden").write_text("a temp file")
    # A folder whose index.html is a symlink out, and a database kept in the served folder
    # (as `tviz demo --out X` does): neither is a page the builder wrote.
    (folder / "secret.html").write_text("do not serve")
    (watching.out_dir / "sub").mkdir()
    (watching.out_dir / "sub" / "index.html").symlink_to(folder / "secret.html")
    (watching.out_dir / "tviz.db").write_text("do not serve")
    (watching.out_dir / "tviz.db-wal").write_text("do not serve")
    yield watching
    watching.stop()


def run_page(watching: Watching) -> str:
    pages = sorted((watching.out_dir / "runs").glob("*.html"))
    assert pages, "no run page written"
    return "/runs/" + pages[0].name


def test_new_steps_from_another_process_reach_the_served_page(watched: Watching) -> None:
    db = Path(watched.proc.args[watched.proc.args.index("--db") + 1])
    page = run_page(watched)
    before = watched.version(page)
    index_before = watched.version("/")
    old = watched.request(page).body
    assert b"data-tviz-watch" in old

    log_steps(db, "first", range(5, 6))
    wait_until(lambda: watched.version(page) != before, "the run page to change")
    assert watched.version("/") != index_before
    new = watched.request(page).body
    assert new != old
    assert b'"lastStep":5' in new
    assert watched.said("re-rendered run1")


def test_files_on_disk_stay_as_built(shared: Watching) -> None:
    page = run_page(shared)
    on_disk = (shared.out_dir / page.lstrip("/")).read_bytes()
    served = shared.request(page)
    assert served.status == 200
    assert served.headers["Content-Type"].startswith("text/html")
    assert served.headers["Cache-Control"] == "no-store"
    assert b"data-tviz-watch" not in on_disk
    assert b"data-tviz-watch" in served.body
    assert len(served.body) > len(on_disk)
    if b"Content-Security-Policy" in on_disk:  # the served copy lets the reload script poll
        assert b"connect-src 'self'" in served.body and b"connect-src 'self'" not in on_disk
    head = shared.request(page, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(served.body))


def test_a_burst_of_commits_is_one_or_two_rebuilds(watched: Watching) -> None:
    db = Path(watched.proc.args[watched.proc.args.index("--db") + 1])
    count = sum("re-rendered" in line for line in watched.lines)
    log_steps(db, "first", range(5, 45))  # 40 steps logged as fast as the logger commits
    page = run_page(watched)
    wait_until(lambda: b'"lastStep":44' in watched.request(page).body, "all 40 steps")
    time.sleep(0.3)  # let a last rebuild, if any, be printed
    rebuilds = sum("re-rendered" in line for line in watched.lines) - count
    assert 1 <= rebuilds <= 4, watched.lines


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/runs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/runs%2f..%2f..%2fsecret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/%252e%252e/secret.txt",
        "/link-out/secret.txt",
        "/secret-link.txt",
        "/.hidden",
        "/runs/",
        "/nothing.html",
        "http://127.0.0.1/../secret.txt",
        "/index.html%00.txt",
        "/sub/",
        "/sub",
        "/sub/index.html",
        "/tviz.db",
        "/tviz.db-wal",
    ],
)
def test_no_path_leads_out_of_the_folder(shared: Watching, path: str) -> None:
    resp = shared.request(path)
    assert resp.status in (400, 403, 404), (path, resp.status)
    assert b"do not serve" not in resp.body


def test_the_version_endpoint_reads_only_pages(shared: Watching) -> None:
    assert shared.version("/tviz.db") == "none"  # not read, not hashed
    assert shared.version("/sub/") == "none"
    assert shared.version("/index.html") != "none"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"])
def test_only_get_and_head(shared: Watching, method: str) -> None:
    resp = shared.request("/index.html", method=method)
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("[::1]:{port}", 200),
        ("evil.example:{port}", 403),  # DNS rebinding: the browser still names the site
        ("localhost.evil.example:{port}", 403),
        ("127.0.0.1:1", 403),
        ("", 403),
        (None, 403),
    ],
)
def test_host_header_must_name_this_server(shared: Watching, host: str | None, status: int):
    header = host.format(port=shared.port) if host is not None else None
    assert shared.request("/", host=header).status == status
    assert shared.request("/__tviz/version?page=/", host=header).status == status


@pytest.mark.parametrize(
    ("site", "status"),
    [("none", 200), ("same-origin", 200), ("same-site", 403), ("cross-site", 403)],
)
def test_other_websites_cannot_ask(shared: Watching, site: str, status: int) -> None:
    """A page elsewhere can make a browser ask with the right Host; Sec-Fetch-Site tells."""
    resp = shared.request("/", headers={"Sec-Fetch-Site": site})
    assert resp.status == status
    if status == 200:
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Cross-Origin-Resource-Policy"] == "same-origin"


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        watching = start_watch(tmp_path / "runs.db", tmp_path / "site", port=port)
        code, out, err = watching.stop() if watching.proc.wait(timeout=30) else (0, "", "")
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(port) in lines[0] and "--port" in lines[0]


def test_missing_database_then_created(tmp_path: Path) -> None:
    db = tmp_path / "later" / "runs.db"  # not even its folder exists yet
    watching = serving(start_watch(db, tmp_path / "site"))
    try:
        wait_until(lambda: watching.said("waiting for the database"), "the waiting message")
        waiting = watching.request("/")
        assert waiting.status == 200 and b"Waiting for runs" in waiting.body
        assert watching.version("/") == "none"

        log_steps(db, "late-run-q7", range(3))
        wait_until(lambda: watching.version("/") != "none", "the index", timeout=60)
        assert b"late-run-q7" in watching.request("/").body
        assert watching.said("found the database")
    finally:
        code, out, err = watching.stop()
    assert code == 0 and "Traceback" not in err


def test_database_deleted_then_replaced(watched: Watching) -> None:
    db = Path(watched.proc.args[watched.proc.args.index("--db") + 1])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    wait_until(lambda: watched.said("was deleted"), "the deletion to be noticed")
    index = watched.version("/")
    log_steps(db, "second-run-q7", range(2), run_id="run2")
    wait_until(lambda: watched.version("/") != index, "a rebuild from the new file", timeout=30)
    assert b"second-run-q7" in watched.request("/").body
    assert watched.said("found the database")


def test_two_writer_processes_at_once(watched: Watching) -> None:
    db = Path(watched.proc.args[watched.proc.args.index("--db") + 1])
    names = (b"writer-a-q7", b"writer-b-q7")
    assert not any(name in watched.request("/").body for name in names)
    writers = [
        threading.Thread(target=log_steps, args=(db, name.decode(), range(20), name.decode()))
        for name in names
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    wait_until(
        lambda: all(name in watched.request("/").body for name in names),
        "both runs in the index",
    )


def test_ctrl_c_is_a_clean_exit(watched: Watching) -> None:
    assert watched.request("/").status == 200
    code, out, err = watched.stop()
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "stopped" in out


def test_no_thread_left_behind(tmp_path: Path) -> None:
    """In process: after close() the server, watcher and request threads are all gone."""
    db = tmp_path / "runs.db"
    log_steps(db, "first", range(2))
    site = LiveSite(WatchOptions(db, tmp_path / "site", port=0), log=lambda _line: None)
    before = set(threading.enumerate())
    site.start()
    stop = threading.Event()
    loop = threading.Thread(target=site.run, args=(stop,))
    loop.start()
    wait_until(lambda: (tmp_path / "site" / "index.html").exists(), "the first build")
    conn = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().status == 200
    conn.close()
    stop.set()
    loop.join(timeout=5)
    site.close()
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []


def test_a_failed_rebuild_is_said_once_and_retried(tmp_path: Path) -> None:
    """The builder failing (a bug, a locked file) costs a line, not the watcher."""

    class Flaky(SiteBuilder):
        failures = 3

        def build(self, run_ids: Any = None, progress: Any = None) -> Any:
            if Flaky.failures:
                Flaky.failures -= 1
                raise RuntimeError("disk on fire")
            return super().build(run_ids, progress)

    db = tmp_path / "runs.db"
    log_steps(db, "first", range(2))
    said: list[str] = []
    tracker = ChangeTracker(db, tmp_path / "site", Flaky, said.append)
    for _ in range(5):
        tracker.update()
    assert [line.split(" ", 1)[1] for line in said if "failed" in line] == [
        "rebuild failed: RuntimeError: disk on fire"
    ]
    assert (tmp_path / "site" / "index.html").exists()
    assert any("re-rendered" in line or "built" in line for line in said)
    tracker.close()


def test_only_loopback_is_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another host is served only when asked for, with a warning (tests bind loopback only,
    so the check that decides it is faked here)."""
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    said: list[str] = []
    site = LiveSite(WatchOptions(tmp_path / "runs.db", tmp_path / "site", port=0), log=said.append)
    site.start()
    site.close()
    assert not any("warning" in line for line in said)
    monkeypatch.setattr(watch_module, "is_loopback", lambda host: False)
    said.clear()
    site = LiveSite(WatchOptions(tmp_path / "runs.db", tmp_path / "site", port=0), log=said.append)
    site.start()
    site.close()
    assert any("visible" in line or "network" in line for line in said if "warning" in line)


def test_served_pages_name_their_version(shared: Watching) -> None:
    """An in-place update fetches the page and takes its version from the answer, not from
    the poll (the page may have been rebuilt in between)."""
    for page in ("/", run_page(shared)):
        served = shared.request(page)
        assert served.headers["X-Tviz-Version"] == shared.version(page)
        assert f'var VERSION = "{shared.version(page)}"'.encode() in served.body


def test_reload_script_is_one_inline_script() -> None:
    tag = reload_script("abc123")
    # Its own code names `</script>` and `<!--` never: either would end or confuse the element.
    assert tag.count("</script>") == 1 and tag.endswith("</script>")
    assert "<!--" not in tag and "<script" not in tag[1:]


def test_version_requests_wait_for_a_rebuild_in_progress(tmp_path: Path) -> None:
    """A tab polling while pages are rebuilt hears of the new version as soon as they are
    written, not one poll interval later."""
    db = tmp_path / "runs.db"
    log_steps(db, "first", range(2))
    release = threading.Event()

    class Slow(SiteBuilder):
        def build(self, run_ids: Any = None, progress: Any = None) -> Any:
            if run_ids is not None:  # a rebuild, not the first build
                release.wait(5)
            return super().build(run_ids, progress)

    site = LiveSite(WatchOptions(db, tmp_path / "site", port=0), log=lambda _: None)
    site.tracker.builder_factory = Slow
    site.start()
    stop = threading.Event()
    loop = threading.Thread(target=site.run, args=(stop,))
    loop.start()
    try:
        wait_until(lambda: (tmp_path / "site" / "index.html").exists(), "the first build")
        port = site.server.port

        def version() -> tuple[str, float]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/__tviz/version?page=/")
            body = json.loads(conn.getresponse().read())["version"]
            conn.close()
            return body, time.monotonic()

        before = version()[0]
        log_steps(db, "first", range(2, 3))
        wait_until(lambda: site.server._building, "the rebuild to start")
        answer: list[tuple[str, float]] = []
        asking = threading.Thread(target=lambda: answer.append(version()))
        asking.start()
        time.sleep(0.3)
        assert answer == []  # held while the pages are being written
        released = time.monotonic()
        release.set()
        asking.join(timeout=5)
        assert answer and answer[0][0] != before
        assert answer[0][1] - released < 1.0
    finally:
        release.set()
        stop.set()
        loop.join(timeout=5)
        site.close()


def test_reload_script_goes_before_body_end() -> None:
    page = b"<html><body><p>x</p></BODY></html>"
    out = inject_reload(page, "abc123")
    assert out.startswith(b"<html><body><p>x</p><script data-tviz-watch")
    assert out.endswith(b"</script></BODY></html>")
    assert inject_reload(b"<p>no body</p>", "none").startswith(b"<p>no body</p><script")


# -- in a real browser -------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["missing", "throws"])
def test_open_page_reloads_itself_and_keeps_the_readers_place(
    watched: Watching,
    browser: Any,  # noqa: F811  (the fixture of tests/browser.py)
    hook: str,
) -> None:
    """The fallback: a page that cannot update in place (no `window.tvizUpdate`, or one that
    fails) is reloaded, and the reader's place is put back."""
    db = Path(watched.proc.args[watched.proc.args.index("--db") + 1])
    url = watched.url.rstrip("/") + run_page(watched)
    opened = open_page(browser, url, viewport=VIEWPORT)
    page = opened.page
    try:
        if hook == "missing":
            page.evaluate("() => { delete window.tvizUpdate; }")
        else:
            page.evaluate("() => { window.tvizUpdate = () => { throw new Error('boom'); }; }")
        # The reader's place: a slider moved, a step (a <details>) opened, the page scrolled.
        slider = page.evaluate(
            """async () => {
              const s = document.querySelector('input[type=range][id]');
              if (!s || +s.max <= +s.min) return null;
              s.value = String(+s.min); s.dispatchEvent(new Event('input', {bubbles: true}));
              // The page may redraw in the next frame (the replayed steps): let it.
              await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
              return [s.id, s.value, s.max];
            }"""
        )
        details = page.evaluate(
            """() => {
              const d = document.querySelector('details[id]:not([open])')
                || document.querySelector('details[data-step]:not([open])');
              if (!d) return null;
              d.open = true;
              return d.id ? '#' + d.id : `details[data-step="${d.dataset.step}"]`;
            }"""
        )
        # A group inside the step, when the page has them (filled in asynchronously).
        toggle = f"{details} [aria-expanded]"
        page.wait_for_selector(toggle, timeout=5_000)
        page.click(toggle)
        assert page.get_attribute(toggle, "aria-expanded") == "true"
        y = page.evaluate(
            """() => {
              const y = Math.min(500, document.documentElement.scrollHeight - innerHeight);
              scrollTo(0, y); window.__beforeReload = true; return scrollY;
            }"""
        )
        assert details and slider and y > 100, (details, slider, y)

        log_steps(db, "first", range(5, 6))
        page.wait_for_function("() => !window.__beforeReload", timeout=15_000)
        page.wait_for_load_state("load")
        page.wait_for_function(f"() => Math.abs(scrollY - {y}) <= 2", timeout=5_000)
        page.wait_for_function(f"() => document.querySelector({details!r}).open", timeout=5_000)
        page.wait_for_selector(f"{details} [aria-expanded=true]", timeout=5_000)
        after = page.evaluate(
            f"() => [document.getElementById({slider[0]!r}).value,"
            f" document.getElementById({slider[0]!r}).max]"
        )
        assert after[0] == slider[1]  # the slider stays where the reader put it
        assert int(after[1]) == int(slider[2]) + 1  # and now reaches the new step
        assert opened.errors == []
        assert all(r.startswith(watched.url) for r in opened.requests)
    finally:
        close_page(opened)


def log_code(db: Path, code: str) -> None:
    """Run `code` with `logger`, a TvizLogger of run1 in `db`, from another process."""
    prelude = "import sys\nfrom tviz import TvizLogger\n"
    prelude += "logger = TvizLogger(sys.argv[1], run_name='first', run_id='run1')\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code) + "\nassert logger.flush()\n"]
        + [str(db)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


LAST_STEP = """() => [...document.querySelectorAll('.facts .fact')]
    .find(f => f.querySelector('dt').textContent === 'last step').querySelector('dd').textContent"""


def test_open_page_updates_in_place_and_keeps_the_readers_place(
    watched: Watching,
    browser: Any,  # noqa: F811  (the fixture of tests/browser.py)
) -> None:
    """Another process logs a step: the open page shows it without reloading (a marker set
    on `window` survives), the charts' views get the new point (same canvas, so the zoom
    stays), open steps, groups and trajectories stay open, and the slider keeps its place."""
    db = Path(watched.proc.args[watched.proc.args.index("--db") + 1])
    url = watched.url.rstrip("/") + run_page(watched)
    opened = open_page(browser, url, viewport={"width": 1200, "height": 900})
    page = opened.page
    try:
        reward = ".chart[data-chart=reward]"
        page.wait_for_selector(f"{reward}[data-drawn=yes] canvas", timeout=15_000)
        box = page.locator(f"{reward} canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -300)  # zoom in on the reward chart
        step2 = 'details.step[data-step="2"]'
        page.click(f"{step2} > summary")
        page.click(f"{step2} .group[data-group='0'] .group-head")
        page.click(f"{step2} .group[data-group='0'] .traj-head")
        page.evaluate(
            """() => { window.__noReload = true;
              document.querySelector('.chart[data-chart=reward] canvas').__same = true; }"""
        )
        assert page.evaluate(LAST_STEP) == "4"

        # Step 5, and step 2's rollouts logged again (a resumed run replaces them).
        log_code(
            db,
            """
            logger.log_metrics({"env/all/reward/total": 0.5, "optim/kl": 0.01}, step=5)
            for step, text in ((5, "answer 5"), (2, "answer 2, logged again")):
                logger.log_rollouts([{"prompt_text": f"prompt {step}",
                    "trajectories": [{"reward": 1.0, "output_text": text}]}], step=step)
            """,
        )
        page.wait_for_function(f"() => ({LAST_STEP})() === '5'", timeout=15_000)
        page.wait_for_function(
            f"() => document.querySelector('{reward}').dataset.lastStep === '5'", timeout=5_000
        )
        page.wait_for_selector('details.step[data-step="5"]', timeout=5_000)
        page.wait_for_function(
            f"""() => document.querySelector('{step2}').textContent
                .includes('answer 2, logged again')""",
            timeout=5_000,
        )
        assert page.evaluate("() => window.__noReload") is True
        assert page.evaluate(f"() => document.querySelector('{reward} canvas').__same") is True
        assert page.locator(step2).evaluate("d => d.open")
        assert page.locator(f"{step2} [aria-expanded=true]").count() == 2  # group, trajectory
        assert page.locator("#replay").evaluate("s => [s.value, s.max]") == ["5", "5"]

        # The reader replays step 1: another step arrives, the slider stays on step 1.
        page.locator("#replay").fill("1")
        log_steps(db, "first", range(6, 7))
        page.wait_for_function(f"() => ({LAST_STEP})() === '6'", timeout=15_000)
        assert page.locator("#replay").evaluate("s => [s.value, s.max]") == ["1", "6"]
        assert page.locator("#replay-value").inner_text() == "step 1"
        assert page.locator('details.step[data-step="6"]').count() == 0  # beyond the replay
        assert page.evaluate("() => window.__noReload") is True
        assert opened.errors == []
        assert all(r.startswith(watched.url) for r in opened.requests)
    finally:
        close_page(opened)


def test_open_index_updates_in_place_keeping_sort_and_ticks(
    watched: Watching,
    browser: Any,  # noqa: F811  (the fixture of tests/browser.py)
) -> None:
    db = Path(watched.proc.args[watched.proc.args.index("--db") + 1])
    opened = open_page(browser, watched.url, viewport=VIEWPORT)
    page = opened.page
    try:
        page.wait_for_selector("#overlay[data-drawn=yes] canvas", timeout=15_000)
        page.click("th[data-key=name]")  # by name, ascending
        page.uncheck('.pick[value="run1"]')
        page.evaluate("() => { window.__noReload = true; }")
        log_steps(db, "another-q7", range(3), run_id="run2")
        page.wait_for_selector('tr[data-id="run2"]', timeout=15_000)
        ids = page.locator("table.runs tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
        assert ids == ["run2", "run1"]  # "another-q7" before "first"
        assert page.get_attribute("th[data-key=name]", "aria-sort") == "ascending"
        assert not page.is_checked('.pick[value="run1"]')
        assert page.evaluate("() => window.__noReload") is True
        assert opened.errors == []
    finally:
        close_page(opened)


def test_localhost_binds_the_loopback_address_it_prints(tmp_path: Path) -> None:
    server = ReportServer("localhost", 0, tmp_path)
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}/"
    finally:
        server.server_close()
