"""Real processes: forked children, exits without close(), SIGTERM, and ranks of one job."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tviz import TvizLogger

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_VARS}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


_LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID")


def _start(code: str, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=_env(**env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    proc = _start(code, *args, **env)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _rows(db_path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# -- fork -------------------------------------------------------------------------------------


def test_a_forked_child_logs_and_the_parents_queue_is_not_written_twice(db_path: Path) -> None:
    logger = TvizLogger(db_path, run_name="forked")
    for i in range(200):  # queued, maybe not written yet when the fork happens
        logger.log_long_text("parent", f"before the fork {i}")
    pid = os.fork()
    if pid == 0:  # the child: its calls must reach the file, and flush() must say so truly
        code = 1
        try:
            for step in range(50):
                logger.log_metrics({"child/loss": 1.0 / (step + 1)}, step=step)
            logger.log_long_text("child", "from the child")
            code = 0 if logger.flush(30) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    logger.log_metrics({"parent/loss": 0.5}, step=0)
    assert logger.flush()
    logger.close()
    texts = _rows(db_path, "SELECT key, count(*) FROM texts GROUP BY key ORDER BY key")
    assert texts == [("child", 1), ("parent", 200)]
    steps = _rows(db_path, "SELECT step FROM metrics WHERE name = 'child/loss' ORDER BY step")
    assert [s for (s,) in steps] == list(range(50))
    assert _rows(db_path, "SELECT count(*) FROM runs") == [(1,)]
    assert _rows(db_path, "SELECT status FROM runs") == [("finished",)]


MP_CHILDREN = """
import multiprocessing as mp, sys
from tviz import TvizLogger

def inherited(logger):  # the parent's logger, used in the child; never flushed
    for step in range(2000):
        logger.log_metrics({"inherited": step}, step=step)

def own(db):  # a logger of the child's own, never closed
    logger = TvizLogger(db, run_name="child-own")
    for step in range(2000):
        logger.log_metrics({"own": step}, step=step)

if __name__ == "__main__":
    method = sys.argv[2]
    mp.set_start_method(method)
    parent = TvizLogger(sys.argv[1], run_name="parent")
    parent.flush()
    children = [(own, (sys.argv[1],))]
    if method == "fork":  # elsewhere the logger would be pickled: a logger is not picklable
        children.insert(0, (inherited, (parent,)))
    for target, args in children:
        child = mp.Process(target=target, args=args)
        child.start()
        child.join()
        assert child.exitcode == 0, child.exitcode
    parent.close()
"""


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_multiprocessing_children_ended_with_os_exit_are_written(
    tmp_path: Path, method: str
) -> None:
    script = tmp_path / "children.py"
    script.write_text(MP_CHILDREN)
    db_path = tmp_path / "tviz.db"
    done = subprocess.run(
        [sys.executable, str(script), str(db_path), method],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    counts = dict(_rows(db_path, "SELECT name, count(*) FROM metrics GROUP BY name"))
    assert counts == ({"inherited": 2000, "own": 2000} if method == "fork" else {"own": 2000})
    runs = dict(_rows(db_path, "SELECT name, status FROM runs"))
    # The child's exit does not end the parent's run; the child's own run is finished.
    assert runs == {"parent": "finished", "child-own": "finished"}


# -- exit -----------------------------------------------------------------------------------


UNREFERENCED = """
    import sys
    from tviz import TvizLogger

    def train():
        logger = TvizLogger(sys.argv[1], run_name="dropped")  # never closed, soon unreferenced
        for step in range(20_000):
            logger.log_metrics({f"m{i}": step for i in range(10)}, step=step)

    train()
