"""The metric charts' part of a run page's size budget.

A run logging thousands of metrics over thousands of steps makes a page of tens of megabytes
from its metric charts alone. Past the budget the page gives up detail in this order:

1. Every metric line is drawn with fewer points (`LEVELS`: 1,000, 500, 250, then 100), still
   keeping each step range's lowest and highest value, and each chart's note says how many of
   how many points it draws.
2. Then panels are listed by name and last value instead of drawn, from the end of the page's
   order (its groups, and names within a group), so the groups read first keep their charts.

The overview (first screen) is never thinned, and the metrics the catalog gives a role
(reward, KL, entropy, length, loss, learning rate...) are always drawn: they are what a reader
opens the page for.

The split with the rest of the page: charts come first, up to `CHART_SHARE` of the room the
page has for charts, rollouts and long texts together (or whatever the full rollouts and texts
leave, if that is more; and `CHART_FLOOR` bytes if the room has them). The charts are the
run's figures, what a reader compares runs by, while the rollouts are a sample already
(`rollouts.plan_sample` keeps the best, the worst and the most telling groups of each step);
but charts may not crowd the samples out, so past their share they thin. Texts and rollouts
then share what is left as they did before.

Sizes here are estimates (the JSON of each panel and a measured panel of HTML); the site
checks the page it renders and plans again with less room if the estimate fell short.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import escape

from tviz import catalog
from tviz.render.embed import dumps
from tviz.render.model import MAX_POINTS

# Points per metric line, from the page's usual to the fewest it draws.
LEVELS = (MAX_POINTS, 500, 250, 100)
# The share of the room the metric charts may always take (see the module's docstring), and
# the bytes they may always take: ten panels of 1,000 points. Thinning less would not matter
# beside a budget of megabytes, and a page's figures are worth their few hundred kilobytes.
CHART_SHARE = 0.5
CHART_FLOOR = 256_000
# A chart's note on its points, in its descriptor and on the page (an upper bound).
_NOTE_BYTES = 2 * 160
# Points of a line whose JSON is measured to estimate the whole line's.
_SAMPLE = 64
# A group's list of panels not drawn: its tags (an upper bound).
_LIST_BYTES = 240


@dataclass(frozen=True)
class ChartPlan:
    """How the page draws its metric panels: `points` per line, `listed` panels (ids) only
    listed by name and last value."""

    points: int = MAX_POINTS
    listed: frozenset[str] = frozenset()
    panels: int = 0  # metric panels the page has (drawn or listed)
    thinned: int = 0  # panels drawn with fewer points than their series has
    first_listed: str = ""  # the name of the first listed panel in page order

    def notice(self) -> str:
        """A plain sentence on what the budget did to the metric charts ('' when nothing)."""
        parts = []
        if self.thinned:
            parts.append(
                f"{self.thinned:,} metric charts draw at most {self.points:,} points per line "
                f"instead of {MAX_POINTS:,} (each step range keeps its lowest and highest value)"
            )
        if self.listed:
            parts.append(
                f"{len(self.listed):,} of {self.panels:,} metric charts are listed by name and "
                f"last value, not drawn (from {self.first_listed} on, in the page's order)"
            )
        if not parts:
            return ""
        return (
            f"To keep this page within its size budget, {'; '.join(parts)}. The overview charts "
            "and the metrics the catalog knows (reward, KL, entropy, length, loss...) are always "
            "drawn; the database holds every value."
        )


def pinned(metric_names: Iterable[str]) -> set[str]:
    """The run's metrics that fill a catalog role: always drawn."""
    ordered = sorted(metric_names)
    found = (catalog.find(role, ordered) for role in catalog.ROLES)
    return {f[0] for f in found if f is not None}


@dataclass
class _Panel:
    id: str
    name: str
    pinned: bool
    logged: int  # points of its series
    drawn: int  # points it draws at the page's usual level
    series: int  # bytes of its series' JSON at that level
    rest: int  # bytes of the rest of it (descriptor and HTML)
    listed: int  # bytes of its line in a list

    def cost(self, points: int) -> int:
        """Bytes it takes drawn with at most `points` points per line (an estimate)."""
        if points >= MAX_POINTS or self.drawn <= points:
            return self.series + self.rest
        note = 0 if self.logged > MAX_POINTS else _NOTE_BYTES
        return math.ceil(self.series * points / self.drawn) + self.rest + note


