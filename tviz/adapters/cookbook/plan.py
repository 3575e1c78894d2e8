"""The import's plan step: what the folder holds that the database does not have yet.

This is what makes an import incremental and idempotent: metric values already stored are not
written again, and an iteration's rollout files already imported are skipped while they are
the same files (`resume.same_files`). What a resume rewrote is replaced (`resume`): the steps
metrics.jsonl holds again after a resume point, and the iterations whose files changed, with
all of their groups (training and eval). Nothing the folder no longer has is deleted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tviz.adapters.cookbook.files import RunFolder, iteration_dirs
from tviz.adapters.cookbook.logtree import read_logtree
from tviz.adapters.cookbook.result import Problems
from tviz.adapters.cookbook.sources import Source, iteration_sources
from tviz.adapters.cookbook.stamps import STAMP_KEY, same_files
from tviz.store import Store
from tviz.store.evals import rollout_sources

__all__ = ["ImportPlan", "Imported", "plan_import", "read_imported"]


@dataclass
class Imported:
    """What the database holds of the run from earlier imports."""

    name: str
    status: str | None
    numeric: dict[str, dict[int, float]]  # metric -> step -> value
    text: dict[str, set[int]]  # metric -> steps with a text value
    summary: dict[str, Any]
    config: dict[str, Any]
    # (step, eval name or None) -> the stamp of the files its groups were read from (None:
    # imported by a tviz that kept none)
    sources: dict[tuple[int, str | None], Any]

    @property
    def rollout_steps(self) -> set[int]:
        """Steps with training rollouts."""
        return {step for step, name in self.sources if name is None}


def read_imported(db_path: Path, run_id: str) -> Imported | None:
    """The run as the database holds it, or None when it is not there (nor the database)."""
    if not db_path.exists() or db_path.stat().st_size == 0:
        return None
    with Store(db_path) as store:
        if not any(r.id == run_id for r in store.list_runs()):
            return None
        data = store.load_run(run_id, rollout_steps=(), evals=False)
        sources = rollout_sources(store, run_id, STAMP_KEY)
    return Imported(
        name=data.summary.name,
        status=data.summary.status,
        numeric={n: dict(zip(s.steps, s.values, strict=True)) for n, s in data.metrics.items()},
        text={n: {step for step, _ in rows} for n, rows in data.text_metrics.items()},
        summary=dict(data.summaries),
        config=data.config,
        sources=sources,
    )


@dataclass
class ImportPlan:
    """What an import writes: only what is new since the last import of the folder."""

    config: dict[str, Any] | None  # to log as hparams; None when absent or nothing changed
    metric_steps: dict[int, dict[str, Any]]  # step -> its new or changed values, step order
    summary: dict[str, Any]  # step-less values, new or changed
    # step -> the iteration's sources to write (every one it has: the step's stored groups
    # are replaced), in step order
    iterations: dict[int, list[Source]]
    mark_finished: bool  # the folder's run is finished, the database's not yet
    # Steps rewritten after a resume: their stored metric values are deleted first, and
    # `metric_steps` holds all of their values.
    replace_metric_steps: set[int] = field(default_factory=set)
    # Steps whose stored groups were read from files that changed (or an older import that
    # kept no stamp, past a resume): replaced whatever the new files hold.
    replace_rollout_steps: set[int] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (
            self.metric_steps
            or self.summary
            or self.config is not None
            or self.iterations
            or self.mark_finished
        )


def _same(new: Any, old: Any) -> bool:
    """Whether `new` is stored already as `old`: a float for a number, else text, None for none.

    Numbers compare by value (NaN equals NaN); any stored text counts as the same non-number.
    """
    if new is None:
        return True  # nothing to store
    if isinstance(new, (bool, int, float)):
        if not isinstance(old, float):
            return False
        try:
            new = float(new)
        except OverflowError:
            return False
        return (math.isnan(new) and math.isnan(old)) or new == old
    return old is not None and not isinstance(old, float)


def new_metric_steps(
    steps: dict[int, dict[str, Any]], imported: Imported | None
) -> dict[int, dict[str, Any]]:
    numeric = imported.numeric if imported else {}
    text = imported.text if imported else {}
    out: dict[int, dict[str, Any]] = {}
    for step, values in sorted(steps.items()):
        changed = {}
        for k, v in values.items():
            old = numeric.get(k, {}).get(step)
            if old is None and step in text.get(k, ()):
                old = ""  # a text value is stored
            if not _same(v, old):
                changed[k] = v
        if changed:
            out[step] = changed
    return out


def _metric_plan(
    folder: RunFolder, imported: Imported | None
) -> tuple[dict[int, dict[str, Any]], set[int]]:
    """The metric values to write, and the steps to replace whole.

    Steps only a `pre_resume` file holds are added like any other (never deleted). A step
    metrics.jsonl holds at or after a resume point was written again after the resume: when
    the database holds names its row no longer has, the step is replaced by the row.
    """
    resumes = folder.resumes
    steps = folder.metrics.steps
    out = new_metric_steps({**resumes.earlier, **steps}, imported)
    replace: set[int] = set()
    first = resumes.first
    if first is not None and imported is not None:
        stored: dict[int, set[str]] = {}
        for table in (imported.numeric, imported.text):
            for name, by_step in table.items():
                for step in by_step:
                    stored.setdefault(step, set()).add(name)
        for step, values in steps.items():
            now = {k for k, v in values.items() if v is not None}
            if step >= first and stored.get(step, now) - now:
                replace.add(step)
                out[step] = {k: v for k, v in values.items() if v is not None}
    return dict(sorted(out.items())), replace


def _iteration_done(source: Source, is_last: bool, exports: bool) -> bool:
    """Whether a source's rollouts are complete enough to import (if its files change later,
    the next import reads them again)."""
    if source.summaries.exists():
        return True
    if not source.logtree.exists():
        return False
    # The cookbook writes the logtree, then the summaries: wait for them unless it never will.
    return not exports or not is_last


def _may_hold_groups(source: Source, problems: Problems) -> bool:
    """Whether a source not imported yet has groups to import: a logtree alone may hold none
    (an evaluator that logs no rollouts); then it is not read again and again."""
    if source.summaries.exists():
        return True  # read (or said unreadable) by the write step
    scratch = Problems()
    groups, _ = read_logtree(source.logtree, scratch)
    if any(group.trajectories for group in groups):
        return True
    for kind, items in scratch.items.items():
        for item in items:
            problems.add(kind, item)
    return False


def _changed(source: Source, stored: dict[tuple[int, str | None], Any], first: int | None) -> bool:
    """Whether the stored groups of an imported source came from other files than the
    folder's now. An import by a tviz that kept no stamp: at or after a resume point."""
    stamp = stored[source.key]
    if stamp is None:
        return first is not None and source.step >= first
    return not same_files(source.files, stamp)


