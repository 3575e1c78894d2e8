"""`tviz watch`: from a commit to the open page showing it, re-render cost, idle CPU.

    python benchmarks/bench_watch.py [--steps 1000] [--repeat 10] [--idle 10] [--quick]
    python benchmarks/bench_watch.py --generate --steps 10000 [--groups 8 --samples 8 ...]

On a demo run (tviz.demo, 8 groups x 8 samples per step) of `--steps` steps, or with
`--generate` a run written straight into SQLite by benchmarks/generate.py (`RLContent`: groups of
0/1 rewards, answers with text, token ids and logprobs, 40 tinker-cookbook metrics, no evals):
about 1 s per 1,000 steps where the demo, logged through the logger, takes about 10 s, so long
runs (10,000 steps and more) take seconds to make. The new steps are of the run's own kind: the
demo's `new_step`, or the generator's next steps (`RLContent.step`: the values it would have
written itself, on its simulated clock), logged through a TvizLogger. The demo stays the
default: the recorded results (benchmarks/README.md) are on it, and it has evals and
multi-turn groups that the generated run lacks.

1. Re-render cost, in process: a full build of the run by a fresh `SiteBuilder` vs the
   rebuild of the same run by a warm builder after the run gained one step (what watch does).
2. Commit to page: `tviz watch` runs as a subprocess on a free loopback port, the run page is
   open in headless Chromium with every chart drawn, and another process (a TvizLogger,
   flush()) logs one new step at a time. The page updates in place (watch's script fetches the
   rebuilt page and hands it to the page's `window.tvizUpdate`). Times are from flush()
   returning (the commit) to: the rebuilt page asked for, its bytes arriving and being parsed,
   the page's hook returning, the header's "last step" showing the new step, the reward chart
   redrawn with it (its Vega view ran with the new rows), the rollouts updated, and every
   chart of the page redrawn with it. Both clocks are the machine's wall clock. A page that
   fell back to a full reload is counted (and its header and charts timed the same way).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (the tests' launch flags)
from tviz import TvizLogger  # noqa: E402
from tviz.demo import write_demo_db  # noqa: E402
from tviz.render import SiteBuilder  # noqa: E402
from tviz.store import Store  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import RLContent, write_rl  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

# Logs one step per line read from stdin (the step number) into an existing run, and prints
# the wall-clock time at which flush() returned, i.e. the step was committed. Its first line
# says what a step is (`step_writer`).
WRITER = """
import json, sys, time
from tviz import TvizLogger
sys.path.insert(0, sys.argv[3])
from bench_watch import step_writer
logger = TvizLogger(sys.argv[1], run_id=sys.argv[2])
write = step_writer(json.loads(sys.stdin.readline()))
for line in sys.stdin:
    write(logger, int(line))
    assert logger.flush()
    print(time.time(), flush=True)
