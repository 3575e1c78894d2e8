"""Benchmark `tviz build` at RL scale (issue 3).

A simulated run of 2,000 steps x 40 metrics with 100,000 trajectories of about 1 KB each
(10 groups x 5 samples per step), logged through TvizLogger. Measures:
  - the full build (goal < 15 s on the 2-core machine), page size vs the 25 MB budget;
  - a rebuild after the run gains one step, on the same SiteBuilder (what `tviz watch` does);
  - in headless Chromium: time to the first charts drawn (goal < 2 s) and to expand a step
    (goal < 200 ms).

    python benchmarks/bench_build.py [--steps 2000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generate import WORDS  # noqa: E402
from workspace import EXPAND_STEP_JS, database, workspace  # noqa: E402

from tviz import TvizLogger  # noqa: E402
from tviz.render import SiteBuilder  # noqa: E402

GROUPS, SAMPLES, N_METRICS = 10, 5, 40


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(WORDS) if rng.random() > 0.08 else str(rng.randint(0, 999))
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


def _rollouts(rng: random.Random, step: int, steps: int) -> list[dict]:
    skill = step / steps
    groups = []
    for g in range(GROUPS):
        trajectories = []
        for i in range(SAMPLES):
            reward = 1.0 if rng.random() < 0.2 + 0.7 * skill else 0.0
            trajectories.append(
                {
                    "trajectory_idx": i,
                    "reward": reward,
                    "output_text": _text(rng, 900),
                    "logprobs": [round(-rng.expovariate(3), 3) for _ in range(24)],
                }
            )
        groups.append(
            {"group_idx": g, "prompt_text": _text(rng, 160), "trajectories": trajectories}
        )
    return groups


def make_db(path: Path, steps: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    names = [f"{p}/metric_{i:02d}" for i, p in enumerate(["env", "optim", "time", "misc"] * 10)]
    with TvizLogger(path, "bench-run", run_id="bench", config={"model_name": "bench"}) as log:
        for step in range(steps):
            log.log_rollouts(_rollouts(rng, step, steps), step=step)
            metrics = {n: math.sin(step / (7 + i)) + rng.gauss(0, 0.1) for i, n in enumerate(names)}
            metrics["env/all/reward/total"] = step / steps + rng.gauss(0, 0.05)
            log.log_metrics(dict(list(metrics.items())[:N_METRICS]), step=step)
        log.flush(None)
    return "bench"


def add_step(path: Path, step: int, steps: int) -> None:
    rng = random.Random(step)
    with TvizLogger(path, "bench-run", run_id="bench") as log:
        log.log_rollouts(_rollouts(rng, step, steps), step=step)
        log.log_metrics({"env/all/reward/total": 0.9}, step=step)


def browser_timings(page_path: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        start = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="commit")
        # The overview charts are the first thing a reader sees.
        page.wait_for_function(
            # A function, not an expression string: the page's CSP forbids eval.
            "() => document.querySelectorAll('.overview .chart[data-drawn=yes] canvas').length"
            " >= 4",
            timeout=60_000,
            polling=20,
        )
        charts = time.perf_counter() - start
        page.wait_for_load_state("load")
        loaded = time.perf_counter() - start
        page.evaluate("() => document.querySelector('#rollouts').scrollIntoView()")
        page.wait_for_timeout(1000)  # a reader takes a moment before opening a step
        expand = page.evaluate(EXPAND_STEP_JS)
        browser.close()
    return {"charts_s": charts, "loaded_s": loaded, "expand_ms": expand}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--budget-mb", type=float, default=25)
    parser.add_argument("--keep", type=Path, help="keep the database and pages in this folder")
    args = parser.parse_args()
    with workspace(args.keep, "tviz-bench-build-") as work:
        trajectories = args.steps * GROUPS * SAMPLES
        what = f"{args.steps} steps x {N_METRICS} metrics, {trajectories:,} trajectories"
        db = database(work, lambda path: make_db(path, args.steps), what)
        budget = int(args.budget_mb * 1e6)
        builder = SiteBuilder(db, work / "out", budget_bytes=budget)
        t = time.perf_counter()
        report = builder.build()
        full = time.perf_counter() - t
        page = next(p for p in report.written if p.parent.name == "runs")
        size = page.stat().st_size
        print(f"full build:               {full:6.2f} s   (goal < 15 s)")
        print(f"page size:                {size / 1e6:6.1f} MB (budget {args.budget_mb:g} MB)")
        if report.notices:
            print("sampling notice:          " + next(iter(report.notices.values()))[:110] + "...")
        add_step(db, args.steps, args.steps)
        t = time.perf_counter()
        builder.build(run_ids=["bench"])
        again = time.perf_counter() - t
        print(f"rebuild after +1 step:    {again:6.2f} s   ({again / full:.0%} of the full build)")
        timings = browser_timings(page)
        print(f"charts drawn in Chromium: {timings['charts_s']:6.2f} s   (goal < 2 s)")
        print(f"page fully loaded:        {timings['loaded_s']:6.2f} s")
        print(f"expand a step:            {timings['expand_ms']:6.0f} ms  (goal < 200 ms)")


if __name__ == "__main__":
    main()
