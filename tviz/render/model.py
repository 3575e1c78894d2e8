"""RunData -> what a page shows: header facts, key config, chart descriptors, step list.

Plain data only (dicts and lists ready for JSON); the templates and the page's script do the
drawing. Nothing here depends on the time of the build, so the same database gives the same
page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tviz import catalog
from tviz.catalog import Entry
from tviz.formats import fmt_duration, fmt_num, fmt_time
from tviz.render import charts
from tviz.render.downsample import minmax
from tviz.render.rollouts import StepChunk, few_rewards
from tviz.store import QUIET_AFTER_S, RunData, RunSummary, Series

# Points drawn per line: charts are a few hundred pixels wide (see downsample.py).
MAX_POINTS = 1000
# Columns of the reward distribution chart.
MAX_HEAT_COLUMNS = 120

# Config keys a reader looks for first, in this order (matched on the last dotted segment).
KEY_CONFIG = (
    "model_name",
    "base_model",
    "model",
    "renderer_name",
    "env",
    "env_type",
    "dataset",
    "dataset_name",
    "learning_rate",
    "lr",
    "batch_size",
    "group_size",
    "groups_per_batch",
    "max_tokens",
    "lora_rank",
    "loss_fn",
    "kl_penalty_coef",
    "temperature",
    "num_epochs",
    "seed",
    # TRL's GRPOConfig
    "num_generations",
    "max_completion_length",
    "beta",
)
MAX_KEY_CONFIG = 10

# Metric groups shown first; the rest follow alphabetically, "other" last.
GROUP_ORDER = ("env", "reward", "optim", "train", "test", "eval", "progress", "time")


@dataclass(frozen=True)
class HeaderFact:
    label: str
    value: str
    title: str = ""


def run_json(summary: RunSummary) -> dict[str, Any]:
    """The facts the page's script needs (status, times) to tell a run that went quiet."""
    return {
        "id": summary.id,
        "name": summary.name,
        "status": summary.status,
        "started": summary.started_at,
        "ended": summary.ended_at,
        "lastData": summary.last_data_at,
        "quietAfter": QUIET_AFTER_S,
        "lastStep": summary.last_step,
    }


def header_facts(summary: RunSummary) -> list[HeaderFact]:
    return [
        HeaderFact("id", summary.id),
        HeaderFact("type", summary.type),
        HeaderFact("modality", summary.modality),
        HeaderFact("model", summary.model or "-"),
        HeaderFact("started", fmt_time(summary.started_at)),
        HeaderFact("duration", fmt_duration(summary.duration_s)),
        HeaderFact("last step", fmt_num(summary.last_step)),
        HeaderFact("last data", fmt_time(summary.last_data_at)),
    ]


