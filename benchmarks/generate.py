"""Generate tviz databases at benchmark scale, fast.

The rows are written straight into SQLite with `executemany` in big transactions, in the shape
TvizLogger writes them (`tviz/rows.py`): the run's row, `metrics` (long format) with the 0.2.x
`steps` row of each step (its legacy columns and `extras` JSON), `rollouts` and `trajectories`.
The schema is tviz's own (`schema.connect`), so the file is a current-schema tviz database, left
in WAL mode and checkpointed, as a logger leaves it.

The content is deterministic from a seed: 0/1 rewards on a skill curve (a group is all good, all
bad or mixed), answers from a word list, token ids, logprobs rounded to 3 decimals. A trajectory's
text, tokens and logprobs are each two halves drawn from precomputed pools, so a trajectory costs
a few string joins: a 1,024,000-trajectory run (an 8.5 GB file) takes well under a minute on the
2-core machine, where the logger takes minutes (about 8,000 trajectories/s there). Metrics-only
runs go about as fast as through the logger (the same executemany); they are here for files of
many runs and long runs made in one go.

`RLContent.step(step)` and `MetricsContent.metrics(step)` give a step's values as a training loop
would hand them to `TvizLogger.log_rollouts` / `log_metrics`; the generator writes exactly those
values (`tests/test_bench_generate.py` writes both ways and compares the files).

    python benchmarks/generate.py rl /tmp/gen/rl1m.db --steps 1000 --groups 128 --samples 8
    python benchmarks/generate.py metrics /tmp/gen/metrics50k.db --steps 50000 --metrics 50
    python benchmarks/generate.py many /tmp/gen/many200.db --runs 200 --steps 500 --metrics 50
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from itertools import repeat
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tviz import __version__, schema
from tviz.names import LEGACY_INDEX, LEGACY_INTEGER_COLUMNS
from tviz.rows import figures_json, trajectory_chars
from tviz.values import json_text, jsonable

__all__ = [
    "START_TS",
    "MetricsContent",
    "RLContent",
    "many_runs",
    "metric_names",
    "metrics_run",
    "rl_run",
    "write_metrics_run",
    "write_rl",
]

# Runs start at 2025-01-01 00:00 UTC (a many-runs file: an hour apart), on a simulated clock.
START_TS = 1_735_689_600.0

WORDS = (  # noqa: SIM905 - a word list reads better as one string
    "the of and to in is that for it as with was on be by this are from at or an have not "
    "which we can step answer total first then so number each more if will let compute sum "
    "equals apples train miles hours speed therefore result check remaining boxed value add "
    "multiply divide minus plus twice half left right correct since because given"
).split()

# The metrics a tinker-cookbook RL run logs, most telling first; a run with more metrics than
# these gets filler series named by prefix (`env/all/metric_20`, `optim/metric_21`, ...).
CORE_METRICS = (
    "env/all/reward/total",
    "env/all/by_group/frac_mixed",
    "env/all/by_group/frac_all_good",
    "env/all/by_group/frac_all_bad",
    "optim/entropy",
    "optim/kl_sample_train_v1",
    "optim/lr",
    "env/all/total_ac_tokens",
    "env/all/ac_tokens_per_turn",
    "env/all/total_episodes",
    "env/all/total_turns",
    "time/total",
    "time/sampling",
    "time/train_step",
    "progress/done_frac",
    "optim/kl_sample_train_v2",
    "env/all/ob_tokens_per_turn",
    "env/all/total_ob_tokens",
    "env/all/correct",
    "env/all/format",
)
_FILLER_PREFIXES = ("env/all", "optim", "time", "misc")

Array = np.ndarray
T = TypeVar("T")
# name -> values from (steps, progress, skill curve, noise): arrays of one row per step.
_FORMULAS: dict[str, Callable[[Array, Array, Array, Array], Array | float]] = {
    "env/all/reward/total": lambda s, p, c, z: np.clip(c + 0.05 * z, 0, 1),
    "env/all/correct": lambda s, p, c, z: np.clip(c + 0.05 * z, 0, 1),
    "env/all/format": lambda s, p, c, z: np.clip(0.7 + 0.3 * (1 - np.exp(-5 * p)) + 0.02 * z, 0, 1),
    "env/all/by_group/frac_mixed": lambda s, p, c, z: np.clip(3.2 * c * (1 - c) + 0.03 * z, 0, 1),
    "env/all/by_group/frac_all_good": lambda s, p, c, z: np.clip(c**4 + 0.02 * z, 0, 1),
    "env/all/by_group/frac_all_bad": lambda s, p, c, z: np.clip((1 - c) ** 4 + 0.02 * z, 0, 1),
    "optim/entropy": lambda s, p, c, z: np.maximum(0.05, 0.85 - 0.55 * c + 0.03 * z),
    "optim/kl_sample_train_v1": lambda s, p, c, z: np.abs(2e-4 + 1e-4 * z) * (1 + 2 * c),
    "optim/kl_sample_train_v2": lambda s, p, c, z: np.abs(4e-4 + 2e-4 * z) * (1 + 2 * c),
    "optim/lr": lambda s, p, c, z: 4e-5,
    "env/all/total_ac_tokens": lambda s, p, c, z: np.round(300_000 * np.abs(1 + 0.05 * z)),
    "env/all/ac_tokens_per_turn": lambda s, p, c, z: 300 * np.abs(1 + 0.05 * z),
    "env/all/total_episodes": lambda s, p, c, z: 1024.0,
    "env/all/total_turns": lambda s, p, c, z: 1024.0,
    "env/all/total_ob_tokens": lambda s, p, c, z: np.round(150_000 * np.abs(1 + 0.05 * z)),
    "env/all/ob_tokens_per_turn": lambda s, p, c, z: 150 * np.abs(1 + 0.05 * z),
    "time/total": lambda s, p, c, z: 30 + np.abs(3 * z),
    "time/sampling": lambda s, p, c, z: 20 + np.abs(2 * z),
    "time/train_step": lambda s, p, c, z: 8 + np.abs(z),
}


def metric_names(count: int) -> list[str]:
    """`count` metric names: CORE_METRICS first, then filler ones."""
    names = list(CORE_METRICS[:count])
    for i in range(len(names), count):
        names.append(f"{_FILLER_PREFIXES[i % len(_FILLER_PREFIXES)]}/metric_{i:02d}")
    return names


def _skill(progress: Array, rate: float) -> Array:
    """The share of answers right at this point of training: fast learning, then slow."""
    return 0.12 + 0.78 * (1 - np.exp(-rate * progress))


def _metric_table(
    names: list[str],
    steps: Array,
    total: int,
    noise: Array,
    given: dict[str, Any],
    rate: float = 3.0,
) -> Array:
    """Values of `names` (columns) at `steps` (rows); `given` holds the columns known already."""
    s = steps.astype(np.float64)
    p = s / max(1, total - 1)
    c = _skill(p, rate)
    out = np.empty((len(steps), len(names)))
    for j, name in enumerate(names):
        if name in given:
            out[:, j] = given[name]
        elif name == "progress/done_frac":
            out[:, j] = (s + 1) / max(1, total)
        elif name in _FORMULAS:
            out[:, j] = _FORMULAS[name](s, p, c, noise[:, j])
        else:
            out[:, j] = np.sin(s / (7 + j)) + 0.1 * noise[:, j]
    return out


def _text(rng: random.Random, size: int) -> str:
    """Words (and a few numbers) cut to exactly `size` characters."""
    out: list[str] = []
    n = -1  # the spaces between words: one fewer than the words
    while n < size:
        w = rng.choice(WORDS) if rng.random() > 0.08 else str(rng.randint(0, 999))
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size]


def _inner(values: list) -> str:
    """A list's JSON as `tviz.values.json_text` writes it, without the brackets."""
    return json_text(values)[1:-1]


