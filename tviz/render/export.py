"""`tviz export`: a Markdown and JSON summary of runs and print-ready figures, offline.

- `summary.md`: for a PR description or `$GITHUB_STEP_SUMMARY`: the runs, their status and
  steps, the config keys that differ (or the key config of one run), the headline metrics'
  final and best values, and the figures, linked relatively or under `image_base_url`.
- `summary.json`: the same as data (`render/summary.py`, one dict per run).
- one figure per headline chart (reward, KL, entropy, output length) and, for groups, one
  reward figure per group with its runs unfolded: the comparison page's Vega spec
  (`comparison.compare_chart`) filled with the same data, smoothed by the same rule
  (`render/smoothing.py`), in a print style with the DejaVu Sans font shipped in
  `tviz/fonts` (registered with vl-convert, so figures are the same on every machine).

Deterministic: the same database gives the same bytes (SVG, PNG, Markdown, JSON). PDF: see
`_stable_pdf`.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import vl_convert

from tviz.render import comparison, groups, summary
from tviz.render.compare import config_diff
from tviz.render.comparison import Comparison
from tviz.render.site import write_atomic
from tviz.render.smoothing import default_smoothing, ema

FONT = "DejaVu Sans"
FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
WIDTH, HEIGHT = 560, 240
INK, GRID = "#333333", "#e6e6e6"


@functools.cache
def _register_font() -> None:
    vl_convert.register_font_directory(str(FONT_DIR))


def figure_spec(
    c: Comparison,
    chart: dict[str, Any],
    shown: set[int],
    title: str,
    recolor: dict[int, str] | None = None,
) -> dict:
    """The comparison chart's Vega spec with `chart`'s slots in `shown` filled in, print style;
    `recolor`: other colours for some slots (a group's seeds told apart in its own figure)."""
    slot_list = comparison.slots(c)
    for i, color in (recolor or {}).items():
        slot_list[i]["color"] = color
    colors = tuple(s["color"] for s in slot_list)
    spec = json.loads(json.dumps(comparison.compare_chart(colors, HEIGHT)))
    steps = max((m.data.summary.num_steps for m in c.runs), default=0)
    weight = default_smoothing(steps)
    sets: dict[str, list[dict[str, Any]]] = {}
    xs: list[float] = []
    ys: list[float] = []
    legend: list[tuple[str, str]] = []
    for i, slot in enumerate(slot_list):
        series = chart["series"].get(str(i))
        band = chart["bands"].get(str(i))
        if series is None or i not in shown:
            continue
        label = f"{slot['label']} (mean)" if slot["kind"] == "group" else slot["label"]
        legend.append((label, slot["color"]))
        s, v = series
        sm = ema(v, weight) if weight > 0 else []
        sets[f"r{i}"] = [{"step": a, "value": b} for a, b in zip(s, v, strict=True)]
        sets[f"m{i}"] = [{"step": a, "value": b} for a, b in zip(s, sm, strict=False)]
        if band:
            sets[f"b{i}"] = [
                {"step": a, "lo": lo, "hi": hi} for a, lo, hi in zip(*band, strict=True)
            ]
            ys += [y for y in band[1] + band[2] if y is not None]
        xs += s
        ys += [y for y in v if y is not None]
    for d in spec["data"]:
        d["values"] = sets.get(d["name"], [])
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)
    y0, y1 = (min(ys), max(ys)) if ys else (0, 1)
    pad = (y1 - y0) * 0.05 or 0.5
    values = {
        "xdom": [x0, x1 if x1 > x0 else x0 + 1],
        "ydom": [y0 - pad, y1 + pad],
        "rawOpacity": 0.25 if weight > 0 else 1.0,
        "yfmt": ",.3~g",
        "xtitle": "step",
    }
    spec["signals"] = [s for s in spec["signals"] if s["name"] != "width"]
    for s in spec["signals"]:
        if s["name"] in values:
            s["value"] = values[s["name"]]
    spec["width"] = WIDTH
    spec["autosize"] = {"type": "pad"}
    spec["background"] = "white"
    spec["padding"] = 10
    note = f"smoothed (EMA {weight:g}), raw faint" if weight > 0 else ""
    spec["title"] = {"text": title, "subtitle": note, "anchor": "start", "fontSize": 14}
    spec["scales"].append(
        {
            "name": "legend",
            "type": "ordinal",
            "domain": [label for label, _ in legend],
            "range": [color for _, color in legend],
        }
    )
    spec["legends"] = [
        {"fill": "legend", "orient": "bottom", "direction": "horizontal", "symbolType": "circle"}
    ]
    text = {"font": FONT, "fill": INK}
    spec["config"] = {
        "axis": {
            "labelFont": FONT,
            "titleFont": FONT,
            "labelColor": INK,
            "titleColor": INK,
            "labelFontSize": 11,
            "titleFontSize": 12,
            "titleFontWeight": "normal",
            "gridColor": GRID,
            "domainColor": INK,
            "tickColor": INK,
        },
        "legend": {"labelFont": FONT, "labelFontSize": 11, "labelColor": INK, "labelLimit": 260},
        "title": {
            "font": FONT,
            "subtitleFont": FONT,
            "color": INK,
            "subtitleColor": "#666666",
            "fontWeight": "normal",
        },
        "text": text,
        "style": {"cell": {"stroke": None}},
    }
    return spec


