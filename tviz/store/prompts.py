"""Prompt history: each prompt a run saw at several steps, and its group's mean reward there.

Made from every group the run logged (each group's prompt key and stored mean reward, read
with its figures by `store/figures.py`), not only the groups a page keeps within its size
budget, so a page can show how one prompt fared over the whole of training. A run in several
files: the groups of every file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

# The most points a prompt's history keeps (the newest): a prompt seen at every step of a
# 100,000-step run must not fill the page.
MAX_POINTS = 400


def prompt_key(text: str, image: str | None = None) -> str:
    """A short, stable name for a prompt: its text and, for a vision prompt, its image's path
    (one question asked of many photos is many prompts). The page matches groups to
    histories by it."""
    whole = text if not image else f"{text}\x00{image}"
    return hashlib.sha1(whole.encode("utf-8", "replace")).hexdigest()[:12]


def history_of(
    steps: Iterable[tuple[int, Iterable[tuple[str | None, float | None]]]],
) -> dict[str, list[list[Any]]]:
    """prompt key -> [steps, mean rewards] for each prompt seen at two or more steps, in step
    order, from each step's groups (prompt key or None, mean reward or None), steps in order
    and groups in the page's order. Training groups only: eval rollouts are no step of
    training."""
    out: dict[str, list[list[Any]]] = {}
    for step, groups in steps:
        for key, mean in groups:
            if key is None:
                continue
            steps_of, means = out.setdefault(key, [[], []])
            steps_of.append(step)
            means.append(mean)
    for key, (steps_of, means) in list(out.items()):
        if steps_of[0] == steps_of[-1]:  # seen at one step only
            del out[key]
        elif len(steps_of) > MAX_POINTS:
            out[key] = [steps_of[-MAX_POINTS:], means[-MAX_POINTS:]]
    return out
