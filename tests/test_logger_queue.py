"""The queue: nothing dropped on a healthy database, bounded in bytes, never a long stall."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from tviz import TvizLogger
from tviz.logger import TvizWarning

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _count(db_path: Path, sql: str) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


BURST = """
    import sys, warnings
    from tviz import TvizLogger
    warnings.simplefilter("always")
    logger = TvizLogger(sys.argv[1], run_name="burst")
    for step in range(int(sys.argv[2])):
        logger.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    print("flushed", logger.flush(120), flush=True)
    logger.close()
"""


def test_a_burst_of_300k_calls_on_a_healthy_database_is_all_written(db_path: Path) -> None:
    done = _python(BURST, str(db_path), "300000")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["flushed", "True"]
    assert "TvizWarning" not in done.stderr, done.stderr
    assert _count(db_path, "SELECT count(*) FROM metrics") == 300_000


BIG_ROLLOUTS = """
    import json, sys, time
    from tviz import TvizLogger

    def peak_mb() -> float:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["VmHWM"].split()[0]) / 1024

    logger = TvizLogger(sys.argv[1], run_name="big")
    logger.flush()
    base = peak_mb()
    waits = []
    for step in range(100):  # 100 calls of 4 MB each, as fast as a loop can make them
        text = str(step % 10) * 4_000_000
        start = time.perf_counter()
        logger.log_rollouts([{"prompt_text": "p", "trajectories": [{"reward": 1.0,
                              "output_text": text}]}], step=step)
        waits.append(time.perf_counter() - start)
        del text
    ok = logger.flush(120)
    logger.close()
    print(json.dumps({"ok": ok, "growth_mb": peak_mb() - base, "max_wait": max(waits)}))
"""


def test_the_queue_limit_counts_bytes_and_a_fast_logger_waits(db_path: Path) -> None:
    done = _python(BIG_ROLLOUTS, str(db_path), env={"TVIZ_QUEUE_MB": "32"})
    assert done.returncode == 0, done.stderr
    assert "TvizWarning" not in done.stderr, done.stderr
    stats = json.loads(done.stdout)
    assert stats["ok"] is True
    # 400 MB went through a 32 MB queue: memory grew by about the queue, not the burst.
    assert stats["growth_mb"] < 150, stats
    assert _count(db_path, "SELECT count(*) FROM trajectories") == 100
    assert _count(db_path, "SELECT sum(length(output_text)) FROM trajectories") == 400_000_000


def _rollout(step: int, size: int = 100_000) -> list[dict]:
    return [{"prompt_text": str(step), "trajectories": [{"reward": 1, "output_text": "x" * size}]}]


def test_a_locked_database_refuses_calls_past_the_limit_within_a_second(db_path: Path) -> None:
    logger = TvizLogger(db_path, run_name="locked", queue_mb=1)
    logger.log_metrics({"x": 0}, step=0)
    assert logger.flush()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        waits = []
        for step in range(1, 41):  # 40 x 100 KB through a 1 MB queue
            t0 = time.perf_counter()
            logger.log_rollouts(_rollout(step), step=step)
            waits.append(time.perf_counter() - t0)
        took = time.perf_counter() - start
        assert logger.flush(timeout=0.5) is False
    refusals = [w for w in caught if issubclass(w.category, TvizWarning)]
    assert len(refusals) == 1, [str(w.message) for w in refusals]
    message = str(refusals[0].message)
    assert "cannot take data" in message and "write lock" in message
    assert max(waits) < 1.6 and took < 3.0  # one call waited about a second, no more
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blocker.execute("COMMIT")
        assert logger.flush(timeout=15) is True  # what was accepted is written
        logger.log_rollouts(_rollout(99), step=99)
        assert logger.flush(timeout=15) is True
    assert any("works again" in str(w.message) and "refused" in str(w.message) for w in caught)
    logger.close()
    written = _count(db_path, "SELECT count(*) FROM rollouts")
    assert 8 <= written <= 12  # what fitted in 1 MB (about 10), and step 99


def test_a_vanished_folder_refuses_calls_past_the_limit_and_flush_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    logger = TvizLogger(folder / "tviz.db", run_name="gone", queue_mb=1)
    assert logger.flush()
    for name in os.listdir(folder):
        os.unlink(folder / name)
    folder.rmdir()
    folder.write_text("a file where the database's folder was")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        for step in range(40):
            logger.log_rollouts(_rollout(step), step=step)  # never raises, never stalls
        took = time.perf_counter() - start
        assert logger.flush(timeout=2) is False
    assert took < 3.0
    messages = [str(w.message) for w in caught if issubclass(w.category, TvizWarning)]
    assert sum("are refused" in m for m in messages) == 1, messages
    with pytest.warns(TvizWarning, match="could not be written"):
        logger.close()  # what it still holds is lost, and it says so


def test_flush_says_false_once_calls_were_refused_and_true_after(db_path: Path) -> None:
    logger = TvizLogger(db_path, queue_mb=1)
    assert logger.flush()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(20):
            logger.log_rollouts(_rollout(step), step=step)
    with pytest.warns(TvizWarning, match=r"works again; \d+ log calls were refused"):
        blocker.execute("COMMIT")
        assert logger.flush(timeout=15) is False  # written now, but calls were refused
    logger.log_metrics({"x": 1.0}, step=0)
    assert logger.flush(timeout=15) is True
    logger.close()
