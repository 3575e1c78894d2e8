"""`tviz compare`: one self-contained HTML file comparing runs.

The page has the run pages' guarantees (Vega inlined once, hash-only CSP, every piece of run
text escaped by the template or written through `textContent`): the runs' config diff, every
shared metric overlaid (one fixed colour per run, groups as mean and band), the same prompt's
samples side by side and a summary table. Within the size budget, the side-by-side samples
come last and are cut first (the page says so).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from tviz.names import DEFAULT_BUDGET_BYTES
from tviz.render import comparison, groups, samples, summary
from tviz.render.comparison import Comparison
from tviz.render.embed import script_js, script_json
from tviz.render.model import flatten
from tviz.render.pages import Pages, show_value
from tviz.render.site import write_atomic
from tviz.render.smoothing import default_smoothing

SAMPLES_MARKER = "<!--tviz:samples-->"
# Bytes of chart data per point (two numbers in JSON) for the budget's first estimate.
_POINT_BYTES = 24


def config_diff(configs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """{"differ": [{key, values}], "same": [{key, value}]}: every config leaf (dotted key),
    the keys whose values differ between the runs first (a run without the key: None)."""
    flat = [{k: show_value(v) for k, v in flatten(c) if k} for c in configs]
    keys = sorted({k for f in flat for k in f})
    differ, same = [], []
    for key in keys:
        values = [f.get(key) for f in flat]
        if len(set(values)) > 1:
            differ.append({"key": key, "values": values})
        else:
            same.append({"key": key, "value": values[0]})
    return {"differ": differ, "same": same}


def _scripts(pages: Pages) -> Markup:
    def read(name: str) -> str:
        return pages.env.loader.get_source(pages.env, name)[0]  # type: ignore[union-attr]

    return Markup(script_js(read("run/smooth.js") + read("compare.js")))


def best_marks(rows: list[dict[str, Any]]) -> dict[str, int | None]:
    """Per headline role, the index of the run whose final value is best (by the catalog's
    direction); None when the direction is unknown or fewer than two runs have a value."""
    out: dict[str, int | None] = {}
    for role in summary.HEADLINE_ROLES:
        found = [(i, r["headline"][role]) for i, r in enumerate(rows) if role in r["headline"]]
        values = [(i, h["final"]) for i, h in found if h["final"] is not None]
        better = found[0][1]["better"] if found else None
        if len(values) < 2 or better not in ("higher", "lower"):
            out[role] = None
            continue
        pick = max if better == "higher" else min
        out[role] = pick(values, key=lambda p: p[1])[0]
    return out


def render_compare(
    c: Comparison, pages: Pages | None = None, budget_bytes: int = DEFAULT_BUDGET_BYTES
) -> tuple[str, str]:
    """The page and a sentence on what the size budget cut ('' when nothing)."""
    pages = pages or Pages()
    n_lines = max(1, sum(len(m.data.metrics) for m in c.runs) + 4 * len(c.runs))
    points = comparison.MAX_POINTS
    notes = []
    # Chart data gets at most half the budget: fewer points per line past it (stated).
    while points > 50 and n_lines * points * _POINT_BYTES > budget_bytes // 2:
        points //= 2
    if points < comparison.MAX_POINTS:
        notes.append(
            f"To keep this page within its size budget, lines have at most {points:,} points."
        )
    chart_list = comparison.chart_list(c, points)
    slot_list = comparison.slots(c)
    colors = tuple(s["color"] for s in slot_list)
    steps = max((m.data.summary.num_steps for m in c.runs), default=0)
    rows = c.summaries
    axes = [a for a in ("time", "tokens") if all(a in m.axes for m in c.runs)]
    data = {
        "slots": slot_list,
        "charts": chart_list,
        "spec": comparison.compare_chart(colors),
        "smoothing": default_smoothing(steps),
        "axes": ["step", *axes],
        "axisLabels": comparison.AXES,
    }
    pairs = samples.side_by_side([m.data.rollouts for m in c.runs])
    context = {
        "runs": [m.data.summary for m in c.runs],
        "members": c.runs,
        "slots": slot_list,
        "groups": c.groups,
        "group_rule": groups.GROUP_RULE,
        "diff": config_diff([m.data.config for m in c.runs]),
        "rows": rows,
        "roles": [r for r in summary.HEADLINE_ROLES if any(r in x["headline"] for x in rows)],
        "best": best_marks(rows),
        "charts": chart_list,
        "data": Markup(script_json(data)),
        "compare_js": _scripts(pages),
        "samples_marker": Markup(SAMPLES_MARKER),
        "has_samples": bool(pairs),
        "command": command_line(c),
        "conflicts": conflict_lines(c),
    }
    html = pages.render("compare.html", **context)
    room = budget_bytes - len(html.encode("utf-8")) - 4_096
    shown, used = [], 0
    template = pages.env.get_template("compare_pair.html")
    for pair in pairs:
        part = template.render(pair=pair, slots=slot_list)
        size = len(part.encode("utf-8"))
        if used + size > room:
            break
        shown.append(part)
        used += size
    if len(shown) < len(pairs):
        notes.append(
            f"To keep this page within its size budget, {len(shown):,} of {len(pairs):,} shared"
            " prompts are shown side by side (those where the runs differ most)."
        )
    notice = " ".join(notes)
    block = "".join(shown)
    if notice:
        block = f'<p class="notice" id="budget-notice">{Markup.escape(notice)}</p>\n' + block
    return html.replace(SAMPLES_MARKER, block, 1), notice


def write_comparison(
    runs: Sequence[str],
    db_paths: Sequence[Path],
    out_file: Path,
    *,
    group_by: str | None = None,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    warn: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """Load `runs` from `db_paths` (several read as one), render the comparison and write it to
    `out_file` atomically (what `tviz compare` does; `tviz watch`'s compare endpoint calls it
    too). `warn` is told each conflict of a run merged from several files, as `run ID: ...`.
    Returns the number of runs compared and the budget's notice ('' when nothing was cut)."""
    loaded = comparison.load(runs, db_paths, group_by)
    if warn is not None:
        for line in conflict_lines(loaded):
            warn(line)
    html, notice = render_compare(loaded, budget_bytes=budget_bytes)
    write_atomic(out_file, html)
    return len(loaded.runs), notice


def conflict_lines(c: Comparison) -> list[str]:
    """`run ID: conflict: ...`, one per conflict of the runs compared."""
    return [f"run {run_id}: {line}" for run_id, lines in c.conflicts.items() for line in lines]


def command_line(c: Comparison) -> str:
    """The `tviz compare` command that makes this page (for the page's footer): the files
    holding the runs, in the order read (which file's value a conflict keeps)."""
    holding = {p for m in c.runs for p in m.dbs or [m.db]}
    order = c.dbs or list(dict.fromkeys(m.db for m in c.runs))
    dbs = [str(p) for p in order if p in holding]
    parts = ["tviz", "compare", *(m.data.summary.id for m in c.runs)]
    for db in dbs:
        parts += ["--db", db]
    return " ".join(shlex.quote(p) for p in parts)
