"""Writing the site: run pages, the index, atomic writes, caches kept between builds.

`SiteBuilder` is what `tviz build` uses once and `tviz watch` uses again and again: it keeps
every step's encoded rollouts (keyed by `Store.rollout_index` fingerprints) and every run's
index entry (keyed by `Store.versions`), so re-rendering a run that gained one step reads and
encodes that step only.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tviz.names import DEFAULT_BUDGET_BYTES
from tviz.render.index import IndexEntry, index_entry, render_index
from tviz.render.pages import Pages, fair_caps
from tviz.render.rollouts import StepChunk, encode_steps, plan_sample
from tviz.store import RunData, RunSummary, Store

# progress(done, total, run): called after each run page is written.
Progress = Callable[[int, int, RunSummary], None]


@dataclass
class BuildReport:
    written: list[Path] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)
    notices: dict[str, str] = field(default_factory=dict)  # run id -> what was left out


@dataclass
class _RunCache:
    chunks: dict[int, StepChunk] = field(default_factory=dict)


class SiteBuilder:
    """Builds `out_dir/index.html` and `out_dir/runs/<slug>.html`, keeping caches between calls."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self.db_path = Path(db_path)
        self.out_dir = Path(out_dir)
        self.budget_bytes = int(budget_bytes)
        self._pages = Pages()
        self._runs: dict[str, _RunCache] = {}
        self._index: dict[str, tuple[tuple, IndexEntry]] = {}

    def build(
        self, run_ids: Iterable[str] | None = None, progress: Progress | None = None
    ) -> BuildReport:
        """Write the pages of `run_ids` (None: every run) and always the index.

        Ids may also be names or id prefixes (as `Store.find_run` takes them); an unknown one
        raises StoreError before anything is written.
        """
        report = BuildReport()
        with Store(self.db_path) as store:
            runs = store.list_runs()
            if run_ids is None:
                targets = runs
            else:
                by_id = {r.id: r for r in runs}
                targets = []
                for wanted in dict.fromkeys(run_ids):
                    run = by_id.get(wanted) or store.find_run(wanted)
                    if run not in targets:
                        targets.append(run)
            versions = store.versions()
            for run_id in set(self._runs) - set(versions):  # deleted runs
                self._runs.pop(run_id, None)
                self._index.pop(run_id, None)
            for done, run in enumerate(targets, 1):
                path, data, notice = self._build_run(store, run.id)
                report.written.append(path)
                report.runs.append(data.summary)
                if notice:
                    report.notices[run.id] = notice
                self._index[run.id] = (versions.get(run.id, ()), index_entry(data))
                if progress is not None:
                    progress(done, len(targets), data.summary)
            entries = []
            for run in runs:
                version = versions.get(run.id, ())
                cached = self._index.get(run.id)
                if cached is None or cached[0] != version:
                    cached = (version, index_entry(store.load_run(run.id, rollout_steps=())))
                    self._index[run.id] = cached
                entries.append(cached[1])
            by_day = store.tokens_by_day()
        # Link only the pages that are there: `--run X` builds some, earlier builds may have
        # left others. Decided by the folder after this build, the same way every time.
        built = {e.summary.id for e in entries if (self.out_dir / e.summary.page).is_file()}
        html = render_index(self._pages, entries, self.db_path.name, by_day, built)
        report.written.append(write_atomic(self.out_dir / "index.html", html))
        return report

    def _build_run(self, store: Store, run_id: str) -> tuple[Path, RunData, str]:
        cache = self._runs.setdefault(run_id, _RunCache())
        with store.snapshot():  # the index and the data from the same moment
            fingerprints = store.rollout_index(run_id)
            for step in set(cache.chunks) - set(fingerprints):
                del cache.chunks[step]
            stale = [
                s
                for s, fp in fingerprints.items()
                if cache.chunks.get(s) is None or cache.chunks[s].fingerprint != fp
            ]
            data = store.load_run(run_id, rollout_steps=stale)
        cache.chunks.update(encode_steps(data.rollouts, fingerprints, self.db_path.parent))
        chunks = [cache.chunks[s] for s in sorted(cache.chunks)]
        html, notice = self._render_within_budget(data, chunks)
        path = write_atomic(self.out_dir / data.summary.page, html)
        return path, data, notice

    def _render_within_budget(self, data: RunData, chunks: list[StepChunk]) -> tuple[str, str]:
        """The page, its long texts cut short and its rollouts sampled if the whole would
        pass the budget."""
        page = self._pages.run_page(data, chunks)
        full = {c.step: c.n_groups for c in chunks}
        text_sizes = page.long_text_sizes()
        # The page around the chunks and texts barely depends on the plan (a few numbers, the
        # notices): keep a margin for that instead of rendering again. Measured with every
        # long text left out, so their "left out" notes are counted too.
        room = (
            self.budget_bytes
            - page.size_without_chunks(full, [0] * len(text_sizes))
            - page.chunk_overhead(full)
            - 4_096
        )
        rollouts = sum(c.size(c.n_groups) for c in chunks)
        # Past the budget, long texts may keep at most half the room, or what the full
        # rollouts leave if that is more; rollouts get the rest.
        caps = fair_caps(text_sizes, max(room // 2, room - rollouts))
        texts = sum(text_sizes if caps is None else map(min, text_sizes, caps))
        plan = plan_sample(chunks, room - texts)
        html = page.render(plan, caps)
        notice = " ".join(n for n in (page.notice(plan), page.texts_notice(caps)) if n)
        return html, notice


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
