"""Chart specs: small functions returning Vega-Lite dicts made with altair.

Specs carry no data: each names the dataset "rows", which the page fills (and refills on
smoothing, replay or zoom) through the Vega view API. That keeps altair's slow inline-data
validation out of the build (docs/measurements.md) and lets one spec serve every metric panel, so
each function is cached: a build makes a handful of specs, not one per metric.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import altair as alt

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


@functools.lru_cache(maxsize=32)
def line_chart(
    series: tuple[str, ...], colors: tuple[str, ...], height: int = 180
) -> dict[str, Any]:
    """Lines over steps: a faint raw line and a smoothed one, hover tooltips, x zoom.

    Rows: {step, value, smooth, series}. `rawOpacity` is a parameter the page sets: full
    when smoothing is off, faint when on.
    """
    data = alt.NamedData(name=DATASET)
    color = alt.Color(
        "series:N",
        scale=alt.Scale(domain=list(series), range=list(colors)),
        legend=alt.Legend() if len(series) > 1 else None,
        sort=list(series),
    )
    x = alt.X("step:Q", title="step", axis=alt.Axis(format="~s", tickMinStep=1))
    zoom = alt.selection_interval(bind="scales", encodings=["x"], name="zoom")
    raw_opacity = alt.param(name="rawOpacity", value=1.0)
    hover = alt.selection_point(
        name="hover", fields=["step"], nearest=True, on="pointerover", clear="pointerout"
    )
    base = alt.Chart(data).encode(x=x, color=color)
    raw = base.mark_line(
        strokeWidth=1.4, opacity=alt.ExprRef("rawOpacity"), invalid="break-paths-filter-domains"
    ).encode(y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)))
    # Visible only when smoothing is on (rawOpacity < 1).
    smooth = base.mark_line(
        strokeWidth=1.8,
        invalid="break-paths-filter-domains",
        opacity=alt.ExprRef("rawOpacity < 1 ? 1 : 0"),
    ).encode(y=alt.Y("smooth:Q"))
    points = (
        base.mark_circle(size=44)
        .encode(
            y="value:Q",
            opacity=alt.condition(hover, alt.value(1), alt.value(0), empty=False),
            tooltip=[
                alt.Tooltip("step:Q", title="step"),
                alt.Tooltip("series:N", title="series"),
                alt.Tooltip("value:Q", title="value", format=".5~g"),
                alt.Tooltip("smooth:Q", title="smoothed", format=".5~g"),
            ],
        )
        .add_params(hover)
    )
    rule = (
        alt.Chart(data)
        .mark_rule(color="#c3c9d4", strokeWidth=1)
        .encode(x="step:Q")
        .transform_filter({"param": "hover", "empty": False})
    )
    chart = alt.layer(raw, smooth, rule, points).add_params(zoom, raw_opacity)
    return _config(chart, height)


@functools.lru_cache(maxsize=4)
def reward_heatmap(height: int = 180) -> dict[str, Any]:
    """The distribution of trajectory rewards over steps: share of samples per reward bin.

    Rows: {s0, s1 (step range), r0, r1 (reward range), n, frac}.
    """
    data = alt.NamedData(name=DATASET)
    zoom = alt.selection_interval(bind="scales", encodings=["x"], name="zoom")
    chart = (
        alt.Chart(data)
        .mark_rect()
        .encode(
            # Whole steps only: a six-step run must not get ticks at 0.5, 1.5, ...
            x=alt.X("s0:Q", title="step", axis=alt.Axis(format="~s", tickMinStep=1)),
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
                legend=alt.Legend(format=".0%", orient="right", gradientLength=120),
            ),
            tooltip=[
                alt.Tooltip("s0:Q", title="from step"),
                alt.Tooltip("s1last:Q", title="to step"),
                alt.Tooltip("label:N", title="reward"),
                alt.Tooltip("n:Q", title="samples"),
                alt.Tooltip("frac:Q", title="share", format=".1%"),
            ],
        )
        .add_params(zoom)
    )
    return _config(chart, height)


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
    """One metric across runs; the page sets the runs' colors. Rows: {step, value, run}."""
    data = alt.NamedData(name=DATASET)
    zoom = alt.selection_interval(bind="scales", encodings=["x"], name="zoom")
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