def _rollout_plan(
    folder: RunFolder, imported: Imported | None
) -> tuple[dict[int, list[Source]], set[int]]:
    """The iterations to write (each with all of its sources) and those among them whose
    stored groups are replaced."""
    exports = bool((folder.config or {}).get("rollout_json_export", True))
    stored = imported.sources if imported else {}
    first = folder.resumes.first
    iterations = iteration_dirs(folder.path, folder.problems)
    plan: dict[int, list[Source]] = {}
    replace: set[int] = set()
    for n, (step, path) in enumerate(iterations):
        is_last = n == len(iterations) - 1
        sources = [s for s in iteration_sources(step, path) if _iteration_done(s, is_last, exports)]
        changed = [s for s in sources if s.key in stored and _changed(s, stored, first)]
        new = [s for s in sources if s.key not in stored and _may_hold_groups(s, folder.problems)]
        if changed or new:
            plan[step] = sources
            if any(key[0] == step for key in stored):
                replace.add(step)
    return plan, replace


def plan_import(folder: RunFolder, imported: Imported | None) -> ImportPlan:
    """What of `folder` to write, given what an earlier import stored (`imported`)."""
    old_summary = imported.summary if imported else {}
    old_config = imported.config if imported else {}
    config = folder.config
    config_changed = config is not None and any(
        k not in old_config or old_config[k] != v for k, v in config.items()
    )
    metric_steps, replace_metric_steps = _metric_plan(folder, imported)
    iterations, replace_rollout_steps = _rollout_plan(folder, imported)
    return ImportPlan(
        config=config if config_changed else None,
        metric_steps=metric_steps,
        summary={
            k: v for k, v in folder.metrics.summary.items() if not _same(v, old_summary.get(k))
        },
        iterations=iterations,
        mark_finished=folder.finished and (imported is None or imported.status != "finished"),
        replace_metric_steps=replace_metric_steps,
        replace_rollout_steps=replace_rollout_steps,
    )
