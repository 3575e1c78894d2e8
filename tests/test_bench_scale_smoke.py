"""The scale benchmark's sections still run end to end at tiny sizes (today's code only, no
Chromium, no timing goals checked): builds in subprocesses, the file from before schema 5, the
watch rebuild, and the final table."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest
from benches import benchmark_module


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_scale") as module:
        yield module


def test_sections_and_table(bench, tmp_path, capsys):
    sizes = dataclasses.replace(
        bench.QUICK,
        rl_steps=(1, 2),
        old_rl_steps=(),
        v4_rl_steps=(2,),
        groups=3,
        samples=2,
        metrics_steps=30,
        metrics=6,
        runs=3,
        run_steps=5,
        run_metrics=4,
        repeat=1,
        rebuild_repeat=2,
    )
    rl = bench.measure_rl(tmp_path, sizes, None, keep=True)
    assert [s.trajectories for s in rl] == [6, 12]
    for s in rl:
        assert s.new.seconds.median > 0 and s.new.peak_mb.median > 10
        assert s.page_mb > 0 and s.kept == "every group"
        assert s.old is None and s.same_as_old is None
    # The schema-4 copy is built by today's code (which migrates it) into the same page.
    assert rl[0].v4 is None and rl[1].v4 is not None and rl[1].same_as_v4 is True
    v4db = rl[1].v4.db
    conn = sqlite3.connect(v4db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    conn.close()
    bench.as_schema4(v4db)
    conn = sqlite3.connect(v4db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    assert "figures" not in [r[1] for r in conn.execute("PRAGMA table_info(rollouts)")]
    conn.close()

    metrics = bench.measure_metrics(tmp_path, sizes, None)
    assert metrics.new.seconds.median > 0 and metrics.old is None

    index = bench.measure_index(tmp_path, sizes, None, browser=False)
    assert index.new.index_mb > 0 and index.old is None
    assert len(index.new.rebuilds.values) == 2 and 0 < index.new.ratio < 10
    # The watch copy is gone; the generated database is as generated (no step added).
    conn = sqlite3.connect(index.new.build.db)
    assert conn.execute("SELECT max(step) FROM metrics").fetchone()[0] == 4
    conn.close()

    rows = bench.table(rl, metrics, index)
    assert all(len(row) == 4 for row in rows)
    measures = [row[0] for row in rows]
    assert "RL build 12: time" in measures and "time(12) / time(6)" in measures
    assert any("watch rebuild" in m for m in measures)
    bench.print_table(rows, "before")
    out = capsys.readouterr().out
    assert "measure" in out and "| goal" in out and "< 45 s" in out


def test_figures_and_names(bench):
    figures = bench.Figures([3.0, 1.0, 2.0])
    assert figures.median == 2.0
    assert figures.text("s") == "2.00 s (1.00-3.00)"
    assert bench.Figures([1.5]).text("s", 1) == "1.5 s"
    assert bench.thousands(10_240) == "10k" and bench.thousands(1_024_000) == "1M"
    assert bench.thousands(102_400) == "100k" and bench.thousands(12) == "12"
    assert bench.mb(1500) == "1.50 GB" and bench.mb(339.4) == "339 MB"
    assert bench.memory(bench.Figures([309.2, 311.0, 310.0])) == "310 MB (309-311)"
    assert bench.memory(bench.Figures([3060.0, 3050.0])) == "3.06 GB (3.05-3.06)"
