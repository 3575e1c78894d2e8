"""A run's rollouts as per-step chunks: figures for the charts, compressed JSON for the page.

A step is read in two passes (tviz/store/figures.py). First its groups' figures, without any
text: every trajectory's reward and output length, which make the step's exact figures for
the charts and rank its groups in the order a sample keeps them (the best, the worst, then
the mixed ones with the widest spread of rewards, then the rest). Then only the groups the
page keeps are read whole and encoded: gzip + base64, decoded by the page with
DecompressionStream when the reader opens that step. So a build holds one step's rows at a
time and encodes a few thousand groups of a run of a million trajectories.

Chunks are cached by the step's fingerprint from `Store.rollout_index`, so re-rendering a run
that gained a step reads and encodes that step only.
"""

from __future__ import annotations

import base64
import functools
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tviz.render.embed import PrefixGzip, dumps
from tviz.render.group_json import _text, group_json, token_count
from tviz.render.table import PrefixDeflate, group_line
from tviz.store import GroupFigures, Rollout
from tviz.values import finite_number

_NOTHING = PrefixGzip.pack([])
_NO_LINES = PrefixDeflate.pack([])


# Up to this many distinct rewards, the distribution chart has a row per reward value.
FEW_REWARDS = 12


def few_rewards(chunks: Iterable[StepChunk]) -> list[float] | None:
    """The run's distinct finite rewards, sorted, when there are FEW_REWARDS or fewer (each
    value as first met); else None."""
    seen: dict[float, None] = {}
    for chunk in chunks:
        if chunk.counts is None:
            return None
        for r in chunk.counts:
            seen.setdefault(r, None)
        if len(seen) > FEW_REWARDS:
            return None
    return sorted(seen)


class NotEncoded(LookupError):
    """A chunk was asked the cost of more groups than are encoded (`StepChunk.ready`)."""


@dataclass
class StepChunk:
    """One step's groups: the figures of all of them, and the first `ready` encoded."""

    step: int
    fingerprint: tuple[int, int]
    stats: dict[str, Any]  # shown in the page's step list
    rewards: Sequence[float]  # every finite trajectory reward (8 bytes each), for the charts
    length_total: int  # output lengths, summed over the step's trajectories
    length_count: int  # trajectories counted in `length_total`
    length_unit: str  # "tokens" or "chars"
    keys: list[Any]  # the groups (`GroupFigures.key`), in the order a sample keeps them
    sizes: list[int]  # about the characters of each group's JSON, in that order
    geo: bool = False  # some group has a true location (the page then draws a map)
    packed: PrefixGzip = field(default=_NOTHING)  # the first `ready` groups, encoded
    table: PrefixDeflate = field(default=_NO_LINES)  # their lines in the samples table
    # Each distinct finite reward's count, when the step has at most FEW_REWARDS of them.
    counts: dict[float, int] | None = None
    # Each group's prompt key and mean reward, in group order (the prompts' history).
    prompts: list[tuple[str | None, float | None]] = field(default_factory=list)

    @property
    def n_groups(self) -> int:
        return len(self.keys)

    @property
    def ready(self) -> int:
        """Groups encoded, from the first in `keys`."""
        return self.packed.items

    def _kept(self, keep: int) -> int:
        k = min(keep, self.n_groups)
        if k > self.ready:
            raise NotEncoded(f"step {self.step}: {k} groups asked, {self.ready} encoded")
        return k

    def cost(self, keep: int) -> int:
        """Bytes the first `keep` groups take in the page: their rollouts and table rows."""
        return self._costs[self._kept(keep)]

    def encoded(self, keep: int) -> str:
        """The first `keep` groups by priority, gzip + base64."""
        return base64.b64encode(self.packed.gzip(self._kept(keep))).decode("ascii")

    def size(self, keep: int) -> int:
        """Bytes of `encoded(keep)`."""
        return self.packed.b64_size(self._kept(keep))

    def encode(self, rollouts: Sequence[Rollout], base_dir: Path | None) -> None:
        """Encode the next groups of `keys` (`held` of them are held already): these, read
        whole, in that order. The page's bytes of the first k groups never depend on how
        many more are encoded."""
        for rollout in rollouts:
            finite = (finite_number(t.reward) for t in rollout.trajectories)
            rewards = [float(r) for r in finite if r is not None]
            uniform = len(rewards) > 1 and len(set(rewards)) == 1
            group = group_json(rollout, rewards, uniform, base_dir)
            self._groups.append(dumps(group))
            self._lines.append(group_line(self.step, group))
        self.packed = PrefixGzip.pack(self._groups)
        self.table = PrefixDeflate.pack(self._lines)
        self._count_costs()

    def _count_costs(self) -> None:
        """`cost(k)` of every k up to `ready`: the budget's search asks them again and again."""
        packed, table = self.packed, self.table
        self._costs = [packed.b64_size(k) + table.size(k) for k in range(packed.items + 1)]

    @property
    def held(self) -> int:
        """Groups whose JSON is held, so that encoding more compresses them again without
        reading them (`release` lets them go)."""
        return len(self._groups)

    def release(self) -> None:
        """Let the held JSON go (the encoded groups stay)."""
        self._groups, self._lines = [], []

    @functools.cached_property
    def stats_json(self) -> str:
        """`dumps(stats)` without its closing brace: the page's step list adds to it."""
        return dumps(self.stats)[:-1]

    def chars(self, keep: int) -> int:
        """The estimated characters of the first `keep` groups (`sizes`)."""
        return self._chars[min(keep, len(self._chars) - 1)]

    def __post_init__(self) -> None:
        self._chars = [0]
        for size in self.sizes:
            self._chars.append(self._chars[-1] + size)
        self._groups: list[str] = []
        self._lines: list[str] = []
        self._bins: tuple[Any, dict[int, int]] = (None, {})
        self._count_costs()

    def reward_bins(self, values: list[float] | None, lo: float, hi: float) -> dict[int, int]:
        """How many of the step's rewards fall in each bin of the distribution chart: one bin
        per value of `values` (the run's few distinct rewards), else 20 from `lo` to `hi`.
        Kept for the last bins asked: `tviz watch` asks the same of every step again."""
        key = (None if values is None else tuple(values), lo, hi)
        if self._bins[0] == key:
            return self._bins[1]
        bins: dict[int, int] = {}
        if values is not None and self.counts is not None:
            for r, n in self.counts.items():
                b = values.index(r)
                bins[b] = bins.get(b, 0) + n
        else:
            for r in self.rewards:
                if values is not None:
                    b = values.index(r)
                else:
                    b = min(int((r - lo) / ((hi - lo) or 1.0) * 20), 19)
                bins[b] = bins.get(b, 0) + 1
        self._bins = (key, bins)
        return bins


