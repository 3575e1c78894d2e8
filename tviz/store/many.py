"""`StoreSet`: several databases read as one, e.g. one file per node of a multi-node job.

Each file is read by its own `Store` (still the only SQL reader); this layer merges what they
return. A run id found in several files is one run logged from several places:

- metrics are merged by step; text metrics, summaries and config keys likewise;
- rollouts (training and eval) of every file are kept, in step order;
- times: the earliest start, the latest data; status: running if any file says so, else the
  status of the file with the latest data;
- the same metric at the same step with two different values is a conflict: the first file's
  value is kept (files in the order given), and the conflict is named, with both files, in
  the run's notices and in `conflicts`. Equal values (NaN included) are no conflict.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tviz.store.data import (
    Rollout,
    RunData,
    RunNotFound,
    RunSummary,
    Series,
    StoreError,
    find_run_in,
)
from tviz.store.figures import GroupFigures
from tviz.store.reader import Store
from tviz.store.series import HEADLINE_ROLES, merge_headlines

# How a conflict's sentence starts (in `RunData.notices`, so the page shows it).
CONFLICT = "conflict: "
# Status of a run seen in several files: the most alive wins, the latest data breaks ties.
_ALIVE = {"running": 2, "crashed": 1, "finished": 1}


def expand_paths(patterns: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Paths as given, globs expanded (sorted, as users quote them); duplicates once.

    A glob that matches nothing, or a missing file, raises StoreError (one line)."""
    out: list[Path] = []
    for pattern in patterns:
        text = os.fspath(pattern)
        if glob.has_magic(text):
            found = sorted(glob.glob(os.path.expanduser(text)))
            if not found:
                raise StoreError(f"no database matches {text}")
            paths = [Path(p) for p in found]
        else:
            paths = [Path(text)]
        for path in paths:
            if not path.exists():
                raise StoreError(f"no database at {path}")
            if path not in out:
                out.append(path)
    return out