logger.close()
"""

# What a step is, as JSON (the writer process is handed it): {"names": [...]} for a demo run
# (`new_step` with the run's metric names), {"generate": {...}} for a generated one (the
# arguments of `generated_content`, which makes the same content again).
Source = dict[str, Any]


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


def generated_content(steps: int, room: int, **shape: Any) -> RLContent:
    """The generator's content for a run of `steps` steps written so far and `room` more to
    come: made for `steps + room` steps (every value is fixed by the arguments, so the writer
    process makes the same again), of which `write_rl` writes the first `steps`."""
    content = RLContent(steps=steps + room, **shape)
    content.steps = steps  # what write_rl writes; `step(s)` still gives the steps after it
    return content


def write_generated(db: Path, steps: int, room: int, **shape: Any) -> tuple[str, Source]:
    """A generated run in `db`: its id and what its next steps are."""
    spec = {"steps": steps, "room": room, **shape}
    write_rl(db, generated_content(**spec), run_id="rl", name="generated-rl")
    return "rl", {"generate": spec}


def step_writer(source: Source) -> Callable[[TvizLogger, int], None]:
    """`write(logger, step)`: logs one more step of the run `source` describes."""
    if "names" in source:
        names = source["names"]
        return lambda logger, step: new_step(logger, step, names)
    content = generated_content(**source["generate"])

    def write(logger: TvizLogger, step: int) -> None:
        metrics, rollouts = content.step(step)  # an IndexError past the room made for
        logger.log_rollouts(rollouts, step=step, timestamp=content.rollouts_ts(step))
        logger.log_metrics(metrics, step=step, timestamp=content.metrics_ts(step))

    return write


def metric_names(db: Path, run_id: str) -> list[str]:
    with Store(db) as store:
        return sorted(store.load_run(run_id, rollout_steps=()).metrics)


def rerender_cost(
    db: Path, out: Path, run_id: str, source: Source, repeat: int
) -> dict[str, float]:
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
    write = step_writer(source)
    incremental = []
    with Store(db) as store:
        step = max(store.versions() and store.find_run(run_id).last_step or 0, 0) + 1
    logger = TvizLogger(db, run_id=run_id)
    for i in range(repeat):
        write(logger, step + i)
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


# Recorded in every document the tab loads (so also after a fallback reload): when the
# header's "last step" first shows the awaited step (sessionStorage "bench-want"), and when
# the reward chart, then every chart, has drawn rows up to it (the page's charts carry the
# newest step they drew in `data-last-step`).
TIMING_SCRIPT = """
(() => {
  window.__t = {};
  const lastStep = () => {
    const fact = [...document.querySelectorAll('.facts .fact')]
      .find(f => f.querySelector('dt').textContent === 'last step');
    return fact ? fact.querySelector('dd').textContent.replace(/,/g, '') : null;
  };
  const seen = () => {
    const t = window.__t, want = sessionStorage.getItem('bench-want');
    if (!want) return;
    if (!t.header && lastStep() === want) t.header = Date.now();
    const reward = document.querySelector('.chart[data-chart="reward"]');
    if (!t.chart && reward && reward.dataset.lastStep === want) t.chart = Date.now();
    const all = [...document.querySelectorAll('.chart[data-chart]')];
    if (!t.charts && all.length && all.every(c => c.dataset.lastStep === want)) {
      t.charts = Date.now();
    }
  };
  new MutationObserver(seen).observe(document, {subtree: true, attributes: true,
    childList: true, characterData: true, attributeFilter: ["data-last-step", "data-drawn"]});
  // Where the time goes: the fetched text parsed, and the page's update hook run.
  const parse = DOMParser.prototype.parseFromString;
  DOMParser.prototype.parseFromString = function (...args) {
    window.__t.text = Date.now();
    try { return parse.apply(this, args); } finally { window.__t.parsed = Date.now(); }
  };
  let hook;
  Object.defineProperty(window, 'tvizUpdate', {configurable: true, set(f) { hook = f; },
    get() {
      return hook && function (...args) {
        const t = window.__t, done = hook.apply(this, args);
        t.hooked = Date.now();
        Promise.resolve(done).then(() => { t.settled = Date.now(); });
        return done;
      };
    }});
})();
"""

# When the tab last fetched the page itself (not the version endpoint), for the in-place
# update: asked for it (having learnt the new version), got its first and its last byte.
FETCHED = """
() => {
  const own = performance.getEntriesByType('resource')
    .filter(e => e.initiatorType === 'fetch' && !e.name.includes('/__tviz/'));
  const e = own[own.length - 1], at = ms => performance.timeOrigin + ms;
  return e ? {asked: at(e.startTime), first: at(e.responseStart), fetched: at(e.responseEnd)}
    : {};
}
"""
ALL_DRAWN = """
() => document.querySelectorAll('.chart[data-chart]').length ===
  document.querySelectorAll('.chart[data-drawn="yes"]').length
