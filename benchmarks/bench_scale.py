"""Benchmark real-size runs (issue "Real-size runs"): today's code next to the code before it.

Databases come from `generate.py` (row for row what TvizLogger writes), and every build is
`tviz build` in a subprocess of its own, timed from start to exit, its peak memory the build
process's `ru_maxrss` as /usr/bin/time reports it (`%M`). "Before" is the code at ea99726
(`git archive` into the work folder, run with `python -P` and PYTHONPATH on it; it reads schema
<= 4, so it gets a copy of each database without the schema-5 `rollouts.figures` column).
Measures:

  1. RL runs of S steps x 128 groups x 8 samples, ~1 KB of text, 300 tokens and 300 logprobs a
     trajectory: S = 10, 100, 1000 (10,240 / 102,400 / 1,024,000 trajectories). Build time,
     peak memory, run page size; goals for 1M: < 45 s, < 1 GB, time(1M)/time(100k) <= 5,
     memory(1M) <= memory(100k). The old code runs up to 100k (1M: its 100k figure x 10,
     marked extrapolated). Today's code also builds a file written before schema 5 (the same
     run, figures counted from the trajectories' rows), and the run pages of the old and the
     new code are compared byte for byte (the footer's schema number aside).
  2. A metrics-only run of 50,000 steps x 50 metrics: goals < 5 s, < 500 MB.
  3. 200 runs x 500 steps x 50 metrics in one file: index.html size (goal < 5 MB), the full
     build, the first index chart drawn in headless Chromium from file:// (goal < 2 s), and the
     rebuild `tviz watch` does when one run gains a step (a `SiteBuilder` that made the full
     build rebuilds that run: goal < 10% of the full build).

Every database is read once before each build, so the file cache is warm (the files were just
written anyway); the script says how fast that read went.

    python benchmarks/bench_scale.py [--quick] [--keep DIR] [--repeat N] [--no-old]
        [--now HEAD|<commit>|checkout] [--no-browser] [--only rl,metrics,index]

Today's code is HEAD as committed (git archive, like the old code), so that work in progress in
the checkout does not change it mid-run; `--now checkout` measures the files as they are.

The full run takes ~16 min on the 2-core machine and holds up to ~18 GB at once in a temporary
folder (the 1M run is 8.5 GB, and a copy of it; each size is deleted once measured, `--keep`
keeps all, ~22 GB); `--quick` (5k/10k trajectories, 20 runs) about a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(HERE), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import generate  # noqa: E402
from workspace import workspace  # noqa: E402

OLD_COMMIT = "ea99726"
GROUPS, SAMPLES = 128, 8
BYTES_PER_TRAJECTORY = 8_300  # the generated file's size per trajectory (8.5 GB for 1M)

# `tviz build` from the tree at `root` (PYTHONPATH; -P keeps the current folder out of the path,
# and the venv's editable install of this checkout comes after PYTHONPATH).
CLI = (
    "import sys, tviz; assert tviz.__file__.startswith({root!r}), tviz.__file__;"
    " from tviz.cli import main; sys.argv[0] = 'tviz'; main()"
)

# What `tviz watch` does when a run gains a step, in one process with the tree at argv[1]: a
# SiteBuilder makes the full build, then run argv[4] gains a step (TvizLogger, every metric it
# logs), and the same builder rebuilds that run (and the index), argv[5] times. Prints JSON.
REBUILD = r"""
import json, sqlite3, sys, time
import tviz
assert tviz.__file__.startswith(sys.argv[1]), tviz.__file__
from tviz import TvizLogger
from tviz.render import SiteBuilder

