"""`tviz watch` over several databases (one per node): one site, rebuilt when any file changes.

Real files written with TvizLogger, a real `tviz watch` subprocess on 127.0.0.1 (the helpers of
tests/test_watch.py), pages fetched over HTTP and, for the live update, headless Chromium."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser is a fixture)
from click.testing import CliRunner
from render_data import page_data
from test_watch import LAST_STEP, VIEWPORT, Watching, serving, start_watch, wait_until

from tviz import TvizLogger
from tviz.cli import main
from tviz.cookbook_api import watch_url
from tviz.names import run_page
from tviz.watch.tracker import ChangeTracker, FileWatcher

SAME = {"Sec-Fetch-Site": "same-origin"}


def log(db: Path, run_id: str, steps: range, loss: dict[int, float] | None = None) -> None:
    """Steps of run `run_id` in `db` (its name is its id): metrics and one rollout each."""
    with TvizLogger(db, run_name=run_id, run_id=run_id, strict=True) as logger:
        log_into(logger, db, steps, loss)


def log_into(
    logger: TvizLogger, db: Path, steps: range, loss: dict[int, float] | None = None
) -> None:
    for step in steps:
        value = (loss or {}).get(step, float(step))
        logger.log_metrics({"env/all/reward/total": step / 10, "loss": value}, step=step)
        out = {"reward": 1.0, "output_text": f"answer {db.stem} {step}"}
        logger.log_rollouts([{"prompt_text": f"p {db.stem} {step}", "trajectories": [out]}], step)


def page(run_id: str) -> str:
    return "/" + run_page(run_id, run_id)


def served_data(watching: Watching, run_id: str, tmp_path: Path) -> dict:
    """The `page-data` of a run's page as the server sends it."""
    resp = watching.request(page(run_id))
    assert resp.status == 200
    copy = tmp_path / "served.html"
    copy.write_bytes(resp.body)
    return page_data(copy)


def conflict_lines(watching: Watching) -> list[str]:
    return [line for line in watching.lines if "warning: run" in line and "conflict:" in line]


@pytest.fixture
def nodes(tmp_path: Path) -> tuple[Path, Path]:
    """Two nodes' files in two folders: run-a in the first, run-b in the second, and `job`
    logged from both (steps 0-2 and 2-4; its loss at step 2 differs)."""
    a = tmp_path / "a.db"
    b = tmp_path / "nodes" / "b.db"
    b.parent.mkdir()
    log(a, "run-a", range(5))
    log(b, "run-b", range(5))
    log(a, "job", range(0, 3))
    log(b, "job", range(2, 5), loss={2: 99.0})
    return a, b


@pytest.fixture
def watching(nodes: tuple[Path, Path], tmp_path: Path) -> Iterator[Watching]:
    """`tviz watch --db a.db --db 'nodes/*.db'`, its first build done."""
    a, b = nodes
    glob = str(b.parent / "*.db")
    watching = serving(start_watch(a, tmp_path / "site", "--db", glob))
    wait_until(lambda: watching.said("built 3 run(s)"), "the first build", timeout=60)
    yield watching
    code, _, stderr = watching.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr


def test_a_wal_commit_to_the_second_file_reaches_the_served_page(
    nodes: tuple[Path, Path], watching: Watching, tmp_path: Path
) -> None:
    a, b = nodes
    assert watching.said("watching 2 databases as one site")
    index = watching.request("/").body
    assert all(run.encode() in index for run in ("run-a", "run-b", "job"))
    assert b'"lastStep":4' in watching.request(page("run-b")).body
    before = watching.version(page("run-a"))
    main_file = b.stat().st_mtime_ns
    logger = TvizLogger(b, run_name="run-b", run_id="run-b", strict=True)
    try:
        log_into(logger, b, range(5, 6))
        assert logger.flush()
        start = time.monotonic()
        wait_until(
            lambda: b'"lastStep":5' in watching.request(page("run-b")).body,
            "the new step on the page",
            timeout=5,
        )
        took = time.monotonic() - start
        assert b.stat().st_mtime_ns == main_file  # the commit is in b.db-wal only
    finally:
        logger.close()
    assert took < 3, took
    wait_until(lambda: watching.said("re-rendered run-b"), "the rebuild's line")  # after the page
    assert not watching.said("re-rendered run-a")
    assert watching.version(page("run-a")) == before


def test_a_run_in_both_files_shows_the_steps_of_both(
    nodes: tuple[Path, Path], watching: Watching, tmp_path: Path
) -> None:
    a, b = nodes
    assert served_data(watching, "job", tmp_path)["steps"] == [0, 1, 2, 3, 4]
    log(a, "job", range(5, 6))
    wait_until(lambda: b'"lastStep":5' in watching.request(page("job")).body, "a's step")
    log(b, "job", range(6, 7))
    wait_until(lambda: b'"lastStep":6' in watching.request(page("job")).body, "b's step")
    assert served_data(watching, "job", tmp_path)["steps"] == [0, 1, 2, 3, 4, 5, 6]


