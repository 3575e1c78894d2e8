"""What a run page's metric panels show beside their line: the last value, the unit, and the
metrics that never change, shown as values instead of flat lines.

Applied by `pages.RunPage` to the chart descriptors `model` makes; plain dicts in and out.
"""

from __future__ import annotations

import math
from typing import Any

# Units by the end of a metric's name, for the y axis' title (the catalog's unit comes first).
_UNIT_HINTS = (
    ("_usd", "USD"),
    ("tokens", "tokens"),
    ("frac", "fraction"),
    ("_frac", "fraction"),
    ("_km", "km"),
)


def fmt_value(v: float | None) -> str:
    """A number written for its range, as the page's `fmtValue`: 4e-5, 1.125, 16.152, 12,400."""
    if v is None or not math.isfinite(v):
        return "–"
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e7):
        mantissa, exponent = f"{v:.3e}".split("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    if float(v).is_integer():
        return f"{int(v):,}"
    if a >= 1e4:
        return f"{round(float(f'{v:.7g}'), 2):,}".removesuffix(".0")
    return repr(float(f"{v:.5g}"))


def _finite(values: list[Any]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def constant(values: list[Any]) -> float | None:
    """The value of a series that has the same finite value at every step, else None."""
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None
    first = values[0]
    return first if all(v == first for v in values) else None


def unit_of(name: str) -> str:
    short = name.rsplit("/", 1)[-1].lower()
    if name.startswith("time/") or short.endswith(("_s", "_seconds", "_time")):
        return "seconds"
    for hint, unit in _UNIT_HINTS:
        if hint in short:
            return unit
    return ""


def _where(steps: list[int]) -> str:
    if len(steps) == 1:
        return f"at step {steps[0]:,}"
    return f"at all {len(steps):,} steps logged ({steps[0]:,}–{steps[-1]:,})"


def arrange(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each group with its constant metrics moved from `charts` to `constants` ({name, value,
    where}), and each remaining panel given its `latest` value and, if known, its `unit`."""
    out = []
    for group in groups:
        charts, constants = [], []
        for panel in group["charts"]:
            (steps, values), *_ = panel["series"].values()
            value = constant(values)
            if value is not None and panel.get("kind", "line") == "line":
                constants.append(
                    {"name": panel["name"], "value": fmt_value(value), "where": _where(steps)}
                )
                continue
            describe(panel, metric=True)
            charts.append(panel)
        # `listed`: panels the size budget lists instead of drawing (render/chart_budget.py).
        out.append({**group, "charts": charts, "constants": constants, "listed": []})
    return out


# The y axis' title of the overview's own charts, by chart id.
_OVERVIEW_UNITS = {
    "reward": "reward",
    "signal": "share of groups",
    "kl": "KL",
    "entropy": "entropy",
}


def describe(panel: dict[str, Any], metric: bool = False) -> dict[str, Any]:
    """A line panel with its last value (one series) and a unit: the chart's own, else one
    guessed from a metric's name. `metric`: a panel of one logged metric."""
    if panel.get("kind") != "line":
        return panel
    if metric:
        panel["metric"] = True
    elif panel.get("id") in _OVERVIEW_UNITS:
        panel.setdefault("unit", _OVERVIEW_UNITS[panel["id"]])
    elif panel.get("id") == "length":
        tokens = "token" in str(panel.get("title"))
        panel.setdefault("unit", "tokens" if tokens else "characters")
        if not tokens:
            note = "This run logged no output tokens: lengths are characters of the output text."
            panel["note"] = " ".join(n for n in (note, panel.get("note", "")) if n)
    series = list(panel["series"].values())
    if len(series) == 1:
        finite = _finite(series[0][1])
        panel.setdefault("latest", fmt_value(finite[-1]) if finite else "")
    panel.setdefault("unit", unit_of(str(panel.get("name", ""))))
    return panel