db, out, run_id, repeat = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
builder = SiteBuilder(db, out)
start = time.perf_counter()
builder.build()
full = time.perf_counter() - start
conn = sqlite3.connect(db)
step = conn.execute("SELECT max(step) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
last = dict(conn.execute(
    "SELECT name, value FROM metrics WHERE run_id = ? AND step = ?", (run_id, step)
).fetchall())
conn.close()
rebuilds = []
for k in range(repeat):
    with TvizLogger(db, run_id=run_id) as log:
        log.log_metrics({name: value * 1.001 for name, value in last.items()}, step=step + 1 + k)
    start = time.perf_counter()
    builder.build(run_ids=[run_id])
    rebuilds.append(time.perf_counter() - start)
print(json.dumps({"full": full, "rebuilds": rebuilds}))
"""

# Wall time from navigation to the index's first chart (the runs' overlay) drawn.
FIRST_CHART_JS = "() => document.querySelector('#overlay[data-drawn=yes] canvas') !== null"


@dataclass(frozen=True)
class Sizes:
    rl_steps: tuple[int, ...] = (10, 100, 1000)
    old_rl_steps: tuple[int, ...] = (10, 100)  # the old code: 1M would take ~6 min and ~30 GB
    v4_rl_steps: tuple[int, ...] = (10, 100, 1000)  # today's code on a file from before schema 5
    groups: int = GROUPS
    samples: int = SAMPLES
    metrics_steps: int = 50_000
    metrics: int = 50
    runs: int = 200
    run_steps: int = 500
    run_metrics: int = 50
    repeat: int = 3
    browser_repeat: int = 5
    rebuild_repeat: int = 5


FULL = Sizes()
QUICK = Sizes(
    rl_steps=(5, 10),
    old_rl_steps=(5, 10),
    v4_rl_steps=(10,),
    metrics_steps=5_000,
    runs=20,
    run_steps=200,
    repeat=1,
    browser_repeat=2,
    rebuild_repeat=3,
)


@dataclass(frozen=True)
class Code:
    """A source tree of tviz: the checkout, or a commit's files (git archive)."""

    label: str
    root: Path

    @property
    def prefix(self) -> str:
        return str(self.root / "tviz") + os.sep


NEW = Code("now", ROOT)


@dataclass
class Build:
    seconds: float
    peak_mb: float
    out: Path
    log: str


@dataclass
class Figures:
    """Repeated measurements of one thing: median and range."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def text(self, unit: str, digits: int = 2, scale: float = 1.0) -> str:
        if not self.values:
            return "-"
        m = self.median * scale
        if len(self.values) == 1:
            return f"{m:.{digits}f} {unit}"
        lo, hi = min(self.values) * scale, max(self.values) * scale
        return f"{m:.{digits}f} {unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def mb(value_mb: float) -> str:
    return f"{value_mb / 1000:.2f} GB" if value_mb >= 1000 else f"{value_mb:.0f} MB"


def memory(figures: Figures) -> str:
    """Median (range) of peaks in MB, in GB if all are past 1,000 MB."""
    if not figures.values:
        return "-"
    m, lo, hi = figures.median, min(figures.values), max(figures.values)
    if len(figures.values) == 1:
        return mb(m)
    if lo >= 1000:
        return f"{m / 1000:.2f} GB ({lo / 1000:.2f}-{hi / 1000:.2f})"
    if hi < 1000:
        return f"{m:.0f} MB ({lo:.0f}-{hi:.0f})"
    return f"{mb(m)} ({mb(lo)}-{mb(hi)})"


def thousands(n: int) -> str:
    """The issue's names for sizes, one significant digit: 10,240 -> '10k', 102,400 -> '100k',
    1,024,000 -> '1M'; below 1,000 the number."""
    if n < 1000:
        return str(n)
    digits = len(str(n)) - 1
    rounded = round(n, -digits)
    if rounded >= 1_000_000:
        return f"{rounded // 1_000_000}M" if rounded % 1_000_000 == 0 else f"{rounded / 1e6:g}M"
    return f"{rounded // 1000}k"


# -- files


def warm(path: Path) -> float:
    """Read `path` once (into the page cache, nothing kept); returns GB/s."""
    buf = bytearray(16 << 20)
    view = memoryview(buf)
    start = time.perf_counter()
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            total += n
    return total / 1e9 / max(time.perf_counter() - start, 1e-9)


def as_schema4(path: Path) -> None:
    """Make `path` a file as tviz wrote it before schema 5: no `rollouts.figures`, version 4."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(rollouts)")]
        if "figures" in columns:
            conn.execute("ALTER TABLE rollouts DROP COLUMN figures")
        conn.execute("PRAGMA user_version = 4")
    finally:
        conn.close()


def generated(path: Path, make: Callable[[Path], object], what: str) -> Path:
    """`path`, made by `make` unless it is there (a kept folder); written beside, then moved."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    make(partial)
    os.replace(partial, path)
    took = time.perf_counter() - start
    print(f"  generated {what} in {took:.1f} s ({path.stat().st_size / 1e6:,.0f} MB)", flush=True)
    return path


def copied(source: Path, path: Path, schema4: bool) -> Path:
    """A copy of `source` at `path` (kept if there), as a schema-4 file if `schema4`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        shutil.copyfile(source, partial)
        if schema4:
            as_schema4(partial)
        os.replace(partial, path)
    return path