"""


def commit_to_page(
    db: Path, out: Path, run_id: str, source: Source, repeat: int, idle_s: float
) -> dict[str, Any]:
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
        writer.stdin.write(json.dumps(source) + "\n")
        samples: dict[str, list[float]] = {
            key: []
            for key in ("asked", "first", "text", "parsed", "hooked", "header", "chart")
            + ("fetched", "settled", "charts")
        }
        right = reloads = seen = 0
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.add_init_script(TIMING_SCRIPT)
            page.goto(page_url)
            page.wait_for_function(ALL_DRAWN, timeout=120_000)  # every chart drawn, idle
            for i in range(repeat):
                time.sleep(1.0 + random.random() * 0.3)  # settle, and land anywhere in a poll
                page.evaluate(
                    """want => { window.__old = true; window.__t = {};
                      sessionStorage.setItem('bench-want', String(want));
                      performance.clearResourceTimings(); }""",
                    first + i,
                )
                if i == 0:  # the rebuilds before are not of a new step (the writer's start)
                    seen = len(lines)
                writer.stdin.write(f"{first + i}\n")
                writer.stdin.flush()
                committed = float(writer.stdout.readline()) * 1000
                page.wait_for_function(
                    "() => window.__t && window.__t.header && window.__t.charts", timeout=60_000
                )
                t = page.evaluate("() => window.__t")
                t.update(page.evaluate(FETCHED))
                if not page.evaluate("() => window.__old === true"):
                    reloads += 1
                for key in samples:
                    if t.get(key) is not None:
                        samples[key].append((t[key] - committed) / 1000)
                # The page holds the new step: the replay slider reaches it.
                shown = page.evaluate("() => +document.getElementById('replay').max")
                right += shown == first + i
            page_charts = page.evaluate(
                "() => document.querySelectorAll('.chart[data-chart]').length"
            )
            time.sleep(1.0)
            with_tab = idle_cpu(watch.pid, idle_s)
            page.close()
            browser.close()
        without_tab = idle_cpu(watch.pid, idle_s)
        said = "\n".join(lines[seen:])
        rebuilds = [float(m) for m in re.findall(r"re-rendered .* in ([\d.]+) s", said)]
        return {
            "samples": samples,
            "right": right,
            "reloads": reloads,
            "charts": page_charts,
            "repeat": repeat,
            "rebuild": statistics.median(rebuilds) if rebuilds else float("nan"),
            "rebuild_max": max(rebuilds, default=float("nan")),
            "rebuilds": len(rebuilds),
            "idle_tab": with_tab,
            "idle_none": without_tab,
        }
    finally:
        if writer is not None and writer.stdin is not None:
            writer.stdin.close()
            writer.wait(timeout=30)
        watch.send_signal(signal.SIGINT)
        try:
            watch.wait(timeout=30)
        except subprocess.TimeoutExpired:  # SIGINT ignored (see main): stop it anyway
            watch.kill()
            watch.wait()


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
    gen = parser.add_argument_group(
        "a generated run (benchmarks/generate.py) instead of the demo's: fast at any length"
    )
    gen.add_argument("--generate", action="store_true", help="generate the run")
    gen.add_argument("--groups", type=int, default=8, help="prompts a step (8)")
    gen.add_argument("--samples", type=int, default=8, help="answers a prompt (8)")
    gen.add_argument("--metrics", type=int, default=40, help="metrics a step (40)")
    gen.add_argument("--text-bytes", type=int, default=600, help="an answer's text (600)")
    gen.add_argument("--tokens", type=int, default=160, help="an answer's tokens (160)")
    args = parser.parse_args()
    # Started in the background by a shell (`... &`), this process and its children would
    # ignore SIGINT; with a handler of its own, the processes it starts stop on SIGINT again.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.quick:
        args.steps, args.repeat, args.idle = 200, 3, 3.0
    with tempfile.TemporaryDirectory(prefix="tviz-bench-watch-") as tmp:
        db = Path(tmp) / "bench.db"
        start = time.perf_counter()
        if args.generate:
            shape = {
                "groups": args.groups,
                "samples": args.samples,
                "metrics": args.metrics,
                "text_bytes": args.text_bytes,
                "tokens": args.tokens,
            }
            # Room for the steps both parts below log (and a few spare).
            run_id, source = write_generated(db, args.steps, 2 * args.repeat + 8, **shape)
            what = "generated run of {} steps ({groups} groups x {samples} samples, {metrics} "
            what += "metrics, {text_bytes} B of text and {tokens} tokens an answer)"
            what = what.format(f"{args.steps:,}", **shape)
        else:
            run_id = write_demo_db(db, steps=args.steps, vision=False).run_ids[0]
            source = {"names": metric_names(db, run_id)}
            what = f"demo run of {args.steps:,} steps"
        size = sum(f.stat().st_size for f in Path(tmp).glob("bench.db*")) / 1e6
        print(f"{what} written in {time.perf_counter() - start:.1f} s ({size:,.0f} MB)")

        cost = rerender_cost(db, Path(tmp) / "build", run_id, source, args.repeat)
        ratio = cost["incremental"] / cost["full"]
        print(f"\nre-render of the run, {args.steps} steps:")
        print(f"  full build, fresh builder        {cost['full']:8.3f} s")
        print(f"  incremental, +1 step, warm       {cost['incremental']:8.3f} s  (median)")
        print(f"  ratio                            {ratio:8.3f}  (goal < 0.1)")

        res = commit_to_page(db, Path(tmp) / "site", run_id, source, args.repeat, args.idle)
        page = next((Path(tmp) / "site" / "runs").glob("*.html"))
        size = page.stat().st_size / 1e6
        print(f"\ncommit -> page, run page of {size:.1f} MB, {args.repeat} new steps")
        print("  (median / max, seconds)")
        for key, label in (
            ("asked", "new version known, page asked"),
            ("first", "... its first byte"),
            ("text", "... all but the rollouts read"),
            ("parsed", "... and parsed"),
            ("hooked", "page's update hook returned"),
            ("header", "new step in the header"),
            ("chart", "reward chart redrawn with it"),
            ("fetched", "page's last byte"),
            ("settled", "rollouts updated"),
            ("charts", f"all {res['charts']} charts redrawn with it"),
        ):
            values = res["samples"][key]
            if values:
                print(f"  {label:32} {statistics.median(values):6.3f} / {max(values):6.3f}")
        label = f"watch's rebuild ({res['rebuilds']} of them)"
        print(f"  {label:32} {res['rebuild']:6.3f} / {res['rebuild_max']:6.3f}")
        print(f"  page showed the new step: {res['right']} / {res['repeat']}")
        print(f"  full reloads (fallback): {res['reloads']} / {res['repeat']}")
        print(f"\nidle CPU of tviz watch over {args.idle:g} s (share of one core):")
        print(f"  one tab open (polls every 300 ms)  {res['idle_tab'] * 100:5.2f} %")
        print(f"  no tab                             {res['idle_none'] * 100:5.2f} %")


if __name__ == "__main__":
    main()
