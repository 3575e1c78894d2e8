"""The logger benchmark's workloads still run and their rows reach the file (no timing)."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest
from benches import benchmark_module


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_logger") as module:
        yield module


def _count(path: Path, sql: str) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def _run_workloads(bench, make, tiny_rollouts):
    pool = bench.metric_pool(n=4)
    sink = make("metrics")
    try:
        a = bench.workload_metrics(sink, pool, calls=10)
    finally:
        sink.close()
    assert a["all_seen"] and a["seen_values"] == 10 * len(bench.METRIC_NAMES)

    sink = make("rollouts")
    try:
        b = bench.workload_rollouts(sink, tiny_rollouts, calls=2, timeout_s=10)
    finally:
        sink.close()
    assert b["all_seen"] and b["calls"] >= 2

    sink = make("slowdown")
    try:
        s = bench.workload_slowdown(sink, pool, pairs=2, block=2, iterations=100)
    finally:
        sink.close()
    assert s["all_seen"] and s["steps"] == 4
    return sink


@pytest.mark.parametrize("kind", ["tviz", "floor"])
def test_workloads_reach_the_file(bench, tmp_path, kind):
    batches = bench.rollout_pool(n=1, groups=2, group_size=3, text_chars=64, n_logprobs=5)
    folders = iter(range(100))

    def make(name):
        folder = tmp_path / f"{name}-{next(folders)}"
        folder.mkdir()
        if kind == "tviz":
            return bench.TvizSink(folder, name)
        return bench.FloorSink(folder, name, commit_every=3)

    _run_workloads(bench, make, batches)
    files = sorted(tmp_path.glob("*/*.db"))
    assert len(files) == 3
    metrics, rollouts, slowdown = files
    names = len(bench.METRIC_NAMES)
    # Read back by a connection of our own, after the writers closed.
    assert _count(metrics, "SELECT count(*) FROM metrics") == 10 * names
    # 2 calls without flush, then 2 with flush() (the floor commits every rollout call).
    assert _count(rollouts, "SELECT count(*) FROM trajectories") == 4 * 6
    assert _count(slowdown, "SELECT count(*) FROM metrics") == 4 * names


def test_trackio_workloads_reach_the_file(bench, tmp_path, monkeypatch):
    if importlib.util.find_spec("trackio") is None:  # not importorskip: that imports it
        pytest.skip("trackio is not installed (it is in the bench extra)")
    for key in ("TRACKIO_DIR", "HF_HOME", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.setenv(key, "")  # restored afterwards; setup_trackio sets the real values
    try:
        trackio = bench.setup_trackio(tmp_path)
    except RuntimeError as exc:  # imported earlier in this process with another folder
        pytest.skip(str(exc))
    projects = iter(range(100))
    batches = bench.rollout_pool(n=1, groups=2, group_size=3, text_chars=64, n_logprobs=5)
    sink = _run_workloads(
        bench, lambda name: bench.TrackioSink(trackio, f"smoke-{next(projects)}", name), batches
    )
    assert Path(sink.db_path).is_relative_to(tmp_path)


def test_main_prints_the_table(bench, capsys):
    assert bench.main(["--tiny", "--no-trackio"]) == 0
    out = capsys.readouterr().out
    assert "values/s reaching the file" in out
    assert "every row reached the file" in out
