"""The jinja2 environment and the run page: context, JSON blocks, compressed step chunks.

CSS and the pages' own scripts live in tviz/templates as plain files and are inlined into each
page, so a page needs nothing beside itself.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup, escape

from tviz import __version__, formats
from tviz.render import chart_budget, evals, model, panels, summary
from tviz.render.bundle import vega_bundle
from tviz.render.csp import with_script_hashes
from tviz.render.embed import dumps, escape_script, jsonable, script_js, script_json
from tviz.render.rollouts import StepChunk
from tviz.render.table import joined

# The run page's script: one feature a file in tviz/templates/run, joined in this order into
# the page's one script, inside base.html's function scope after common.js. Each file declares
# functions and constants only: state.js (first) holds `state`, which the others read, and
# main.js (last) starts the page.
RUN_SCRIPTS = (
    "state.js",
    "smooth.js",
    "format.js",
    "status.js",
    "charts.js",
    "hover.js",
    "panels.js",
    "toolbar.js",
    "decode.js",
    "search.js",
    "table.js",
    "history.js",
    "steps.js",
    "cards.js",
    "tokens.js",
    "vision.js",
    "live.js",
    "eval.js",
    "main.js",
)

# Where the step chunks go; user text can never produce it (it is escaped to `&lt;!--`).
CHUNKS_MARKER = "<!--tviz:chunks-->"


def _chunk_tag(step: int) -> str:
    return f'<script type="application/gzip-base64" id="chunk-{step}">'


# The samples table's rows of every kept group (see render/table.py).
TABLE_TAG = '<script type="application/deflate-base64" id="sample-rows">'


def show_value(value: Any) -> str:
    """A config leaf as text: strings as they are, the rest as JSON (escaped by autoescape)."""
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)


class Pages:
    """The template environment and the static assets, loaded once per builder."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("tviz", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["num"] = formats.fmt_num
        self.env.filters["count"] = formats.fmt_count
        self.env.filters["when"] = formats.fmt_time
        self.env.filters["duration"] = formats.fmt_duration
        self.env.filters["show"] = show_value
        self.env.filters["script_json"] = lambda v: Markup(script_json(v))
        self.env.tests["mapping"] = lambda v: isinstance(v, dict)
        self.env.tests["sequence_of_values"] = lambda v: isinstance(v, list)

    @functools.cached_property
    def assets(self) -> dict[str, Markup]:
        def read(name: str) -> str:
            source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
            return source

        unlisted = {n for n in self.env.list_templates(extensions=["js"]) if n.startswith("run/")}
        unlisted -= {f"run/{name}" for name in RUN_SCRIPTS}
        if unlisted:
            raise RuntimeError(f"not in pages.RUN_SCRIPTS: {', '.join(sorted(unlisted))}")
        run_js = "".join(read(f"run/{name}") for name in RUN_SCRIPTS)
        return {
            "css": Markup(read("style.css").replace("</style", "<\\/style")),
            "common_js": Markup(script_js(read("common.js"))),
            "run_js": Markup(script_js(run_js)),
            "index_js": Markup(script_js(read("index.js"))),
            "vega": Markup(vega_bundle()),
        }

    def render(self, template: str, **context: Any) -> str:
        html = self.env.get_template(template).render(
            assets=self.assets, tviz_version=__version__, **context
        )
        return with_script_hashes(html)

    def run_page(
        self,
        data: Any,
        chunks: list[StepChunk],
        history: dict[str, Any] | None = None,
        eval_chunks: list[evals.EvalChunk] | None = None,
    ) -> RunPage:
        return RunPage(self, data, chunks, history or {}, eval_chunks or [])

    @functools.cached_property
    def land(self) -> Any:
        """The coastlines maps draw (scripts/make_land.py made the file)."""
        source = self.env.loader.get_source(self.env, "land.json")[0]  # type: ignore[union-attr]
        return json.loads(source)


