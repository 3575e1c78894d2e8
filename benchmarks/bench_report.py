"""Benchmark the run report in the browser: drawing every chart, the samples table, a step.

A simulated run of 10,000 steps x 50 metrics and 100,000 short trajectories (5 groups x 2
samples a step... see GROUPS, SAMPLES), built at the default 25 MB budget, opened from file://
in headless Chromium (1360x900). Measures:
  - the first chart drawn (goal < 2 s) and every chart drawn while scrolling through the page
    from top to bottom (goal < 3 s), with the page's hash-only CSP and Vega's expression
    interpreter; and the same page made naive (CSP removed, Vega compiling its expressions)
    for reference;
  - sorting the samples table of every trajectory kept in the page (goal < 300 ms for 100,000
    rows);
  - opening a step once loaded (goal < 200 ms).

    python benchmarks/bench_report.py [--steps 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workspace import EXPAND_STEP_JS, database, workspace  # noqa: E402

from tviz import TvizLogger  # noqa: E402
from tviz.render import SiteBuilder  # noqa: E402

GROUPS, SAMPLES, N_METRICS = 5, 2, 50
PREFIXES = ("env", "optim", "time", "progress", "misc")
WORDS = ("the", "answer", "is", "so", "total", "first", "then", "each", "number", "we", "step")


def make_db(path: Path, steps: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    names = [f"{PREFIXES[i % len(PREFIXES)]}/metric_{i:02d}" for i in range(N_METRICS - 4)]
    names += ["optim/kl", "optim/entropy", "optim/lr", "env/all/reward/total"]
    with TvizLogger(path, "bench-report", run_id="bench", config={"model_name": "bench"}) as log:
        for step in range(steps):
            skill = step / steps
            groups = []
            for g in range(GROUPS):
                trajectories = []
                for i in range(SAMPLES):
                    n = rng.randint(6, 14)
                    trajectories.append(
                        {
                            "trajectory_idx": i,
                            "reward": 1.0 if rng.random() < 0.2 + 0.7 * skill else 0.0,
                            "output_text": " ".join(rng.choices(WORDS, k=n)) + f" {step}",
                            "logprobs": [round(-rng.expovariate(3), 2) for _ in range(n)],
                        }
                    )
                prompt = f"Question {(step * GROUPS + g) % 500}: what is {g} + {step % 17}?"
                groups.append({"group_idx": g, "prompt_text": prompt, "trajectories": trajectories})
            log.log_rollouts(groups, step=step)
            metrics = {
                n: math.sin(step / (40 + i)) + rng.gauss(0, 0.1) for i, n in enumerate(names)
            }
            metrics["optim/lr"] = 4e-5
            metrics["env/all/reward/total"] = skill + rng.gauss(0, 0.05)
            log.log_metrics(metrics, step=step)
        log.flush(None)


def naive(html: str) -> str:
    """The page without its CSP, Vega compiling its expressions (what a page made without our
    security rules would do): the reference the interpreter is compared with."""
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html, count=1)
    return html.replace("ast: true", "ast: false")


def draw_timings(browser, page_path: Path) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    start = time.perf_counter()
    page.goto(page_path.as_uri(), wait_until="commit")
    page.wait_for_function(
        "() => document.querySelector('.chart[data-drawn=yes] canvas')", timeout=60_000, polling=10
    )
    first = time.perf_counter() - start
    page.wait_for_selector("body[data-ready=yes]", timeout=60_000)
    height = page.evaluate("() => document.documentElement.scrollHeight")
    for y in range(0, height, 900):  # a reader scrolling down, a screen every 30 ms
        page.evaluate(f"() => window.scrollTo(0, {y})")
        page.wait_for_timeout(30)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart[data-chart]')]"
        ".every(n => n.dataset.drawn === 'yes' || n.closest('[hidden]'))",
        timeout=120_000,
        polling=20,
    )
    every = time.perf_counter() - start
    charts = page.evaluate("() => document.querySelectorAll('.chart[data-drawn=yes]').length")
    out = {"first_s": first, "all_s": every, "charts": charts}
    # Opening a step once loaded (the old measure, kept).
    page.evaluate("() => (document.querySelector('#steps') || document.body).scrollIntoView()")
    page.wait_for_timeout(500)
    out["expand_ms"] = page.evaluate(EXPAND_STEP_JS)
    out["sort_ms"], out["rows"] = table_sort(page)
    page.close()
    return out


def table_sort(page) -> tuple[float, int]:
    """Open the samples table, then time a sort by reward (click to rows on screen)."""
    has_table = page.evaluate("() => Boolean(document.querySelector('#samples-table'))")
    if not has_table:
        return math.nan, 0
    page.evaluate("() => document.querySelector('#samples-table').scrollIntoView()")
    page.wait_for_function(
        "() => document.querySelector('#samples-table').dataset.rows", timeout=60_000
    )
    rows = int(page.evaluate("() => document.querySelector('#samples-table').dataset.rows"))
    ms = page.evaluate(
        """() => new Promise(resolve => {
            const head = document.querySelector('#samples-table [data-key=reward]');
            const t0 = performance.now();
            head.click();
            requestAnimationFrame(() => resolve(performance.now() - t0));
        })"""
    )
    return ms, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="keep the database and pages in this folder")
    args = parser.parse_args()
    with workspace(args.keep, "tviz-bench-report-") as work:
        trajectories = args.steps * GROUPS * SAMPLES
        what = f"{args.steps:,} steps x {N_METRICS} metrics, {trajectories:,} trajectories"
        db = database(work, lambda path: make_db(path, args.steps), what)
        t = time.perf_counter()
        report = SiteBuilder(db, work / "out").build()
        build = time.perf_counter() - t
        page = next(p for p in report.written if p.parent.name == "runs")
        plain = page.with_name("naive.html")
        plain.write_text(naive(page.read_text("utf-8")), "utf-8")
        from playwright.sync_api import sync_playwright

        from tests.browser import CHROMIUM, CHROMIUM_ARGS

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ours = draw_timings(browser, page)
            ref = draw_timings(browser, plain)
            browser.close()
        size = page.stat().st_size / 1e6
        print(f"build {build:.1f} s, page {size:.1f} MB (budget 25 MB), {ours['charts']} charts")
        print(f"{'measure':44} {'now':>10} {'goal':>10} {'naive page':>11}")
        rows = [
            ("first chart drawn (s)", ours["first_s"], "< 2", ref["first_s"]),
            ("every chart drawn, scrolling through (s)", ours["all_s"], "< 3", ref["all_s"]),
            ("open a step once loaded (ms)", ours["expand_ms"], "< 200", ref["expand_ms"]),
            (f"sort the samples table, {ours['rows']:,} rows (ms)", ours["sort_ms"], "< 300", None),
        ]
        for name, now, goal, other in rows:
            other_text = "" if other is None else f"{other:11.2f}"
            print(f"{name:44} {now:10.2f} {goal:>10} {other_text}")


if __name__ == "__main__":
    main()
