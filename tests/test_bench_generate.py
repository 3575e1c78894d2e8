"""benchmarks/generate.py writes the rows TvizLogger writes: the same content logged both ways
gives the same tables (ids and write times aside) and the same run read back."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from benches import benchmark_module

from tviz import TvizLogger
from tviz.render import build_site
from tviz.store import Store

RUN = "gen-run"


@pytest.fixture(scope="module")
def gen():
    with benchmark_module("generate") as module:
        yield module


def _rl_content(gen, text_bytes: int = 200, tokens: int = 21):
    return gen.RLContent(
        steps=3,
        groups=2,
        samples=3,
        text_bytes=text_bytes,
        tokens=tokens,
        metrics=26,
        seed=7,
        pool=16,
        prompts=4,
    )


def _log_rl(path: Path, content) -> None:
    logger = TvizLogger(
        path, RUN, run_id=RUN, config=content.config, started_at=content.start_ts, strict=True
    )
    for step in range(content.steps):
        metrics, rollouts = content.step(step)
        logger.log_rollouts(rollouts, step=step, timestamp=content.rollouts_ts(step))
        logger.log_metrics(metrics, step=step, timestamp=content.metrics_ts(step))
    logger.close(timestamp=content.end_ts)


def _log_metrics(path: Path, content) -> None:
    logger = TvizLogger(
        path, RUN, run_id=RUN, config=content.config, started_at=content.start_ts, strict=True
    )
    for step in range(content.steps):
        logger.log_metrics(content.metrics(step), step=step, timestamp=content.metrics_ts(step))
    logger.close(timestamp=content.end_ts)


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _table(path: Path, table: str, skip: tuple[str, ...] = ("id", "created_at")) -> list[tuple]:
    """Every row of `table`, without the columns in `skip`, in a fixed order."""
    columns = [r[1] for r in _rows(path, f"PRAGMA table_info({table})") if r[1] not in skip]
    return sorted(_rows(path, f"SELECT {', '.join(columns)} FROM {table}"), key=repr)


def _trajectories(path: Path) -> list[tuple]:
    """Trajectory rows, their rollout named by (run, step, group) instead of its id."""
    columns = [
        f"t.{r[1]}"
        for r in _rows(path, "PRAGMA table_info(trajectories)")
        if r[1] not in ("id", "created_at", "rollout_id")
    ]
    return _rows(
        path,
        f"SELECT r.run_id, r.step, r.group_idx, {', '.join(columns)} FROM trajectories t"
        " JOIN rollouts r ON r.id = t.rollout_id ORDER BY r.step, r.group_idx, t.trajectory_idx",
    )


def _same_file_shape(a: Path, b: Path) -> None:
    for pragma in ("user_version", "journal_mode", "page_size"):
        assert _rows(a, f"PRAGMA {pragma}") == _rows(b, f"PRAGMA {pragma}")
    assert _rows(b, "PRAGMA journal_mode") == [("wal",)]
    assert not Path(f"{b}-wal").exists()  # closed cleanly, checkpointed
    tables = "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    assert _rows(a, tables) == _rows(b, tables)
    assert _table(a, "runs", skip=()) == _table(b, "runs", skip=())
    for table in ("metrics", "summaries", "texts", "writers", "sqlite_sequence"):
        assert _table(a, table, skip=()) == _table(b, table, skip=()), table


def test_rl_run_has_the_loggers_rows(gen, tmp_path: Path) -> None:
    content = _rl_content(gen)
    logged, generated = tmp_path / "logged.db", tmp_path / "generated.db"
    _log_rl(logged, content)
    counts = gen.write_rl(generated, content, run_id=RUN, commit_every=6)  # a commit a step
    assert counts == {
        "runs": 1,
        "steps": 3,
        "metric_values": 3 * 26,
        "rollouts": 3 * 2,
        "trajectories": 3 * 2 * 3,
    }

    _same_file_shape(logged, generated)
    steps = _table(generated, "steps")
    assert steps == _table(logged, "steps")
    assert all(row[-1] is not None for row in steps)  # `ts`: set, as the logger sets it
    assert _table(generated, "rollouts") == _table(logged, "rollouts")
    assert _trajectories(generated) == _trajectories(logged)
    # The legacy columns the logger fills, and the token total pages count.
    (row,) = _rows(
        generated,
        "SELECT reward_mean, frac_mixed, total_ac_tokens, typeof(total_ac_tokens), extras"
        " FROM steps WHERE step = 0",
    )
    assert row[0] is not None and row[1] is not None
    assert (row[2], row[3]) == (2 * 3 * 21, "integer")
    assert row[4].startswith("{")

    with Store(logged) as a, Store(generated) as b:
        run_a, run_b = a.load_run(RUN), b.load_run(RUN)
    assert run_b.summary == run_a.summary
    assert run_b.summary.num_trajectories == 18 and run_b.summary.num_tokens == 3 * 126
    assert run_b.summary.status == "finished" and run_b.summary.model == "Qwen/Qwen3-8B"
    assert run_b.config == run_a.config == content.config
    assert run_b.metrics == run_a.metrics and len(run_b.metrics) == 26
    assert (run_b.text_metrics, run_b.summaries) == (run_a.text_metrics, run_a.summaries)

    def plain(rollouts):
        return [dataclasses.replace(r, id=0) for r in rollouts]

    assert plain(run_b.rollouts) == plain(run_a.rollouts)
    for step in range(content.steps):
        _, given = content.step(step)
        got = [r for r in run_b.rollouts if r.step == step]
        assert [r.prompt_text for r in got] == [g["prompt_text"] for g in given]
        for rollout, group in zip(got, given, strict=True):
            rewards = [t["reward"] for t in group["trajectories"]]
            assert rollout.mean_reward == sum(rewards) / len(rewards)
            assert rollout.best_reward == max(rewards)
            for traj, want in zip(rollout.trajectories, group["trajectories"], strict=True):
                assert traj.reward == want["reward"] and traj.extras == {}
                assert traj.output_text == want["output_text"]
                assert len(traj.output_text) == 200
                assert traj.output_tokens == want["output_tokens"]
                assert traj.logprobs == want["logprobs"] and len(traj.logprobs) == 21
                assert all(lp < 0 and round(lp, 3) == lp for lp in traj.logprobs)

    report = build_site(generated, tmp_path / "site")
    assert not report.failed and [r.id for r in report.runs] == [RUN]
    assert (tmp_path / "site" / "index.html").exists()
    page = tmp_path / "site" / report.runs[0].page
    assert page.stat().st_size > 10_000


@pytest.mark.parametrize(("text_bytes", "tokens"), [(0, 1), (50, 0), (7, 2)])
def test_edge_sizes_have_the_loggers_rows(gen, tmp_path: Path, text_bytes, tokens) -> None:
    """No text (NULL), no tokens (NULL lists), one or two tokens: still the logger's rows."""
    content = _rl_content(gen, text_bytes, tokens)
    logged, generated = tmp_path / "logged.db", tmp_path / "generated.db"
    _log_rl(logged, content)
    gen.write_rl(generated, content, run_id=RUN)
    _same_file_shape(logged, generated)
    for table in ("steps", "rollouts"):
        assert _table(generated, table) == _table(logged, table), table
    assert _trajectories(generated) == _trajectories(logged)


