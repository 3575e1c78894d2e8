"""Writing the site: run pages, the index, atomic writes, caches kept between builds.

`SiteBuilder` is what `tviz build` uses once and `tviz watch` uses again and again: it keeps
every step's encoded rollouts (keyed by `Store.rollout_index` fingerprints) and every run's
index entry (keyed by `Store.versions`), so re-rendering a run that gained one step reads and
encodes that step only.

One run never breaks the others: a run whose page cannot be made (data no page can show) is
left out with a notice, and the other pages and the index are written. Only a problem with
the file itself (locked, gone, unreadable) or the disk stops a build.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import escape

from tviz.names import DEFAULT_BUDGET_BYTES
from tviz.render import chart_budget
from tviz.render.evals import cost as eval_cost
from tviz.render.evals import encode_evals, eval_notice, plan_evals
from tviz.render.index import IndexEntry, index_entry, read_entry, render_index
from tviz.render.pages import Pages, fair_caps
from tviz.render.rollouts import (
    Grow,
    StepChunk,
    estimate_keep,
    figure_step,
    full_cost,
    plan_sample,
)
from tviz.store import RunData, RunNotFound, RunSummary, Store, StoreError
from tviz.store.many import CONFLICT, StoreSet
from tviz.store.metrics import MetricsCache
from tviz.store.prompts import History

# Steps whose first group is encoded before anything is planned: the estimates of what the
# other groups take in a page are made from their bytes per character.
CALIBRATE_STEPS = 32
# Runs whose metrics a builder keeps between builds (see `SiteBuilder._metrics_of`).
KEEP_METRICS = 4
PROGRESS_EVERY = 50

# progress(done, total, run): the steps of the runs to build done so far, of `total` (a run
# without steps counts as one); called every PROGRESS_EVERY steps and after each run's page.
Progress = Callable[[int, int, RunSummary], None]


@dataclass
class BuildReport:
    written: list[Path] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)  # those whose page was written
    notices: dict[str, str] = field(default_factory=dict)  # run id -> what was left out
    # run id -> one sentence per value two files disagree on (several databases only)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # run ids whose page could not be made


@dataclass
class _RunCache:
    chunks: dict[int, StepChunk] = field(default_factory=dict)
    history: History = field(default_factory=History)


class SiteBuilder:
    """Builds `out_dir/index.html` and `out_dir/runs/<slug>.html`, keeping caches between calls.

    `db_path` is one database, or several read as one (`tviz.store.many.StoreSet`: a run in
    several files is merged)."""

    def __init__(
        self,
        db_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        out_dir: str | os.PathLike[str],
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        group_by: str | None = None,
    ) -> None:
        paths = [db_path] if isinstance(db_path, (str, os.PathLike)) else list(db_path)
        self.db_paths = [Path(p) for p in paths]
        self.db_path = self.db_paths[0]  # images' relative paths are looked up beside it
        self.out_dir = Path(out_dir)
        self.budget_bytes = int(budget_bytes)
        self.group_by = group_by  # a config key whose value groups runs on the index
        self._pages = Pages()
        self._runs: dict[str, _RunCache] = {}
        self._index: dict[str, tuple[tuple, IndexEntry]] = {}
        self._rows: dict[str, tuple[tuple, RunSummary]] = {}  # id -> (version, its row)
        # The metrics of the runs built last (a watch rebuilds the live ones): at most
        # KEEP_METRICS runs', so a build of hundreds of runs holds a few runs' values.
        self._metrics: OrderedDict[str, MetricsCache] = OrderedDict()

    def build(
        self, run_ids: Iterable[str] | None = None, progress: Progress | None = None
    ) -> BuildReport:
        """Write the pages of `run_ids` (None: every run) and always the index.

        Ids may also be names or id prefixes (as `Store.find_run` takes them); an unknown one
        raises StoreError before anything is written.
        """
        report = BuildReport()
        opened = Store(self.db_path) if len(self.db_paths) == 1 else StoreSet(self.db_paths)
        # One snapshot for the whole build: the runs listed, their pages and the index are
        # of one moment (and a page reuses its run's row instead of reading it again).
        with opened as store, store.snapshot():
            versions = store.versions()
            runs = self._list_runs(store, versions)
            if run_ids is None:
                targets = runs
            else:
                by_id = {r.id: r for r in runs}
                targets = []
                for wanted in dict.fromkeys(run_ids):
                    run = by_id.get(wanted) or store.find_run(wanted)
                    if run not in targets:
                        targets.append(run)
            pages = page_names(runs)
            for run_id in set(self._runs) - set(versions):  # deleted runs
                self._runs.pop(run_id, None)
                self._metrics.pop(run_id, None)
                self._index.pop(run_id, None)
            total = sum(max(1, run.num_steps) for run in targets)
            done = 0
            for run in targets:
                tick = None
                if progress is not None:
                    units, base = max(1, run.num_steps), done

                    def tick(k: int, run: RunSummary = run, units: int = units, base: int = base):
                        progress(base + min(k, units), total, run)

                done += max(1, run.num_steps)
                try:
                    path, data, notice = self._build_run(store, run, pages[run.id], tick)
                except Exception as exc:
                    if _about_the_file(exc):
                        raise
                    self._runs.pop(run.id, None)  # its caches may hold what broke it
                    self._metrics.pop(run.id, None)
                    report.failed.append(run.id)
                    report.notices[run.id] = f"page not built: {_reason(exc)}"
                    continue
                report.written.append(path)
                report.runs.append(data.summary)
                if notice:
                    report.notices[run.id] = notice
                if isinstance(store, StoreSet) and store.conflicts.get(run.id):
                    report.conflicts[run.id] = store.conflicts[run.id]
                entry = index_entry(data, self.group_by)  # what read_entry reads, at hand
                self._index[run.id] = (versions.get(run.id, ()), entry)
                if progress is not None:
                    progress(done, total, data.summary)
            entries = []
            for run in runs:
                version = versions.get(run.id, ())
                cached = self._index.get(run.id)
                if cached is None or cached[0] != version:
                    cached = (version, self._index_entry(store, run, self.group_by))
                    self._index[run.id] = cached
                entries.append(cached[1])
            by_day = store.tokens_by_day()
        # Link only the pages that are there: `--run X` builds some, earlier builds may have
        # left others. Decided by the folder after this build, the same way every time.
        built = {e.summary.id for e in entries if (self.out_dir / pages[e.summary.id]).is_file()}
        db_name = self.db_path.name if len(self.db_paths) == 1 else store.name
        names = [p.name for p in self.db_paths]
        html = render_index(self._pages, entries, db_name, by_day, built, pages, names)
        report.written.append(write_atomic(self.out_dir / "index.html", html))
        return report

    def _list_runs(self, store: Store | StoreSet, versions: dict[str, tuple]) -> list[RunSummary]:
        """`store.list_runs()`, reading again only the rows of runs that changed since the
        last build (by `Store.versions`): a watch of 200 runs reads the one that logged."""
        if isinstance(store, StoreSet) or not self._rows:
            runs = store.list_runs()
        else:
            order = store.run_order()
            stale = [i for i in order if i not in self._rows or self._rows[i][0] != versions.get(i)]
            if len(stale) > max(1, len(order) // 4):
                runs = store.list_runs()
            else:
                fresh = {run_id: store.run_summary(run_id) for run_id in stale}
                runs = [fresh[i] if i in fresh else self._rows[i][1] for i in order]
        self._rows = {run.id: (versions.get(run.id, ()), run) for run in runs}
        return runs

    def _metrics_of(self, run_id: str) -> MetricsCache:
        """The run's metrics as read last time (a new cache if it is not among the last
        KEEP_METRICS runs built)."""
        cache = self._metrics.pop(run_id, None) or MetricsCache()
        self._metrics[run_id] = cache
        while len(self._metrics) > KEEP_METRICS:
            self._metrics.popitem(last=False)
        return cache

    @staticmethod
    def _index_entry(
        store: Store | StoreSet, run: RunSummary, group_by: str | None = None
    ) -> IndexEntry:
        """The run's row and headline series for the index (none of its other metrics are
        read); just its row if its data cannot be read."""
        try:
            return read_entry(store, run, group_by)
        except Exception as exc:
            if _about_the_file(exc):
                raise
            return IndexEntry(run, None, {})

    def _build_run(
        self,
        store: Store | StoreSet,
        run: RunSummary,
        page: str,
        tick: Callable[[int], None] | None = None,
    ) -> tuple[Path, RunData, str]:
        run_id = run.id
        cache = self._runs.setdefault(run_id, _RunCache())
        # One snapshot for the whole page: its figures, the groups read whole later and the
        # run's data are of one moment.
        with store.snapshot():
            fingerprints = store.rollout_index(run_id)
            for step in set(cache.chunks) - set(fingerprints):
                del cache.chunks[step]
            for n, (step, fingerprint) in enumerate(fingerprints.items(), 1):
                if tick is not None and n % PROGRESS_EVERY == 0:
                    tick(n)
                cached = cache.chunks.get(step)
                if cached is None or cached.fingerprint != fingerprint:
                    groups = store.step_figures(run_id, step)
                    cache.chunks[step] = figure_step(step, groups, fingerprint)
            if isinstance(store, Store):  # its row as listed, its metrics as read last time
                data = store.load_run(
                    run_id, rollout_steps=(), summary=run, metrics=self._metrics_of(run_id)
                )
            else:  # several files: each file's row and metrics, merged
                data = store.load_run(run_id, rollout_steps=())
            chunks = [cache.chunks[s] for s in sorted(cache.chunks)]
            history = cache.history.of([(c.step, c.fingerprint, c.prompts) for c in chunks])
            base_dir = self.db_path.parent

            def grow(keep: int, some: list[StepChunk] | None = None) -> None:
                for chunk in chunks if some is None else some:
                    want = min(keep, chunk.n_groups)
                    if chunk.ready < want:
                        if chunk.held < chunk.ready:  # released by an earlier build
                            chunk.release()
                        keys = chunk.keys[chunk.held : want]
                        chunk.encode(store.groups(run_id, keys), base_dir)

            try:
                html, notice = self._render_within_budget(data, chunks, history, grow)
            finally:
                for chunk in chunks:
                    chunk.release()
        path = write_atomic(self.out_dir / page, html)
        return path, data, notice

    def _render_within_budget(
        self,
        data: RunData,
        chunks: list[StepChunk],
        history: dict | None = None,
        grow: Grow | None = None,
    ) -> tuple[str, str]:
        """The page, its metric charts thinned, its long texts cut short and its rollouts
        sampled if the whole would pass the budget.

        `grow(k)` encodes the first k groups of each chunk (None: they are all encoded).
        Rollouts that would clearly not fit are never all encoded: what every group would
        take is then estimated (`full_cost`), and it only decides anything where it is below
        half of the room (the texts' and evals' shares, the charts' when they are large); so
        everything is encoded, and exact, whenever the estimate is within twice that.
        """
        eval_chunks = encode_evals(data.eval_rollouts, self.db_path.parent)
        page = self._pages.run_page(data, chunks, history, eval_chunks)
        text_sizes = page.long_text_sizes()
        banner = _data_notice(data.notices)

        # The page around the chunks and texts barely depends on the plan (a few numbers, the
        # notices): keep a margin for that instead of rendering again. Measured with every
        # long text left out, so their "left out" notes are counted too.
        full = {c.step: c.n_groups for c in chunks}

        def measure() -> int:
            return (
                self.budget_bytes
                - page.size_without_chunks(full, [0] * len(text_sizes))
                - page.chunk_overhead(full)
                - len(banner.encode("utf-8"))
                - 4_096
            )

        room = measure()
        if grow is not None:
            # The first group of some steps: what the estimates learn bytes per character from.
            grow(1, chunks[:: max(1, len(chunks) // CALIBRATE_STEPS)])
            charts_full = page.chart_costs().full
            if full_cost(chunks)[0] <= 2 * (max(room, 0) + charts_full):
                grow(max(full.values(), default=0), None)
        training, rollouts = full_cost(chunks)
        others = rollouts + sum(text_sizes)
        others += eval_cost(eval_chunks, {e.index: e.chunk.n_groups for e in eval_chunks})
        if room < others:  # charts first, up to their share (render/chart_budget.py)
            room = chart_budget.fit(page.chart_costs(), room, others, page.thin_charts, measure)
        # Past the budget, long texts may keep at most half the room, or what the full
        # rollouts leave if that is more; rollouts get the rest.
        caps = fair_caps(text_sizes, max(room // 2, room - rollouts))
        texts = sum(text_sizes if caps is None else map(min, text_sizes, caps))
        left = room - texts
        if eval_chunks:  # kept first: up to half of what is left, or all training leaves
            page.eval_plan = plan_evals(eval_chunks, max(left // 2, left - training))
            left -= eval_cost(eval_chunks, page.eval_plan)
        hint = None if grow is None else estimate_keep(chunks, left)
        plan = plan_sample(chunks, left, grow=grow, hint=hint)
        html = _with_banner(page.render(plan, caps), banner)
        notices = (page.notice(plan), eval_notice(eval_chunks, page.eval_plan))
        notices += (page.texts_notice(caps), page.metrics_notice)
        # Conflicts between files are on the page (data.notices) but reported one a line.
        notices += tuple(n for n in data.notices if not n.startswith(CONFLICT))
        return html, " ".join(n for n in notices if n)


def page_names(runs: Iterable[RunSummary]) -> dict[str, str]:
    """Run id -> its page (`RunSummary.page`), no two alike even where case is ignored.

    `run_slug` gives every id a name of its own, but a run's name stands in front of its id,
    so `a` + `b-c` and `a-b` + `c` meet; so may a hashed id and an id written like it. Then the
    run that started first keeps its page and the other gets a hash of its id added: adding
    runs does not rename the pages that were there.
    """
    taken: set[str] = set()
    out: dict[str, str] = {}
    ordered = sorted(runs, key=lambda r: (r.started_at is None, r.started_at or 0.0, r.id))
    for run in ordered:
        page = run.page
        if page.casefold() in taken:
            digest = hashlib.sha256(run.id.encode("utf-8", "surrogatepass")).hexdigest()
            stem = page.removesuffix(".html")
            n = 8
            while f"{stem}-{digest[:n]}.html".casefold() in taken and n < len(digest):
                n += 1
            page = f"{stem}-{digest[:n]}.html"
        taken.add(page.casefold())
        out[run.id] = page
    return out


def _about_the_file(exc: BaseException) -> bool:
    """Whether `exc` is about the database or the disk (stop the build; watch retries) rather
    than about one run's data (leave that run out)."""
    if isinstance(exc, RunNotFound) or "Could not decode" in str(exc):  # text not UTF-8
        return False
    return isinstance(exc, (StoreError, sqlite3.Error, OSError, MemoryError))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:199] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _data_notice(notices: list[str]) -> str:
    """The page's paragraph on what of the run's data it cannot show ('' when nothing)."""
    if not notices:
        return ""
    return f'<p class="notice" id="data-notice">{escape(" ".join(notices))}</p>\n'


def _with_banner(html: str, banner: str) -> str:
    """`banner` at the top of the page's <main> (the template's own; user text in the page is
    escaped, so it cannot hold the tag)."""
    at = html.find("<main>")
    if not banner or at < 0:
        return html
    at += len("<main>")
    return f"{html[:at]}\n{banner}{html[at:]}"


def build_site(
    db_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    run_ids: Iterable[str] | None = None,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    progress: Progress | None = None,
) -> BuildReport:
    """Build once: `SiteBuilder(db_path, out_dir, budget_bytes).build(run_ids, progress)`."""
    return SiteBuilder(db_path, out_dir, budget_bytes).build(run_ids, progress)


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` via a temp file in the same folder and a rename, so a reader
    (a browser, `tviz watch`'s server) never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; pages are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