"""


def test_a_logger_nobody_references_any_more_is_written_at_exit(db_path: Path) -> None:
    done = _run(UNREFERENCED, str(db_path))
    assert done.returncode == 0, done.stderr
    assert _rows(db_path, "SELECT count(*) FROM metrics") == [(200_000,)]
    assert _rows(db_path, "SELECT status FROM runs") == [("finished",)]


TERMINATED = """
    import signal, sys, time
    from tviz import TvizLogger
    if sys.argv[2] == "handler":
        def handler(signum, frame):
            print("own handler ran", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, handler)
    logger = TvizLogger(sys.argv[1], run_name="preempted")
    for step in range(10_000):  # a burst the writer needs about a second for
        logger.log_metrics({f"m{i}": step for i in range(30)}, step=step)
    print("logged", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("previous", ["default", "handler"])
def test_sigterm_writes_what_was_queued_then_the_signal_goes_on(
    db_path: Path, previous: str
) -> None:
    proc = _start(TERMINATED, str(db_path), previous)
    assert proc.stdout.readline().strip() == "logged"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 15
    if previous == "default":
        assert proc.returncode == -signal.SIGTERM, err  # died of the signal, as without tviz
        status = "running"  # a preempted run stays open: its restart resumes it
    else:
        assert out.strip() == "own handler ran" and proc.returncode == 3, err
        status = "finished"  # the program's handler exited normally: atexit closed it
    assert _rows(db_path, "SELECT count(*) FROM metrics") == [(300_000,)]
    assert _rows(db_path, "SELECT status FROM runs") == [(status,)]
    assert _rows(db_path, "SELECT count(*) FROM writers") == [(0,)]


def test_the_sigterm_handler_is_installed_only_from_the_main_thread(db_path: Path) -> None:
    code = """
        import signal, sys, threading
        from tviz import TvizLogger
        made = []
        worker = threading.Thread(target=lambda: made.append(TvizLogger(sys.argv[1])))
        worker.start(); worker.join()
        print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ignored on purpose: left alone
        TvizLogger(sys.argv[1])
        print(signal.getsignal(signal.SIGTERM) is signal.SIG_IGN, flush=True)
    """
    done = _run(code, str(db_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


# -- ranks: several live writers of one run ---------------------------------------------------


LIVE_WRITER = """
    import sys
    from tviz import TvizLogger
    db, run_id, name = sys.argv[1:4]
    logger = TvizLogger(db, run_id=run_id)
    for step in range(5):
        logger.log_rollouts([{"prompt_text": f"{name} {step}", "trajectories": [{"reward": 1}]}],
                            step=step)
    logger.flush()
    print("logged", flush=True)
    sys.stdin.readline()  # stays alive until told
    logger.close()
"""


def test_two_live_processes_logging_into_one_run_keep_each_others_groups(db_path: Path) -> None:
    first = _start(LIVE_WRITER, str(db_path), "shared", "first")
    assert first.stdout.readline().strip() == "logged"
    second = _start(LIVE_WRITER, str(db_path), "shared", "second")  # while the first lives
    assert second.stdout.readline().strip() == "logged"
    for proc in (first, second):
        proc.communicate("\n", timeout=60)
        assert proc.returncode == 0
    prompts = sorted(p for (p,) in _rows(db_path, "SELECT prompt_text FROM rollouts"))
    assert prompts == sorted(f"{who} {s}" for who in ("first", "second") for s in range(5))


def test_a_resume_after_the_writer_was_killed_replaces_the_steps_logged_again(
    db_path: Path,
) -> None:
    first = _start(LIVE_WRITER, str(db_path), "resumed", "first")
    assert first.stdout.readline().strip() == "logged"
    first.kill()  # SIGKILL: no goodbye in the writers table
    first.wait(timeout=10)
    with TvizLogger(db_path, run_id="resumed") as again:  # restarted from checkpoint 3
        for step in (3, 4):
            again.log_rollouts([{"prompt_text": f"again {step}", "trajectories": [{}]}], step)
    prompts = sorted(p for (p,) in _rows(db_path, "SELECT prompt_text FROM rollouts"))
    assert prompts == ["again 3", "again 4", "first 0", "first 1", "first 2"]


RANK = """
    import sys
    from tviz import TvizLogger
    db, name = sys.argv[1], sys.argv[2]
    rank = int(__import__("os").environ["RANK"])
    logger = TvizLogger(db, run_name=name, config={"lr": 0.1, "seed": rank})
    for step in range(3):
        logger.log_metrics({"loss": 10 * rank + step, f"rank{rank}/only": step}, step=step)
        logger.log_rollouts([{"prompt_text": f"rank {rank} step {step}",
                              "trajectories": [{"reward": rank}]}], step=step)
    logger.log_summary({"tokens": 100 + rank})
    print(logger.run_id, logger.get_logger_url(), flush=True)
    sys.stdin.readline()
    logger.close()
"""


def _ranks(db_path: Path, world: int = 2, **env: str) -> list[str]:
    procs = [
        _start(
            RANK,
            str(db_path),
            "job",
            RANK=str(r),
            LOCAL_RANK=str(r),
            WORLD_SIZE=str(world),
            TORCHELASTIC_RUN_ID="elastic-7f3a",
            **env,
        )
        for r in range(world)
    ]
    ids = [p.stdout.readline().split()[0] for p in procs]  # all alive at once
    for proc in procs:
        _, err = proc.communicate("\n", timeout=60)
        assert proc.returncode == 0, err
    return ids


def test_under_torchrun_only_rank_0_logs_by_default(db_path: Path) -> None:
    _ranks(db_path)
    assert _rows(db_path, "SELECT name FROM runs") == [("job",)]
    assert _rows(db_path, "SELECT DISTINCT name FROM metrics ORDER BY name") == [
        ("loss",),
        ("rank0/only",),
    ]
    assert _rows(db_path, "SELECT prompt_text FROM rollouts WHERE prompt_text LIKE 'rank 1%'") == []


def test_all_ranks_log_into_one_run_and_nothing_is_overwritten(db_path: Path) -> None:
    ids = _ranks(db_path, world=3, TVIZ_ALL_RANKS="1")
    assert len(set(ids)) == 1  # the ranks found one run, from the launcher's job id
    assert _rows(db_path, "SELECT id, name, status FROM runs") == [(ids[0], "job", "finished")]
    # The run's series is rank 0's; the others' values are kept apart, none overwritten.
    loss = _rows(db_path, "SELECT step, value FROM metrics WHERE name = 'loss' ORDER BY step")
    assert loss == [(0, 0.0), (1, 1.0), (2, 2.0)]
    others = _rows(
        db_path,
        "SELECT rank, step, value FROM rank_metrics WHERE name = 'loss' ORDER BY rank, step",
    )
    assert others == [(r, s, float(10 * r + s)) for r in (1, 2) for s in range(3)]
    groups = _rows(db_path, "SELECT rank, step, prompt_text FROM rollouts ORDER BY rank, step")
    assert groups == [(r, s, f"rank {r} step {s}") for r in range(3) for s in range(3)]
    assert _rows(db_path, "SELECT value FROM summaries WHERE name = 'tokens'") == [(100.0,)]
    assert _rows(db_path, "SELECT rank, value FROM rank_summaries ORDER BY rank") == [
        (1, 101.0),
        (2, 102.0),
    ]
    # Rank 0's config; the other ranks add keys but change none.
    config = json.loads(_rows(db_path, "SELECT config FROM runs")[0][0])
    assert config == {"lr": 0.1, "seed": 0}


def test_all_ranks_without_a_job_id_or_run_id_falls_back_to_rank_0(db_path: Path) -> None:
    procs = [
        _start(RANK, str(db_path), "nojob", RANK=str(r), WORLD_SIZE="2", TVIZ_ALL_RANKS="1")
        for r in range(2)
    ]
    for proc in procs:
        proc.stdout.readline()
        _, err = proc.communicate("\n", timeout=60)
        assert proc.returncode == 0, err
        assert "all_ranks needs run_id=" in err
    assert _rows(db_path, "SELECT count(*) FROM runs") == [(1,)]
    assert _rows(db_path, "SELECT DISTINCT rank FROM rollouts") == [(None,)]


def test_every_method_of_a_silent_rank_works_and_does_nothing(tmp_path: Path) -> None:
    code = """
        import sys
        from tviz import TvizLogger
        with TvizLogger(sys.argv[1], config={"a": 1}) as logger:
            logger.log_metrics({"x": 1}, step=0)
            logger.log_metrics_event({"x": 1}, step=0, step_metric="s")
            logger.log_summary({"x": 1})
            logger.log_long_text("k", "t")
            logger.log_rollouts([{"trajectories": [{"reward": 1}]}], step=0)
            logger.log_hparams({"b": 2})
            logger.enable_event_steps()
            logger.sync()
            print(logger.flush(), logger.get_logger_url(), logger.store, flush=True)
        logger.log_metrics({"late": 1}, step=1)  # closed, silent: no warning either
    """
    db = tmp_path / "never.db"
    done = _run(code, str(db), RANK="1", WORLD_SIZE="8")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.split() == ["True", "None", "None"]
    assert not db.exists()


def test_a_real_torchrun_job_logs_one_run(tmp_path: Path) -> None:
    pytest.importorskip("torch.distributed.run")  # torch: only for its launcher
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            from tviz import TvizLogger
            assert "torch" not in sys.modules  # importing tviz imports no torch
            rank = int(os.environ["RANK"])
            with TvizLogger(sys.argv[1], run_name="torchrun", all_ranks=True) as logger:
                logger.log_metrics({"loss": float(rank)}, step=0)
                logger.log_rollouts([{"prompt_text": str(rank), "trajectories": [{}]}], step=0)
            """
        )
    )
    db = tmp_path / "tviz.db"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
        + [str(script), str(db)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert _rows(db, "SELECT name FROM runs") == [("torchrun",)]
    assert _rows(db, "SELECT rank, prompt_text FROM rollouts ORDER BY rank") == [
        (0, "0"),
        (1, "1"),
    ]


def test_a_writer_that_stops_heartbeating_is_taken_for_dead(db_path: Path) -> None:
    """A writer row whose process is alive elsewhere counts until its heartbeat is stale."""
    with TvizLogger(db_path, run_id="r", strict=True) as first:
        first.log_rollouts([{"prompt_text": "old", "trajectories": [{}]}], step=0)
    conn = sqlite3.connect(db_path)
    now = time.time()
    conn.executemany(  # another machine's writer: fresh, then one gone quiet for 10 minutes
        "INSERT INTO writers (writer_id, run_id, host, pid, started_ts, heartbeat_ts)"
        " VALUES (?, 'r', 'other-host', 1, ?, ?)",
        [("live", now, now)],
    )
    conn.commit()
    with TvizLogger(db_path, run_id="r", strict=True) as again:
        again.log_rollouts([{"prompt_text": "new", "trajectories": [{}]}], step=0)
    assert sorted(p for (p,) in _rows(db_path, "SELECT prompt_text FROM rollouts")) == [
        "new",
        "old",
    ]
    conn.execute("UPDATE writers SET heartbeat_ts = ? WHERE writer_id = 'live'", (now - 600,))
    conn.commit()
    conn.close()
    with TvizLogger(db_path, run_id="r", strict=True) as third:
        third.log_rollouts([{"prompt_text": "newest", "trajectories": [{}]}], step=0)
    assert _rows(db_path, "SELECT prompt_text FROM rollouts") == [("newest",)]
    assert _rows(db_path, "SELECT count(*) FROM writers") == [(0,)]


def test_threads_do_not_matter_to_the_writers_table(db_path: Path) -> None:
    """Two loggers of one run in one process are two live writers."""
    one = TvizLogger(db_path, run_id="same")
    one.log_rollouts([{"prompt_text": "one", "trajectories": [{}]}], step=0)
    assert one.flush()
    two: list[TvizLogger] = []
    worker = threading.Thread(target=lambda: two.append(TvizLogger(db_path, run_id="same")))
    worker.start()
    worker.join()
    two[0].log_rollouts([{"prompt_text": "two", "trajectories": [{}]}], step=0)
    assert two[0].flush()
    one.close()
    two[0].close()
    assert sorted(p for (p,) in _rows(db_path, "SELECT prompt_text FROM rollouts")) == [
        "one",
        "two",
    ]


def test_a_busy_writer_keeps_its_heartbeat_fresh(db_path: Path) -> None:
    logger = TvizLogger(db_path, run_id="busy")
    logger.log_metrics({"x": 0}, step=0)
    assert logger.flush()
    ((first,),) = _rows(db_path, "SELECT heartbeat_ts FROM writers")
    for step in range(1, 36):  # a commit every 0.1 s for 3.5 s
        logger.log_metrics({"x": step}, step=step)
        assert logger.flush()
        time.sleep(0.1)
    ((later,),) = _rows(db_path, "SELECT heartbeat_ts FROM writers")
    logger.close()
    assert later > first + 2.5


def test_a_rank_that_starts_late_does_not_reopen_the_run_rank_0_ended(db_path: Path) -> None:
    env = {"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "late-job", "TVIZ_ALL_RANKS": "1"}
    for rank in ("0", "1"):  # rank 1's first commit comes after rank 0 finished
        proc = _start(RANK, str(db_path), "late", RANK=rank, **env)
        proc.stdout.readline()
        _, err = proc.communicate("\n", timeout=60)
        assert proc.returncode == 0, err
    assert _rows(db_path, "SELECT status FROM runs") == [("finished",)]
    assert (
        _rows(db_path, "SELECT rank FROM rollouts ORDER BY rank, step") == [(0,)] * 3 + [(1,)] * 3
    )
