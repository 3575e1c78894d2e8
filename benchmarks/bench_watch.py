"""`tviz watch`: from a commit to the open page showing it, re-render cost, idle CPU.

    python benchmarks/bench_watch.py [--steps 1000] [--repeat 10] [--idle 10] [--quick]

On a demo run (tviz.demo, 8 groups x 8 samples per step) of `--steps` steps:

1. Re-render cost, in process: a full build of the run by a fresh `SiteBuilder` vs the
   rebuild of the same run by a warm builder after the run gained one step (what watch does).
2. Commit to page: `tviz watch` runs as a subprocess on a free loopback port, the run page is
   open in headless Chromium, and another process (a TvizLogger, flush()) logs one new step at
   a time. Times are from flush() returning (the commit) to, in the reloaded page: the
   navigation starting, `body[data-ready]` (the page's script has run with the new data) and
   the first chart drawn. Both clocks are the machine's wall clock.
3. Idle CPU of the watch process (all its threads, from /proc), with one tab polling and with
   none, while nothing is logged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tviz import TvizLogger  # noqa: E402
from tviz.demo import write_demo_db  # noqa: E402
from tviz.render import SiteBuilder  # noqa: E402
from tviz.store import Store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

# Logs one step per line read from stdin (the step number) into an existing run, and prints
# the wall-clock time at which flush() returned, i.e. the step was committed.
WRITER = """
import json, random, sys, time
from tviz import TvizLogger
sys.path.insert(0, sys.argv[3])
from bench_watch import new_step
logger = TvizLogger(sys.argv[1], run_id=sys.argv[2])
names = json.loads(sys.stdin.readline())
for line in sys.stdin:
    step = int(line)
    new_step(logger, step, names)
    assert logger.flush()
    print(time.time(), flush=True)