@dataclass
class ChartCosts:
    """Estimated bytes of a page's metric panels, drawn at each level or listed."""

    panels: list[_Panel] = field(default_factory=list)
    groups: int = 0

    @classmethod
    def of(
        cls,
        groups: list[dict[str, Any]],
        lengths: dict[str, int],
        render: Callable[[dict[str, Any]], str],
    ) -> ChartCosts:
        """`groups`: the page's arranged metric groups at the usual level; `lengths`: points
        logged per metric; `render(panel)`: one panel's HTML (measured once, for its frame)."""
        charts = [c for g in groups for c in g["charts"]]
        keep = pinned(lengths)
        frame = 0
        if charts:
            sample = charts[0]
            frame = len(render(sample).encode("utf-8")) - _html_text(sample)
        out = []
        for c in charts:
            (steps, _), *_ = c["series"].values()
            series = _series_bytes(c["series"])
            desc = len(dumps({**c, "series": {}}).encode("utf-8"))
            listed = 2 * _esc(c["name"]) + _esc(c.get("latest", "")) + 60
            out.append(
                _Panel(
                    c["id"],
                    c["name"],
                    c["name"] in keep,
                    lengths.get(c["name"], len(steps)),
                    len(steps),
                    series,
                    desc + frame + _html_text(c),
                    listed,
                )
            )
        return cls(out, sum(1 for g in groups if g["charts"]))

    @property
    def full(self) -> int:
        return sum(p.cost(MAX_POINTS) for p in self.panels)

    def plan(self, room: int) -> ChartPlan:
        """The finest level whose panels fit in `room` bytes; past the coarsest, the panels
        listed instead of drawn from the end of the page's order (the pinned ones drawn)."""
        n = len(self.panels)
        for points in LEVELS:
            if sum(p.cost(points) for p in self.panels) <= room:
                return self._plan(points, frozenset())
        points = LEVELS[-1]
        used = self.groups * _LIST_BYTES
        used += sum(p.cost(points) if p.pinned else p.listed for p in self.panels)
        listed: list[str] = []
        for p in self.panels:
            if p.pinned:
                continue
            more = p.cost(points) - p.listed
            if listed or used + more > room:
                listed.append(p.id)
            else:
                used += more
        return self._plan(points, frozenset(listed), n)

    def _plan(self, points: int, listed: frozenset[str], n: int | None = None) -> ChartPlan:
        drawn = [p for p in self.panels if p.id not in listed]
        first = next((p.name for p in self.panels if p.id in listed), "")
        return ChartPlan(
            points,
            listed,
            len(self.panels) if n is None else n,
            sum(1 for p in drawn if p.logged > points),
            first,
        )


def apply(plan: ChartPlan, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`groups` (arranged at `plan.points`) with the listed panels moved from `charts` to
    `listed` ({id, name, value})."""
    if not plan.listed:
        return groups
    out = []
    for group in groups:
        charts, listed = [], list(group.get("listed", []))
        for c in group["charts"]:
            if c["id"] not in plan.listed:
                charts.append(c)
                continue
            listed.append({"id": c["id"], "name": c["name"], "value": c.get("latest") or "–"})
        out.append({**group, "charts": charts, "listed": listed})
    return out


def fit(
    costs: ChartCosts,
    room: int,
    others: int,
    thin: Callable[[ChartPlan], None],
    measure: Callable[[], int],
) -> int:
    """Thin the page's charts (`thin(plan)`) if they pass their share; the room left for the
    rest (`room` when nothing changed).

    `room`: what the page with its full charts leaves for rollouts and long texts; `others`:
    what those would take whole; `measure()`: that room again, for the page as it now is.
    """
    full = costs.full
    total = room + full  # charts, rollouts and texts together
    share = max(min(CHART_FLOOR, total), int(total * CHART_SHARE), total - others)
    if full <= share:
        return room
    target = share
    left = room
    done: set[ChartPlan] = set()
    for _ in range(4):  # the estimate is checked against the page, and corrected
        plan = costs.plan(target)
        if plan in done:  # as thin as it gets
            break
        done.add(plan)
        thin(plan)
        left = measure()
        short = (total - target) - left  # what the charts took beyond their estimate
        if short <= 0:
            break
        target -= short
    return left


def _series_bytes(series: dict[str, list[list[Any]]]) -> int:
    """Bytes of a panel's series in JSON, from at most `_SAMPLE` points of each line."""
    n = max((len(steps) for steps, _ in series.values()), default=0)
    every = max(1, n // _SAMPLE)
    sample = {key: [steps[::every], values[::every]] for key, (steps, values) in series.items()}
    empty = len(dumps({key: [[], []] for key in series}))
    points = sum(len(steps) for steps, _ in sample.values())
    return empty + math.ceil((len(dumps(sample)) - empty) * n * len(series) / max(1, points))


def _esc(text: Any) -> int:
    return len(str(escape(text)).encode("utf-8"))


def _html_text(panel: dict[str, Any]) -> int:
    """Bytes of a panel's own text in its HTML: its name and title twice each, last value,
    unit and note."""
    keys = ("latest", "note")
    return 2 * (_esc(panel["name"]) + _esc(panel["title"])) + sum(
        _esc(panel.get(k, "")) for k in keys
    )
