"""The jinja2 environment and the run page: context, JSON blocks, compressed step chunks.

CSS and the page's own script live in tviz/templates as plain files and are inlined into each
page, so a page needs nothing beside itself.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup

from tviz import __version__
from tviz.render import model
from tviz.render.bundle import vega_bundle
from tviz.render.embed import jsonable, script_js, script_json
from tviz.render.rollouts import StepChunk

# Where the step chunks go; user text can never produce it (it is escaped to `&lt;!--`).
CHUNKS_MARKER = "<!--tviz:chunks-->"


def _chunk_tag(step: int) -> str:
    return f'<script type="application/gzip-base64" id="chunk-{step}">'


def _show(value: Any) -> str:
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
        self.env.filters["num"] = model.fmt_num
        self.env.filters["count"] = model.fmt_count
        self.env.filters["when"] = model.fmt_time
        self.env.filters["duration"] = model.fmt_duration
        self.env.filters["show"] = _show
        self.env.filters["script_json"] = lambda v: Markup(script_json(v))
        self.env.tests["mapping"] = lambda v: isinstance(v, dict)
        self.env.tests["sequence_of_values"] = lambda v: isinstance(v, list)

    @functools.cached_property
    def assets(self) -> dict[str, Markup]:
        def read(name: str) -> str:
            source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
            return source

        return {
            "css": Markup(read("style.css").replace("</style", "<\\/style")),
            "common_js": Markup(script_js(read("common.js"))),
            "run_js": Markup(script_js(read("run.js"))),
            "index_js": Markup(script_js(read("index.js"))),
            "vega": Markup(vega_bundle()),
        }

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(
            assets=self.assets, tviz_version=__version__, **context
        )

    def run_page(self, data: Any, chunks: list[StepChunk]) -> RunPage:
        return RunPage(self, data, chunks)


@dataclass
class RunPage:
    """One run's page; `render(plan)` places `plan[step]` groups of each step in it."""

    pages: Pages
    data: Any  # RunData
    chunks: list[StepChunk]

    def __post_init__(self) -> None:
        data = self.data
        overview = model.overview_charts(data, self.chunks)
        groups = model.metric_groups(data)
        descriptors = overview + [c for g in groups for c in g["charts"]]
        self.overview = overview
        self.groups = groups
        self.has_rollouts = bool(self.chunks)
        self.total_groups = sum(c.n_groups for c in self.chunks)
        self.total_traj = sum(c.stats["traj"] for c in self.chunks)
        self.static_json = Markup(
            script_json(
                {
                    "run": model.run_json(data.summary),
                    "steps": model.all_steps(data, self.chunks),
                    "charts": {d["id"]: d for d in descriptors},
                    "specs": model.line_specs(descriptors),
                }
            )
        )

    def _context(self, plan: dict[int, int]) -> dict[str, Any]:
        data = self.data
        length_unit = "tokens" if any(c.length_unit == "tokens" for c in self.chunks) else "chars"
        steps = [
            {**c.stats, "kept": min(plan.get(c.step, 0), c.n_groups), "unit": length_unit}
            for c in sorted(self.chunks, key=lambda c: -c.step)
        ]
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
            "static_json": self.static_json,
            "rollout_json": Markup(script_json({"steps": steps, "notice": self.notice(plan)})),
            "chunks_marker": Markup(CHUNKS_MARKER),
            "total_groups": self.total_groups,
            "total_traj": self.total_traj,
            "last_data": model.fmt_time(data.summary.last_data_at),
        }

    def size_without_chunks(self, plan: dict[int, int]) -> int:
        html = self.pages.render("run.html", **self._context(plan))
        return len(html.encode("utf-8"))

    def chunk_overhead(self, plan: dict[int, int]) -> int:
        return sum(len(_chunk_tag(s)) + len("</script>\n") for s, k in plan.items() if k)

    def render(self, plan: dict[int, int]) -> str:
        html = self.pages.render("run.html", **self._context(plan))
        parts = []
        for chunk in self.chunks:
            keep = plan.get(chunk.step, 0)
            if keep:
                parts.append(f"{_chunk_tag(chunk.step)}{chunk.encoded(keep)}</script>\n")
        return html.replace(CHUNKS_MARKER, "".join(parts), 1)

    def notice(self, plan: dict[int, int]) -> str:
        """A plain sentence on what the size budget left out ('' when nothing was)."""
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