def test_a_conflict_is_said_once_per_run(nodes: tuple[Path, Path], watching: Watching) -> None:
    a, b = nodes
    lines = wait_until(lambda: conflict_lines(watching), "the conflict's line")
    assert len(lines) == 1, watching.lines
    assert "warning: run job:" in lines[0] and "'loss'" in lines[0] and "step 2" in lines[0]
    assert "a.db" in lines[0] and "b.db" in lines[0]
    # Rebuilding the run (new steps from either file, a new conflict) says nothing more: its
    # page lists every conflict.
    rebuilt(watching, "job", lambda: log(a, "job", range(5, 6)))
    rebuilt(watching, "job", lambda: log(b, "job", range(6, 7)))
    rebuilt(watching, "job", lambda: log(b, "job", range(5, 6), loss={5: -1.0}))
    # Another run gets its first conflict: said once, too.
    rebuilt(watching, "run-a", lambda: log(b, "run-a", range(1, 2), loss={1: 42.0}))
    wait_until(lambda: len(conflict_lines(watching)) > 1, "run-a's conflict")
    rebuilt(watching, "run-a", lambda: log(a, "run-a", range(7, 8)))
    # A last rebuild: whatever the ones before printed has been read by now.
    rebuilt(watching, "run-b", lambda: log(b, "run-b", range(5, 6)))
    lines = conflict_lines(watching)
    assert len(lines) == 2, watching.lines
    assert "warning: run run-a:" in lines[1] and "42.0" in lines[1]


def rebuilt(watching: Watching, run_id: str, change: Any) -> None:
    """Make `change` and wait for the watch to re-render `run_id`."""

    def count() -> int:
        return sum("re-rendered" in line and run_id in line for line in watching.lines)

    before = count()
    change()
    wait_until(lambda: count() > before, f"{run_id} to be re-rendered")


def test_a_file_deleted_or_replaced_is_waited_for_and_the_others_go_on(
    nodes: tuple[Path, Path], watching: Watching, tmp_path: Path
) -> None:
    a, b = nodes
    # Replaced (as rsync or a copy-then-rename does): read again, everything rebuilt.
    fresh = tmp_path / "fresh.db"
    log(fresh, "run-c", range(3))
    # The old file's WAL emptied first: SQLite would read a stale one as the new file's.
    with closing(sqlite3.connect(b)) as conn:
        wait_until(
            lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0,
            "the old WAL to be emptied",
        )
    os.replace(fresh, b)
    wait_until(lambda: watching.said(f"{b} was replaced; reading the new file"), "the swap")
    wait_until(lambda: b"run-c" in watching.request("/").body, "the new file's run")
    # Deleted: said once; a commit to the other file still reaches its page.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{b}{suffix}").unlink(missing_ok=True)
    wait_until(lambda: watching.said(f"{b} was deleted; waiting for it to come back"), "it")
    log(a, "run-a", range(5, 6))
    wait_until(lambda: b'"lastStep":5' in watching.request(page("run-a")).body, "a's step")
    # Back: found, and its runs are on the site again.
    log(b, "run-d", range(2))
    wait_until(lambda: watching.said(f"found the database {b}"), "the file's return")
    wait_until(lambda: b"run-d" in watching.request("/").body, "the returned file's run")
    assert sum("was deleted" in line for line in watching.lines) == 1


def test_compare_and_logger_urls_cover_every_file(
    nodes: tuple[Path, Path], watching: Watching
) -> None:
    a, b = nodes
    resp = watching.request("/compare?run=run-b&run=run-a", headers=SAME)
    assert resp.status == 303, resp.body
    compared = watching.request(resp.headers["Location"], headers=SAME)
    assert compared.status == 200
    assert b"run-a" in compared.body and b"run-b" in compared.body
    assert watching.request("/compare?run=run-b&run=nope", headers=SAME).status == 404
    # A logger of either file gets its run's page on this watch; another file's does not.
    for db, run_id in ((a, "run-a"), (b, "run-b")):
        url = watch_url(db, page(run_id).lstrip("/"), watching.port, timeout=5)
        assert url == f"http://127.0.0.1:{watching.port}{page(run_id)}"
    other = b.parent / "other.db"
    assert watch_url(other, "runs/nope.html", watching.port, timeout=5) is None


def test_missing_file_or_empty_glob_is_one_line(nodes: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = nodes
    for wanted, message in (
        (str(tmp_path / "missing.db"), "no database at"),
        (str(tmp_path / "none" / "*.db"), "no database matches"),
    ):
        args = ["watch", "--db", str(a), "--db", wanted, "--out", str(tmp_path / "site")]
        result = CliRunner().invoke(main, [*args, "--port", "0"])
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "site").exists()  # nothing built, nothing served