logger.close()
"""


def new_step(logger: TvizLogger, step: int, names: list[str], groups: int = 8) -> None:
    """One more training step: the run's metrics and a batch of rollouts like the demo's."""
    rng = random.Random(step)
    logger.log_metrics({name: rng.random() for name in names}, step=step)
    logger.log_rollouts(
        [
            {
                "prompt_text": f"Problem {step}.{g}: how many apples are left? " * 3,
                "trajectories": [
                    {
                        "reward": float(rng.random() > 0.5),
                        "output_text": "Let me think step by step. " * 20 + f"\\boxed{{{k}}}",
                        "logprobs": [-rng.random() for _ in range(160)],
                    }
                    for k in range(8)
                ],
            }
            for g in range(groups)
        ],
        step=step,
    )


def metric_names(db: Path, run_id: str) -> list[str]:
    with Store(db) as store:
        return sorted(store.load_run(run_id, rollout_steps=()).metrics)


def rerender_cost(db: Path, out: Path, run_id: str, repeat: int) -> dict[str, float]:
    """Seconds for a full build of the run (fresh builder) and for the incremental rebuild
    after one new step (the builder watch keeps)."""
    SiteBuilder(db, out).build([run_id])  # loads the Vega bundle and imports: not measured
    full = []
    for _ in range(2):
        start = time.perf_counter()
        SiteBuilder(db, out).build([run_id])
        full.append(time.perf_counter() - start)
    builder = SiteBuilder(db, out)
    builder.build([run_id])
    names = metric_names(db, run_id)
    incremental = []
    with Store(db) as store:
        step = max(store.versions() and store.find_run(run_id).last_step or 0, 0) + 1
    logger = TvizLogger(db, run_id=run_id)
    for i in range(repeat):
        new_step(logger, step + i, names)
        assert logger.flush()
        start = time.perf_counter()
        builder.build([run_id])
        incremental.append(time.perf_counter() - start)
    logger.close()
    return {"full": min(full), "incremental": statistics.median(incremental)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pid: int, seconds: float) -> float:
    """Share of one core used by `pid` over `seconds` of wall time."""
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start)


# Recorded in every document the tab loads: when the page's own script finished with the
# new data, and when its first chart was drawn (the page sets these data attributes).
TIMING_SCRIPT = """
(() => {
  const t = window.__t = {nav: performance.timeOrigin};
  const seen = () => {
    if (!t.ready && document.body && document.body.dataset.ready === "yes") t.ready = Date.now();
    if (!t.chart && document.querySelector('.chart[data-drawn="yes"]')) t.chart = Date.now();
    if (t.ready && t.chart) obs.disconnect();
  };
  const obs = new MutationObserver(seen);
  obs.observe(document, {subtree: true, attributes: true, childList: true,
                         attributeFilter: ["data-ready", "data-drawn"]});
})();
"""


def commit_to_page(db: Path, out: Path, run_id: str, repeat: int, idle_s: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    watch = subprocess.Popen(
        [sys.executable, "-m", "tviz.cli", "watch", "--db", str(db), "--out", str(out)]
        + ["--port", "0"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    # Read its output all along, so the pipe never fills up.
    threading.Thread(target=lambda: lines.extend(watch.stdout or ()), daemon=True).start()
    writer = None
    try:
        url = _wait_line(watch, lines, r"http://127\.0\.0\.1:\d+/")
        _wait_line(watch, lines, r"built \d+ run")
        page_url = url + "runs/" + next((out / "runs").glob("*.html")).name
        names = metric_names(db, run_id)
        with Store(db) as store:
            first = (store.find_run(run_id).last_step or 0) + 1
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), run_id, str(Path(__file__).parent)],
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdin is not None and writer.stdout is not None
        writer.stdin.write(json.dumps(names) + "\n")
        samples: dict[str, list[float]] = {"nav": [], "ready": [], "chart": []}
        right = 0
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.add_init_script(TIMING_SCRIPT)
            page.goto(page_url)
            page.wait_for_function("() => window.__t && window.__t.chart", timeout=60_000)
            for i in range(repeat):
                time.sleep(1.0 + random.random() * 0.3)  # settle, and land anywhere in a poll
                page.evaluate("() => { window.__old = true; }")
                writer.stdin.write(f"{first + i}\n")
                writer.stdin.flush()
                committed = float(writer.stdout.readline()) * 1000
                page.wait_for_function(
                    "() => !window.__old && window.__t && window.__t.ready && window.__t.chart",
                    timeout=60_000,
                )
                t = page.evaluate("() => window.__t")
                for key in samples:
                    samples[key].append((t[key] - committed) / 1000)
                # The reloaded page holds the new step: the replay slider reaches it.
                shown = page.evaluate("() => +document.getElementById('replay').max")
                right += shown == first + i
            time.sleep(1.0)
            with_tab = idle_cpu(watch.pid, idle_s)
            page.close()
            browser.close()
        without_tab = idle_cpu(watch.pid, idle_s)
        rebuilds = [float(m) for m in re.findall(r"re-rendered .* in ([\d.]+) s", "\n".join(lines))]
        return {
            "samples": samples,
            "right": right,
            "repeat": repeat,
            "rebuild": statistics.median(rebuilds) if rebuilds else float("nan"),
            "rebuilds": len(rebuilds),
            "idle_tab": with_tab,
            "idle_none": without_tab,
        }
    finally:
        if writer is not None and writer.stdin is not None:
            writer.stdin.close()
            writer.wait(timeout=30)
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)


def _wait_line(proc: subprocess.Popen, lines: list[str], pattern: str, timeout: float = 120):
    """Wait until a line the reader thread collected matches; returns the match."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            if found := re.search(pattern, line):
                return found.group(0)
        if proc.poll() is not None:
            raise RuntimeError(f"tviz watch exited: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.02)
    raise TimeoutError(pattern)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=10, help="new steps to time")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds per idle measurement")
    parser.add_argument("--quick", action="store_true", help="200 steps, 3 repeats, 3 s idle")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeat, args.idle = 200, 3, 3.0
    with tempfile.TemporaryDirectory(prefix="tviz-bench-watch-") as tmp:
        db = Path(tmp) / "bench.db"
        start = time.perf_counter()
        run_id = write_demo_db(db, steps=args.steps, vision=False).run_ids[0]
        print(f"demo run of {args.steps} steps written in {time.perf_counter() - start:.1f} s")

        cost = rerender_cost(db, Path(tmp) / "build", run_id, args.repeat)
        ratio = cost["incremental"] / cost["full"]
        print(f"\nre-render of the run, {args.steps} steps:")
        print(f"  full build, fresh builder        {cost['full']:8.3f} s")
        print(f"  incremental, +1 step, warm       {cost['incremental']:8.3f} s  (median)")
        print(f"  ratio                            {ratio:8.3f}  (goal < 0.1)")

        res = commit_to_page(db, Path(tmp) / "site", run_id, args.repeat, args.idle)
        page = next((Path(tmp) / "site" / "runs").glob("*.html"))
        size = page.stat().st_size / 1e6
        print(f"\ncommit -> page, run page of {size:.1f} MB, {args.repeat} new steps")
        print("  (median / max, seconds)")
        for key, label in (
            ("nav", "reload starts"),
            ("ready", "page script ran (new data)"),
            ("chart", "first chart drawn"),
        ):
            values = res["samples"][key]
            print(f"  {label:32} {statistics.median(values):6.3f} / {max(values):6.3f}")
        print(f"  watch's rebuild (median of {res['rebuilds']})  {res['rebuild']:6.3f}")
        print(f"  reloaded page showed the new step: {res['right']} / {res['repeat']}")
        print(f"\nidle CPU of tviz watch over {args.idle:g} s (share of one core):")
        print(f"  one tab open (polls every 300 ms)  {res['idle_tab'] * 100:5.2f} %")
        print(f"  no tab                             {res['idle_none'] * 100:5.2f} %")


if __name__ == "__main__":
    main()
