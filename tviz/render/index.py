"""The index page: every run in a sortable table, totals, tokens per day, a metric overlay."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from tviz.render import charts, model
from tviz.render.comparison import PALETTE
from tviz.render.downsample import minmax
from tviz.render.groups import GROUP_RULE, aggregate, group_of, group_runs
from tviz.store import RunData, RunSummary

# Points per run and metric in the overlay chart: the index holds every run's metrics.
INDEX_POINTS = 300
# Calendar days the tokens chart fills with zeros between active days (a year of bars at most).
MAX_FILLED_DAYS = 366
# A day the tokens chart can place ('YYYY-MM-DD', years 1000 to 9999).
_ISO_DAY = re.compile(r"[1-9]\d{3}-\d{2}-\d{2}")


@dataclass(frozen=True)
class IndexEntry:
    summary: RunSummary
    reward_metric: str | None
    metrics: dict[str, list[list[Any]]]  # name -> [steps, values], downsampled
    group: str | None = None  # the logger's group, or `KEY=value` under `--group-by KEY`


def index_entry(data: RunData, group_by: str | None = None) -> IndexEntry:
    reward = data.reward_series()
    metrics = {}
    for name, series in sorted(data.metrics.items()):
        ds = minmax(series.steps, series.values, INDEX_POINTS)
        metrics[name] = [ds.steps, ds.values]
    group = group_of(data.config, data.summary.group, group_by)
    return IndexEntry(data.summary, reward.name if reward else None, metrics, group)


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
    metric_names = sorted({n for e in entries for n in e.metrics})
    default = next((e.reward_metric for e in entries if e.reward_metric), None)
    if default is None and metric_names:
        default = metric_names[0]
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
        "metricNames": metric_names,
        "defaultMetric": default,
        "tokensPerDay": per_day,
        "specs": {
            "overlay": charts.overlay_chart(),
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
        has_metrics=bool(metric_names),
        has_projects=any(r["project"] or r["group"] for r in rows),
    )


def index_groups(entries: list[IndexEntry]) -> dict[str, dict[str, Any]]:
    """Group label -> {runs: ids, metrics: {name: [steps, mean, lo, hi]}} for every group of
    two runs or more (the logger's group or `--group-by`'s), each metric over the runs that
    logged it."""
    found = group_runs([e.group for e in entries])
    out: dict[str, dict[str, Any]] = {}
    for label, idx in found.items():
        members = [entries[i] for i in idx]
        metrics = {}
        for name in sorted({n for e in members for n in e.metrics}):
            agg = aggregate([tuple(e.metrics[name]) for e in members if name in e.metrics])
            if agg is None:
                continue
            ds = minmax(agg["steps"], agg["mean"], INDEX_POINTS)
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