def test_one_file_is_still_the_one_file_watch(tmp_path: Path) -> None:
    """`--db` once, or a glob of one file: the messages of the one-file watch."""
    db = tmp_path / "one" / "runs.db"
    db.parent.mkdir()
    log(db, "solo", range(2))
    watching = serving(start_watch(tmp_path / "one" / "*.db", tmp_path / "site"))
    try:
        wait_until(lambda: watching.said("built 1 run(s)"), "the first build", timeout=60)
        assert not watching.said("databases")
        index = watching.request("/").body
        assert b"<code>runs.db</code>" in index
    finally:
        code, _, stderr = watching.stop()
    assert code == 0, stderr


# -- in process ----------------------------------------------------------------------------------


def test_the_watcher_wakes_for_a_commit_in_either_folder(
    nodes: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One watchfiles watcher over both folders; a folder on a network file system is polled
    (said once) while the other is still watched."""
    a, b = nodes
    said: list[str] = []
    network = {b.parent}
    monkeypatch.setattr(
        "tviz.watch.tracker.network_fs", lambda folder: "nfs4" if folder in network else None
    )
    for networked in (False, True):
        if not networked:
            network.clear()
        else:
            network.add(b.parent)
        wake, stop = threading.Event(), threading.Event()
        watcher = FileWatcher([a, b], wake, stop, said.append)
        thread = threading.Thread(target=watcher.run)
        thread.start()
        try:
            for db in (a, b) if not networked else (a,):
                # The watcher may not be watching yet: commit until it notices one.
                wait_until(lambda db=db, wake=wake: woken(db, wake), f"{db.name}", timeout=15)
            assert watcher.fallback is networked
        finally:
            stop.set()
            thread.join(timeout=5)
        assert not thread.is_alive()
    notes = [line for line in said if line.startswith("note:")]
    assert notes == [
        f"note: {b.parent} is on nfs4, a network file system; checking the databases every"
        " 0.25 s instead"
    ]


def test_a_folder_gone_and_back_is_watched_again(nodes: tuple[Path, Path]) -> None:
    a, b = nodes
    wake, stop = threading.Event(), threading.Event()
    watcher = FileWatcher([a, b], wake, stop, lambda line: None)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        wait_until(lambda: woken(b, wake), "b.db's commit", timeout=15)
        shutil.rmtree(b.parent)
        wait_until(lambda: watcher.fallback, "the folder's loss", timeout=5)
        wait_until(lambda: woken(a, wake), "a.db's commit, b's folder gone", timeout=15)
        log(b, "run-b", range(1))  # the folder and the file back
        wait_until(lambda: not watcher.fallback, "the folder's return", timeout=5)
        wait_until(lambda: woken(b, wake), "b.db's commit after its return", timeout=15)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def woken(db: Path, wake: threading.Event) -> bool:
    """Commit to `db`: did the watcher wake within a second?"""
    wake.clear()
    log(db, "run-a" if db.stem == "a" else "run-b", range(9, 10))
    return wake.wait(1.0)


def test_tracker_builds_what_is_readable(nodes: tuple[Path, Path], tmp_path: Path) -> None:
    """An empty file among several waits, said once, while the others are built; its data
    then builds everything again."""
    from tviz.render import SiteBuilder

    a, b = nodes
    empty = tmp_path / "later.db"
    empty.touch()
    said: list[str] = []
    tracker = ChangeTracker([a, empty, b], tmp_path / "out", SiteBuilder, said.append)
    try:
        tracker.update()
        tracker.update()
        assert sum("waiting for the first data" in line for line in said) == 1
        assert any("built 3 run(s)" in line for line in said)
        assert tracker.waiting
        empty.unlink()
        log(empty, "late", range(2))
        tracker.update()
        assert any(f"found the database {empty}" in line for line in said)
        assert any("built 4 run(s)" in line for line in said)
        assert not tracker.waiting
    finally:
        tracker.close()
    assert "late" in (tmp_path / "out" / "index.html").read_text("utf-8")


# -- in a real browser ---------------------------------------------------------------------------


def test_open_page_of_a_run_in_the_second_file_updates_itself(
    nodes: tuple[Path, Path],
    watching: Watching,
    browser: Any,  # noqa: F811  (the fixture of tests/browser.py)
) -> None:
    a, b = nodes
    opened = open_page(browser, watching.url.rstrip("/") + page("run-b"), viewport=VIEWPORT)
    try:
        assert opened.page.evaluate(LAST_STEP) == "4"
        log(b, "run-b", range(5, 6))
        opened.page.wait_for_function(f"() => ({LAST_STEP})() === '5'", timeout=15_000)
        assert opened.errors == []
        assert all(r.startswith(watching.url) for r in opened.requests)
    finally:
        close_page(opened)
