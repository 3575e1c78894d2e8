"""`TvizLogger.get_logger_url()` (`cookbook_api.watch_url`) against a real `tviz watch` on
127.0.0.1: a run whose page is not built yet still gets its URL where the watch serves the
logger's file, whether the watch serves that one file or several (the index of several names
its files in its data, `dbNames`, not in one `<code>` each)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from test_watch import Watching, serving, start_watch, wait_until
from test_watch_many import log, page

import tviz.logger
from tviz import TvizLogger
from tviz.cookbook_api import watch_url
from tviz.names import run_page


@contextmanager
def write_locked(db: Path) -> Iterator[None]:
    """Hold `db`'s write lock: a logger's commits wait, so the watch cannot build their page."""
    with closing(sqlite3.connect(db, timeout=10, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


def stopped(watching: Watching) -> None:
    code, _, stderr = watching.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr


@pytest.fixture
def two_files(tmp_path: Path) -> Iterator[tuple[Path, Path, Watching]]:
    """`tviz watch --db a.db --db nodes/b.db`, its first build done."""
    a = tmp_path / "a.db"
    b = tmp_path / "nodes" / "b.db"
    b.parent.mkdir()
    log(a, "run-a", range(3))
    log(b, "run-b", range(3))
    watching = serving(start_watch(a, tmp_path / "site", "--db", str(b)))
    wait_until(lambda: watching.said("built 2 run(s)"), "the first build", timeout=60)
    yield a, b, watching
    stopped(watching)


def test_a_logger_of_the_second_file_gets_its_url_before_its_page_is_built(
    two_files: tuple[Path, Path, Watching], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, watching = two_files
    assert watching.said("watching 2 databases as one site")
    monkeypatch.setattr(tviz.logger, "DEFAULT_PORT", watching.port)
    expected = f"http://127.0.0.1:{watching.port}/"
    where = run_page("fresh", "fresh-1")
    logger = None
    try:
        with write_locked(b):  # the logger's commits wait: its run is not in the file yet
            logger = TvizLogger(b, run_name="fresh", run_id="fresh-1")
            logger.log_metrics({"loss": 1.0}, step=0)
            assert watching.version("/" + where) == "none"  # not built: the fallback is asked
            assert logger.get_logger_url() == expected + where
            assert watching.version("/" + where) == "none"
        assert logger.flush()
        # Once built, the page is served at the URL given.
        wait_until(lambda: watching.version("/" + where) != "none", "the run's page", timeout=20)
        assert watching.request("/" + where).status == 200
    finally:
        if logger is not None:
            logger.close()
    # Either file's logger, built or not; a file the watch does not serve gets no URL.
    for db in (a, b):
        assert watch_url(db, "runs/not-yet.html", watching.port, timeout=5) == (
            expected + "runs/not-yet.html"
        )
    assert watch_url(a, page("run-a").lstrip("/"), watching.port, timeout=5) == (
        expected + page("run-a").lstrip("/")
    )
    for other in (b.parent / "other.db", b.parent / "a.db.db", b.parent / "b"):
        assert watch_url(other, "runs/not-yet.html", watching.port, timeout=5) is None


def test_one_file_watch_still_gives_the_url_of_a_page_not_built(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    log(db, "run-a", range(2))
    watching = serving(start_watch(db, tmp_path / "site"))
    try:
        wait_until(lambda: watching.said("built 1 run(s)"), "the first build", timeout=60)
        url = f"http://127.0.0.1:{watching.port}/runs/not-yet.html"
        assert watch_url(db, "runs/not-yet.html", watching.port, timeout=5) == url
        other = tmp_path / "elsewhere" / "two.db"
        assert watch_url(other, "runs/not-yet.html", watching.port, timeout=5) is None
    finally:
        stopped(watching)
