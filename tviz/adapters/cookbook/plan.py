"""The import's plan step: what the folder holds that the database does not have yet.

This is what makes an import incremental and idempotent: metric values already stored are not
written again, and iterations whose rollouts are stored are skipped (they are never redone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tviz.adapters.cookbook.files import RunFolder, iteration_dirs
from tviz.store import Store

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
    rollout_steps: set[int]


def read_imported(db_path: Path, run_id: str) -> Imported | None:
    """The run as the database holds it, or None when it is not there (nor the database)."""
    if not db_path.exists() or db_path.stat().st_size == 0:
        return None
    with Store(db_path) as store:
        if not any(r.id == run_id for r in store.list_runs()):
            return None
        data = store.load_run(run_id, rollout_steps=())
        steps = set(store.rollout_index(run_id))
    return Imported(
        name=data.summary.name,
        status=data.summary.status,
        numeric={n: dict(zip(s.steps, s.values, strict=True)) for n, s in data.metrics.items()},
        text={n: {step for step, _ in rows} for n, rows in data.text_metrics.items()},
        summary=dict(data.summaries),
        config=data.config,
        rollout_steps=steps,
    )


@dataclass
class ImportPlan:
    """What an import writes: only what is new since the last import of the folder."""

    config: dict[str, Any] | None  # to log as hparams; None when absent or nothing changed
    metric_steps: dict[int, dict[str, Any]]  # step -> its new or changed values, step order
    summary: dict[str, Any]  # step-less values, new or changed
    iterations: list[tuple[int, Path]]  # (step, folder) of the iterations whose rollouts to add
    mark_finished: bool  # the folder's run is finished, the database's not yet

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


def _new_metric_steps(
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


def _iteration_done(path: Path, is_last: bool, exports: bool) -> bool:
    """Whether an iteration's rollouts are complete enough to import (they are never redone)."""
    if (path / "train_rollout_summaries.jsonl").exists():
        return True
    if not (path / "train_logtree.json").exists():
        return False
    # The cookbook writes the logtree, then the summaries: wait for them unless it never will.
    return not exports or not is_last


def _new_iterations(folder: RunFolder, done_steps: set[int]) -> list[tuple[int, Path]]:
    exports = bool((folder.config or {}).get("rollout_json_export", True))
    iterations = iteration_dirs(folder.path, folder.problems)
    return [
        (i, path)
        for n, (i, path) in enumerate(iterations)
        if i not in done_steps and _iteration_done(path, n == len(iterations) - 1, exports)
    ]


def plan_import(folder: RunFolder, imported: Imported | None) -> ImportPlan:
    """What of `folder` to write, given what an earlier import stored (`imported`)."""
    old_summary = imported.summary if imported else {}
    old_config = imported.config if imported else {}
    config = folder.config
    config_changed = config is not None and any(
        k not in old_config or old_config[k] != v for k, v in config.items()
    )
    return ImportPlan(
        config=config if config_changed else None,
        metric_steps=_new_metric_steps(folder.metrics.steps, imported),
        summary={
            k: v for k, v in folder.metrics.summary.items() if not _same(v, old_summary.get(k))
        },
        iterations=_new_iterations(folder, imported.rollout_steps if imported else set()),
        mark_finished=folder.finished and (imported is None or imported.status != "finished"),
    )