def code_at(work: Path, rev: str, label: str) -> Code | None:
    """The tree at `rev` (git archive) in `work/code-<commit>`, labelled `label (<commit>)`;
    None if git cannot give it."""
    parsed = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=7", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if parsed.returncode != 0:
        print(f"  (no code at {rev}: {parsed.stderr.strip()})")
        return None
    commit = parsed.stdout.strip()
    root = work / f"code-{commit}"
    code = Code(f"{label} ({commit})", root)
    if (root / "tviz" / "__init__.py").exists():
        return code
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        print(f"  (no code at {rev}: git archive: {archive.stderr.decode().strip()})")
        return None
    tmp = Path(tempfile.mkdtemp(dir=work, prefix="code-"))
    tar_path = tmp / "code.tar"
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(tmp / "tree", filter="data")
    os.replace(tmp / "tree", root)
    shutil.rmtree(tmp)
    return code


def dirty(paths: Sequence[str] = ("tviz",)) -> list[str]:
    """Files of `paths` the checkout changes from HEAD (uncommitted)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line[3:] for line in done.stdout.splitlines()]


# -- builds


# Runs argv[2:] in a child of its own and writes the child's peak RSS (KB) to argv[1]; its exit
# status is the child's. The fallback where /usr/bin/time is missing.
PEAK = r"""
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_wrapper(report: Path) -> list[str]:
    """A small process that forks the command and reports its peak RSS in `report` (KB, last
    word). Not os.wait4 on our own child: a child started by this (large) process counts this
    process's memory in its `ru_maxrss` (Linux keeps the pre-exec peak across exec; with
    vfork, ours), 200-500 MB too much for small builds."""
    if Path("/usr/bin/time").exists():
        return ["/usr/bin/time", "-f", "%M", "-o", str(report)]
    return [sys.executable, "-S", "-c", PEAK, str(report)]


def run_build(code: Code, db: Path, out: Path, *, schema4: bool = False) -> Build:
    """`tviz build --db db --out out` with `code`'s tree, in a subprocess: wall time and its
    peak RSS. The database is read once first (a warm file cache); `schema4` makes it a file
    from before schema 5 again first (today's code migrates a file in place)."""
    if schema4:
        as_schema4(db)
    warm(db)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_name(out.name + ".log")
    rss_path = out.with_name(out.name + ".rss")
    rss_path.unlink(missing_ok=True)
    cmd = [
        *peak_wrapper(rss_path),
        sys.executable,
        "-P",
        "-c",
        CLI.format(root=code.prefix),
        "build",
        "--db",
        str(db),
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(code.root)}
    with open(log_path, "wb") as sink:
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, check=False)
        seconds = time.perf_counter() - start
    log = log_path.read_text("utf-8", "replace")
    if done.returncode != 0:
        raise RuntimeError(f"{code.label}: tviz build {db} failed ({done.returncode}):\n{log}")
    peak_kb = int(rss_path.read_text().split()[-1])
    return Build(seconds, peak_kb * 1024 / 1e6, out, log)


def run_page(out: Path) -> Path:
    pages = sorted((out / "runs").glob("*.html"))
    if len(pages) != 1:
        raise RuntimeError(f"expected one run page in {out}/runs, found {len(pages)}")
    return pages[0]


def same_page(a: Path, b: Path) -> bool:
    """The same bytes, but for the schema the footer names."""
    pattern = re.compile(rb"\(schema \d+\)")
    return pattern.sub(b"(schema)", a.read_bytes()) == pattern.sub(b"(schema)", b.read_bytes())


def groups_kept(log: str) -> str:
    hit = re.search(r"([\d,]+) of ([\d,]+) rollout groups are included", log)
    return f"{hit[1]} of {hit[2]} groups" if hit else "every group"


@dataclass
class Variant:
    """One way of building one database, repeated."""

    name: str
    code: Code
    db: Path
    out: Path
    schema4: bool = False  # made a file from before schema 5 before each build
    seconds: Figures = field(default_factory=Figures)
    peak_mb: Figures = field(default_factory=Figures)
    last: Build | None = None

    def build(self) -> Build:
        built = run_build(self.code, self.db, self.out, schema4=self.schema4)
        self.seconds.add(built.seconds)
        self.peak_mb.add(built.peak_mb)
        self.last = built
        return built

    def summary(self) -> str:
        return f"{self.seconds.text('s')}, peak {memory(self.peak_mb)}"


