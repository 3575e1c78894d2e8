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


class History:
    """prompt key -> [steps, mean rewards] for each prompt seen at two or more steps, in step
    order, from each step's groups (prompt key or None, mean reward or None), steps in order
    and groups in the page's order. Training groups only: eval rollouts are no step of
    training.

    Kept between builds: steps that come after those seen, the others unchanged, are added to
    it (a watched run's new step), anything else makes it anew."""

    def __init__(self) -> None:
        self._seen: dict[int, Any] = {}  # step -> its fingerprint when added
        self._all: dict[str, list[list[Any]]] = {}  # every prompt's occurrences

    def of(self, steps: list[tuple[int, Any, Iterable[tuple[str | None, float | None]]]]) -> dict:
        """The history of these steps: (step, fingerprint, groups), in step order."""
        last = max(self._seen, default=None)
        now = {step: fingerprint for step, fingerprint, _ in steps}
        kept = all(now.get(step) == fingerprint for step, fingerprint in self._seen.items())
        if not kept or any(last is not None and step <= last for step in now.keys() - self._seen):
            self._seen, self._all = {}, {}
        for step, fingerprint, groups in steps:
            if step in self._seen:
                continue
            self._seen[step] = fingerprint
            for key, mean in groups:
                if key is None:
                    continue
                steps_of, means = self._all.setdefault(key, [[], []])
                steps_of.append(step)
                means.append(mean)
        out: dict[str, list[list[Any]]] = {}
        for key, (steps_of, means) in self._all.items():
            if steps_of[0] != steps_of[-1]:  # seen at two steps or more
                out[key] = [steps_of[-MAX_POINTS:], means[-MAX_POINTS:]]
        return out
