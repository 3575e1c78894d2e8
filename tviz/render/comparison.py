"""Several runs read for comparing them (`tviz compare`, `tviz export`): which runs, their
colours, groups, the metrics they share and each chart's series.

Several databases are read as one, as `tviz build` reads them (`store.many.StoreSet`): a run
logged from several files is merged, its conflicts kept in `Comparison.conflicts`.

Colours: one per run, from a fixed palette in the order the runs were named, kept by a run
for the whole file whichever runs a reader hides; runs of a group share their group's colour.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import altair as alt

from tviz import catalog
from tviz.render import charts, groups, summary
from tviz.render.downsample import minmax
from tviz.store import RunData, RunSummary, Store, StoreError
from tviz.store.axes import Axis, step_axes
from tviz.store.data import find_run_in
from tviz.store.many import StoreSet

# Tableau 10: distinct on white and in print; an 11th run takes the first colour again.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
MAX_POINTS = 1000  # per line, as run pages (render/model.py)
AXES = {"step": "step", "time": "wall time", "tokens": "sampled tokens"}


@dataclass
class Member:
    data: RunData
    db: Path  # the first file holding the run
    axes: dict[str, list[list[float]]]
    rewards: summary.Steps | None
    group: str | None = None
    color: str = ""
    dbs: list[Path] = field(default_factory=list)  # every file holding it, in the order given

    @property
    def db_label(self) -> str:
        """The run's files for a reader: `a.db`, or `a.db + b.db` for a run merged from two."""
        return " + ".join(p.name for p in self.dbs or [self.db])


@dataclass
class Comparison:
    runs: list[Member]
    groups: dict[str, list[int]] = field(default_factory=dict)  # label -> run indices
    group_colors: dict[str, str] = field(default_factory=dict)
    dbs: list[Path] = field(default_factory=list)  # the files read, in the order given
    # run id -> one sentence per conflict between its files (the first file's value kept).
    conflicts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def summaries(self) -> list[dict[str, Any]]:
        return [summary.run_summary(m.data, m.rewards) for m in self.runs]


