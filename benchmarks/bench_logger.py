"""The logger's cost to a training loop: tviz vs a plain sqlite3 loop (the floor) vs trackio.

    python benchmarks/bench_logger.py [--quick] [--no-trackio]

Three implementations run the same seeded workloads, each into a fresh file in a temporary
folder, and the numbers are printed side by side:

- tviz: `TvizLogger` in its default async mode.
- the floor, twice: plain `sqlite3` in the training thread, WAL + synchronous=NORMAL and the
  same long-format metrics table as tviz (`executemany` of 30 rows per call). "txn/call"
  commits after every call (durable on return, what a naive synchronous logger does);
  "txn/100" commits every 100 metric calls and at flush() (the cost of the rows themselves).
  A rollout call is one transaction in both (it holds a whole step).
- trackio: `Run.log()` into a local project; `TRACKIO_DIR`, `HF_HOME` point into the temporary
  folder and the Hugging Face hub is set offline. trackio stores one wide JSON row per call
  and its writer thread wakes every 0.5 s; it has no flush(). Rollouts go in as a
  `trackio.Table` of 64 rows.

Workloads:
- A: `log_metrics` with 30 realistic keys, called back to back. Call cost in the training
  thread, and values / (first call -> flush() returned and a separate connection counts every
  row).
- B: `log_rollouts` with 64 trajectories of 2 KB text and 500 logprobs, one call per step;
  the time until a separate connection sees the rows, without and with flush().
- Slowdown: a 2 ms pure-Python "training step" (holds the GIL, the worst case for a writer
  thread), with and without a 30-key `log_metrics` every step; adjacent pairs of runs.

And tviz alone, its queue (a byte limit; a caller waits for the writer rather than lose data):
- Q: a burst of `log_rollouts` calls holding several times the queue's limit, on a healthy
  database: every row written, what the caller waited (all calls, the longest one), the most
  the queue held, against the same burst through a queue large enough for all of it.
- M: 300,000 one-key `log_metrics` calls back to back (the old queue dropped past 200,000):
  all written.
- L: the database locked by another connection: how long the first call past the limit waits
  before it is refused, and the calls after it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import tviz  # noqa: F401
except ImportError:  # run from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tviz import __version__ as TVIZ_VERSION  # noqa: E402
from tviz.logger import TvizLogger  # noqa: E402

METRIC_NAMES = (
    "env/all/reward/total",
    "env/all/reward/std",
    "env/all/by_group/frac_mixed",
    "env/all/by_group/frac_all_good",
    "env/all/by_group/frac_all_bad",
    "env/all/ac_tokens_per_turn",
    "env/all/ob_tokens_per_turn",
    "env/all/total_ac_tokens",
    "env/all/total_turns",
    "env/all/turns_per_episode",
    "env/all/format_correct",
    "env/all/answer_correct",
    "optim/kl_sample_train_v1",
    "optim/kl_sample_train_v2",
    "optim/entropy",
    "optim/lr",
    "optim/loss:sum",
    "optim/grad_norm",
    "optim/num_tokens",
    "progress/done_frac",
    "progress/batch",
    "time/total",
    "time/sample",
    "time/train",
    "time/save_checkpoint",
    "time/compute_kl",
    "time/assemble_training_data",
    "test/env/all/reward/total",
    "test/env/all/format_correct",
    "sampling/tokens_per_second",
)
INT_METRICS = frozenset(
    ("env/all/total_ac_tokens", "env/all/total_turns", "optim/num_tokens", "progress/batch")
)
GROUPS, GROUP_SIZE, TEXT_CHARS, N_LOGPROBS = 8, 8, 2048, 500  # 64 trajectories per call
_VOCABULARY = (
    "the model thinks step answer so we get total of and then check that result is "
    "therefore final value equals compute first second next because reward format"
)
_WORDS = _VOCABULARY.split()


# -- seeded data ------------------------------------------------------------------------------


def metric_pool(n: int = 256, seed: int = 0) -> list[dict[str, Any]]:
    """`n` distinct 30-key metric dicts (cycled through by the workloads)."""
    rng = random.Random(seed)
    pool = []
    for i in range(n):
        pool.append(
            {
                name: rng.randrange(1, 100_000) if name in INT_METRICS else rng.uniform(-1, 1)
                for name in METRIC_NAMES
            }
        )
        pool[-1]["progress/batch"] = i
    return pool


def _text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:chars]


def rollout_pool(
    n: int = 2,
    seed: int = 0,
    groups: int = GROUPS,
    group_size: int = GROUP_SIZE,
    text_chars: int = TEXT_CHARS,
    n_logprobs: int = N_LOGPROBS,
) -> list[list[dict[str, Any]]]:
    """`n` distinct rollout batches in tviz's format: groups of trajectories."""
    rng = random.Random(seed)
    batches = []
    for _ in range(n):
        batch = []
        for g in range(groups):
            trajectories = [
                {
                    "trajectory_idx": j,
                    "reward": rng.random(),
                    "output_text": _text(rng, text_chars),
                    "logprobs": [-rng.expovariate(2.0) for _ in range(n_logprobs)],
                }
                for j in range(group_size)
            ]
            batch.append(
                {"group_idx": g, "prompt_text": _text(rng, 300), "trajectories": trajectories}
            )
        batches.append(batch)
    return batches


