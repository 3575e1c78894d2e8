"""Several processes on one file, killed writers and readers that must see one moment."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tviz.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


WRITER = """
    import sys
    from tviz import TvizLogger
    db, name, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with TvizLogger(db, run_name=name) as logger:
        for step in range(steps):
            logger.log_metrics({f"m{i}": step + i / 100 for i in range(30)}, step=step)
            logger.log_rollouts(
                [{"prompt_text": f"{name} {step}",
                  "trajectories": [{"reward": k / 4, "output_text": "x" * 500} for k in range(4)]}],
                step=step,
            )
"""


def test_four_processes_logging_at_once_lose_nothing(db_path: Path) -> None:
    steps = 150
    procs = [_python(WRITER, str(db_path), f"proc{i}", str(steps)) for i in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "TvizWarning" not in err, err
    with Store(db_path) as store:
        runs = store.list_runs()
        assert sorted(r.name for r in runs) == [f"proc{i}" for i in range(4)]
        for run in runs:
            assert (run.status, run.num_steps, run.num_trajectories) == (
                "finished",
                steps,
                steps * 4,
            )
            data = store.load_run(run.id)
            assert len(data.metrics) == 30
            assert all(s.steps == list(range(steps)) for s in data.metrics.values())


KILLED = """
    import sys, time
    from tviz import TvizLogger
    logger = TvizLogger(sys.argv[1], run_name="killed")
    for step in range(100_000):
        logger.log_metrics({"loss": 1.0 / (step + 1), "step": step}, step=step)
        if step == 300:
            logger.flush()
            print("flushed", step, flush=True)
        time.sleep(0.0005)
"""


def test_a_killed_writer_loses_at_most_its_unflushed_tail(db_path: Path) -> None:
    proc = _python(KILLED, str(db_path))
    assert proc.stdout.readline().split() == ["flushed", "300"]
    time.sleep(0.5)  # let it log (and commit some) more before the kill
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Store(db_path) as store:
        (run,) = store.list_runs()
        steps = store.load_run(run.id).metrics["loss"].steps
    # Everything flushed survived, with no holes: the lost part is a tail, never a middle.
    assert steps[:301] == list(range(301))
    assert steps == list(range(len(steps)))
    assert run.status == "running"  # it never said goodbye


READER_WRITER = """
    import sys
    from tviz import TvizLogger
    logger = TvizLogger(sys.argv[1], run_name="busy", strict=True)
    print("ready", logger.run_id, flush=True)
    for step in range(400):
        logger.log_rollouts(
            [{"prompt_text": str(g), "trajectories": [{"reward": 1.0}] * 8} for g in range(4)],
            step=step,
        )
        logger.log_metrics({"env/all/reward/total": step}, step=step)
    logger.close()
"""


def test_a_page_never_mixes_two_moments_of_a_run(db_path: Path) -> None:
    proc = _python(READER_WRITER, str(db_path))
    _, run_id = proc.stdout.readline().split()
    checked = 0
    with Store(db_path) as store:
        while proc.poll() is None or checked == 0:
            data = store.load_run(run_id)
            trajectories = sum(len(r.trajectories) for r in data.rollouts)
            # Counted by one query, listed by another: equal only if both see one moment.
            assert data.summary.num_trajectories == trajectories
            assert data.summary.num_rollouts == len(data.rollouts)
            checked += 1
    assert proc.wait(timeout=60) == 0
    assert checked > 3


FORGETFUL = """
    import sys
    from tviz import TvizLogger
    logger = TvizLogger(sys.argv[1], run_name=sys.argv[2])
    for step in range(50):
        logger.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    if sys.argv[2] == "crashes":
        raise RuntimeError("diverged")
"""


def test_interpreter_exit_writes_what_was_queued(db_path: Path) -> None:
    """No flush(), no close(): the exit still writes everything and says how the run ended."""
    for name in ("forgets-close", "crashes"):
        proc = _python(FORGETFUL, str(db_path), name)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == (1 if name == "crashes" else 0), err
    with Store(db_path) as store:
        runs = {run.name: run for run in store.list_runs()}
        for run in runs.values():
            assert store.load_run(run.id).metrics["loss"].steps == list(range(50))
    assert runs["forgets-close"].status == "finished"
    assert runs["crashes"].status == "crashed"