def load(
    wanted: Sequence[str], dbs: Sequence[Path], group_by: str | None = None, rollouts: bool = True
) -> Comparison:
    """The runs named in `wanted` (ids, names or id prefixes: `find_run`) in `dbs`.

    Several files are read as one (`StoreSet`), as `tviz build` reads them: a run found in
    several is merged (a conflict keeps the first file's value and is named in `conflicts`).
    An unknown run or a missing database raises StoreError with a one-line message."""
    if not wanted:
        raise StoreError("name at least one run")
    paths = list(dict.fromkeys(Path(db) for db in dbs))
    if not paths:
        raise StoreError("no database given")
    members: list[Member] = []
    conflicts: dict[str, list[str]] = {}
    # One file: the one-file Store, exactly as ever.
    with Store(paths[0], timeout=2.0) if len(paths) == 1 else StoreSet(paths) as store:
        listed = runs_by_file(store)
        runs = [run for run, _ in listed]
        where = {run.id: files for run, files in listed}
        seen: set[str] = set()
        for name in wanted:
            run = find_run(runs, name, paths)
            if run.id in seen:
                continue
            seen.add(run.id)
            files = where[run.id]
            with store.snapshot():
                data = store.load_run(run.id, rollout_steps=None if rollouts else ())
                axes = _axes(store, run.id, files)
            if isinstance(store, StoreSet) and store.conflicts.get(run.id):
                conflicts[run.id] = list(store.conflicts[run.id])
            rewards = summary.rollout_rewards(data.rollouts)
            label = groups.group_of(data.config, data.summary.group, group_by)
            members.append(Member(data, files[0], axes, rewards, label, dbs=list(files)))
    found = groups.group_runs([m.group for m in members])
    for m in members:  # a group of one run is just that run
        if m.group not in found:
            m.group = None
    comparison = Comparison(members, found, dbs=paths, conflicts=conflicts)
    colors = iter(PALETTE * (1 + len(members) // len(PALETTE)))
    for m in members:
        if m.group is None:
            m.color = next(colors)
        else:
            if m.group not in comparison.group_colors:
                comparison.group_colors[m.group] = next(colors)
            m.color = comparison.group_colors[m.group]
    return comparison


def runs_by_file(store: Store | StoreSet) -> list[tuple[RunSummary, list[Path]]]:
    """Every run (merged across files), newest first, with the files holding it."""
    if isinstance(store, StoreSet):
        return store.runs_by_file()
    return [(run, [store.path]) for run in store.list_runs()]


def find_run(runs: Sequence[RunSummary], name_or_id: str, dbs: Sequence[Path]) -> RunSummary:
    """`Store.find_run` over the runs of every file at once (`dbs`: the files, named in the
    message when nothing matches)."""
    return find_run_in(list(runs), name_or_id, ", ".join(map(str, dbs)))


def _axes(store: Store | StoreSet, run_id: str, files: list[Path]) -> dict[str, Axis]:
    """The run's wall-time and token axes (`store/axes.py`), read in the current snapshot.

    A run in several files: the sampled tokens of every file's steps, counted as its metrics
    are merged (at a step in several files, the first file's count), and no wall-time axis:
    each file's times start at its own first metric, so they cannot be put on one clock."""
    if isinstance(store, Store):
        with store.snapshot() as conn:
            return step_axes(conn, run_id)
    holding = [s for s in store.stores if s.path in files]
    if len(holding) == 1:
        with holding[0].snapshot() as conn:
            return step_axes(conn, run_id)
    counts: dict[int, float] = {}
    for part in holding:
        with part.snapshot() as conn:
            tokens = step_axes(conn, run_id).get("tokens")
        if tokens is None:
            # Fewer than two steps with tokens in this file: the step of a count is not known
            # here, so unless the file has no tokens at all, a merged axis would be wrong.
            if any(r.num_tokens for r in part.list_runs() if r.id == run_id):
                return {}
            continue
        total = 0.0
        for step, cumulative in zip(tokens[0], tokens[1], strict=True):
            counts.setdefault(int(step), cumulative - total)
            total = cumulative
    steps = sorted(counts)
    if len(steps) < 2:
        return {}
    running, cumulative = 0.0, []
    for step in steps:
        running += counts[step]
        cumulative.append(running)
    return {"tokens": [steps, cumulative]}


def _headline(m: Member, role: str) -> dict[str, Any] | None:
    return summary.headline_series(m.data, role, m.rewards)


def chart_list(c: Comparison, max_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """Every chart of the comparison: the headline roles (each run's metric for the role, as
    the catalog names it), then every other metric logged by two runs or more, by name.

    A chart: {id, title, metric, unit, better, series: {slot: [steps, values]}, bands: {slot:
    [steps, lo, hi]}, note}. Slots 0..n-1 are the runs, n.. the groups (their means)."""
    out = []
    used: set[str] = set()
    for role in summary.HEADLINE_ROLES:
        found = [_headline(m, role) for m in c.runs]
        if sum(f is not None for f in found) < 1:
            continue
        for m in c.runs:
            hit = catalog.find(role, m.data.metrics)
            if hit:
                used.add(hit[0])
        first = next(f for f in found if f is not None)
        series = {i: (f["steps"], f["values"]) for i, f in enumerate(found) if f is not None}
        metrics = sorted({f["metric"] for f in found if f is not None})
        out.append(
            _chart(
                c,
                f"role-{role}",
                catalog.ROLES[role],
                ", ".join(metrics),
                first,
                series,
                max_points,
            )
        )
    counts: dict[str, int] = {}
    for m in c.runs:
        for name in m.data.metrics:
            counts[name] = counts.get(name, 0) + 1
    shared = sorted(n for n, k in counts.items() if k >= min(2, len(c.runs)) and n not in used)
    for n, name in enumerate(shared):
        series = {
            i: (m.data.metrics[name].steps, m.data.metrics[name].values)
            for i, m in enumerate(c.runs)
            if name in m.data.metrics
        }
        info = {"unit": "", "better": catalog.NEITHER}
        out.append(_chart(c, f"m{n}", name, name, info, series, max_points))
    return out


def _chart(c, chart_id, title, metric, info, series, max_points) -> dict[str, Any]:
    drawn: dict[int, list[list[Any]]] = {}
    bands: dict[int, list[list[Any]]] = {}
    reduced = 0
    for i, (steps, values) in series.items():
        ds = minmax(steps, values, max_points)
        drawn[i] = [ds.steps, ds.values]
        reduced = max(reduced, ds.original_points if ds.reduced else 0)
    for j, idx in enumerate(c.groups.values()):
        agg = groups.aggregate([series[i] for i in idx if i in series])
        if agg is None:
            continue
        ds = minmax(agg["steps"], agg["mean"], max_points)
        at = {s: k for k, s in enumerate(agg["steps"])}
        keep = [at[s] for s in ds.steps]
        slot = len(c.runs) + j
        drawn[slot] = [ds.steps, ds.values]
        bands[slot] = [ds.steps, [agg["lo"][k] for k in keep], [agg["hi"][k] for k in keep]]
    note = ""
    if reduced:
        note = (
            f"{max_points:,} of up to {reduced:,} points drawn per line: the lowest and highest"
            " value of each step range are kept, so spikes are never hidden."
        )
    return {
        "id": chart_id,
        "title": title,
        "metric": metric,
        "unit": info.get("unit", ""),
        "better": info.get("better", catalog.NEITHER),
        "series": {str(k): v for k, v in drawn.items()},
        "bands": {str(k): v for k, v in bands.items()},
        "note": note,
    }


def slots(c: Comparison) -> list[dict[str, Any]]:
    """What each slot of the charts is: a run or a group's mean, its label and colour."""
    out = []
    for i, m in enumerate(c.runs):
        s = m.data.summary
        out.append(
            {
                "kind": "run",
                "label": s.name or s.id,
                "id": s.id,
                "color": m.color,
                "group": m.group,
                "db": m.db_label,
                "axes": m.axes,
                "index": i,
            }
        )
    for label, idx in c.groups.items():
        axes = {}
        for axis in ("time", "tokens"):
            found = [c.runs[i].axes.get(axis) for i in idx]
            if all(found):
                agg = groups.aggregate([(a[0], a[1]) for a in found])  # type: ignore[index]
                if agg is not None:
                    axes[axis] = [agg["steps"], agg["mean"]]
        out.append(
            {
                "kind": "group",
                "label": label,
                "color": c.group_colors[label],
                "members": idx,
                "axes": axes,
            }
        )
    return out


@functools.lru_cache(maxsize=16)
def compare_chart(colors: tuple[str, ...], height: int = 200) -> dict[str, Any]:
    """The comparison's line chart as Vega (the run page's `charts.line_chart` with a band per
    slot): slot i reads `b<i>` (band rows {step, lo, hi}), `r<i>` (raw), `m<i>` (smoothed) and
    `d<i>` (dots of sparse series), x in the field `step` whatever the axis (signal `xtitle`).
    """
    x = charts._step_x()
    y = alt.Y(
        "value:Q", title=None, scale=alt.Scale(domain=alt.ExprRef("ydom"), nice=False, zero=False)
    )
    layers = []
    for i, color in enumerate(colors):

        def named(prefix: str, i: int = i) -> alt.NamedData:
            return alt.NamedData(name=f"{prefix}{i}", format=alt.DataFormat(parse=None))

        layers.append(
            alt.Chart(named("b"))
            .mark_area(color=color, opacity=0.18, clip=True)
            .encode(
                x=x,
                y=alt.Y("lo:Q", title=None, scale=alt.Scale(domain=alt.ExprRef("ydom"))),
                y2="hi:Q",
            )
        )
        layers.append(
            alt.Chart(named("r"))
            .mark_line(color=color, strokeWidth=1.4, clip=True, opacity=alt.ExprRef("rawOpacity"))
            .encode(x=x, y=y)
        )
        layers.append(
            alt.Chart(named("m")).mark_line(color=color, strokeWidth=2, clip=True).encode(x=x, y=y)
        )
        layers.append(
            alt.Chart(named("d"))
            .mark_circle(color=color, size=28, opacity=1, clip=True)
            .encode(x=x, y=y)
        )
    params = [
        alt.param(name="xdom", value=[0, 1]),
        alt.param(name="ydom", value=[0, 1]),
        alt.param(name="rawOpacity", value=1.0),
        alt.param(name="yfmt", value=",.3~g"),
        alt.param(name="xtitle", value="step"),
    ]
    spec = charts._finish(alt.layer(*layers).add_params(*params), height)
    for axis in spec["axes"]:
        if axis["scale"] == "y" and axis.get("labels") is not False:
            axis["format"] = {"signal": "yfmt"}
        if axis["scale"] == "x" and axis.get("title"):
            axis["title"] = {"signal": "xtitle"}
    return spec