def figures(c: Comparison) -> list[tuple[str, str, dict[str, Any]]]:
    """(file stem, title, Vega spec) of every figure: one per headline chart, then one reward
    figure per group with its runs unfolded."""
    charts = {ch["id"]: ch for ch in comparison.chart_list(c)}
    n = len(c.runs)
    default = {i for i, m in enumerate(c.runs) if m.group is None} | set(
        range(n, n + len(c.groups))
    )
    out = []
    for role in summary.HEADLINE_ROLES:
        chart = charts.get(f"role-{role}")
        if chart is not None:
            spec = figure_spec(c, chart, default, chart["title"])
            out.append((role.replace("_", "-"), chart["title"], spec))
    reward = charts.get("role-reward")
    for j, (label, idx) in enumerate(c.groups.items()):
        if reward is None:
            break
        title = f"Reward, group {label}"
        recolor = {i: comparison.PALETTE[k % len(comparison.PALETTE)] for k, i in enumerate(idx)}
        recolor[n + j] = INK  # the mean in black over its seeds in colour
        spec = figure_spec(c, reward, set(idx) | {n + j}, title, recolor)
        out.append((f"reward-group-{j + 1}-{_slug(label)}", title, spec))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "group"


def render_figure(spec: dict[str, Any], fmt: str) -> bytes:
    _register_font()
    if fmt == "svg":
        return _stable_svg(vl_convert.vega_to_svg(spec)).encode("utf-8")
    if fmt == "png":
        return vl_convert.vega_to_png(spec, scale=2)
    return _stable_pdf(vl_convert.vega_to_pdf(spec))


# Vega numbers the clip paths of an SVG with a counter that runs on within a process.
_CLIP_ID = re.compile(r"\bclip(\d+)\b")


def _stable_svg(svg: str) -> str:
    """`svg` with its clip path ids numbered from 1 in order of appearance."""
    ids: dict[str, str] = {}
    return _CLIP_ID.sub(lambda m: "clip" + ids.setdefault(m.group(1), str(len(ids) + 1)), svg)


# vl-convert names each embedded font subset with a random six-letter tag (e.g.
# `/BaseFont /ABCDEF+DejaVuSans`): replaced by a fixed tag, so the same figure gives the same
# PDF bytes (the tag only has to be unique within the file; one font is embedded).
_SUBSET_TAG = re.compile(rb"/([A-Z]{6})\+")


# ... and writes a page's resource dictionaries (graphics states, fonts) in hash-map order:
# their entries, one a line, are sorted (same bytes, same length: the xref table stays right).
_RESOURCES = re.compile(
    rb"(/(?:ExtGState|XObject|Font|Pattern|Shading|ColorSpace) <<\n)((?:[ \t]+/\S+ \d+ 0 R\n)+)"
)