@dataclass
class RunPage:
    """One run's page; `render(plan)` places `plan[step]` groups of each step in it."""

    pages: Pages
    data: Any  # RunData
    chunks: list[StepChunk]
    history: dict[str, Any]  # prompt key -> [steps, mean rewards] (tviz/store/prompts.py)
    eval_chunks: list[evals.EvalChunk] = field(default_factory=list)  # apart from training's
    eval_plan: dict[int, int] | None = None  # eval groups kept per eval chunk (None: all)

    def __post_init__(self) -> None:
        self._cut: dict[tuple[int, ...] | None, list[dict[str, Any]]] = {}
        data = self.data
        overview = [panels.describe(c) for c in model.overview_charts(data, self.chunks)]
        groups = panels.arrange(model.metric_groups(data))
        self._arranged = {model.MAX_POINTS: groups}
        self.overview = overview
        self.groups = groups
        self.metrics_notice = ""
        self.has_rollouts = bool(self.chunks)
        self.total_groups = sum(c.n_groups for c in self.chunks)
        self.total_traj = sum(c.stats["traj"] for c in self.chunks)
        self.static_json = self._static_json()

    def _static_json(self) -> Markup:
        data = self.data
        descriptors = self.overview + [c for g in self.groups for c in g["charts"]]
        return Markup(
            script_json(
                {
                    "run": model.run_json(data.summary),
                    "steps": model.all_steps(data, self.chunks),
                    "charts": {d["id"]: d for d in descriptors},
                    "specs": model.line_specs(descriptors),
                    "history": self.history,
                    **({"land": self.pages.land} if any(c.geo for c in self.chunks) else {}),
                }
            )
        )

    def chart_costs(self) -> chart_budget.ChartCosts:
        """What the metric panels take in the page, drawn or listed (render/chart_budget.py)."""
        chart = self.pages.env.get_template("partials/chart.html")
        lengths = {name: len(s.steps) for name, s in self.data.metrics.items()}
        groups = self._arranged[model.MAX_POINTS]
        return chart_budget.ChartCosts.of(groups, lengths, lambda p: chart.render(chart=p))

    def thin_charts(self, plan: chart_budget.ChartPlan) -> None:
        """Draw the metric panels as `plan` says: fewer points per line, some only listed."""
        if plan.points not in self._arranged:
            metrics = model.metric_groups(self.data, plan.points)
            self._arranged[plan.points] = panels.arrange(metrics)
        self.groups = chart_budget.apply(plan, self._arranged[plan.points])
        self.metrics_notice = plan.notice()
        self.static_json = self._static_json()

    @functools.cached_property
    def summary_json(self) -> Markup:
        """The run's results as data (render/summary.py), for scripts and agents."""
        ordered = sorted(self.chunks, key=lambda c: c.step)
        scored = [c for c in ordered if c.stats["mean"] is not None]
        rewards = ([c.step for c in scored], [c.stats["mean"] for c in scored]) if scored else None
        return Markup(script_json(summary.run_summary(self.data, rewards)))

    def long_text_sizes(self) -> list[int]:
        """Bytes each long text takes in the page (HTML-escaped UTF-8)."""
        return [_escaped_size(t.text) for t in self.data.long_texts]

    def _long_texts(self, caps: list[int] | None) -> list[dict[str, Any]]:
        key = None if caps is None else tuple(caps)
        if key not in self._cut:  # cutting a megabyte text to size takes a moment
            self._cut[key] = self._cut_texts(caps)
        return self._cut[key]

    def _cut_texts(self, caps: list[int] | None) -> list[dict[str, Any]]:
        out = []
        for i, item in enumerate(self.data.long_texts):
            text = item.text if isinstance(item.text, str) else str(item.text)
            cap = None if caps is None else caps[i]
            shown = text if cap is None else _cut_to(text, cap)
            left = len(text.encode("utf-8", "replace")) - len(shown.encode("utf-8", "replace"))
            out.append({"key": item.key, "text": shown, "left_out_kb": -(-left // 1000)})
        return out

    def _context(self, plan: dict[int, int], caps: list[int] | None = None) -> dict[str, Any]:
        data = self.data
        long_texts = self._long_texts(caps)
        tokens = any(c.length_unit == "tokens" for c in self.chunks)
        length_unit = "tokens" if tokens else "chars"
        return {
            "run": data.summary,
            "data": data,
            "facts": model.header_facts(data.summary),
            "key_config": model.key_config(data.config),
            "config": data.config,
            "overview": self.overview,
            "groups": self.groups,
            "has_rollouts": self.has_rollouts,
            "notice": self.notice(plan),
            "metrics_notice": self.metrics_notice,
            "static_json": self.static_json,
            "rollout_json": Markup(self._rollout_json(plan, length_unit)),
            "summary_json": self.summary_json,
            "chunks_marker": Markup(CHUNKS_MARKER),
            "total_groups": self.total_groups,
            "total_traj": self.total_traj,
            "last_data": formats.fmt_time(data.summary.last_data_at),
            "long_texts": long_texts,
            "texts_notice": _texts_notice(long_texts),
            "length_unit": length_unit,
            "length_unit_long": "tokens" if tokens else "characters (no output tokens logged)",
            "has_evals": bool(self.eval_chunks),
            "eval_json": Markup(script_json(evals.page_json(self.eval_chunks, self.eval_plan))),
            "eval_notice": evals.eval_notice(self.eval_chunks, self.eval_plan),
        }

    def _rollout_json(self, plan: dict[int, int], unit: str) -> str:
        """`script_json({"steps": [each step's stats, kept, unit], "notice": ...})`, newest
        step first, made from each chunk's stats JSON (fixed by its fingerprint): a watched
        run of 10,000 steps writes only its new step's."""
        tail = f',"unit":{dumps(unit)}}}'
        steps = ",".join(
            f'{c.stats_json},"kept":{min(plan.get(c.step, 0), c.n_groups)}{tail}'
            for c in sorted(self.chunks, key=lambda c: -c.step)
        )
        return escape_script(f'{{"steps":[{steps}],"notice":{dumps(self.notice(plan))}}}')

    def size_without_chunks(self, plan: dict[int, int], caps: list[int] | None = None) -> int:
        html = self.pages.render("run.html", **self._context(plan, caps))
        return len(html.encode("utf-8"))

    def chunk_overhead(self, plan: dict[int, int]) -> int:
        tags = sum(len(_chunk_tag(s)) + len("</script>\n") for s, k in plan.items() if k)
        return tags + len(TABLE_TAG) + len("</script>\n") + 8

    def render(self, plan: dict[int, int], caps: list[int] | None = None) -> str:
        """The page with `plan[step]` groups of each step and each long text cut to `caps[i]`
        bytes (None: whole)."""
        html = self.pages.render("run.html", **self._context(plan, caps))
        rows = joined(c.table.body(plan.get(c.step, 0)) for c in self.chunks)
        parts = [f"{TABLE_TAG}{rows}</script>\n"] if self.chunks else []
        for chunk in self.chunks:
            keep = plan.get(chunk.step, 0)
            if keep:
                parts.append(f"{_chunk_tag(chunk.step)}{chunk.encoded(keep)}</script>\n")
        parts += evals.eval_tags(self.eval_chunks, self.eval_plan)
        return html.replace(CHUNKS_MARKER, "".join(parts), 1)

    def texts_notice(self, caps: list[int] | None) -> str:
        """A plain sentence on the long texts the size budget cut short ('' when none)."""
        return "" if caps is None else _texts_notice(self._long_texts(caps))

    def notice(self, plan: dict[int, int]) -> str:
        """A plain sentence on what the size budget left out ('' when nothing was)."""
        said = getattr(self, "_said", None)
        if said is not None and said[0] is plan:  # asked again and again for one plan
            return said[1]
        text = self._notice(plan)
        self._said = (plan, text)
        return text

    def _notice(self, plan: dict[int, int]) -> str:
        kept_groups = sum(min(plan.get(c.step, 0), c.n_groups) for c in self.chunks)
        if kept_groups >= self.total_groups:
            return ""
        dropped_steps = [c.step for c in self.chunks if not plan.get(c.step, 0)]
        left = self.total_groups - kept_groups
        text = (
            f"To keep this page within its size budget, {kept_groups:,} of "
            f"{self.total_groups:,} rollout groups are included ({left:,} left out): each step "
            "keeps its best and worst group, then the mixed groups with the widest spread of "
            "rewards. The charts above still use every trajectory."
        )
        if dropped_steps:
            text += (
                f" Steps {min(dropped_steps):,}–{max(dropped_steps):,} ({len(dropped_steps):,}"
                " steps) have no rollouts in this page."
            )
        return text


def _escaped_size(text: Any) -> int:
    return len(str(escape(text)).encode("utf-8", "replace"))


def _cut_to(text: str, size: int) -> str:
    """The longest start of `text` that takes at most `size` bytes in the page."""
    if _escaped_size(text) <= size:
        return text
    lo, hi = 0, min(len(text), size)  # every character takes at least one byte
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _escaped_size(text[:mid]) <= size:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def fair_caps(sizes: list[int], room: int) -> list[int] | None:
    """Bytes each long text may keep so that together they take at most `room`: small texts
    stay whole and the large ones share the rest equally. None when all fit."""
    if sum(sizes) <= room:
        return None
    caps = list(sizes)
    left = max(0, room)
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    for n, i in enumerate(order):
        share = left // (len(order) - n)
        if sizes[i] <= share:
            left -= sizes[i]
            continue
        for j in order[n:]:
            caps[j] = share
        break
    return caps


def _texts_notice(long_texts: list[dict[str, Any]]) -> str:
    cut = [t for t in long_texts if t["left_out_kb"]]
    if not cut:
        return ""
    kb = sum(t["left_out_kb"] for t in cut)
    return (
        f"To keep this page within its size budget, {len(cut):,} of {len(long_texts):,} long"
        f" texts are cut short ({kb:,} KB left out); the database still holds them whole."
    )
