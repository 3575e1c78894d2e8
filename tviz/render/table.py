"""The samples table's rows: every trajectory a page keeps, one short line each, compressed.

The page's table needs a row per trajectory (step, group, reward, length, mean logprob, the
prompt's and output's start) without decompressing every step's full rollouts. So each step
also packs a short line per group, in the order the size budget keeps its groups (best, worst,
mixed...): keeping k groups of a step keeps the first k lines. The lines of every step are
deflated once per step, sync-flushed after each group, so that the kept prefixes of all steps,
joined end to end and closed with one empty final block, make a single raw deflate stream: the
page inflates it in one go (DecompressionStream("deflate-raw")), one JSON array a line.
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tviz.render.embed import dumps

# Characters of the prompt's and the output's start in a row: enough to tell rows apart.
PROMPT_START = 60
OUTPUT_START = 60
# An empty final block (fixed Huffman codes): what ends a raw deflate stream.
END = b"\x03\x00"


@dataclass(frozen=True)
class PrefixDeflate:
    """Lines deflated once, sync-flushed after each: `body(k)` is the first k lines, a piece
    of raw deflate stream that can be joined to other such pieces."""

    data: bytes
    ends: tuple[int, ...]  # k -> bytes of the first k lines

    @classmethod
    def pack(cls, lines: Sequence[str], level: int = 4) -> PrefixDeflate:
        deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
        out: list[bytes] = []
        ends = [0]
        for line in lines:
            out.append(deflate.compress((line + "\n").encode("utf-8", "replace")))
            out.append(deflate.flush(zlib.Z_SYNC_FLUSH))
            ends.append(ends[-1] + len(out[-2]) + len(out[-1]))
        return cls(b"".join(out), tuple(ends))

    def body(self, keep: int) -> bytes:
        return self.data[: self.ends[min(keep, len(self.ends) - 1)]]

    def size(self, keep: int) -> int:
        """About the base64 bytes the first `keep` lines take in the page."""
        return -(-4 * self.ends[min(keep, len(self.ends) - 1)] // 3)


def joined(pieces: Iterable[bytes]) -> str:
    """The pieces as one raw deflate stream, base64: what the page's table reads."""
    return base64.b64encode(b"".join(pieces) + END).decode("ascii")


def _start(text: Any, n: int) -> str:
    return " ".join(str(text or "").split())[:n]


def mean_logprob(logprobs: Any) -> float | None:
    if not isinstance(logprobs, list):
        return None
    finite = [
        v
        for v in logprobs
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    return round(sum(finite) / len(finite), 3) if finite else None


def group_line(step: int, group: dict[str, Any]) -> str:
    """One group's rows: [step, group, prompt start, [[idx, reward, length, mean logprob,
    output start], ...]], from the group as the page holds it."""
    rows = []
    trajectories = group.get("t")
    for i, t in enumerate(trajectories if isinstance(trajectories, list) else []):
        if not isinstance(t, dict):  # whatever a damaged group holds shows as text
            t = {"i": i, "o": str(t)}
        text = t.get("o") if isinstance(t.get("o"), str) else ""
        length = t.get("nt") if isinstance(t.get("nt"), int) else len(text)
        rows.append(
            [
                t.get("i", i),
                _number(t.get("r")),
                length,
                mean_logprob(t.get("lp")),
                _start(text or ("(turns)" if t.get("turns") else ""), OUTPUT_START),
            ]
        )
    prompt = group.get("q") or group.get("p") or ""
    return dumps([step, group.get("g"), _start(prompt, PROMPT_START), rows])


def _number(v: Any) -> float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return v if ok else None