class RLContent:
    """A GRPO-style run: `steps` steps of `groups` prompts x `samples` answers, and metrics.

    Every value is fixed by the arguments. `step(step)` gives what a training loop would log;
    `rows(...)` the same values as the rows the logger would write.
    """

    def __init__(
        self,
        *,
        steps: int,
        groups: int,
        samples: int,
        text_bytes: int = 1000,
        tokens: int = 300,
        metrics: int = 40,
        seed: int = 0,
        start_ts: float = START_TS,
        step_seconds: float = 30.0,
        pool: int = 1024,
        prompts: int = 2048,
    ) -> None:
        if steps < 0 or groups < 1 or samples < 1 or pool < 1 or prompts < 1:
            raise ValueError("steps >= 0, and groups, samples, pool and prompts >= 1")
        self.steps, self.groups, self.samples = steps, groups, samples
        self.text_bytes, self.tokens, self.seed = text_bytes, tokens, seed
        self.start_ts, self.step_seconds, self.pool = start_ts, step_seconds, pool
        self.names = metric_names(metrics)
        self.config = {
            "model_name": "Qwen/Qwen3-8B",
            "recipe_name": "math_rl",
            "learning_rate": 4e-5,
            "lora_rank": 32,
            "loss_fn": "importance_sampling",
            "max_tokens": tokens,
            "temperature": 1.0,
            "dataset_builder": {"batch_size": groups, "group_size": samples, "seed": seed},
            "max_steps": steps,
            "generated_by": "benchmarks/generate.py",
        }
        rng = random.Random(seed)
        # Answers: text, token ids and logprobs each as two halves from pools of `pool`.
        half = max(0, text_bytes) // 2
        self._text_a = [_text(rng, half) + " " for _ in range(pool)]
        self._text_b = [_text(rng, max(0, text_bytes - half - 1)) for _ in range(pool)]
        n1 = tokens // 2
        n2 = tokens - n1
        self._tok_a = [[rng.randrange(151_000) for _ in range(n1)] for _ in range(pool)]
        self._tok_b = [[rng.randrange(151_000) for _ in range(n2)] for _ in range(pool)]
        # A trainer rounds logprobs before logging them (3 decimals); all negative.
        self._lp_a = [[_logprob(rng) for _ in range(n1)] for _ in range(pool)]
        self._lp_b = [[_logprob(rng) for _ in range(n2)] for _ in range(pool)]
        sep = ", " if n1 and n2 else ""
        self._tok_open = ["[" + _inner(t) + sep for t in self._tok_a] if n1 else ["["] * pool
        self._tok_close = [_inner(t) + "]" for t in self._tok_b]
        self._lp_open = ["[" + _inner(t) + sep for t in self._lp_a] if n1 else ["["] * pool
        self._lp_close = [_inner(t) + "]" for t in self._lp_b]
        # Prompts, each of its own difficulty, met in a shuffled order, epoch after epoch.
        self._prompts = [
            f"Problem {k}: {_text(rng, rng.randint(100, 260))}. What is the answer?"
            for k in range(prompts)
        ]
        difficulty = np.array([rng.uniform(-0.3, 0.55) for _ in range(prompts)])
        order = list(range(prompts))
        rng.shuffle(order)
        picks = np.arange(steps * groups) % prompts
        self._prompt_ids = np.array(order)[picks].reshape(steps, groups)
        # Rewards: a prompt's answers are right with its own chance at this point of training.
        gen = np.random.default_rng([seed, 1])
        progress = np.arange(steps) / max(1, steps - 1)
        chance = np.clip(_skill(progress, 3.0)[:, None] - difficulty[self._prompt_ids], 0.02, 0.98)
        self._rewards = np.where(gen.random((steps, groups, samples)) < chance[..., None], 1.0, 0.0)
        right = self._rewards.sum(axis=2)
        episodes = groups * samples
        given = {
            "env/all/reward/total": self._rewards.mean(axis=(1, 2)),
            "env/all/correct": self._rewards.mean(axis=(1, 2)),
            "env/all/by_group/frac_mixed": ((right > 0) & (right < samples)).mean(axis=1),
            "env/all/by_group/frac_all_good": (right == samples).mean(axis=1),
            "env/all/by_group/frac_all_bad": (right == 0).mean(axis=1),
            "env/all/total_ac_tokens": float(episodes * tokens),
            "env/all/ac_tokens_per_turn": float(tokens),
            "env/all/total_episodes": float(episodes),
            "env/all/total_turns": float(episodes),
        }
        noise = np.random.default_rng([seed, 2]).standard_normal((steps, len(self.names)))
        self._metrics = _metric_table(self.names, np.arange(steps), steps, noise, given)

    # -- the simulated clock

    def rollouts_ts(self, step: int) -> float:
        """When the step's sampling ended (its log_rollouts call)."""
        return self.start_ts + (step + 0.6) * self.step_seconds

    def metrics_ts(self, step: int) -> float:
        """When the step ended (its log_metrics call)."""
        return self.start_ts + (step + 1) * self.step_seconds

    @property
    def end_ts(self) -> float:
        return self.metrics_ts(self.steps - 1) + 1.0

    # -- a step's values

    def metrics(self, step: int) -> dict[str, float]:
        return dict(zip(self.names, self.metric_values(step), strict=True))

    def metric_values(self, step: int) -> list[float]:
        """The step's metric values, in the order of `names`."""
        return self._metrics[step].tolist()

    def _picks(self, step: int) -> list[list[int]]:
        """Pool indexes of each trajectory's halves: text, tokens, logprobs (a, b each)."""
        gen = np.random.default_rng([self.seed, 3, step])
        return gen.integers(0, self.pool, size=(self.groups * self.samples, 6)).tolist()

    def _group_rewards(self, step: int) -> list[list[float]]:
        return self._rewards[step].tolist()

    def _prompt(self, step: int, group: int) -> str:
        return self._prompts[self._prompt_ids[step, group]]

    def rollouts(self, step: int) -> list[dict[str, Any]]:
        """The step's groups as a training loop hands them to `log_rollouts`."""
        picks = iter(self._picks(step))
        has_text = self.text_bytes > 0
        out = []
        for group, rewards in enumerate(self._group_rewards(step)):
            trajectories = []
            for reward in rewards:
                ta, tb, ka, kb, la, lb = next(picks)
                trajectories.append(
                    {
                        "reward": reward,
                        "output_text": self._text_a[ta] + self._text_b[tb] if has_text else None,
                        "output_tokens": self._tok_a[ka] + self._tok_b[kb],
                        "logprobs": self._lp_a[la] + self._lp_b[lb],
                    }
                )
            out.append({"prompt_text": self._prompt(step, group), "trajectories": trajectories})
        return out

    def step(self, step: int) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """(metrics, rollouts) of `step`, for `log_metrics` and `log_rollouts`."""
        return self.metrics(step), self.rollouts(step)

    def rows(self, run_id: str, step: int, first_id: int) -> tuple[list[tuple], list[tuple]]:
        """The step's `rollouts` rows (ids from `first_id`) and `trajectories` rows: the
        values of `rollouts(step)`, as `tviz.rows.write_rollouts` writes them, with the
        group's `figures` (schema 5)."""
        picks = self._picks(step)
        text_a, text_b = self._text_a, self._text_b
        tok_open, tok_close = self._tok_open, self._tok_close
        lp_open, lp_close = self._lp_open, self._lp_close
        has_text, has_tokens = self.text_bytes > 0, self.tokens > 0
        text_len = len(text_a[0] + text_b[0]) if has_text else 0
        # Each output's length as `rows._figures` counts it: tokens if any, else characters.
        lengths = [self.tokens if has_tokens else text_len] * self.samples
        groups: list[tuple] = []
        trajectories: list[tuple] = []
        k = 0
        for group, rewards in enumerate(self._group_rewards(step)):
            rollout_id = first_id + group
            prompt = self._prompt(step, group)
            chars = 40 + len(prompt)  # about what the group takes in a page: `rows._figures`
            for idx, reward in enumerate(rewards):
                ta, tb, ka, kb, la, lb = picks[k]
                k += 1
                trajectories.append(
                    (
                        rollout_id,
                        idx,
                        reward,
                        text_a[ta] + text_b[tb] if has_text else None,
                        tok_open[ka] + tok_close[kb] if has_tokens else None,
                        lp_open[la] + lp_close[lb] if has_tokens else None,
                    )
                )
                chars += trajectory_chars(trajectories[-1][3], trajectories[-1][5])
            figs = figures_json(rewards, lengths, has_tokens, chars)
            mean = sum(rewards) / len(rewards)
            groups.append((rollout_id, run_id, step, group, prompt, mean, max(rewards), figs))
        return groups, trajectories


