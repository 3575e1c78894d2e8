"""Benchmark the page budget with many metrics (issue "Nothing lost, nothing broken").

Runs that log thousands of metrics: 2,000 metrics x 1,000 steps built at a 5 MB budget, and
100,000 metrics x 5 steps at the default 25 MB. The rows are written with SQL in the shape
TvizLogger writes them (the logger would take minutes for 100 million values). Prints, for
each, the page's size beside its budget (the goal: within it), the build's time, and how many
metric panels are drawn or only listed.

    python benchmarks/bench_budget.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import re
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workspace import workspace  # noqa: E402

from tviz import TvizLogger  # noqa: E402
from tviz.render import SiteBuilder  # noqa: E402

CASES = (  # metrics, steps, budget in bytes
    (2_000, 1_000, 5_000_000),
    (100_000, 5, 25_000_000),
)
GROUPS = ("env", "optim", "train", "time", "misc")


def write_run(db: Path, metrics: int, steps: int) -> None:
    with TvizLogger(db, f"{metrics}x{steps}", run_id="manyrun", strict=True) as log:
        log.log_metrics({"env/all/reward/total": 0.0}, step=0)
    names = ["env/all/reward/total"]
    names += [f"{GROUPS[m % len(GROUPS)]}/metric_{m:06d}" for m in range(metrics)]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO metrics (run_id, name, step, value, text, ts)"
            " VALUES ('manyrun', ?, ?, ?, NULL, ?)",
            (
                (name, s, math.sin(s / 7 + m) * 0.1 + (s * 7919 % 101) / 1e4, 1.7e9 + s)
                for m, name in enumerate(names)
                for s in range(steps)
            ),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="keep the databases and pages here")
    args = parser.parse_args()
    with workspace(args.keep, "tviz-bench-budget-") as work:
        for metrics, steps, budget in CASES:
            db = work / f"m{metrics}x{steps}.db"
            if not db.exists():
                write_run(db, metrics, steps)
            t0 = time.perf_counter()
            report = SiteBuilder(db, work / f"out-{metrics}x{steps}", budget).build()
            took = time.perf_counter() - t0
            page = report.written[0]
            html = page.read_text("utf-8")
            listed = len(re.findall(r'class="constant listed"', html))
            size = page.stat().st_size
            verdict = "within" if size <= budget else "OVER"
            print(
                f"{metrics:,} metrics x {steps:,} steps: page {size / 1e6:.1f} MB, goal <= "
                f"{budget / 1e6:.0f} MB ({verdict}); build {took:.1f} s; {listed:,} of "
                f"{metrics + 1:,} panels listed, not drawn"
            )


if __name__ == "__main__":
    main()