def test_rewards_follow_a_skill_curve(gen) -> None:
    content = gen.RLContent(steps=40, groups=64, samples=8, text_bytes=20, tokens=2, pool=4)
    kinds = set()
    means = []
    for step in range(content.steps):
        metrics = content.metrics(step)
        means.append(metrics["env/all/reward/total"])
        for name in ("frac_mixed", "frac_all_good", "frac_all_bad"):
            if metrics[f"env/all/by_group/{name}"] > 0:
                kinds.add(name)
    assert kinds == {"frac_mixed", "frac_all_good", "frac_all_bad"}
    assert sum(means[-10:]) > sum(means[:10]) + 2  # it learns
    again = gen.RLContent(steps=40, groups=64, samples=8, text_bytes=20, tokens=2, pool=4)
    assert again.step(17) == content.step(17)  # deterministic


def test_metrics_run_has_the_loggers_rows(gen, tmp_path: Path) -> None:
    content = gen.MetricsContent(steps=6, metrics=30, seed=3)
    logged, generated = tmp_path / "logged.db", tmp_path / "generated.db"
    _log_metrics(logged, content)
    assert gen.write_metrics_run(generated, content, run_id=RUN, commit_every=60) == {
        "runs": 1,
        "steps": 6,
        "metric_values": 180,
    }
    _same_file_shape(logged, generated)
    assert _table(generated, "steps") == _table(logged, "steps")
    with Store(logged) as a, Store(generated) as b:
        run_a, run_b = a.load_run(RUN), b.load_run(RUN)
    assert (run_b.summary, run_b.metrics) == (run_a.summary, run_a.metrics)


def test_many_runs(gen, tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    counts = gen.many_runs(path, runs=5, steps=4, metrics=7)
    assert counts == {"runs": 5, "steps": 20, "metric_values": 140}
    with Store(path) as store:
        runs = store.list_runs()
        assert sorted(r.id for r in runs) == [f"run-{i:04d}" for i in range(5)]
        assert {(r.num_steps, r.status) for r in runs} == {(4, "finished")}
        assert len(store.load_run("run-0003").metrics) == 7
    with pytest.raises(ValueError, match="already holds"):
        gen.metrics_run(path, run_id="run-0001", steps=2, metrics=3)
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]
    # Another run added to the same file keeps the others.
    gen.rl_run(path, run_id="rl", steps=2, groups=2, samples=2, text_bytes=50, tokens=4)
    with Store(path) as store:
        assert len(store.list_runs()) == 6
        assert store.load_run("rl").summary.num_trajectories == 8


def test_rows_made_ahead_keep_order_and_errors(gen) -> None:
    assert list(gen._ahead(iter(range(50)), depth=2)) == list(range(50))

    def broken():
        yield 1
        raise RuntimeError("made badly")

    made = gen._ahead(broken())
    assert next(made) == 1
    with pytest.raises(RuntimeError, match="made badly"):
        next(made)
    made = gen._ahead(iter(range(100)), depth=2)  # left early: its thread ends
    assert next(made) == 0
    made.close()
