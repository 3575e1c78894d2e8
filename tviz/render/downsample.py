"""Deterministic downsampling for drawing: min and max per bucket, so spikes survive.

A browser draws 100k points slowly (docs/measurements.md); a chart is a few hundred pixels wide.
Random sampling hides the spikes users look for, so each bucket keeps its lowest and highest
point (in step order), plus the first and last point of the series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Downsampled:
    steps: list[int]
    values: list[float | None]  # None where the logged value was NaN or infinite (a gap)
    original_points: int

    @property
    def reduced(self) -> bool:
        return len(self.steps) < self.original_points


def minmax(
    steps: Sequence[int], values: Sequence[float | None], max_points: int = 1000
) -> Downsampled:
    """At most about `max_points` points keeping each bucket's min and max.

    Non-finite values become None and are kept (one per bucket) so the chart shows the gap.
    """
    n = len(steps)
    if n > max_points and _all_finite(values):  # the usual series: min and max in C
        buckets = max(1, (max_points - 2) // 2)
        keep = {0, n - 1}
        for b in range(buckets):
            lo = b * n // buckets
            hi = (b + 1) * n // buckets
            if lo < hi:
                part = values[lo:hi]
                keep.add(lo + part.index(min(part)))  # the first lowest, as below
                keep.add(lo + part.index(max(part)))
        idx = sorted(keep)
        return Downsampled([steps[i] for i in idx], [values[i] for i in idx], n)
    clean = [v if v is not None and math.isfinite(v) else None for v in values]
    if n <= max_points:
        return Downsampled(list(steps), clean, n)
    buckets = max(1, (max_points - 2) // 2)
    keep: set[int] = {0, n - 1}
    for b in range(buckets):
        lo = b * n // buckets
        hi = (b + 1) * n // buckets
        best_lo = best_hi = gap = None
        for i in range(lo, hi):
            v = clean[i]
            if v is None:
                if gap is None:
                    gap = i
                continue
            if best_lo is None or v < clean[best_lo]:
                best_lo = i
            if best_hi is None or v > clean[best_hi]:
                best_hi = i
        keep.update(i for i in (best_lo, best_hi, gap) if i is not None)
    idx = sorted(keep)
    return Downsampled([steps[i] for i in idx], [clean[i] for i in idx], n)


def _all_finite(values: Sequence[float | None]) -> bool:
    """Every value a finite number (a sum is NaN or infinite otherwise, or fails on None; a
    sum past a double's range sends a finite series the slow way, which gives the same)."""
    try:
        return math.isfinite(sum(values))
    except TypeError:
        return False
