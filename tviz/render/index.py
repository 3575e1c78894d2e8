"""The index page: every run in a sortable table, totals, tokens per day, and each run's
headline series (reward, KL, entropy, output length) overlaid.

The index's size does not grow with the runs' lengths: each run brings its four headline
series (`Store.headline_series`, which reads no other metric), each downsampled to at most
INDEX_POINTS points by the run pages' min/max rule. Any other metric is on the run's own page
or compared with `tviz compare`.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tviz import catalog
from tviz.render import charts, model
from tviz.render.comparison import PALETTE
from tviz.render.downsample import Downsampled, minmax
from tviz.render.groups import GROUP_RULE, aggregate, group_of, group_runs
from tviz.store import RunData, RunSummary, Series, Store
from tviz.store.many import StoreSet
from tviz.store.series import HEADLINE_ROLES

# Points per run and headline series at most (min/max per step range, as run pages draw):
# 200 runs' four series make an index of about 4 MB whatever their length (measured), about a
# quarter of it the page itself (the Vega bundle).
INDEX_POINTS = 150
# Calendar days the tokens chart fills with zeros between active days (a year of bars at most).
MAX_FILLED_DAYS = 366
# A day the tokens chart can place ('YYYY-MM-DD', years 1000 to 9999).
_ISO_DAY = re.compile(r"[1-9]\d{3}-\d{2}-\d{2}")


@dataclass(frozen=True)
class IndexEntry:
    summary: RunSummary
    reward_metric: str | None  # the run's own name of its reward metric
    # headline role (HEADLINE_ROLES) -> [steps, values], downsampled to INDEX_POINTS
    metrics: dict[str, list[list[Any]]]
    group: str | None = None  # the logger's group, or `KEY=value` under `--group-by KEY`
    # headline role -> the metric that fills it, as the run logged it ("1 − name" if the
    # catalog transforms it)
    sources: dict[str, str] = field(default_factory=dict)


def headline_entry(
    summary: RunSummary, series: dict[str, Series], group: str | None = None
) -> IndexEntry:
    """A run's index entry from its headline series (role -> Series, `Store.headline_series`)."""
    metrics: dict[str, list[list[Any]]] = {}
    sources: dict[str, str] = {}
    for role in HEADLINE_ROLES:
        if role not in series:
            continue
        found = series[role]
        entry = catalog.find(role, [found.name])
        values = entry[1].apply(found.values) if entry else list(found.values)
        ds = thin(found.steps, values)
        metrics[role] = [ds.steps, ds.values]
        sources[role] = entry[1].formula(found.name) if entry else found.name
    reward = series.get("reward")
    return IndexEntry(summary, reward.name if reward else None, metrics, group, sources)