def figures_of(rollout: Rollout, key: Any) -> GroupFigures:
    """A whole group's figures, as the store reads them without its texts."""
    lengths: list[int] = []
    tokens = False
    for traj in rollout.trajectories:
        n_tokens = token_count(traj.output_tokens, traj.logprobs)
        if n_tokens is not None:
            tokens = True
            lengths.append(n_tokens)
        else:
            lengths.append(len(_text(traj.output_text) or ""))
    geo = finite_number(rollout.gt_lat) is not None and finite_number(rollout.gt_lon) is not None
    rewards = [t.reward for t in rollout.trajectories]
    return GroupFigures(key, rewards, lengths, tokens, geo, 0)


def figure_step(step: int, groups: list[GroupFigures], fingerprint: tuple[int, int]) -> StepChunk:
    """A step's chunk from its groups' figures, nothing encoded yet."""
    summaries: list[tuple[float, float, bool]] = []  # (mean, spread, uniform) per group
    rewards = array("d")
    length_total = length_count = 0
    token_lengths = False
    good = bad = mixed = traj = 0
    for g in groups:
        finite = (finite_number(r) for r in g.rewards)
        group_rewards = [float(r) for r in finite if r is not None]
        rewards.extend(group_rewards)
        length_total += sum(g.lengths)
        length_count += len(g.lengths)
        token_lengths = token_lengths or g.tokens
        traj += len(g.rewards)
        uniform = len(group_rewards) > 1 and len(set(group_rewards)) == 1
        if uniform:
            good, bad = (good + 1, bad) if group_rewards[0] > 0 else (good, bad + 1)
        elif len(group_rewards) > 1:
            mixed += 1
        mean = sum(group_rewards) / len(group_rewards) if group_rewards else math.nan
        # statistics.pstdev is exact (fractions) and 10x slower; a spread for ranking is enough
        spread = (
            math.sqrt(sum((r - mean) ** 2 for r in group_rewards) / len(group_rewards))
            if group_rewards
            else 0.0
        )
        summaries.append((mean, spread, uniform))
    order = _priority(summaries)
    spreads = [s[1] for s in summaries if not math.isnan(s[0])]
    counts = Counter(rewards)
    stats = {
        "step": step,
        "groups": len(groups),
        "traj": traj,
        "best": max(rewards) if rewards else None,
        "mean": sum(rewards) / len(rewards) if rewards else None,
        "worst": min(rewards) if rewards else None,
        "flat": sum(1 for s in summaries if s[2]),
        "good": good,
        "bad": bad,
        "mixed": mixed,
        # Mean of each group's reward spread (population std): the learning signal GRPO has,
        # for continuous rewards too.
        "spread": sum(spreads) / len(spreads) if spreads else None,
    }
    return StepChunk(
        step=step,
        fingerprint=fingerprint,
        stats=stats,
        rewards=rewards,
        length_total=length_total,
        length_count=length_count,
        length_unit="tokens" if token_lengths else "chars",
        keys=[groups[i].key for i in order],
        sizes=[groups[i].size for i in order],
        geo=any(g.geo for g in groups),
        counts=dict(counts) if len(counts) <= FEW_REWARDS else None,
        prompts=[(g.prompt, g.mean) for g in groups],
    )