def interleaved(variants: Sequence[Variant], repeat: int) -> None:
    """Each variant `repeat` times, taking turns (the machine's load falls on all alike)."""
    for r in range(repeat):
        for v in variants:
            built = v.build()
            print(
                f"    run {r + 1}/{repeat} {v.name:42} {built.seconds:7.2f} s"
                f"  peak {mb(built.peak_mb):>8}",
                flush=True,
            )


# -- 1. RL runs


@dataclass
class RLSize:
    steps: int
    trajectories: int
    db_mb: float
    warm_gbps: float
    new: Variant
    v4: Variant | None = None
    old: Variant | None = None
    page_mb: float = 0.0
    kept: str = ""
    same_as_old: bool | None = None
    same_as_v4: bool | None = None

    @property
    def label(self) -> str:
        return thousands(self.trajectories)


def measure_rl(
    work: Path,
    sizes: Sizes,
    old: Code | None,
    *,
    now: Code = NEW,
    keep: bool = False,
) -> list[RLSize]:
    """Section 1: the RL runs of `sizes.rl_steps`, each built by today's code (and on a file from
    before schema 5, and by the old code, where the sizes say so)."""
    results = []
    for steps in sizes.rl_steps:
        trajectories = steps * sizes.groups * sizes.samples
        folder = work / f"rl-{steps}"
        print(
            f"\n  RL run {steps:,} steps x {sizes.groups} x {sizes.samples}:"
            f" {trajectories:,} trajectories",
            flush=True,
        )
        db = generated(
            folder / "new" / "rl.db",
            lambda p, steps=steps: generate.rl_run(
                p, steps=steps, groups=sizes.groups, samples=sizes.samples
            ),
            f"{trajectories:,} trajectories",
        )
        gbps = warm(db)
        size = RLSize(
            steps,
            trajectories,
            db.stat().st_size / 1e6,
            gbps,
            Variant(now.label, now, db, folder / "new" / "out"),
        )
        variants = [size.new]
        if steps in sizes.v4_rl_steps:
            v4db = copied(db, folder / "v4" / "rl.db", schema4=True)
            size.v4 = Variant(
                f"{now.label}, file from before schema 5",
                now,
                v4db,
                folder / "v4" / "out",
                schema4=True,
            )
            variants.append(size.v4)
        if old is not None and steps in sizes.old_rl_steps:
            olddb = copied(db, folder / "old" / "rl.db", schema4=True)
            size.old = Variant(old.label, old, olddb, folder / "old" / "out")
            variants.append(size.old)
        print(
            f"  file cache: warm ({size.db_mb:,.0f} MB database just written, read once"
            f" before each build; first read {gbps:.1f} GB/s)",
            flush=True,
        )
        interleaved(variants, sizes.repeat)
        page = run_page(size.new.out)
        size.page_mb = page.stat().st_size / 1e6
        size.kept = groups_kept(size.new.last.log if size.new.last else "")
        if size.old is not None:
            size.same_as_old = same_page(run_page(size.old.out), page)
        if size.v4 is not None:
            size.same_as_v4 = same_page(run_page(size.v4.out), page)
        for v in variants:
            print(f"  {v.name:42} {v.summary()}")
        print(f"  run page {size.page_mb:.1f} MB ({size.kept})")
        if size.same_as_old is not None:
            print(f"  run page of the old code the same bytes (schema aside): {size.same_as_old}")
        if size.same_as_v4 is not None:
            print(f"  run page from the file before schema 5 the same: {size.same_as_v4}")
        results.append(size)
        if not keep:  # GBs: gone once measured
            shutil.rmtree(folder, ignore_errors=True)
    return results


# -- 2. a metrics-only run


@dataclass
class MetricsResult:
    steps: int
    metrics: int
    new: Variant
    old: Variant | None


