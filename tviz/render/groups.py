"""Groups of runs (seeds of one experiment) and their mean with a band, as papers draw them.

A run's group is the one its logger was given (`TvizLogger(group=...)`, `tviz.init(group=...)`,
stored as `runs.run_group`), or, with `--group-by KEY`, the value of that config key (dotted
for nested keys): runs with the same value form a group.

The rule a group's line follows (GROUP_RULE, shown wherever a group is drawn): runs logged at
different steps are aligned on a common grid, the union of their logged steps within the range
every run of the group covers; each run's value at a grid step is interpolated linearly
between its two nearest logged points (gaps skipped). The line is the mean of the runs there,
the band goes from the lowest to the highest run (min-max).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from tviz.render.model import flatten

GROUP_RULE = (
    "Group lines are the mean of the group's runs, the band spans the lowest to the highest run"
    " (min-max). Runs logged at different steps are aligned on the union of their steps within"
    " the range all of them cover, each run's value there interpolated linearly between its two"
    " nearest logged points."
)

Series = tuple[Sequence[int], Sequence[float | None]]


def config_value(config: dict[str, Any], key: str) -> Any:
    """The value of `key` in `config`: a top-level key as written (it may hold dots), else the
    dotted path into nested dicts. Missing: None."""
    if key in config:
        return config[key]
    leaves = dict(flatten(config))
    if key in leaves:
        return leaves[key]
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def group_of(config: dict[str, Any], logged: str | None, group_by: str | None) -> str | None:
    """A run's group label: `KEY=value` with `group_by`, else the logged group."""
    if group_by is None:
        return logged or None
    value = config_value(config, group_by)
    if value is None:
        return None
    shown = value if isinstance(value, str) else repr(value)
    return f"{group_by}={shown}"


def _clean(series: Series) -> tuple[list[float], list[float]]:
    steps, values = series
    pairs = [
        (float(s), float(v))
        for s, v in zip(steps, values, strict=False)
        if v is not None and isinstance(v, (int, float)) and math.isfinite(v)
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _at(xs: list[float], ys: list[float], x: float) -> float:
    i = bisect.bisect_left(xs, x)
    if i < len(xs) and xs[i] == x:
        return ys[i]
    lo, hi = i - 1, i
    t = (x - xs[lo]) / (xs[hi] - xs[lo])
    return ys[lo] + t * (ys[hi] - ys[lo])


def aggregate(members: Sequence[Series]) -> dict[str, list[Any]] | None:
    """The group's line and band over the common grid (GROUP_RULE): {steps, mean, lo, hi,
    std}; None if the runs share no range of steps."""
    clean = [_clean(m) for m in members]
    clean = [c for c in clean if c[0]]
    if not clean:
        return None
    first = max(c[0][0] for c in clean)
    last = min(c[0][-1] for c in clean)
    if first > last:
        return None
    grid = sorted({s for c in clean for s in c[0] if first <= s <= last})
    out: dict[str, list[Any]] = {"steps": [], "mean": [], "lo": [], "hi": [], "std": []}
    for x in grid:
        vals = [_at(xs, ys, x) for xs, ys in clean]
        mean = math.fsum(vals) / len(vals)
        var = math.fsum((v - mean) ** 2 for v in vals) / len(vals)
        out["steps"].append(int(x) if x.is_integer() else x)
        out["mean"].append(mean)
        out["lo"].append(min(vals))
        out["hi"].append(max(vals))
        out["std"].append(math.sqrt(var))
    return out


def group_runs(labels: Sequence[str | None]) -> dict[str, list[int]]:
    """Group label -> the indices of its runs, for groups of two runs or more, in order of
    first appearance."""
    found: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        if label is not None:
            found.setdefault(label, []).append(i)
    return {k: v for k, v in found.items() if len(v) >= 2}