def encode_step(
    step: int, rollouts: list[Rollout], fingerprint: tuple[int, int], base_dir: Path | None
) -> StepChunk:
    """A step's chunk from its whole groups, every group encoded (eval sets, tests)."""
    chunk = figure_step(step, [figures_of(r, i) for i, r in enumerate(rollouts)], fingerprint)
    chunk.encode([rollouts[i] for i in chunk.keys], base_dir)
    chunk.release()
    return chunk


def _priority(summaries: list[tuple[float, float, bool]]) -> list[int]:
    """Which groups a sample keeps first: best, worst, mixed (widest spread first), the rest."""
    if not summaries:
        return []
    scored = [i for i, s in enumerate(summaries) if not math.isnan(s[0])]
    order: list[int] = []
    if scored:
        order.append(max(scored, key=lambda i: (summaries[i][0], -i)))
        worst = min(scored, key=lambda i: (summaries[i][0], i))
        if worst not in order:
            order.append(worst)
    taken = set(order)
    mixed = sorted(
        (i for i, s in enumerate(summaries) if not s[2] and i not in taken),
        key=lambda i: (-summaries[i][1], i),
    )
    order += mixed
    taken.update(mixed)
    order += [i for i in range(len(summaries)) if i not in taken]
    return order


# grow(k, chunks): encode at least the first k groups of these chunks (None: every chunk).
Grow = Callable[[int, "list[StepChunk] | None"], None]


def plan_sample(
    chunks: list[StepChunk],
    available: int,
    key: Callable[[StepChunk], int] | None = None,
    grow: Grow | None = None,
    hint: int | None = None,
) -> dict[int, int]:
    """Groups to keep per step so the chunks and their table rows fit in `available` bytes.

    The same number of groups for every step (the largest that fits); if even one group a
    step is too much, the oldest steps lose their rollouts. `key` names a chunk in the plan
    (default its step; eval chunks, several a step, use their place).

    Chunks need only be encoded as far as the answer: the search starts at `hint` (a guess of
    the answer; None: every group), `grow(k)` encodes the first k groups of each chunk where
    it must, and from there the count grows by 1, 2, 4... until it no longer fits, then the
    search halves what is left. The answer is the same whatever the hint: the cost of k
    groups only grows with k.
    """
    name = key or (lambda c: c.step)
    top = max((c.n_groups for c in chunks), default=0)

    def fits(k: int) -> bool:
        if grow is not None:
            grow(k, None)
        return sum(c.cost(k) for c in chunks) <= available

    k = top if hint is None else min(max(hint, 1), top)
    if k and fits(k):
        lo, hi, more = k, top, 1
        while lo < hi:  # one more, then twice as many more, until it no longer fits
            nxt = min(top, lo + more)
            if not fits(nxt):
                hi = nxt - 1
                break
            lo, more = nxt, 2 * more
    else:
        lo, hi = 0, k - 1
    while lo < hi:  # the largest k whose total fits: every cost here is encoded
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    if lo >= 1:
        return {name(c): min(lo, c.n_groups) for c in chunks}
    plan = {name(c): 0 for c in chunks}
    if grow is not None:
        grow(1, None)
    left = available
    for chunk in sorted(chunks, key=lambda c: -name(c)):  # newest steps first
        cost = chunk.cost(1)
        if cost > left:
            break
        plan[name(chunk)] = 1
        left -= cost
    return plan


def estimate_keep(chunks: list[StepChunk], available: int) -> int:
    """A guess of how many groups a step can keep within `available` bytes, from the groups'
    sizes and the bytes per character of the groups encoded so far (1 if none is)."""
    ratio = _per_char(chunks, StepChunk.cost)
    top = max((c.n_groups for c in chunks), default=0)
    lo, hi = 0, top
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ratio * sum(c.chars(mid) for c in chunks) <= available:
            lo = mid
        else:
            hi = mid - 1
    return lo


def full_cost(chunks: list[StepChunk]) -> tuple[int, int]:
    """Bytes every group of the chunks takes in a page with its table rows, and without:
    exact where all are encoded, else estimated as `estimate_keep` estimates."""
    if all(c.ready == c.n_groups for c in chunks):
        sizes = [(c.cost(c.n_groups), c.size(c.n_groups)) for c in chunks]
        return sum(a for a, _ in sizes), sum(b for _, b in sizes)
    everything = sum(c.chars(c.n_groups) for c in chunks)
    with_table = _per_char(chunks, StepChunk.cost)
    without = _per_char(chunks, StepChunk.size)
    return int(with_table * everything), int(without * everything)


def _per_char(chunks: list[StepChunk], cost: Callable[[StepChunk, int], int]) -> float:
    """Bytes in a page per estimated character, over the groups encoded so far (1: none)."""
    sample = [c for c in chunks if c.ready]
    chars = sum(c.chars(c.ready) for c in sample)
    return sum(cost(c, c.ready) for c in sample) / chars if chars else 1.0