def _stable_pdf(pdf: bytes) -> bytes:
    pdf = _RESOURCES.sub(
        lambda m: m.group(1) + b"".join(sorted(m.group(2).splitlines(keepends=True))), pdf
    )
    tags = list(dict.fromkeys(_SUBSET_TAG.findall(pdf)))
    for n, tag in enumerate(tags):
        fixed = ("TVIZ" + chr(ord("A") + n // 26) + chr(ord("A") + n % 26)).encode()
        pdf = pdf.replace(b"/" + tag + b"+", b"/" + fixed + b"+")
    return pdf


def export(
    c: Comparison, out_dir: Path, fmt: str = "svg", image_base_url: str | None = None
) -> list[Path]:
    """Write the summary files and the figures into `out_dir`; the paths written."""
    out_dir = Path(out_dir)
    written = []
    figs = []
    for stem, title, spec in figures(c):
        path = out_dir / f"{stem}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render_figure(spec, fmt))
        written.append(path)
        figs.append((title, path.name))
    rows = c.summaries
    data = {
        "runs": rows,
        "groups": {
            label: [c.runs[i].data.summary.id for i in idx] for label, idx in c.groups.items()
        },
        "group_rule": groups.GROUP_RULE if c.groups else None,
        "figures": [name for _, name in figs],
    }
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    written.append(write_atomic(out_dir / "summary.json", text))
    md = markdown(c, rows, figs, fmt, image_base_url)
    written.append(write_atomic(out_dir / "summary.md", md))
    return written


def markdown(
    c: Comparison,
    rows: list[dict[str, Any]],
    figs: list[tuple[str, str]],
    fmt: str,
    image_base_url: str | None,
) -> str:
    """The Markdown summary (see the module's doc); every piece of run text escaped."""
    lines = ["## tviz: " + ", ".join(md(r["name"] or r["id"]) for r in rows), ""]
    roles = [r for r in summary.HEADLINE_ROLES if any(r in x["headline"] for x in rows)]
    head = ["run", "status", "steps"]
    for role in roles:
        label = next(x["headline"][role]["label"] for x in rows if role in x["headline"])
        head += [f"{md(label)} final", f"{md(label)} best"]
    lines += [_row(head), _row(["---"] * 3 + ["---:"] * (len(head) - 3))]
    for r in rows:
        cells = [f"{md(r['name'])} (`{_code(r['id'])}`)", md(r["status"]), f"{r['steps']:,}"]
        for role in roles:
            h = r["headline"].get(role)
            cells += [_num(h and h["final"]), _num(h and h["best"])]
        lines.append(_row(cells))
    lines.append("")
    lines.append(
        "*best*: the highest or lowest value over the run, as the metric catalog says is better"
        " (– where it says neither)."
    )
    lines.append("")
    configs = [m.data.config for m in c.runs]
    if len(rows) > 1:
        differ = config_diff(configs)["differ"]
        if differ:
            lines += ["### Config that differs", ""]
            lines.append(_row(["key", *(md(r["name"] or r["id"]) for r in rows)]))
            lines.append(_row(["---"] * (len(rows) + 1)))
            for d in differ[:30]:
                values = ["–" if v is None else f"`{_code(v)}`" for v in d["values"]]
                lines.append(_row([f"`{_code(d['key'])}`", *values]))
            if len(differ) > 30:
                lines.append(f"\n{len(differ) - 30} more keys differ.")
            lines.append("")
    elif rows and rows[0]["key_config"]:
        lines += ["### Key config", "", _row(["key", "value"]), _row(["---", "---"])]
        for key, value in rows[0]["key_config"].items():
            lines.append(_row([f"`{_code(key)}`", f"`{_code(value)}`"]))
        lines.append("")
    if c.groups:
        lines += ["### Groups", ""]
        for label, idx in c.groups.items():
            names = ", ".join(md(c.runs[i].data.summary.name) for i in idx)
            lines.append(f"- {md(label)}: {names}")
        lines += ["", md(groups.GROUP_RULE), ""]
    if figs:
        lines += ["### Figures", ""]
        base = image_base_url.rstrip("/") + "/" if image_base_url else ""
        for title, name in figs:
            target = base + name
            if fmt == "pdf":  # Markdown shows no PDF inline: a link
                lines.append(f"- [{md(title)} (PDF)]({target})")
            else:
                lines.append(f"![{md(title)}]({target})")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]!|<>~&])")


def md(text: Any) -> str:
    """Run text as plain Markdown text: one line, every character with a meaning escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _code(text: Any) -> str:
    """Text inside a code span in a table: one line, no backtick or pipe, at most 80 chars."""
    flat = " ".join(str(text).split()).replace("`", "'").replace("|", "¦")
    return flat if len(flat) <= 80 else flat[:79] + "…"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}"