def measure_metrics(
    work: Path, sizes: Sizes, old: Code | None, *, now: Code = NEW
) -> MetricsResult:
    folder = work / f"metrics-{sizes.metrics_steps}"
    what = f"{sizes.metrics_steps:,} steps x {sizes.metrics} metrics"
    print(f"\n  metrics-only run, {what}:", flush=True)
    db = generated(
        folder / "new" / "metrics.db",
        lambda p: generate.metrics_run(p, steps=sizes.metrics_steps, metrics=sizes.metrics),
        what,
    )
    result = MetricsResult(
        sizes.metrics_steps,
        sizes.metrics,
        Variant(now.label, now, db, folder / "new" / "out"),
        None,
    )
    variants = [result.new]
    if old is not None:
        olddb = copied(db, folder / "old" / "metrics.db", schema4=True)
        result.old = Variant(old.label, old, olddb, folder / "old" / "out")
        variants.append(result.old)
    interleaved(variants, sizes.repeat)
    for v in variants:
        print(f"  {v.name:42} {v.summary()}")
    return result


# -- 3. the index of many runs


@dataclass
class IndexSide:
    """One code's figures for the index of many runs."""

    build: Variant
    index_mb: float = 0.0
    first_chart: Figures = field(default_factory=Figures)
    full_in_process: float = 0.0
    rebuilds: Figures = field(default_factory=Figures)

    @property
    def ratio(self) -> float:
        return self.rebuilds.median / self.full_in_process


@dataclass
class IndexResult:
    runs: int
    steps: int
    metrics: int
    new: IndexSide
    old: IndexSide | None


