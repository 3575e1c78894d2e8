"""The simulated model both demo runs sample from: how good it is at a point of training and how
it splits text into tokens."""

from __future__ import annotations

import math
import zlib


def skill_at(step: int, steps: int, difficulty: float) -> float:
    """How often the model gets a problem of this difficulty right at this step: it learns
    fast at first, then slowly (0.02 to 0.97)."""
    progress = step / max(1, steps - 1)
    return max(0.02, min(0.97, 0.12 + 0.78 * (1 - math.exp(-3.0 * progress)) - difficulty))


def token_pieces(text: str) -> list[str]:
    """Text split into token-like pieces (a word with its leading space)."""
    out, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or (text[i] == " " and text[i - 1] != " "):
            out.append(text[start:i])
            start = i
    return out


def token_ids(pieces: list[str]) -> list[int]:
    """The pieces' token ids: the same piece always gets the same id, within a vocabulary's size."""
    return [zlib.crc32(p.encode("utf-8")) % 128_000 for p in pieces]