def n_trajectories(batch: list[dict[str, Any]]) -> int:
    return sum(len(r["trajectories"]) for r in batch)


# -- the three implementations ----------------------------------------------------------------


class Sink:
    """One implementation: log calls, an optional flush, and counts read by another connection."""

    name = "?"
    db_path: Path
    values_per_row = 1  # metric values held by one row of the counted table

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        raise NotImplementedError

    def log_rollouts(self, batch: list[dict[str, Any]], step: int) -> None:
        raise NotImplementedError

    flush: Callable[[], Any] | None = None

    def close(self) -> None:
        pass

    # Read side, on a separate connection opened once the file exists.
    _reader: sqlite3.Connection | None = None
    COUNT_METRICS = ""
    COUNT_ROLLOUT_STEP = ""  # rows that show step ? is visible

    def _query(self, sql: str, args: tuple = ()) -> int:
        if self._reader is None:
            if not self.db_path.exists():
                return 0
            self._reader = sqlite3.connect(str(self.db_path), timeout=30)
        try:
            return self._reader.execute(sql, args).fetchone()[0] or 0
        except sqlite3.OperationalError:  # tables not created yet
            return 0

    def metric_values(self) -> int:
        return self._query(self.COUNT_METRICS) * self.values_per_row

    def rollout_rows(self, step: int) -> int:
        return self._query(self.COUNT_ROLLOUT_STEP, (step,))

    def close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class TvizSink(Sink):
    name = "tviz"
    COUNT_METRICS = "SELECT count(*) FROM metrics"
    COUNT_ROLLOUT_STEP = (
        "SELECT count(*) FROM trajectories t JOIN rollouts r ON t.rollout_id = r.id"
        " WHERE r.step = ?"
    )

    def __init__(self, folder: Path, run_name: str = "bench") -> None:
        self.db_path = Path(folder) / "tviz.db"
        self.logger = TvizLogger(self.db_path, run_name=run_name)
        self.logger.flush()  # the file and the run row exist before timing starts
        self.flush = self.logger.flush
        self.log_metrics = self.logger.log_metrics
        self.log_rollouts = self.logger.log_rollouts

    def close(self) -> None:
        self.close_reader()
        self.logger.close()