class StoreSet:
    """Read several tviz databases as one (see the module's docstring)."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, timeout: float = 2.0) -> None:
        self.stores: list[Store] = []
        try:
            for path in paths:
                self.stores.append(Store(path, timeout=timeout))
        except BaseException:
            self.close()
            raise
        if not self.stores:
            raise StoreError("no database given")
        # run id -> one sentence per conflict, from the last time the run was read.
        self.conflicts: dict[str, list[str]] = {}

    @property
    def path(self) -> Path:
        """The first file (where a vision run's relative image paths are looked up)."""
        return self.stores[0].path

    @property
    def name(self) -> str:
        return ", ".join(s.path.name for s in self.stores)

    def close(self) -> None:
        for store in self.stores:
            store.close()

    def __enter__(self) -> StoreSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction in every file (each file consistent in itself)."""
        with ExitStack() as stack:
            for store in self.stores:
                stack.enter_context(store.snapshot())
            yield None

    def _holding(self, run_id: str) -> list[Store]:
        return [s for s in self.stores if any(r.id == run_id for r in s.list_runs())]

    # -- queries -------------------------------------------------------------------------------

    def runs_by_file(self) -> list[tuple[RunSummary, list[Path]]]:
        """Every run (merged), newest first, with the files it is in."""
        listed = [(store, store.list_runs()) for store in self.stores]
        where: dict[str, list[Path]] = {}
        for store, found in listed:
            for run in found:
                where.setdefault(run.id, []).append(store.path)
        runs = []
        for store, found in listed:
            for run in found:
                if where[run.id][0] != store.path:
                    continue
                if len(where[run.id]) > 1:
                    run = self.load_run(run.id, rollout_steps=(), evals=False).summary
                runs.append(run)
        runs.sort(key=lambda r: r.id)
        runs.sort(key=lambda r: r.started_at or 0.0, reverse=True)
        return [(r, where[r.id]) for r in runs]

    def list_runs(self) -> list[RunSummary]:
        """All runs, one per id (merged across files), newest first."""
        return [run for run, _ in self.runs_by_file()]

    def find_run(self, name_or_id: str) -> RunSummary:
        """As `Store.find_run`, over the runs of every file at once: a name or an id prefix in
        one file never wins over an exact id in another."""
        return find_run_in(self.list_runs(), name_or_id, self.name)

    def tokens_by_day(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for store in self.stores:
            for day, tokens in store.tokens_by_day().items():
                total[day] = total.get(day, 0) + tokens
        return dict(sorted(total.items()))

    def versions(self) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        for i, store in enumerate(self.stores):
            for run_id, version in store.versions().items():
                out[run_id] = (*out.get(run_id, ()), i, *version)
        return out

    def rollout_index(self, run_id: str) -> dict[int, tuple[int, int]]:
        """step -> (groups in every file, a number that changes when any file's step does)."""
        out: dict[int, tuple[int, int]] = {}
        for store in self._holding(run_id):
            for step, (count, max_id) in store.rollout_index(run_id).items():
                n, fp = out.get(step, (0, 0))
                out[step] = (n + count, hash((fp, store.path, max_id)))
        return dict(sorted(out.items()))

    def step_figures(self, run_id: str, step: int) -> list[GroupFigures]:
        """Every file's groups at `step` (files in order), keyed by (file, rollout id)."""
        out: list[GroupFigures] = []
        holding = self._holding(run_id)
        for i, store in enumerate(self.stores):
            if store in holding:
                for g in store.step_figures(run_id, step):
                    out.append(dataclasses.replace(g, key=(i, g.key)))
        return out

    def groups(self, run_id: str, keys: Sequence[tuple[int, int]]) -> list[Rollout]:
        """The groups with these keys (`step_figures`), whole, in that order."""
        found: dict[tuple[int, int], Rollout] = {}
        for i, store in enumerate(self.stores):
            ids = [rid for f, rid in keys if f == i]
            if ids:
                found.update(((i, r.id), r) for r in store.groups(run_id, ids))
        return [found[k] for k in keys if k in found]

    def headline_series(
        self, run_id: str, roles: Iterable[str] = HEADLINE_ROLES
    ) -> dict[str, Series]:
        """As `Store.headline_series`, over every file holding the run, merged as `load_run`
        merges metrics: the name the catalog prefers among the files', the first file's value
        kept where two files disagree."""
        roles = list(roles)
        parts = []
        for store in self.stores:  # a file without the run says so: cheaper than `_holding`
            try:
                parts.append(store.headline_series(run_id, roles))
            except RunNotFound:
                continue
        if not parts:
            raise RunNotFound(f"no run with id {run_id!r} in {self.name}")
        return merge_headlines(parts)

    def config(self, run_id: str) -> dict[str, Any]:
        """As `Store.config`, over every file holding the run (the first file's keys win)."""
        parts = []
        for store in self.stores:
            try:
                parts.append(store.config(run_id))
            except RunNotFound:
                continue
        if not parts:
            raise RunNotFound(f"no run with id {run_id!r} in {self.name}")
        config: dict[str, Any] = {}
        for part in reversed(parts):
            config.update(part)
        return config

    def load_run(
        self,
        run_id: str,
        *,
        rollout_steps: Iterable[int] | None = None,
        evals: bool = True,
    ) -> RunData:
        """The run from every file holding it, merged (see the module's docstring)."""
        holding = self._holding(run_id)
        if not holding:
            raise RunNotFound(f"no run with id {run_id!r} in {self.name}")
        steps = None if rollout_steps is None else list(rollout_steps)
        parts = [s.load_run(run_id, rollout_steps=steps, evals=evals) for s in holding]
        if len(parts) == 1:
            self.conflicts.pop(run_id, None)
            return parts[0]
        pairs = zip(parts, holding, strict=True)
        seen = [_steps_seen(d, s.rollout_index(run_id)) for d, s in pairs]
        merged, conflicts = merge_runs(parts, [s.path.name for s in holding], seen)
        self.conflicts[run_id] = conflicts
        return merged


def _steps_seen(data: RunData, rollout_index: dict[int, Any]) -> set[int]:
    steps = set(rollout_index)
    for series in data.metrics.values():
        steps.update(series.steps)
    for values in data.text_metrics.values():
        steps.update(s for s, _ in values)
    return steps


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def merge_runs(
    parts: list[RunData], files: list[str], seen: list[set[int]]
) -> tuple[RunData, list[str]]:
    """One run from its parts (one per file, in order): the data and one sentence per conflict."""
    first = parts[0]
    conflicts: list[str] = []
    metrics = dict(first.metrics)
    where = {name: 0 for name in metrics}
    for i, part in enumerate(parts[1:], 1):
        for name, series in part.metrics.items():
            if name not in metrics:
                metrics[name], where[name] = series, i
                continue
            old = metrics[name]
            at = dict(zip(reversed(old.steps), reversed(old.values), strict=True))
            steps, values = list(old.steps), list(old.values)
            for step, value in zip(series.steps, series.values, strict=True):
                if step not in at:
                    at[step] = value
                    steps.append(step)
                    values.append(value)
                elif not _same(at[step], value):
                    conflicts.append(
                        f"{CONFLICT}metric {name!r} at step {step} is {at[step]!r} in"
                        f" {files[where[name]]} and {value!r} in {files[i]}; kept the value of"
                        f" {files[where[name]]}."
                    )
            order = sorted(range(len(steps)), key=steps.__getitem__)
            metrics[name] = Series(name, [steps[k] for k in order], [values[k] for k in order])
    text_metrics = {k: list(v) for k, v in first.text_metrics.items()}
    for part in parts[1:]:
        for name, values in part.text_metrics.items():
            have = {s for s, _ in text_metrics.get(name, [])}
            text_metrics[name] = sorted(
                text_metrics.get(name, []) + [(s, t) for s, t in values if s not in have],
                key=lambda st: st[0],
            )
    config: dict[str, Any] = {}
    summaries: dict[str, Any] = {}
    for part in reversed(parts):  # the first file's keys win
        config.update(part.config)
        summaries.update(part.summaries)
    long_texts = list(dict.fromkeys(t for p in parts for t in p.long_texts))
    data = RunData(
        summary=merge_summaries([p.summary for p in parts], seen),
        config=config,
        metrics=metrics,
        text_metrics=text_metrics,
        summaries=summaries,
        rollouts=_in_order(p.rollouts for p in parts),
        long_texts=long_texts,
        schema_version=first.schema_version,
        db_name=" + ".join(files),
        notices=[n for p in parts for n in p.notices] + conflicts,
        eval_rollouts=sorted(
            (r for p in parts for r in p.eval_rollouts), key=lambda r: (r.eval_name or "", r.step)
        ),
    )
    return data, conflicts


def _in_order(parts: Iterable[list[Rollout]]) -> list[Rollout]:
    """Every file's training groups by step (a file's order kept within a step)."""
    return sorted((r for rollouts in parts for r in rollouts), key=lambda r: r.step)


def merge_summaries(runs: list[RunSummary], seen: list[set[int]]) -> RunSummary:
    """One run's row from its rows in several files (the first file's for names and labels)."""
    first = runs[0]
    latest = max(runs, key=lambda r: r.last_data_at or 0.0)  # the first of equals
    status = max(runs, key=lambda r: (_ALIVE.get(r.status, 0), r is latest)).status
    ends = [r.ended_at for r in runs if r.ended_at is not None]
    last = max(runs, key=lambda r: -1 if r.last_step is None else r.last_step)
    union = set().union(*seen)
    overlap = sum(len(s) for s in seen) - len(union)
    bests = [r.best_reward for r in runs if r.best_reward is not None]
    return dataclasses.replace(
        first,
        status=status,
        started_at=min((r.started_at for r in runs if r.started_at is not None), default=None),
        ended_at=None if status == "running" or not ends else max(ends),
        last_data_at=max((r.last_data_at for r in runs if r.last_data_at), default=None),
        num_steps=max(len(union), sum(r.num_steps for r in runs) - overlap),
        last_step=last.last_step,
        latest_reward=last.latest_reward,
        best_reward=max(bests) if bests else None,
        num_rollouts=sum(r.num_rollouts for r in runs),
        num_trajectories=sum(r.num_trajectories for r in runs),
        num_tokens=sum(r.num_tokens for r in runs),
        model=next((r.model for r in runs if r.model), None),
        project=next((r.project for r in runs if r.project), None),
        group=next((r.group for r in runs if r.group), None),
    )
