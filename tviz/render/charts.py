"""Chart specs: small functions returning Vega-Lite dicts made with altair.

Specs carry no data: each names its datasets, which the page fills (and refills on smoothing,
replay or zoom) through the Vega view API. That keeps altair's slow inline-data validation out
of the build (docs/measurements.md) and lets one spec serve every metric panel, so each
function is cached: a build makes a handful of specs, not one per metric. The run page's charts
are compiled to Vega here (`_vega`) and slimmed for the page's expression interpreter; the
index's stay Vega-Lite.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import altair as alt
import vl_convert

from tviz.render.bundle import vegalite_version

DATASET = "rows"
# A restrained palette: one accent, one warm, one neutral, readable on white.
BLUE, GREEN, RED, AMBER = "#3b6fd4", "#2f9e6b", "#d1495b", "#d89b2b"

_AXIS = {"labelColor": "#5b6475", "titleColor": "#5b6475", "gridColor": "#eef0f4"}


def _config(chart: alt.TopLevelMixin, height: int) -> dict[str, Any]:
    spec = (
        chart.properties(width="container", height=height)
        .configure_axis(**_AXIS, domainColor="#d5d9e0", tickColor="#d5d9e0", labelFontSize=11)
        .configure_view(stroke=None)
        .configure_legend(orient="top", labelFontSize=11, title=None, symbolSize=60)
        .to_dict(validate=False)
    )
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    spec.pop("$schema", None)  # a URL the page never fetches; vega-embed is told the mode
    return _stable_names(spec)


def _stable_names(spec: dict[str, Any]) -> dict[str, Any]:
    """altair names views from a per-process counter and a hash; pages must not depend on
    what else the process drew, so rename them in order of appearance."""
    text = json.dumps(spec)
    names: dict[str, str] = {}
    for found in re.findall(r'"(view_[0-9a-zA-Z_]+)"', text):
        names.setdefault(found, f"v{len(names)}")
    for old, new in names.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    return json.loads(text)


def _vega(spec: dict[str, Any]) -> dict[str, Any]:
    """A Vega-Lite spec compiled to Vega, without what costs time per data point in the page.

    The page runs Vega's expression interpreter (its CSP forbids compiling code), where each
    expression evaluated per point costs: ~36% of drawing a long run's charts went there. So
    the page gets Vega, compiled here once per kind of chart, with: no ARIA descriptions per
    point, no validity filters on data the page's script writes itself (numbers or null), and
    a gap in a line marked by a null value alone.
    """
    vega = vl_convert.vegalite_to_vega(spec, vl_version=vegalite_version())
    vega.pop("$schema", None)
    vega["background"] = "transparent"  # the panel's colour shows through, light or dark
    derived = {}
    kept = []
    for data in vega.get("data", []):
        transforms = data.get("transform", [])
        if data.get("source") and all(t.get("type") == "filter" for t in transforms):
            derived[data["name"]] = data["source"]  # a validity filter only: read the source
        else:
            kept.append(data)
    vega["data"] = kept

    def slim(marks: list[dict[str, Any]]) -> None:
        for mark in marks:
            source = mark.get("from", {}).get("data")
            if source in derived:
                mark["from"]["data"] = derived[source]
            update = mark.get("encode", {}).get("update", {})
            update.pop("description", None)
            update.pop("tooltip", None)
            if "defined" in update:
                update["defined"] = {"signal": "datum.value !== null"}
            mark.pop("interactive", None)
            slim(mark.get("marks", []))

    slim(vega.get("marks", []))
    return _stable_names(vega)


def _step_x(field: str = "step") -> alt.X:
    """The shared step axis: its domain is the page's signal `xdom`, the same for every step
    chart of the page (zoom is shared)."""
    return alt.X(
        f"{field}:Q",
        title="step",
        scale=alt.Scale(domain=alt.ExprRef("xdom"), nice=False, zero=False),
        axis=alt.Axis(format="~s", tickMinStep=1, labelFlush=True),
    )


def _finish(chart: alt.TopLevelMixin, height: int) -> dict[str, Any]:
    spec = (
        chart.properties(width="container", height=height)
        .configure(aria=False)
        .configure_axis(**_AXIS, domainColor="#d5d9e0", tickColor="#d5d9e0", labelFontSize=11)
        .configure_view(stroke=None)
        .to_dict(validate=False)
    )
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    return _vega(spec)


@functools.lru_cache(maxsize=32)
def line_chart(
    series: tuple[str, ...], colors: tuple[str, ...], height: int = 170
) -> dict[str, Any]:
    """Lines over steps, as a Vega spec: one raw and one smoothed line per series, and dots
    for series logged at a few steps only (an eval every 50 steps is not a continuous line).

    Series i reads the datasets `r<i>` (raw), `m<i>` (smoothed: empty when smoothing is off)
    and `d<i>` (dots: empty unless the series is sparse); rows are {step, value}, value null
    for a gap. The page computes everything else before Vega sees it: smoothing, the domains
    (signals `xdom` and `ydom`), the hover line and the tooltip (drawn by the page over the
    chart), the zoom (a range dragged across the chart sets `xdom` on every step chart).
    `rawOpacity` is full when smoothing is off, faint when on.
    """
    y = alt.Y(
        "value:Q", title=None, scale=alt.Scale(domain=alt.ExprRef("ydom"), nice=False, zero=False)
    )
    layers = []
    for i, color in enumerate(colors[: len(series)]):
        raw = alt.NamedData(name=f"r{i}", format=alt.DataFormat(parse=None))
        smooth = alt.NamedData(name=f"m{i}", format=alt.DataFormat(parse=None))
        dots = alt.NamedData(name=f"d{i}", format=alt.DataFormat(parse=None))
        layers.append(
            alt.Chart(raw)
            .mark_line(color=color, strokeWidth=1.4, clip=True, opacity=alt.ExprRef("rawOpacity"))
            .encode(x=_step_x(), y=y)
        )
        layers.append(
            alt.Chart(smooth)
            .mark_line(color=color, strokeWidth=1.8, clip=True)
            .encode(x=_step_x(), y=y)
        )
        layers.append(
            alt.Chart(dots)
            .mark_circle(color=color, size=28, opacity=1, clip=True)
            .encode(x=_step_x(), y=y)
        )
    params = [
        alt.param(name="xdom", value=[0, 1]),
        alt.param(name="ydom", value=[0, 1]),
        alt.param(name="rawOpacity", value=1.0),
        alt.param(name="yfmt", value=",.2~f"),
    ]
    spec = _finish(alt.layer(*layers).add_params(*params), height)
    for axis in spec["axes"]:  # the page picks the labels' format for the values' range
        if axis["scale"] == "y" and axis.get("labels") is not False:
            axis["format"] = {"signal": "yfmt"}
    return spec


@functools.lru_cache(maxsize=4)
def reward_heatmap(height: int = 170) -> dict[str, Any]:
    """The distribution of trajectory rewards over steps: share of samples per reward bin, as
    a Vega spec. Rows: {s0, s1 (step range), s1last, r0, r1 (reward range), label, n, frac};
    the x domain is the page's signal `xdom`, the tooltip the page's own.
    """
    data = alt.NamedData(name=DATASET, format=alt.DataFormat(parse=None))
    chart = (
        alt.Chart(data)
        .mark_rect(clip=True)
        .encode(
            x=_step_x("s0"),
            x2="s1:Q",
            # One equal row per reward value or bin, highest on top: binary rewards get two
            # readable rows instead of two slivers. Twenty bins of a continuous reward would
            # print twenty overlapping labels: every other one is dropped instead.
            y=alt.Y(
                "label:O",
                title="reward",
                sort=alt.EncodingSortField("r0", order="descending"),
                axis=alt.Axis(labelOverlap="parity", labelSeparation=2, ticks=False),
            ),
            color=alt.Color(
                "frac:Q",
                title="share",
                scale=alt.Scale(scheme="blues", domain=[0, 1]),
                legend=alt.Legend(format=".0%", orient="right", gradientLength=110),
            ),
        )
        .add_params(alt.param(name="xdom", value=[0, 1]))
    )
    return _finish(chart, height)


@functools.lru_cache(maxsize=4)
def tokens_per_day(with_year: bool = False, height: int = 170) -> dict[str, Any]:
    """One bar per UTC day of sampled tokens. Rows: {day: 'YYYY-MM-DD', tokens}.

    Days are a band (ordinal) axis: a day is a slot whatever the data's time span, labels
    never repeat, and crowded ones are thinned. Bars are at most 48 px wide, so one or two
    days do not turn into a wall of colour.
    """
    data = alt.NamedData(name=DATASET)
    label = "%b %-d, %Y" if with_year else "%b %-d"
    chart = (
        alt.Chart(data)
        .mark_bar(
            color=BLUE,
            cornerRadiusTopLeft=2,
            cornerRadiusTopRight=2,
            width=alt.ExprRef("min(bandwidth('x'), 48)"),
        )
        .encode(
            x=alt.X(
                "day:O",
                title=None,
                sort="ascending",
                scale=alt.Scale(paddingInner=0.2, paddingOuter=0.1),
                axis=alt.Axis(
                    labelAngle=0,
                    labelExpr=f"utcFormat(toDate(datum.value), '{label}')",
                    labelOverlap="greedy",
                    labelSeparation=8,
                    ticks=False,
                ),
            ),
            y=alt.Y(
                "tokens:Q",
                title="tokens",
                axis=alt.Axis(
                    format="~s", labelExpr="datum.value === 0 ? '0' : datum.label", tickCount=4
                ),
            ),
            tooltip=[
                alt.Tooltip("day:N", title="day (UTC)"),
                alt.Tooltip("tokens:Q", title="tokens", format=",.0f"),
            ],
        )
    )
    return _config(chart, height)


@functools.lru_cache(maxsize=4)
def overlay_chart(height: int = 260) -> dict[str, Any]:
    """One metric across runs; the page sets the runs' colors. Rows: {step, value, run}.

    Dragging pans; the wheel zooms only with Shift held, so that it scrolls the page."""
    data = alt.NamedData(name=DATASET)
    zoom = alt.selection_interval(
        bind="scales", encodings=["x"], name="zoom", zoom="wheel![event.shiftKey]"
    )
    hover = alt.selection_point(
        name="hover", fields=["step"], nearest=True, on="pointerover", clear="pointerout"
    )
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(format="~s")),
        color=alt.Color("run:N", scale=alt.Scale(scheme="tableau10"), legend=alt.Legend()),
    )
    lines = base.mark_line(strokeWidth=1.6, invalid="break-paths-filter-domains").encode(
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False))
    )
    points = (
        base.mark_circle(size=40)
        .encode(
            y="value:Q",
            opacity=alt.condition(hover, alt.value(1), alt.value(0), empty=False),
            tooltip=[
                alt.Tooltip("run:N"),
                alt.Tooltip("step:Q"),
                alt.Tooltip("value:Q", format=".5~g"),
            ],
        )
        .add_params(hover)
    )
    return _config(alt.layer(lines, points).add_params(zoom), height)