FLOOR_DDL = """
PRAGMA page_size = 8192;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE metrics (
    run_id TEXT NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, value REAL, text TEXT,
    ts REAL, PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;
CREATE TABLE rollouts (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER NOT NULL,
    group_idx INTEGER NOT NULL, prompt_text TEXT, mean_reward REAL
);
CREATE TABLE trajectories (
    id INTEGER PRIMARY KEY, rollout_id INTEGER NOT NULL, trajectory_idx INTEGER NOT NULL,
    reward REAL NOT NULL, output_text TEXT, logprobs TEXT
);
"""


class FloorSink(Sink):
    """Plain sqlite3 in the caller's thread: the cost of just writing the rows.

    Metrics: one transaction per `commit_every` log_metrics calls (and at flush()).
    Rollouts: one transaction per call (a call already holds a whole step).
    """

    COUNT_METRICS = TvizSink.COUNT_METRICS
    COUNT_ROLLOUT_STEP = TvizSink.COUNT_ROLLOUT_STEP

    def __init__(self, folder: Path, run_name: str = "bench", commit_every: int = 1) -> None:
        self.name = f"sqlite3 txn/{commit_every}"
        self.db_path = Path(folder) / "floor.db"
        self.run_id = run_name
        self.commit_every = commit_every
        self._uncommitted = 0
        self.conn = sqlite3.connect(str(self.db_path), isolation_level=None)
        self.conn.executescript(FLOOR_DDL)

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        ts = time.time()
        run_id = self.run_id
        conn = self.conn
        if not self._uncommitted:
            conn.execute("BEGIN")
        conn.executemany(
            "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, NULL, ?)",
            [(run_id, k, step, float(v), ts) for k, v in metrics.items()],
        )
        self._uncommitted += 1
        if self._uncommitted >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        if self._uncommitted:
            self.conn.execute("COMMIT")
            self._uncommitted = 0

    def log_rollouts(self, batch: list[dict[str, Any]], step: int) -> None:
        self.flush()
        conn = self.conn
        conn.execute("BEGIN")
        for g, rollout in enumerate(batch):
            trajectories = rollout["trajectories"]
            rewards = [t["reward"] for t in trajectories]
            rollout_id = conn.execute(
                "INSERT INTO rollouts (run_id, step, group_idx, prompt_text, mean_reward)"
                " VALUES (?, ?, ?, ?, ?)",
                (self.run_id, step, g, rollout["prompt_text"], sum(rewards) / len(rewards)),
            ).lastrowid
            conn.executemany(
                "INSERT INTO trajectories (rollout_id, trajectory_idx, reward, output_text,"
                " logprobs) VALUES (?, ?, ?, ?, ?)",
                [
                    (rollout_id, j, t["reward"], t["output_text"], json.dumps(t["logprobs"]))
                    for j, t in enumerate(trajectories)
                ],
            )
        conn.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self.close_reader()
        self.conn.close()


