"""The index page: every run in a sortable table, totals, tokens per day, a metric overlay."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tviz.render import charts, model
from tviz.render.downsample import minmax
from tviz.store import RunData, RunSummary

# Points per run and metric in the overlay chart: the index holds every run's metrics.
INDEX_POINTS = 300


@dataclass(frozen=True)
class IndexEntry:
    summary: RunSummary
    reward_metric: str | None
    metrics: dict[str, list[list[Any]]]  # name -> [steps, values], downsampled


def index_entry(data: RunData) -> IndexEntry:
    reward = data.reward_series()
    metrics = {}
    for name, series in sorted(data.metrics.items()):
        ds = minmax(series.steps, series.values, INDEX_POINTS)
        metrics[name] = [ds.steps, ds.values]
    return IndexEntry(data.summary, reward.name if reward else None, metrics)


def tokens_per_day(runs: list[RunSummary]) -> list[dict[str, Any]]:
    """Sampled tokens per UTC day. The store has no per-step times, so each run's tokens are
    spread evenly over the time between its start and its last data."""
    days: dict[str, float] = {}
    for run in runs:
        if not run.num_tokens or run.started_at is None:
            continue
        start = run.started_at
        end = max(start, run.last_data_at or start)
        if end - start < 1:
            key = dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%d")
            days[key] = days.get(key, 0) + run.num_tokens
            continue
        t = start
        while t < end:
            day = dt.datetime.fromtimestamp(t, dt.UTC)
            next_day = (
                day.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
            ).timestamp()
            stop = min(end, next_day)
            key = day.strftime("%Y-%m-%d")
            days[key] = days.get(key, 0) + run.num_tokens * (stop - t) / (end - start)
            t = stop
    return [{"day": d, "tokens": round(n)} for d, n in sorted(days.items())]


def render_index(pages: Any, entries: list[IndexEntry], db_name: str) -> str:
    runs = [e.summary for e in entries]
    metric_names = sorted({n for e in entries for n in e.metrics})
    default = next((e.reward_metric for e in entries if e.reward_metric), None)
    if default is None and metric_names:
        default = metric_names[0]
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "href": f"runs/{r.slug}.html",
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
        }
        for r in runs
    ]
    per_day = tokens_per_day(runs)
    data = {
        "runs": rows,
        "metrics": {e.summary.id: e.metrics for e in entries},
        "metricNames": metric_names,
        "defaultMetric": default,
        "tokensPerDay": per_day,
        "specs": {"overlay": charts.overlay_chart(), "tokens": charts.tokens_per_day()},
        "quietAfter": model.QUIET_AFTER_S,
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
    )