def thin(steps: Sequence[int], values: Sequence[float | None]) -> Downsampled:
    """At most INDEX_POINTS points, each step range's lowest and highest kept (`minmax`, which
    keeps a gap's point too: with many gaps it is asked for fewer)."""
    ds = minmax(steps, values, INDEX_POINTS)
    if len(ds.steps) > INDEX_POINTS:
        ds = minmax(steps, values, 2 * INDEX_POINTS // 3)
    return ds


def read_entry(store: Store | StoreSet, run: RunSummary, group_by: str | None = None) -> IndexEntry:
    """The run's index entry from `store`: its headline series and, for its group, its
    config; none of its other metrics are read."""
    with store.snapshot():  # both of one moment
        config, series = store.config(run.id), store.headline_series(run.id)
    return headline_entry(run, series, group_of(config, run.group, group_by))


def index_entry(data: RunData, group_by: str | None = None) -> IndexEntry:
    """The same entry from a run already read whole (`read_entry` reads far less)."""
    series = {}
    for role in HEADLINE_ROLES:
        found = catalog.find(role, data.metrics)
        if found is not None:
            series[role] = data.metrics[found[0]]
    group = group_of(data.config, data.summary.group, group_by)
    return headline_entry(data.summary, series, group)


def tokens_per_day(by_day: dict[str, int]) -> list[dict[str, Any]]:
    """Rows for the tokens-per-day bars from `Store.tokens_by_day()` ({'YYYY-MM-DD': tokens},
    by each step's own time). Days without tokens between the first and the last are filled
    with zeros, so a pause shows as a gap, unless that would mean more than MAX_FILLED_DAYS."""
    days = sorted(d for d in by_day if _ISO_DAY.fullmatch(d))
    if not days:
        return []
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    if (last - first).days < MAX_FILLED_DAYS:
        days = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    return [{"day": d, "tokens": int(by_day.get(d, 0))} for d in days]


def _spans_years(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and rows[0]["day"][:4] != rows[-1]["day"][:4]


def render_index(
    pages: Any,
    entries: list[IndexEntry],
    db_name: str,
    tokens_by_day: dict[str, int],
    built: set[str] | None = None,
    page_of: dict[str, str] | None = None,
    db_names: list[str] | None = None,
) -> str:
    """The index page; `tokens_by_day` is `Store.tokens_by_day()` of the same snapshot.

    Runs whose ids are in `built` (None: all) link to their pages (`page_of[id]`, by default
    `RunSummary.page`); the others are listed without a link and marked "not built".
    """
    page_of = page_of or {}
    runs = [e.summary for e in entries]
    group = {e.summary.id: e.group for e in entries}
    roles = [r for r in HEADLINE_ROLES if any(r in e.metrics for e in entries)]
    default = roles[0] if roles else None
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "href": page_of.get(r.id, r.page) if built is None or r.id in built else None,
            "status": r.status,
            "lastData": r.last_data_at,
            "model": r.model,
            "steps": r.num_steps,
            "latest": r.latest_reward,
            "best": r.best_reward,
            "traj": r.num_trajectories,
            "tokens": r.num_tokens,
            "started": r.started_at,
            "duration": r.duration_s,
            "project": r.project,
            "group": group[r.id],
        }
        for r in runs
    ]
    per_day = tokens_per_day(tokens_by_day)
    data = {
        "runs": rows,
        "metrics": {e.summary.id: e.metrics for e in entries},
        "sources": {e.summary.id: e.sources for e in entries},
        "roles": [[r, catalog.ROLES[r]] for r in roles],
        "defaultMetric": default,
        "indexPoints": INDEX_POINTS,
        "tokensPerDay": per_day,
        "specs": {
            "overlay": _overlay_spec(),
            "tokens": charts.tokens_per_day(_spans_years(per_day)),
        },
        "quietAfter": model.QUIET_AFTER_S,
        "palette": PALETTE,
        "groups": index_groups(entries),
        "groupRule": GROUP_RULE,
        "dbName": db_name,
        "dbNames": db_names or [db_name],
    }
    totals = {
        "runs": len(runs),
        "running": sum(1 for r in runs if r.status == "running"),
        "tokens": sum(r.num_tokens for r in runs),
        "traj": sum(r.num_trajectories for r in runs),
    }
    return pages.render(
        "index.html",
        runs=runs,
        rows=rows,
        totals=totals,
        data=data,
        db_name=db_name,
        has_tokens=bool(per_day),
        has_metrics=bool(roles),
        has_projects=any(r["project"] or r["group"] for r in rows),
    )


# The overlay's tooltip: the run, the metric it logged for the role, the step and the value.
# An expression rather than fields: Vega-Lite's hover (`nearest`) draws a voronoi whose items
# wrap the row in `datum.datum`, and its copy of a field tooltip reads text fields from the
# wrapper (they showed as "undefined").
_ROW = "(datum.datum || datum)"
_TOOLTIP = (
    f"{{'run': {_ROW}.run, 'metric': {_ROW}.metric, 'step': format({_ROW}.step, ''),"
    f" 'value': format({_ROW}.value, '.5~g')}}"
)


def _overlay_spec() -> dict[str, Any]:
    """The overlay chart (rows: {step, value, run, metric}), its tooltip naming each run's own
    metric."""
    spec = copy.deepcopy(charts.overlay_chart())
    for layer in spec.get("layer", []):
        encoding = layer.get("encoding", {})
        if "tooltip" in encoding:
            encoding["tooltip"] = {"value": {"expr": _TOOLTIP}}
    return spec


def index_groups(entries: list[IndexEntry]) -> dict[str, dict[str, Any]]:
    """Group label -> {runs: ids, metrics: {role: [steps, mean, lo, hi]}} for every group of
    two runs or more (the logger's group or `--group-by`'s), each headline role over the runs
    that have it."""
    found = group_runs([e.group for e in entries])
    out: dict[str, dict[str, Any]] = {}
    for label, idx in found.items():
        members = [entries[i] for i in idx]
        metrics = {}
        for name in sorted({n for e in members for n in e.metrics}):
            agg = aggregate([tuple(e.metrics[name]) for e in members if name in e.metrics])
            if agg is None:
                continue
            ds = thin(agg["steps"], agg["mean"])
            at = {s: k for k, s in enumerate(agg["steps"])}
            keep = [at[s] for s in ds.steps]
            metrics[name] = [
                ds.steps,
                ds.values,
                [agg["lo"][k] for k in keep],
                [agg["hi"][k] for k in keep],
            ]
        out[label] = {"runs": [e.summary.id for e in members], "metrics": metrics}
    return out