def setup_trackio(folder: Path):
    """Import trackio writing only under `folder`, offline. Returns the module or raises."""
    folder = Path(folder)
    env = {
        "TRACKIO_DIR": str(folder / "trackio"),
        "HF_HOME": str(folder / "hf"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    already = "trackio" in sys.modules
    os.environ.update(env)
    import trackio
    import trackio.utils

    if Path(trackio.utils.TRACKIO_DIR) != folder / "trackio":
        raise RuntimeError(
            f"trackio was imported before with TRACKIO_DIR={trackio.utils.TRACKIO_DIR}"
            + (" (imported earlier in this process)" if already else "")
        )
    return trackio


class TrackioSink(Sink):
    name = "trackio"
    COUNT_METRICS = "SELECT count(*) FROM metrics"
    COUNT_ROLLOUT_STEP = "SELECT count(*) FROM metrics WHERE step = ?"

    def __init__(self, trackio, project: str, run_name: str = "bench") -> None:
        from trackio.sqlite_storage import SQLiteStorage

        self.trackio = trackio
        with contextlib.redirect_stdout(io.StringIO()):  # its banner and dashboard hints
            self.run = trackio.init(
                project=project, name=run_name, auto_log_cpu=False, auto_log_gpu=False
            )
        self.db_path = Path(SQLiteStorage.get_project_db_path(project))
        self.values_per_row = len(METRIC_NAMES)  # one wide JSON row per log() call

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        self.run.log(metrics, step=step)

    def log_rollouts(self, batch: list[dict[str, Any]], step: int) -> None:
        rows = [
            {
                "group_idx": g,
                "prompt_text": rollout["prompt_text"],
                "trajectory_idx": t["trajectory_idx"],
                "reward": t["reward"],
                "output_text": t["output_text"],
                "logprobs": t["logprobs"],
            }
            for g, rollout in enumerate(batch)
            for t in rollout["trajectories"]
        ]
        self.run.log({"rollouts": self.trackio.Table(data=rows)}, step=step)

    def close(self) -> None:
        self.close_reader()
        with contextlib.redirect_stdout(io.StringIO()):
            self.trackio.finish()  # also clears the current run, so no second finish at exit


# -- measuring --------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.001) -> bool:
    deadline = time.perf_counter() + timeout_s
    while not predicate():
        if time.perf_counter() > deadline:
            return False
        time.sleep(poll_s)
    return True


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def workload_metrics(sink: Sink, pool: list[dict[str, Any]], calls: int) -> dict[str, Any]:
    """A: `calls` back-to-back log_metrics calls, then flush (if any) until every row is seen."""
    gc.collect()
    expected = calls * len(pool[0])
    call_ns = [0] * calls
    clock = time.perf_counter_ns
    log = sink.log_metrics
    start = clock()
    for step in range(calls):
        metrics = pool[step % len(pool)]
        t0 = clock()
        log(metrics, step)
        call_ns[step] = clock() - t0
    calls_done = clock()
    if sink.flush is not None:
        sink.flush()
    flushed = clock()
    seen = wait_until(lambda: sink.metric_values() >= expected, 60.0)
    end = clock()
    return {
        "calls": calls,
        "values": expected,
        "all_seen": seen,
        "seen_values": sink.metric_values(),
        "call_us_median": statistics.median(call_ns) / 1e3,
        "call_us_p99": pct(call_ns, 99) / 1e3,
        "calls_s": (calls_done - start) / 1e9,
        "flush_s": (flushed - calls_done) / 1e9,
        "drain_s": (end - calls_done) / 1e9,
        "end_to_end_s": (end - start) / 1e9,
        "values_per_s": expected / ((end - start) / 1e9),
    }


def workload_rollouts(
    sink: Sink, batches: list[list[dict[str, Any]]], calls: int, timeout_s: float = 30.0
) -> dict[str, Any]:
    """B: one log_rollouts per step, the training thread then idle as between real steps.

    First `calls` steps without flush: call cost and time until a separate connection sees
    every trajectory of the step. Then `calls` steps with flush() right after the call.
    """
    gc.collect()
    clock = time.perf_counter_ns
    call_ns: list[int] = []
    visible_ns: list[int] = []
    flushed_ns: list[int] = []
    all_seen = True
    step = 0
    for _ in range(calls):
        batch = batches[step % len(batches)]
        want = n_trajectories(batch) if not isinstance(sink, TrackioSink) else 1
        t0 = clock()
        sink.log_rollouts(batch, step)
        t1 = clock()
        at = step
        all_seen &= wait_until(lambda: sink.rollout_rows(at) >= want, timeout_s)  # noqa: B023
        t2 = clock()
        call_ns.append(t1 - t0)
        visible_ns.append(t2 - t0)
        step += 1
    if sink.flush is not None:
        for _ in range(calls):
            batch = batches[step % len(batches)]
            want = n_trajectories(batch)
            t0 = clock()
            sink.log_rollouts(batch, step)
            t1 = clock()
            sink.flush()
            t2 = clock()
            all_seen &= sink.rollout_rows(step) >= want
            call_ns.append(t1 - t0)
            flushed_ns.append(t2 - t0)
            step += 1
    return {
        "calls": len(call_ns),
        "all_seen": all_seen,
        "call_ms_median": statistics.median(call_ns) / 1e6,
        "call_ms_max": max(call_ns) / 1e6,
        "visible_ms_median": statistics.median(visible_ns) / 1e6,
        "visible_ms_max": max(visible_ns) / 1e6,
        "flushed_ms_median": statistics.median(flushed_ns) / 1e6 if flushed_ns else None,
    }


def busy_work(iterations: int) -> int:
    """Pure Python: holds the GIL the whole time, like tokenizing or reward code."""
    total = 0
    for i in range(iterations):
        total += (i * i) % 7
    return total


def calibrate(step_ms: float = 2.0) -> int:
    """Iterations of busy_work that take about `step_ms` here, from the fastest of a few
    rounds (the first ones warm the interpreter up; a busy machine only makes rounds slower)."""
    probe = 20_000
    fastest = math.inf
    for _ in range(8):
        t0 = time.perf_counter_ns()
        busy_work(probe)
        fastest = min(fastest, time.perf_counter_ns() - t0)
    return max(1000, int(probe * step_ms * 1e6 / fastest))


def training_loop(
    sink: Sink | None, pool: list[dict[str, Any]], first_step: int, steps: int, iterations: int
) -> float:
    """Seconds for `steps` fake training steps, logging 30 metrics after each if `sink`."""
    clock = time.perf_counter_ns
    t0 = clock()
    for step in range(first_step, first_step + steps):
        busy_work(iterations)
        if sink is not None:
            sink.log_metrics(pool[step % len(pool)], step)
    return (clock() - t0) / 1e9


def workload_slowdown(
    sink: Sink,
    pool: list[dict[str, Any]],
    pairs: int,
    block: int,
    iterations: int,
) -> dict[str, Any]:
    """Training-loop time with vs without logging, in alternating blocks of `block` steps.

    This machine drifts by 10-20% over seconds, so the blocks are short and come in adjacent
    pairs, ordered base-logged, logged-base, ... ; the result is the median of the pairs'
    ratios (logged / base - 1).
    """
    training_loop(None, pool, 0, block, iterations)  # warm up
    gc.collect()
    ratios: list[float] = []
    base: list[float] = []
    logged_steps = 0
    for p in range(pairs):
        pair: dict[str, float] = {}
        for kind in ("base", "logged") if p % 2 == 0 else ("logged", "base"):
            if kind == "logged":
                pair[kind] = training_loop(sink, pool, logged_steps, block, iterations)
                logged_steps += block
            else:
                pair[kind] = training_loop(None, pool, 0, block, iterations)
        ratios.append(pair["logged"] / pair["base"])
        base.append(pair["base"])
    if sink.flush is not None:
        sink.flush()
    expected = logged_steps * len(pool[0])
    all_seen = wait_until(lambda: sink.metric_values() >= expected, 60.0)
    ordered = sorted(ratios)
    return {
        "steps": logged_steps,
        "block": block,
        "all_seen": all_seen,
        "step_ms": statistics.median(base) / block * 1e3,
        "slowdown_pct": (statistics.median(ratios) - 1) * 100,
        "slowdown_pct_iqr": ((pct(ordered, 25) - 1) * 100, (pct(ordered, 75) - 1) * 100),
    }


# -- tviz's queue: byte limit and backpressure --------------------------------------------------


def _trajectories_rows(db_path: Path) -> int:
    conn = sqlite3.connect(str(db_path))
    try:
        return conn.execute("SELECT count(*) FROM trajectories").fetchone()[0]
    finally:
        conn.close()


def workload_queue(
    folder: Path, batches: list[list[dict[str, Any]]], calls: int, queue_mb: float
) -> dict[str, Any]:
    """Q: `calls` log_rollouts back to back through a `queue_mb` queue, then flush()."""
    logger = TvizLogger(Path(folder) / "tviz.db", run_name="queue", queue_mb=queue_mb)
    logger.flush()
    backlog = logger._writer.backlog  # the queue's own count of the bytes it holds
    gc.collect()
    clock = time.perf_counter
    waits: list[float] = []
    peak = 0
    start = clock()
    for step in range(calls):
        t0 = clock()
        logger.log_rollouts(batches[step % len(batches)], step=step)
        waits.append(clock() - t0)
        peak = max(peak, backlog.held)
    calls_done = clock()
    ok = logger.flush(300)
    end = clock()
    logger.close()
    want = sum(n_trajectories(batches[s % len(batches)]) for s in range(calls))
    return {
        "all_seen": ok and _trajectories_rows(Path(folder) / "tviz.db") == want,
        "limit_mb": queue_mb,
        "burst_mb": sum(_estimate_mb(batches[s % len(batches)]) for s in range(calls)),
        "peak_mb": peak / 2**20,
        "wait_s": calls_done - start,
        "max_wait_ms": max(waits) * 1e3,
        "total_s": end - start,
    }


def _estimate_mb(batch: list[dict[str, Any]]) -> float:
    from tviz.backlog import estimate_rollouts

    return estimate_rollouts(batch) / 2**20


def workload_metric_burst(folder: Path, calls: int) -> dict[str, Any]:
    """M: `calls` one-key log_metrics calls back to back; all must reach the file."""
    path = Path(folder) / "tviz.db"
    logger = TvizLogger(path, run_name="burst")
    logger.flush()
    gc.collect()
    start = time.perf_counter()
    for step in range(calls):
        logger.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    calls_done = time.perf_counter()
    ok = logger.flush(600)
    end = time.perf_counter()
    logger.close()
    conn = sqlite3.connect(str(path))
    rows = conn.execute("SELECT count(*) FROM metrics").fetchone()[0]
    conn.close()
    return {
        "all_seen": ok and rows == calls,
        "calls": calls,
        "calls_s": calls_done - start,
        "total_s": end - start,
        "values_per_s": calls / (end - start),
    }


def workload_locked(folder: Path, batches: list[list[dict[str, Any]]], calls: int) -> dict:
    """L: the write lock held by another connection; a 1 MB queue; `calls` rollout calls."""
    import warnings

    path = Path(folder) / "tviz.db"
    logger = TvizLogger(path, run_name="locked", queue_mb=1)
    logger.flush()
    blocker = sqlite3.connect(str(path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    waits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(calls):
            t0 = time.perf_counter()
            logger.log_rollouts(batches[step % len(batches)], step=step)
            waits.append(time.perf_counter() - t0)
        flushed = logger.flush(0.5)  # False: the lock is held, and calls were refused
        blocker.execute("COMMIT")
        blocker.close()
        recovered = logger.flush(30)  # True: what was accepted is written
        logger.close()
    refused = logger._writer.backlog.refused
    slow = max(range(len(waits)), key=waits.__getitem__)
    after = waits[slow + 1 :] or [0.0]
    return {
        "all_seen": not flushed and refused > 0,
        "recovered": recovered,
        "refused": refused,
        "first_refusal_s": waits[slow],
        "after_ms": statistics.median(after) * 1e3,
    }


# -- the run ----------------------------------------------------------------------------------


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, tviz {TVIZ_VERSION}, {platform.platform()}"
    )


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return format(value, spec)


SIZES = {
    "full": {"metric_calls": 20_000, "rollout_calls": 15, "pairs": 30, "block": 50}
    | {"queue_calls": 200, "queue_mb": 32, "burst_calls": 300_000, "locked_calls": 20},
    "quick": {"metric_calls": 2_000, "rollout_calls": 3, "pairs": 4, "block": 20}
    | {"queue_calls": 40, "queue_mb": 8, "burst_calls": 300_000, "locked_calls": 10},
    "tiny": {"metric_calls": 20, "rollout_calls": 1, "pairs": 2, "block": 2}
    | {"queue_calls": 4, "queue_mb": 2, "burst_calls": 1000, "locked_calls": 3},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--no-trackio", action="store_true", help="skip trackio")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # for tests
    args = parser.parse_args(argv)

    sizes = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    started = time.perf_counter()
    print(f"machine: {machine()}")
    pool = metric_pool()
    batches = rollout_pool()

    with tempfile.TemporaryDirectory(prefix="tviz-bench-") as tmp:
        tmp_path = Path(tmp)
        counter = iter(range(10_000))

        def folder() -> Path:
            path = tmp_path / f"d{next(counter)}"
            path.mkdir()
            return path

        makers: dict[str, Callable[[str], Sink]] = {
            "tviz": lambda name: TvizSink(folder(), name),
            "sqlite3 txn/call": lambda name: FloorSink(folder(), name, commit_every=1),
            "sqlite3 txn/100": lambda name: FloorSink(folder(), name, commit_every=100),
        }
        trackio_note = ""
        if args.no_trackio:
            trackio_note = "skipped (--no-trackio)"
        else:
            try:
                trackio = setup_trackio(tmp_path)
                makers["trackio"] = lambda name: TrackioSink(
                    trackio, f"bench-{next(counter)}", name
                )
                trackio_note = (
                    f"trackio {trackio.__version__}, TRACKIO_DIR and HF_HOME in a temp dir, "
                    "HF_HUB_OFFLINE=1"
                )
            except Exception as exc:
                trackio_note = f"not run: {type(exc).__name__}: {exc}"
        print(f"trackio: {trackio_note}")
        iterations = calibrate()

        results: dict[str, dict[str, dict[str, Any]]] = {}
        for name, make in makers.items():
            res: dict[str, dict[str, Any]] = {}
            print(f"running {name} ...", flush=True)
            sink = make("metrics")
            try:
                res["A"] = workload_metrics(sink, pool, sizes["metric_calls"])
            finally:
                sink.close()
            sink = make("rollouts")
            try:
                res["B"] = workload_rollouts(sink, batches, sizes["rollout_calls"])
            finally:
                sink.close()
            sink = make("slowdown")
            try:
                res["S"] = workload_slowdown(sink, pool, sizes["pairs"], sizes["block"], iterations)
            finally:
                sink.close()
            results[name] = res

        print("running tviz's queue ...", flush=True)
        queue = {
            "Q": workload_queue(folder(), batches, sizes["queue_calls"], sizes["queue_mb"]),
            "Q_unbounded": workload_queue(folder(), batches, sizes["queue_calls"], 100_000),
            "M": workload_metric_burst(folder(), sizes["burst_calls"]),
            "L": workload_locked(folder(), batches, sizes["locked_calls"]),
        }

    names = list(results)
    rows: list[tuple[str, str, Callable[[dict], Any], str]] = [
        ("A", "log_metrics call, median (µs)", lambda r: r["A"]["call_us_median"], ".1f"),
        ("A", "log_metrics call, p99 (µs)", lambda r: r["A"]["call_us_p99"], ".1f"),
        ("A", "values/s reaching the file", lambda r: r["A"]["values_per_s"], ",.0f"),
        ("A", "  of which: calls / drain (s)", _calls_drain, ""),
        ("B", "log_rollouts call, median (ms)", lambda r: r["B"]["call_ms_median"], ".2f"),
        ("B", "log_rollouts call, max (ms)", lambda r: r["B"]["call_ms_max"], ".2f"),
        ("B", "visible, no flush, median (ms)", lambda r: r["B"]["visible_ms_median"], ".1f"),
        ("B", "visible, no flush, max (ms)", lambda r: r["B"]["visible_ms_max"], ".1f"),
        ("B", "call + flush(), median (ms)", lambda r: r["B"]["flushed_ms_median"], ".1f"),
        ("S", "training-loop slowdown, median (%)", lambda r: r["S"]["slowdown_pct"], "+.1f"),
        ("S", "  quartiles of the pairs (%)", _slowdown_range, ""),
    ]
    goals = {
        "log_metrics call, median (µs)": "< 20",
        "values/s reaching the file": ">= 200,000",
        "log_rollouts call, median (ms)": "< 2",
        "visible, no flush, max (ms)": "< 1000",
    }
    a, b, s = (results[names[0]][k] for k in "ABS")
    print()
    print(
        f"A: {a['calls']:,} x log_metrics(30 keys) back to back | "
        f"B: {b['calls']} x log_rollouts({GROUPS}x{GROUP_SIZE} trajectories, "
        f"{TEXT_CHARS} chars, {N_LOGPROBS} logprobs) | "
        f"S: {s['steps']} logged steps of {s['step_ms']:.1f} ms pure Python"
    )
    width = 34
    header = f"{'':2}{'measure':<{width}}" + "".join(f"{n:>18}" for n in names) + f"{'goal':>14}"
    print(header)
    print("-" * len(header))
    for section, label, get, spec in rows:
        cells = []
        for n in names:
            try:
                cells.append(_fmt(get(results[n]), spec))
            except (KeyError, TypeError):
                cells.append("n/a")
        print(
            f"{section:<2}{label:<{width}}"
            + "".join(f"{c:>18}" for c in cells)
            + f"{goals.get(label, ''):>14}"
        )
    missing = [n for n in names if not all(results[n][k]["all_seen"] for k in "ABS")]
    missing += [f"tviz {k}" for k, r in queue.items() if not r["all_seen"]]
    print_queue(queue)
    print()
    print("every row reached the file" if not missing else f"ROWS MISSING: {missing}")
    print(
        "sqlite3 txn/N: plain sqlite3 in the training thread, one transaction per N metric"
        " calls (and per rollout call)"
    )
    if "trackio" in results:
        print(
            "trackio: has no flush(); its writer thread wakes every 0.5 s, so 'drain' is"
            " polling until every row is there"
        )
    print(f"total time: {time.perf_counter() - started:.1f} s")
    return 0 if not missing else 1


def print_queue(queue: dict[str, dict[str, Any]]) -> None:
    q, u, m, lock = queue["Q"], queue["Q_unbounded"], queue["M"], queue["L"]
    print()
    print(
        f"Q: {q['burst_mb']:.0f} MB of log_rollouts through a {q['limit_mb']:g} MB queue, healthy"
        f" database: the most it held {q['peak_mb']:.1f} MB; the caller waited"
        f" {q['wait_s']:.2f} s in all (longest call {q['max_wait_ms']:.0f} ms), written after"
        f" {q['total_s']:.2f} s; through a queue that holds it all: calls {u['wait_s']:.2f} s"
        f" (held {u['peak_mb']:.0f} MB), written after {u['total_s']:.2f} s"
    )
    print(
        f"M: {m['calls']:,} log_metrics calls back to back: calls {m['calls_s']:.2f} s, all"
        f" written after {m['total_s']:.2f} s ({m['values_per_s']:,.0f} values/s)"
    )
    print(
        f"L: locked database, 1 MB queue: the first call past the limit refused after"
        f" {lock['first_refusal_s']:.2f} s, the next ones in {lock['after_ms']:.3f} ms"
        f" ({lock['refused']} refused; flush() after the lock: {lock['recovered']})"
    )


def _slowdown_range(r: dict) -> str:
    low, high = r["S"]["slowdown_pct_iqr"]
    return f"{low:+.0f} .. {high:+.0f}"


def _calls_drain(r: dict) -> str:
    """Seconds in the log calls / from the last call until every row was seen."""
    return f"{r['A']['calls_s']:.2f} / {r['A']['drain_s']:.2f}"


if __name__ == "__main__":
    sys.exit(main())
