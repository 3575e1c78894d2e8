"""A run's results as data: status, steps, key config and its headline metrics' final, best and
mean-of-the-last-10% values.

The same dict is `tviz export`'s `summary.json` (one per run), the run page's
`<script type="application/json" id="tviz-summary">` block and the comparison page's table, so
scripts and agents read results without parsing HTML. Nothing in it depends on the time of the
build: the same database gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tviz import catalog
from tviz.render import model
from tviz.store import Rollout, RunData

# The headline metrics, by catalog role, in the order summaries and figures show them.
HEADLINE_ROLES = ("reward", "kl", "entropy", "output_length")
# "mean of the last 10%": the mean over the last tenth of a metric's logged points (at least one).
LAST_SHARE = 0.1

Steps = tuple[list[int], list[float | None]]


def rollout_rewards(rollouts: Sequence[Rollout]) -> Steps | None:
    """Mean trajectory reward per step, from the run's rollouts (None without any)."""
    sums: dict[int, list[float]] = {}
    for rollout in rollouts:
        for t in rollout.trajectories:
            if isinstance(t.reward, (int, float)) and math.isfinite(t.reward):
                acc = sums.setdefault(rollout.step, [0.0, 0])
                acc[0] += t.reward
                acc[1] += 1
    if not sums:
        return None
    steps = sorted(sums)
    return steps, [sums[s][0] / sums[s][1] for s in steps]


def headline_series(
    data: RunData, role: str, rewards: Steps | None = None
) -> dict[str, Any] | None:
    """The run's series for a headline role: the logged metric the catalog names (its values
    transformed into the role's), else for "reward" the rollouts' mean reward per step."""
    found = catalog.find(role, data.metrics)
    if found is not None:
        name, entry = found
        series = data.metrics[name]
        values = [_finite(v) for v in entry.apply(series.values)]
        return {
            "metric": entry.formula(name),
            "label": entry.label,
            "unit": entry.unit,
            "better": entry.better,
            "steps": list(series.steps),
            "values": values,
        }
    if role == "reward" and rewards is not None:
        return {
            "metric": "mean trajectory reward (rollouts)",
            "label": "Reward",
            "unit": "",
            "better": catalog.HIGHER,
            "steps": list(rewards[0]),
            "values": [_finite(v) for v in rewards[1]],
        }
    return None


def figures(values: Sequence[float | None], better: str) -> dict[str, float | None]:
    """final (last finite value), best (by `better`; None when the catalog gives no direction)
    and mean of the last 10% of the points."""
    finite = [v for v in values if v is not None]
    if not finite:
        return {"final": None, "best": None, "last10_mean": None}
    tail = values[-max(1, math.ceil(len(values) * LAST_SHARE)) :]
    tail_finite = [v for v in tail if v is not None]
    best = None
    if better == catalog.HIGHER:
        best = max(finite)
    elif better == catalog.LOWER:
        best = min(finite)
    return {
        "final": finite[-1],
        "best": best,
        "last10_mean": sum(tail_finite) / len(tail_finite) if tail_finite else None,
    }


def run_summary(data: RunData, rewards: Steps | None = None) -> dict[str, Any]:
    """One run's summary (see the module's doc). `rewards`: the rollouts' mean reward per step,
    used for "reward" when the run logged no reward metric."""
    s = data.summary
    headline: dict[str, Any] = {}
    for role in HEADLINE_ROLES:
        series = headline_series(data, role, rewards)
        if series is None:
            continue
        headline[role] = {
            "metric": series["metric"],
            "label": series["label"],
            "unit": series["unit"],
            "better": series["better"],
            "points": len(series["steps"]),
            **figures(series["values"], series["better"]),
        }
    return {
        "id": s.id,
        "name": s.name,
        "project": s.project,
        "group": s.group,
        "status": s.status,
        "steps": s.num_steps,
        "last_step": s.last_step,
        "started": s.started_at,
        "duration_s": s.duration_s,
        "model": s.model,
        "trajectories": s.num_trajectories,
        "key_config": dict(model.key_config(data.config)),
        "headline": headline,
    }


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