def _logprob(rng: random.Random) -> float:
    return round(-rng.expovariate(3.0) - 0.0005, 3)


class MetricsContent:
    """A run that logs metrics only: `steps` steps of `metrics` values."""

    def __init__(
        self,
        *,
        steps: int,
        metrics: int = 50,
        seed: int = 0,
        start_ts: float = START_TS,
        step_seconds: float = 2.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.steps, self.seed = steps, seed
        self.start_ts, self.step_seconds = start_ts, step_seconds
        self.names = metric_names(metrics)
        self.config = config or {
            "model_name": "Qwen/Qwen3-8B",
            "learning_rate": 4e-5,
            "max_steps": steps,
            "seed": seed,
            "generated_by": "benchmarks/generate.py",
        }
        gen = np.random.default_rng([seed, 4])
        rate = float(gen.uniform(1.5, 5.0))  # each seed learns at its own pace
        noise = gen.standard_normal((steps, len(self.names)))
        self._metrics = _metric_table(self.names, np.arange(steps), steps, noise, {}, rate)

    def metrics_ts(self, step: int) -> float:
        return self.start_ts + (step + 1) * self.step_seconds

    @property
    def end_ts(self) -> float:
        return self.metrics_ts(self.steps - 1) + 1.0

    def metrics(self, step: int) -> dict[str, float]:
        return dict(zip(self.names, self._metrics[step].tolist(), strict=True))

    def values(self, start: int, stop: int) -> list[list[float]]:
        """The values of steps `start` to `stop` (excluded), in the order of `names`."""
        return self._metrics[start:stop].tolist()


class _MetricRows:
    """A run's `metrics` rows and 0.2.x `steps` rows, as `tviz.rows.write_metrics` makes them
    for a call logging finite values of `names` (every call the same names)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        best: dict[str, tuple[int, int]] = {}  # legacy column -> (alias rank, name index)
        self.extras: list[int] = []
        for i, name in enumerate(names):
            hit = LEGACY_INDEX.get(name)
            if hit is None:
                self.extras.append(i)
                continue
            column, order = hit
            if best.get(column, (order + 1,))[0] > order:
                best[column] = (order, i)
        self.legacy = [(best[c][1], c in LEGACY_INTEGER_COLUMNS) for c in best]
        columns = ", ".join(["run_id", "step", "ts", "extras", *best])
        marks = ", ".join("?" * (4 + len(best)))
        self.steps_sql = f"INSERT INTO steps ({columns}) VALUES ({marks})"

    def add(
        self,
        run_id: str,
        step: int,
        values: list[float],
        ts: float,
        metric_rows: list[tuple],
        step_rows: list[tuple],
    ) -> None:
        metric_rows.extend(
            zip(repeat(run_id), self.names, repeat(step), values, repeat(None), repeat(ts))
        )
        extras = {self.names[i]: values[i] for i in self.extras}
        legacy = [int(values[i]) if integer else values[i] for i, integer in self.legacy]
        step_rows.append((run_id, step, ts, json_text(extras) if extras else None, *legacy))

    def write(self, conn: sqlite3.Connection, metric_rows: list, step_rows: list) -> None:
        conn.executemany(
            "INSERT INTO metrics (run_id, name, step, value, text, ts) VALUES (?, ?, ?, ?, ?, ?)",
            metric_rows,
        )
        conn.executemany(self.steps_sql, step_rows)


# -- the file


class _Writeback:
    """After a commit, has the kernel write the file out (fdatasync in a thread) while the next
    chunk is made. Without it, once gigabytes of the file wait in the page cache the kernel
    throttles each of SQLite's 8 KB writes. `close()` waits for the last one: the file is on
    disk when a generator returns, so its writeback does not slow what is measured next."""

    def __init__(self, path: str | Path) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._sync, daemon=True)
            self._thread.start()

    def _sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError:
            pass  # only ever a speed-up

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        os.close(self._fd)


class _Database:
    """A tviz database made (or migrated) by tviz itself, with fast pragmas while we write;
    closed in its own journal mode (WAL), checkpointed. A generation that fails leaves a
    partial file."""

    def __init__(self, path: str | Path) -> None:
        self.conn = conn = schema.connect(path)
        try:
            self._mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            # The rollback journal in memory: pages are written once (WAL writes them twice),
            # and an append journals almost nothing.
            conn.execute("PRAGMA journal_mode = MEMORY")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA cache_size = -262144")  # 256 MB
            self._writeback = _Writeback(path)
        except BaseException:
            conn.close()
            raise

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self._writeback.kick()

    def close(self) -> None:
        """Back to the file's own journal mode (WAL, which the file keeps), and closed: the
        last connection's close checkpoints the WAL and removes it."""
        try:
            self._writeback.close()
            if self.conn.in_transaction:  # a generation that failed
                self.conn.execute("ROLLBACK")
            self.conn.execute(f"PRAGMA journal_mode = {self._mode}")
        finally:
            self.conn.close()


@contextmanager
def _database(path: str | Path) -> Iterator[_Database]:
    db = _Database(path)
    try:
        yield db
    finally:
        db.close()


def _ahead(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """`items`, made in a thread up to `depth` ahead of the caller (sqlite3 lets go of the GIL
    while SQLite works, so on two cores the two overlap)."""
    box: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def make() -> None:
        try:
            for item in items:
                box.put((True, item))
                if stop.is_set():
                    return
            box.put((True, box))  # the end
        except BaseException as exc:
            box.put((False, exc))

    thread = threading.Thread(target=make, daemon=True)
    thread.start()
    try:
        while True:
            ok, item = box.get()
            if not ok:
                raise item
            if item is box:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # never leave it blocked on a full queue
            try:
                box.get(timeout=0.05)
            except queue.Empty:
                pass


def _next_rollout_id(conn: sqlite3.Connection) -> int:
    """The id SQLite's AUTOINCREMENT would give the next rollout."""
    row = conn.execute(
        "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'rollouts'), 0),"
        " COALESCE((SELECT max(id) FROM rollouts), 0))"
    ).fetchone()
    return int(row[0]) + 1


def _start_run(
    conn: sqlite3.Connection,
    run_id: str,
    name: str | None,
    config: dict[str, Any],
    started_ts: float,
    project: str | None = None,
    group: str | None = None,
) -> None:
    """The run's row as the logger's first two calls leave it (`upsert_run`, the config)."""
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
        raise ValueError(f"the database already holds a run with id {run_id!r}")
    conn.execute(
        "INSERT INTO runs (id, name, type, modality, config, started_at, started_ts, last_ts,"
        " status, tviz_version, project, run_group, revision)"
        " VALUES (?, ?, 'rl', 'text', ?, datetime(?, 'unixepoch'), ?, ?, 'running', ?, ?, ?, 2)",
        (
            run_id,
            name if name is not None else run_id,
            json_text(jsonable(config)),
            started_ts,
            started_ts,
            started_ts,
            __version__,
            project,
            group,
        ),
    )


def _end_run(conn: sqlite3.Connection, run_id: str, calls: int, last_ts: float, end_ts: float):
    """The run's row after `calls` log calls and `close()`: a strict logger commits each call
    alone, so the revision counts them (run, config, the calls, the end)."""
    conn.execute(
        "UPDATE runs SET ended_at = datetime(?, 'unixepoch'), ended_ts = ?, status = 'finished',"
        " last_ts = max(last_ts, ?), revision = ? WHERE id = ?",
        (end_ts, end_ts, last_ts, calls + 3, run_id),
    )


def rl_run(
    path: str | Path,
    *,
    run_id: str = "rl",
    steps: int,
    groups: int,
    samples: int,
    text_bytes: int = 1000,
    tokens: int = 300,
    metrics: int = 40,
    seed: int = 0,
    name: str | None = None,
    start_ts: float = START_TS,
    commit_every: int = 100_000,
) -> dict[str, int]:
    """Write an RL run into `path` (made if need be; other runs in it are kept): each step its
    groups (`log_rollouts`), then its metrics (`log_metrics`), then the end (`close()`).

    Commits about every `commit_every` trajectories. Returns the counts of what it wrote.
    """
    content = RLContent(
        steps=steps,
        groups=groups,
        samples=samples,
        text_bytes=text_bytes,
        tokens=tokens,
        metrics=metrics,
        seed=seed,
        start_ts=start_ts,
    )
    return write_rl(path, content, run_id=run_id, name=name, commit_every=commit_every)


def write_rl(
    path: str | Path,
    content: RLContent,
    *,
    run_id: str,
    name: str | None = None,
    commit_every: int = 100_000,
) -> dict[str, int]:
    """Write `content` as the run `run_id`; see `rl_run`."""
    metric_rows_of = _MetricRows(content.names)
    per_step = content.groups * content.samples
    chunk = max(1, commit_every // per_step)
    with _database(path) as db:
        conn = db.conn
        conn.execute("BEGIN")
        _start_run(conn, run_id, name, content.config, content.start_ts)
        first_id = _next_rollout_id(conn)
        insert_groups = (
            "INSERT INTO rollouts (id, run_id, step, group_idx, prompt_text, mean_reward,"
            " best_reward, figures) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        # The rows of the next steps are made in a thread while SQLite writes these.
        made = _ahead(
            content.rows(run_id, step, first_id + step * content.groups)
            for step in range(content.steps)
        )
        metric_rows: list[tuple] = []
        step_rows: list[tuple] = []
        try:
            for step, (groups, trajectories) in enumerate(made):
                conn.executemany(insert_groups, groups)
                conn.executemany(
                    "INSERT INTO trajectories (rollout_id, trajectory_idx, reward, output_text,"
                    " output_tokens, logprobs) VALUES (?, ?, ?, ?, ?, ?)",
                    trajectories,
                )
                values = content.metric_values(step)
                metric_rows_of.add(
                    run_id, step, values, content.metrics_ts(step), metric_rows, step_rows
                )
                if (step + 1) % chunk == 0:
                    metric_rows_of.write(conn, metric_rows, step_rows)
                    metric_rows, step_rows = [], []
                    db.commit()
                    conn.execute("BEGIN")
        finally:
            made.close()
        metric_rows_of.write(conn, metric_rows, step_rows)
        last = content.metrics_ts(content.steps - 1) if content.steps else content.start_ts
        _end_run(conn, run_id, 2 * content.steps, last, content.end_ts)
        db.commit()
    return {
        "runs": 1,
        "steps": content.steps,
        "metric_values": content.steps * len(content.names),
        "rollouts": content.steps * content.groups,
        "trajectories": content.steps * per_step,
    }


def _metric_batches(
    rows_of: _MetricRows, content: MetricsContent, run_id: str, batch: int = 2000
) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """The run's `metrics` and `steps` rows, `batch` steps at a time."""
    for start in range(0, content.steps, batch):
        metric_rows: list[tuple] = []
        step_rows: list[tuple] = []
        for step, values in enumerate(content.values(start, start + batch), start):
            rows_of.add(run_id, step, values, content.metrics_ts(step), metric_rows, step_rows)
        yield metric_rows, step_rows


def _write_metrics_run(
    db: _Database,
    content: MetricsContent,
    rows_of: _MetricRows,
    batches: Iterator[tuple[list[tuple], list[tuple]]],
    run_id: str,
    name: str | None,
    commit_every: int,
) -> None:
    conn = db.conn
    conn.execute("BEGIN")
    _start_run(conn, run_id, name, content.config, content.start_ts)
    pending = 0
    for metric_rows, step_rows in batches:
        rows_of.write(conn, metric_rows, step_rows)
        pending += len(metric_rows)
        if pending >= commit_every:
            db.commit()
            conn.execute("BEGIN")
            pending = 0
    last = content.metrics_ts(content.steps - 1) if content.steps else content.start_ts
    _end_run(conn, run_id, content.steps, last, content.end_ts)
    db.commit()


def metrics_run(
    path: str | Path,
    *,
    run_id: str = "metrics",
    steps: int,
    metrics: int = 50,
    seed: int = 0,
    name: str | None = None,
    start_ts: float = START_TS,
    commit_every: int = 1_000_000,
) -> dict[str, int]:
    """Write a metrics-only run into `path` (made if need be; other runs in it are kept): one
    `log_metrics` call a step, then `close()`. Returns the counts of what it wrote."""
    content = MetricsContent(steps=steps, metrics=metrics, seed=seed, start_ts=start_ts)
    return write_metrics_run(path, content, run_id=run_id, name=name, commit_every=commit_every)


def write_metrics_run(
    path: str | Path,
    content: MetricsContent,
    *,
    run_id: str,
    name: str | None = None,
    commit_every: int = 1_000_000,
) -> dict[str, int]:
    """Write `content` as the run `run_id`; see `metrics_run`."""
    rows_of = _MetricRows(content.names)
    with _database(path) as db, closing(_ahead(_metric_batches(rows_of, content, run_id))) as made:
        _write_metrics_run(db, content, rows_of, made, run_id, name, commit_every)
    return {"runs": 1, "steps": content.steps, "metric_values": content.steps * len(content.names)}


def many_runs(
    path: str | Path,
    *,
    runs: int,
    steps: int,
    metrics: int = 50,
    seed: int = 0,
    start_ts: float = START_TS,
    commit_every: int = 1_000_000,
) -> dict[str, int]:
    """Write `runs` metrics-only runs (a learning-rate sweep over seeds, an hour apart) into
    `path`: ids `run-0000`, `run-0001`, ..."""
    lrs = (1e-5, 2e-5, 4e-5, 8e-5)
    rows_of = _MetricRows(metric_names(metrics))

    def made() -> Iterator[tuple]:
        for i in range(runs):
            lr, run_seed = lrs[i % len(lrs)], i // len(lrs)
            config = {
                "model_name": "Qwen/Qwen3-8B",
                "learning_rate": lr,
                "max_steps": steps,
                "seed": run_seed,
                "generated_by": "benchmarks/generate.py",
            }
            content = MetricsContent(
                steps=steps,
                metrics=metrics,
                seed=seed * 1_000_003 + i,
                start_ts=start_ts + 3600.0 * i,
                config=config,
            )
            run_id, name = f"run-{i:04d}", f"math-rl-lr{lr:.0e}-seed{run_seed}"
            batches = list(_metric_batches(rows_of, content, run_id))
            yield content, run_id, name, batches

    # The next runs' rows are made in a thread while SQLite writes these.
    with _database(path) as db, closing(_ahead(made(), depth=2)) as ahead:
        for content, run_id, name, batches in ahead:
            _write_metrics_run(db, content, rows_of, iter(batches), run_id, name, commit_every)
    return {"runs": runs, "steps": runs * steps, "metric_values": runs * steps * metrics}


# -- the command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    rl = sub.add_parser("rl", help="one RL run: metrics, rollout groups, trajectories")
    rl.add_argument("--steps", type=int, default=1000)
    rl.add_argument("--groups", type=int, default=128)
    rl.add_argument("--samples", type=int, default=8)
    rl.add_argument("--text-bytes", type=int, default=1000)
    rl.add_argument("--tokens", type=int, default=300)
    rl.add_argument("--metrics", type=int, default=40)
    rl.add_argument("--run-id", default="rl")
    rl.add_argument("--name")
    met = sub.add_parser("metrics", help="one metrics-only run")
    met.add_argument("--steps", type=int, default=50_000)
    met.add_argument("--metrics", type=int, default=50)
    met.add_argument("--run-id", default="metrics")
    met.add_argument("--name")
    many = sub.add_parser("many", help="many metrics-only runs in one file")
    many.add_argument("--runs", type=int, default=200)
    many.add_argument("--steps", type=int, default=500)
    many.add_argument("--metrics", type=int, default=50)
    for p in (rl, met, many):
        p.add_argument("out", type=Path, help="the database file to write")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)

    out: Path = args.out
    if out.exists():
        if not args.force:
            print(f"{out} exists (--force replaces it)", file=sys.stderr)
            return 2
        for suffix in ("", "-wal", "-shm"):
            Path(f"{out}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    if args.kind == "rl":
        counts = rl_run(
            out,
            run_id=args.run_id,
            steps=args.steps,
            groups=args.groups,
            samples=args.samples,
            text_bytes=args.text_bytes,
            tokens=args.tokens,
            metrics=args.metrics,
            seed=args.seed,
            name=args.name,
        )
    elif args.kind == "metrics":
        counts = metrics_run(
            out,
            run_id=args.run_id,
            steps=args.steps,
            metrics=args.metrics,
            seed=args.seed,
            name=args.name,
        )
    else:
        counts = many_runs(
            out, runs=args.runs, steps=args.steps, metrics=args.metrics, seed=args.seed
        )
    took = time.perf_counter() - start
    size = out.stat().st_size
    what = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in counts.items())
    print(f"wrote {out}: {what}")
    rate = ""
    if counts.get("trajectories"):
        rate = f", {counts['trajectories'] / took:,.0f} trajectories/s"
    elif counts.get("metric_values"):
        rate = f", {counts['metric_values'] / took:,.0f} metric values/s"
    print(f"took {took:.1f} s ({size / 1e6:,.1f} MB{rate})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
