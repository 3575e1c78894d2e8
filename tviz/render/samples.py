"""The same prompt's samples from several runs, side by side.

Prompts are matched on their text; a chat prompt on its last user message, so runs that used
different chat templates (or logged the conversation as JSON messages) still match. Each run
shows its latest group for the prompt (the step it saw it last) with every trajectory's reward;
pairs where the runs' mean rewards differ most come first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from tviz.store import Rollout

# Shown per trajectory / per prompt (characters); the page says when text is cut.
MAX_TEXT = 1_500
MAX_PROMPT = 2_000
MAX_TRAJECTORIES = 8

# The last user turn of prompts rendered with a chat template, by template family.
_CHAT = (
    re.compile(r"<\|im_start\|>user\s*\n(.*?)(?:<\|im_end\|>|$)", re.S),  # ChatML, Qwen
    re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\s*(.*?)(?:<\|eot_id\|>|$)", re.S),
    re.compile(r"<start_of_turn>user\s*\n(.*?)(?:<end_of_turn>|$)", re.S),  # Gemma
    re.compile(r"\[INST\](.*?)\[/INST\]", re.S),  # Llama 2, Mistral
    re.compile(r"<\|user\|>\s*(.*?)(?:<\|end\|>|<\|assistant\|>|$)", re.S),  # Phi
    re.compile(r"(?:^|\n)(?:User|Human|USER):\s*(.*?)(?=\n(?:Assistant|AI|ASSISTANT):|$)", re.S),
)


def match_key(text: str | None) -> str | None:
    """What two runs' prompts are matched on: the last user message of a chat prompt (JSON
    messages or a rendered template), else the text; whitespace collapsed."""
    if not text:
        return None
    found = _last_user(text)
    key = " ".join((found if found is not None else text).split())
    return key or None


def _last_user(text: str) -> str | None:
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            value = json.loads(stripped)
        except ValueError:
            value = None
        if isinstance(value, dict):
            value = value.get("messages") or value.get("prompt")
        if isinstance(value, list):
            users = [m for m in value if isinstance(m, dict) and m.get("role") == "user"]
            if users:
                return _content(users[-1].get("content"))
    for pattern in _CHAT:
        found = pattern.findall(text)
        if found:
            return found[-1]
    return None


def _content(content: Any) -> str:
    if isinstance(content, list):  # OpenAI-style parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _latest(rollouts: Sequence[Rollout]) -> dict[str, Rollout]:
    """Prompt key -> the run's last group for it (the latest step; the first group there)."""
    out: dict[str, Rollout] = {}
    for rollout in rollouts:
        key = match_key(rollout.prompt_text)
        if key is None:
            continue
        old = out.get(key)
        if old is None or rollout.step > old.step:
            out[key] = rollout
    return out


def _mean(rollout: Rollout) -> float | None:
    rewards = [t.reward for t in rollout.trajectories if _finite(t.reward)]
    return math.fsum(rewards) / len(rewards) if rewards else None


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _cut(text: str | None, limit: int) -> tuple[str, int]:
    text = text or ""
    return (text, 0) if len(text) <= limit else (text[:limit], len(text) - limit)


def _group(rollout: Rollout) -> dict[str, Any]:
    ordered = sorted(
        rollout.trajectories, key=lambda t: (-(t.reward if _finite(t.reward) else -math.inf), t.idx)
    )
    shown = []
    for t in ordered[:MAX_TRAJECTORIES]:
        text, left = _cut(t.output_text, MAX_TEXT)
        shown.append(
            {"reward": t.reward if _finite(t.reward) else None, "text": text, "left": left}
        )
    rewards = [t.reward for t in rollout.trajectories if _finite(t.reward)]
    return {
        "step": rollout.step,
        "mean": _mean(rollout),
        "n": len(rollout.trajectories),
        "rewards": rewards,
        "trajectories": shown,
        "hidden": max(0, len(ordered) - MAX_TRAJECTORIES),
    }


def side_by_side(runs: Sequence[Sequence[Rollout]]) -> list[dict[str, Any]]:
    """Prompts seen by at least two of `runs` (each run's rollouts), most different first:
    [{key, prompt, prompt_left, spread, groups: [group or None per run]}]. The spread is the
    largest difference between the runs' mean rewards for the prompt."""
    latest = [_latest(r) for r in runs]
    keys = sorted({k for found in latest for k in found})
    pairs = []
    for key in keys:
        present = [found.get(key) for found in latest]
        if sum(g is not None for g in present) < 2:
            continue
        means = [m for g in present if g is not None and (m := _mean(g)) is not None]
        spread = max(means) - min(means) if len(means) >= 2 else 0.0
        prompt, left = _cut(key, MAX_PROMPT)
        pairs.append(
            {
                "key": key,
                "prompt": prompt,
                "prompt_left": left,
                "spread": spread,
                "groups": [None if g is None else _group(g) for g in present],
            }
        )
    pairs.sort(key=lambda p: (-p["spread"], p["key"]))
    return pairs