def flatten(config: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(config, dict) and config:
        out: list[tuple[str, Any]] = []
        for key, value in config.items():
            out += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return [(prefix, config)]


def key_config(config: dict[str, Any]) -> list[tuple[str, str]]:
    leaves = [(k, v) for k, v in flatten(config) if not isinstance(v, (dict, list))]
    found: list[tuple[str, str]] = []
    for wanted in KEY_CONFIG:
        for key, value in leaves:
            if key.rsplit(".", 1)[-1] == wanted and value not in (None, ""):
                found.append((key, fmt_num(value) if isinstance(value, float) else str(value)))
                break
        if len(found) >= MAX_KEY_CONFIG:
            break
    return found


def _line(
    chart_id: str,
    title: str,
    series: dict[str, tuple[list[int], list[float | None]]],
    colors: tuple[str, ...],
    *,
    name: str | None = None,
    clickable: bool = True,
    max_points: int = MAX_POINTS,
) -> dict[str, Any]:
    names = tuple(series)
    spec = f"line:{'|'.join(names)}:{'|'.join(colors)}"
    drawn: dict[str, list[list[Any]]] = {}
    reduced_from = 0
    for key, (steps, values) in series.items():
        ds = minmax(steps, values, max_points)
        drawn[key] = [ds.steps, ds.values]
        if ds.reduced:
            reduced_from = max(reduced_from, ds.original_points)
    note = ""
    if reduced_from:
        note = (
            f"{max_points:,} of {reduced_from:,} points drawn per line: the lowest and highest "
            "value of each step range are kept, so spikes are never hidden."
        )
    return {
        "id": chart_id,
        "kind": "line",
        "title": title,
        "name": name or title,
        "spec": spec,
        "series": drawn,
        "note": note,
        "click": clickable,
    }


def line_specs(descriptors: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The distinct specs the descriptors name (a handful per page)."""
    specs: dict[str, Any] = {}
    for d in descriptors:
        if d["kind"] == "line" and d["spec"] not in specs:
            _, names, colors = d["spec"].split(":", 2)
            specs[d["spec"]] = charts.line_chart(tuple(names.split("|")), tuple(colors.split("|")))
        elif d["kind"] == "heat" and "heat" not in specs:
            specs["heat"] = charts.reward_heatmap()
    return specs


def _series(s: Series) -> tuple[list[int], list[float | None]]:
    return s.steps, s.values


def overview_charts(data: RunData, chunks: list[StepChunk]) -> list[dict[str, Any]]:
    """The charts above the metric groups: reward, output length, KL, entropy, the reward
    distribution and the group signal.

    Rollouts give exact per-step figures (reward best / mean / worst, output length, the
    distribution); without them, the run's logged metrics fill the roles `tviz.catalog` names.
    """
    out: list[dict[str, Any]] = []
    chunks = sorted(chunks, key=lambda c: c.step)
    roles = _overview_roles(data)
    scored = [c for c in chunks if c.stats["best"] is not None]
    if scored:
        steps = [c.step for c in scored]
        out.append(
            _line(
                "reward",
                "Reward per step (best / mean / worst trajectory)",
                {
                    "best": (steps, [c.stats["best"] for c in scored]),
                    "mean": (steps, [c.stats["mean"] for c in scored]),
                    "worst": (steps, [c.stats["worst"] for c in scored]),
                },
                (charts.GREEN, charts.BLUE, charts.RED),
            )
        )
    else:
        out += _logged_chart(data, roles, "reward", "mean", charts.BLUE)
    with_length = [c for c in chunks if c.length_count]
    if with_length:
        unit = "tokens" if any(c.length_unit == "tokens" for c in with_length) else "characters"
        out.append(
            _line(
                "length",
                f"Mean output length ({unit})",
                {
                    "mean length": (
                        [c.step for c in with_length],
                        [c.length_total / c.length_count for c in with_length],
                    )
                },
                (charts.AMBER,),
            )
        )
    else:
        out += _logged_chart(data, roles, "output_length", "mean length", charts.AMBER, "length")
    out += _logged_chart(data, roles, "kl", "kl", charts.RED)
    out += _logged_chart(data, roles, "entropy", "entropy", charts.GREEN)
    heat = reward_distribution(scored)
    if heat is not None:
        out.append(heat)
    signal = group_signal(data, chunks, roles)
    if signal is not None:
        out.append(signal)
    return out


def _overview_roles(data: RunData) -> tuple[str, ...]:
    trainer = catalog.trainer_of(data.metrics)
    return trainer.overview if trainer is not None else catalog.OVERVIEW_ROLES


def _logged(data: RunData, roles: tuple[str, ...], role: str) -> tuple[Series, Entry] | None:
    """The run's metric for `role`, with its catalog entry, if the overview shows the role."""
    found = catalog.find(role, data.metrics) if role in roles else None
    if found is None:
        return None
    name, entry = found
    return data.metrics[name], entry


def _logged_chart(
    data: RunData,
    roles: tuple[str, ...],
    role: str,
    key: str,
    color: str,
    chart_id: str | None = None,
) -> list[dict[str, Any]]:
    """A chart of the run's logged metric for `role` (none if it has none)."""
    found = _logged(data, roles, role)
    if found is None:
        return []
    series, entry = found
    unit = f" in {entry.unit}" if entry.unit else ""
    title = f"{entry.label}{unit} ({series.name})"
    chart = _line(
        chart_id or role, title, {key: (series.steps, entry.apply(series.values))}, (color,)
    )
    if entry.unit:
        chart["unit"] = entry.unit
    return [chart]


# The group signal's lines: role, label, color.
_SIGNAL = (
    ("frac_all_good", "all good", charts.GREEN),
    ("frac_all_bad", "all bad", charts.RED),
    ("frac_mixed", "mixed", charts.BLUE),
)


def group_signal(
    data: RunData, chunks: list[StepChunk], roles: tuple[str, ...] = catalog.OVERVIEW_ROLES
) -> dict[str, Any] | None:
    """GRPO's all-good / all-bad / mixed group fractions: logged, else counted from rollouts.
    With continuous rewards, the spread of rewards within groups instead."""
    spread = _spread_signal(chunks)
    if spread is not None:
        return spread
    series: dict[str, tuple[list[int], list[float | None]]] = {}
    colors: list[str] = []
    formulas: list[str] = []
    for role, label, color in _SIGNAL:
        found = _logged(data, roles, role)
        if found is not None:
            logged, entry = found
            series[label] = (logged.steps, entry.apply(logged.values))
            colors.append(color)
            if entry.transform is not None:
                formulas.append(f"{label} = {entry.formula(logged.name)}.")
    if series:
        chart = _line("signal", "Group signal (share of groups)", series, tuple(colors))
        chart["note"] = " ".join([*formulas, chart["note"]]).strip()
        return chart
    counted = [c for c in chunks if c.stats["groups"]]
    if not counted:
        return None
    steps = [c.step for c in counted]
    series = {
        label: (steps, [c.stats[key] / c.stats["groups"] for c in counted])
        for (_, label, _), key in zip(_SIGNAL, ("good", "bad", "mixed"), strict=True)
    }
    title = "Group signal (share of groups, counted from rollouts)"
    return _line("signal", title, series, tuple(color for _, _, color in _SIGNAL))


def _spread_signal(chunks: list[StepChunk]) -> dict[str, Any] | None:
    """For continuous rewards (a distance, a score), where nearly every group is "mixed": the
    mean standard deviation of rewards within a step's groups, GRPO's signal itself."""
    if few_rewards(chunks) is not None:  # few distinct rewards: fractions
        return None
    spread = [c for c in chunks if c.stats.get("spread") is not None]
    if not spread:
        return None
    chart = _line(
        "signal",
        "Group signal (reward spread within groups)",
        {"mean std": ([c.step for c in spread], [c.stats["spread"] for c in spread])},
        (charts.BLUE,),
    )
    chart["unit"] = "reward std"
    note = (
        "Rewards here are continuous, so nearly every group is mixed: the signal is how far "
        "apart a group's rewards are (the mean of each group's standard deviation; 0 = none)."
    )
    chart["note"] = " ".join(n for n in (note, chart["note"]) if n)
    return chart


def reward_distribution(chunks: list[StepChunk]) -> dict[str, Any] | None:
    """Share of each step range's samples per reward bin (a heatmap)."""
    if not chunks:
        return None
    few = few_rewards(chunks)
    scored = [c for c in chunks if c.stats["best"] is not None]
    if not scored:
        return None
    lo = min(c.stats["worst"] for c in scored)
    hi = max(c.stats["best"] for c in scored)
    if few is not None:  # few distinct rewards (0/1, partial credit): one row each
        values = few
        lo, hi = values[0], values[-1]
        edges = None
        width = min((b - a for a, b in zip(values, values[1:], strict=False)), default=1.0)
        half = width / 2 if width > 0 else 0.5
    else:
        bins = 20
        span = (hi - lo) or 1.0
        edges = [lo + span * i / bins for i in range(bins + 1)]
    columns = _columns(chunks, MAX_HEAT_COLUMNS)
    rows: list[dict[str, Any]] = []
    for group in columns:
        counts: dict[int, int] = {}
        for chunk in group:
            for b, n in chunk.reward_bins(few, lo, hi).items():
                counts[b] = counts.get(b, 0) + n
        total = sum(counts.values())
        s0, s1 = group[0].step, group[-1].step
        for b, n in sorted(counts.items()):
            if edges is None:
                r0, r1 = values[b] - half, values[b] + half
                label = f"{values[b]:.4g}"
            else:
                r0, r1 = edges[b], edges[b + 1]
                label = f"{r0:.3g} – {r1:.3g}"
            rows.append(
                {
                    "s0": s0,
                    "s1": s1 + 1,
                    "s1last": s1,
                    "r0": r0,
                    "r1": r1,
                    "label": label,
                    "n": n,
                    "frac": round(n / total, 4),
                }
            )
    note = ""
    if len(columns) < len(chunks):
        note = f"{len(chunks):,} steps shown as {len(columns)} columns of consecutive steps."
    return {
        "id": "dist",
        "kind": "heat",
        "title": "Reward distribution over steps",
        "name": "reward distribution",
        "spec": "heat",
        "rows": rows,
        "note": note,
        "click": True,
    }


def _columns(chunks: list[StepChunk], most: int) -> list[list[StepChunk]]:
    n = len(chunks)
    if n <= most:
        return [[c] for c in chunks]
    return [chunks[i * n // most : (i + 1) * n // most] for i in range(most)]


def metric_groups(data: RunData, max_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """Every numeric metric, one panel each, grouped by the first segment of its name, each
    line downsampled to about `max_points` points (fewer past the page's size budget)."""
    groups: dict[str, list[str]] = {}
    for name in sorted(data.metrics):
        prefix = name.split("/", 1)[0] if "/" in name else "other"
        groups.setdefault(prefix, []).append(name)

    def order(prefix: str) -> tuple[int, str]:
        if prefix in GROUP_ORDER:
            return (GROUP_ORDER.index(prefix), "")
        return (len(GROUP_ORDER) + (prefix == "other"), prefix)

    out = []
    for gi, prefix in enumerate(sorted(groups, key=order)):
        panels = []
        for mi, name in enumerate(groups[prefix]):
            series = data.metrics[name]
            panel = _line(
                f"m{gi}-{mi}", name, {name: _series(series)}, (charts.BLUE,), max_points=max_points
            )
            panel["spec"] = f"line:{'value'}:{charts.BLUE}"
            panel["series"] = {"value": panel["series"][name]}
            panels.append(panel)
        out.append({"prefix": prefix, "charts": panels})
    return out


def all_steps(data: RunData, chunks: Iterable[StepChunk]) -> list[int]:
    steps: set[int] = {c.step for c in chunks}
    for series in data.metrics.values():
        steps.update(series.steps)
    return sorted(steps)