def watch_rebuild(code: Code, db: Path, out: Path, run_id: str, repeat: int) -> dict:
    """REBUILD with `code` on `db` (which gains `repeat` steps): full and rebuild seconds."""
    env = {**os.environ, "PYTHONPATH": str(code.root)}
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-P", "-c", REBUILD, code.prefix, str(db), str(out), run_id]
    done = subprocess.run([*cmd, str(repeat)], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{code.label}: the rebuild failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_chart_seconds(browser, index: Path) -> float:
    """Seconds from navigating to `index` (file://) to its first chart drawn."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        page = context.new_page()
        start = time.perf_counter()
        page.goto(index.as_uri(), wait_until="commit")
        page.wait_for_function(FIRST_CHART_JS, timeout=180_000, polling=20)
        return time.perf_counter() - start
    finally:
        context.close()


def measure_index(
    work: Path, sizes: Sizes, old: Code | None, *, now: Code = NEW, browser: bool = True
) -> IndexResult:
    folder = work / f"many-{sizes.runs}x{sizes.run_steps}"
    what = f"{sizes.runs} runs x {sizes.run_steps} steps x {sizes.run_metrics} metrics"
    print(f"\n  many runs, {what}:", flush=True)
    db = generated(
        folder / "new" / "many.db",
        lambda p: generate.many_runs(
            p, runs=sizes.runs, steps=sizes.run_steps, metrics=sizes.run_metrics
        ),
        what,
    )
    result = IndexResult(
        sizes.runs,
        sizes.run_steps,
        sizes.run_metrics,
        IndexSide(Variant(now.label, now, db, folder / "new" / "out")),
        None,
    )
    sides = [(now, result.new)]
    if old is not None:
        olddb = copied(db, folder / "old" / "many.db", schema4=True)
        result.old = IndexSide(Variant(old.label, old, olddb, folder / "old" / "out"))
        sides.append((old, result.old))
    interleaved([side.build for _, side in sides], sizes.repeat)
    for _, side in sides:
        side.index_mb = (side.build.out / "index.html").stat().st_size / 1e6
        print(f"  {side.build.name:42} {side.build.summary()}, index.html {side.index_mb:.1f} MB")

    if browser:
        from playwright.sync_api import sync_playwright

        from tests.browser import CHROMIUM, CHROMIUM_ARGS

        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for _ in range(sizes.browser_repeat):
                    for _, side in sides:
                        side.first_chart.add(
                            first_chart_seconds(chromium, side.build.out / "index.html")
                        )
            finally:
                chromium.close()
        for _, side in sides:
            print(f"  {side.build.name:42} first index chart drawn {side.first_chart.text('s')}")

    run_id = f"run-{sizes.runs - 1:04d}"  # the newest run: the one still training
    for code, side in sides:
        # A copy: the run gains steps, and a kept database stays as generated.
        copy = folder / f"watch-{'new' if code is now else 'old'}" / "many.db"
        copy.unlink(missing_ok=True)
        copied(side.build.db, copy, schema4=code is not now)
        warm(copy)
        timed = watch_rebuild(code, copy, copy.parent / "out", run_id, sizes.rebuild_repeat)
        side.full_in_process = timed["full"]
        for seconds in timed["rebuilds"]:
            side.rebuilds.add(seconds)
        print(
            f"  {side.build.name:42} watch: full build {side.full_in_process:.2f} s, rebuild"
            f" after +1 step {side.rebuilds.text('s')} = {side.ratio:.1%} of the full build"
        )
        shutil.rmtree(copy.parent, ignore_errors=True)
    return result


# -- the table


def table(
    rl: list[RLSize] | None,
    metrics: MetricsResult | None,
    index: IndexResult | None,
) -> list[tuple[str, str, str, str]]:
    """Rows of (measure, goal, before, now)."""
    rows: list[tuple[str, str, str, str]] = []
    if rl:
        big = rl[-1]
        olds = [s for s in rl if s.old is not None]
        old_big = olds[-1] if olds else None
        factor = big.trajectories / old_big.trajectories if old_big else 1.0
        for s in rl:
            goal_t = "< 45 s" if s is big else ""
            goal_m = "< 1 GB" if s is big else ""
            before_t = s.old.seconds.text("s") if s.old else "-"
            before_m = memory(s.old.peak_mb) if s.old else "-"
            if s.old is None and old_big is not None and s is big:
                before_t = (
                    f"~{old_big.old.seconds.median * factor:.0f} s (extrapolated:"
                    f" {old_big.label} x {factor:g})"
                )
                before_m = (
                    f"~{old_big.old.peak_mb.median * factor / 1000:.0f} GB (extrapolated:"
                    f" {old_big.label} x {factor:g})"
                )
            rows.append((f"RL build {s.label}: time", goal_t, before_t, s.new.seconds.text("s")))
            rows.append(
                (f"RL build {s.label}: peak memory", goal_m, before_m, memory(s.new.peak_mb))
            )
        if len(rl) >= 2:
            mid = rl[-2]
            t_ratio = big.new.seconds.median / mid.new.seconds.median
            m_ratio = big.new.peak_mb.median / mid.new.peak_mb.median
            before_t = before_m = "-"
            if len(olds) >= 2:
                lo, hi = olds[-2], olds[-1]
                measured_t = hi.old.seconds.median / lo.old.seconds.median
                measured_m = hi.old.peak_mb.median / lo.old.peak_mb.median
                if hi is big:
                    before_t, before_m = f"{measured_t:.1f}", f"{measured_m:.1f}x"
                else:
                    before_t = f"~{factor:g} (extrap.; {hi.label}/{lo.label}: {measured_t:.1f})"
                    before_m = f"~{factor:g}x (extrap.; {hi.label}/{lo.label}: {measured_m:.1f}x)"
            rows.append(
                (f"time({big.label}) / time({mid.label})", "<= 5", before_t, f"{t_ratio:.2f}")
            )
            rows.append(
                (
                    f"memory({big.label}) vs memory({mid.label})",
                    "no more",
                    before_m,
                    f"{mb(big.new.peak_mb.median)} vs {mb(mid.new.peak_mb.median)}"
                    f" ({m_ratio:.2f}x)",
                )
            )
        for s in rl:
            rows.append((f"run page {s.label}", "<= 25 MB", "", f"{s.page_mb:.1f} MB ({s.kept})"))
        for s in rl:
            if s.v4 is not None:
                rows.append(
                    (
                        f"RL build {s.label}, file from before schema 5",
                        "",
                        "",
                        f"{s.v4.seconds.text('s')}, {memory(s.v4.peak_mb)}",
                    )
                )
        for s in rl:
            if s.same_as_old is not None:
                rows.append(
                    (
                        f"run page {s.label}: old and new code",
                        "same bytes",
                        "",
                        "same" if s.same_as_old else "DIFFERENT",
                    )
                )
    if metrics:
        label = f"metrics run {thousands(metrics.steps)} steps x {metrics.metrics}"
        old = metrics.old
        rows.append(
            (
                f"{label}: build time",
                "< 5 s",
                old.seconds.text("s") if old else "-",
                metrics.new.seconds.text("s"),
            )
        )
        rows.append(
            (
                f"{label}: peak memory",
                "< 500 MB",
                memory(old.peak_mb) if old else "-",
                memory(metrics.new.peak_mb),
            )
        )
    if index:
        label = f"{index.runs} runs x {index.steps} x {index.metrics}"
        new, old = index.new, index.old

        def both(get: Callable[[IndexSide], str]) -> tuple[str, str]:
            return (get(old) if old else "-", get(new))

        rows.append((f"{label}: index.html", "< 5 MB", *both(lambda s: f"{s.index_mb:.1f} MB")))
        rows.append((f"{label}: full build", "", *both(lambda s: s.build.seconds.text("s"))))
        rows.append(
            (f"{label}: full build, peak memory", "", *both(lambda s: memory(s.build.peak_mb)))
        )
        if new.first_chart.values:
            rows.append(
                (
                    f"{label}: first index chart drawn",
                    "< 2 s",
                    *both(lambda s: s.first_chart.text("s")),
                )
            )
        rows.append(
            (
                f"{label}: watch rebuild after +1 step / full",
                "< 10%",
                *both(
                    lambda s: f"{s.rebuilds.median:.2f} / {s.full_in_process:.1f} s = {s.ratio:.1%}"
                ),
            )
        )
    return rows


def print_table(
    rows: list[tuple[str, str, str, str]], old_label: str, now_label: str = "now"
) -> None:
    head = ("measure", "goal", old_label, now_label)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = " | ".join(f"{{:{w}}}" for w in widths)
    print(line.format(*head))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument("--keep", type=Path, help="keep the databases (and pages) in this folder")
    parser.add_argument("--repeat", type=int, help="builds of each kind (default 3; quick: 1)")
    parser.add_argument("--no-old", action="store_true", help=f"skip the code at {OLD_COMMIT}")
    parser.add_argument(
        "--now",
        default="HEAD",
        help="the code measured as today's: a commit (default HEAD, its files as committed,"
        " whatever the checkout changes) or 'checkout' (the files as they are)",
    )
    parser.add_argument("--no-browser", action="store_true", help="skip Chromium")
    parser.add_argument("--only", default="rl,metrics,index", help="sections, comma-separated")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.repeat:
        sizes = dataclasses.replace(sizes, repeat=args.repeat)
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    unknown = only - {"rl", "metrics", "index"}
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    with workspace(args.keep, "tviz-bench-scale-") as work:
        need = 0
        if "rl" in only:
            for steps in sizes.rl_steps:
                copies = 1 + (steps in sizes.v4_rl_steps) + (steps in sizes.old_rl_steps)
                size = copies * steps * sizes.groups * sizes.samples
                # Without --keep, each size is deleted once measured: the largest counts.
                need = need + size if args.keep else max(need, size)
        free = shutil.disk_usage(work).free
        if need * BYTES_PER_TRAJECTORY + 2e9 > free:
            print(
                f"not enough room in {work}: about {need * BYTES_PER_TRAJECTORY / 1e9:.0f} GB"
                f" needed, {free / 1e9:.0f} GB free"
            )
            return 2
        print(
            f"work folder {work} ({free / 1e9:.0f} GB free); {os.cpu_count()} cores,"
            f" load {os.getloadavg()[0]:.1f}; each build a `tviz build` subprocess, repeated"
            f" {sizes.repeat}x (median (range))"
        )
        old = None if args.no_old else code_at(work, OLD_COMMIT, "before")
        if args.now == "checkout":
            now = NEW
            print(f"today's code: the checkout {ROOT} as it is")
        else:
            now = code_at(work, args.now, "now")
            if now is None:
                return 2
            changed = dirty()
            note = ""
            if changed:
                note = f"; the checkout's uncommitted changes to {len(changed)} files of tviz/"
                note += " are not measured (--now checkout measures them)"
            print(f"today's code: {args.now} as committed, {now.root}{note}")
        rl = metrics = index = None
        if "rl" in only:
            print("\n1. RL builds at scale")
            rl = measure_rl(work, sizes, old, now=now, keep=args.keep is not None)
        if "metrics" in only:
            print("\n2. A metrics-only run")
            metrics = measure_metrics(work, sizes, old, now=now)
        if "index" in only:
            print("\n3. The index of many runs")
            index = measure_index(work, sizes, old, now=now, browser=not args.no_browser)
        print(
            "\nFile cache warm for every build (each database was just written or copied, and"
            f" read once before each build). Load now {os.getloadavg()[0]:.1f}.\n"
        )
        old_label = old.label if old else f"before ({OLD_COMMIT})"
        print_table(table(rl, metrics, index), old_label, now.label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
