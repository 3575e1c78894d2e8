"""A run's eval rollouts on its page: one chunk per (eval set, step), apart from training's.

Eval groups reuse the training chunks' encoding (`rollouts.encode_step`), but are no step of
training: no chart, step list or samples table counts them. They are few, so the page keeps
them before training groups get the rest of the size budget (up to half of what is left, or
all that the training groups leave); past that they are cut, newest eval steps kept, and the
page says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tviz.render.rollouts import StepChunk, encode_step, plan_sample
from tviz.store import Rollout

__all__ = ["EvalChunk", "encode_evals", "eval_notice", "eval_tags", "page_json", "plan_evals"]


@dataclass
class EvalChunk:
    """One eval set's groups at one step."""

    index: int  # its place in the page (`eval-chunk-<index>`)
    name: str
    chunk: StepChunk


def encode_evals(rollouts: list[Rollout], base_dir: Path | None) -> list[EvalChunk]:
    """The chunks of the eval groups, by eval set then step."""
    by_key: dict[tuple[str, int], list[Rollout]] = {}
    for rollout in rollouts:
        by_key.setdefault((rollout.eval_name or "", rollout.step), []).append(rollout)
    return [
        EvalChunk(i, name, encode_step(step, groups, (0, 0), base_dir))
        for i, ((name, step), groups) in enumerate(sorted(by_key.items()))
    ]


def plan_evals(evals: list[EvalChunk], available: int) -> dict[int, int]:
    """Groups to keep per eval chunk (by index) within `available` bytes."""
    chunks = [e.chunk for e in evals]
    index = {id(e.chunk): e.index for e in evals}
    return plan_sample(chunks, available, key=lambda c: index[id(c)])


def kept(evals: list[EvalChunk], plan: dict[int, int] | None) -> dict[int, int]:
    return {e.index: e.chunk.n_groups if plan is None else plan.get(e.index, 0) for e in evals}


def cost(evals: list[EvalChunk], plan: dict[int, int]) -> int:
    """Bytes the kept eval groups take in the page (with their tags)."""
    return sum(e.chunk.size(plan.get(e.index, 0)) + 80 for e in evals)


def page_json(evals: list[EvalChunk], plan: dict[int, int] | None) -> dict[str, Any]:
    """The eval section's data: each set's steps (newest first) with their figures."""
    keep = kept(evals, plan)
    sets: dict[str, list[dict[str, Any]]] = {}
    for e in evals:
        stats = {**e.chunk.stats, "kept": min(keep[e.index], e.chunk.n_groups), "id": e.index}
        sets.setdefault(e.name, []).append(stats)
    return {
        "sets": [
            {"name": name, "steps": sorted(steps, key=lambda s: -s["step"])}
            for name, steps in sets.items()
        ],
        "notice": eval_notice(evals, plan),
    }


def eval_tags(evals: list[EvalChunk], plan: dict[int, int] | None) -> list[str]:
    keep = kept(evals, plan)
    return [
        '<script type="application/gzip-base64" id="eval-chunk-'
        f'{e.index}">{e.chunk.encoded(keep[e.index])}</script>\n'
        for e in evals
        if keep[e.index]
    ]


def eval_notice(evals: list[EvalChunk], plan: dict[int, int] | None) -> str:
    """A plain sentence on the eval groups the size budget left out ('' when none)."""
    keep = kept(evals, plan)
    total = sum(e.chunk.n_groups for e in evals)
    shown = sum(min(keep[e.index], e.chunk.n_groups) for e in evals)
    if shown >= total:
        return ""
    return (
        f"To keep this page within its size budget, {shown:,} of {total:,} eval groups are"
        f" included ({total - shown:,} left out)."
    )
