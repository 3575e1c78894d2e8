"""Smoothing: one rule, the same as the page's (tviz/templates/run/smooth.js), so a static
figure made in Python shows what the page draws. tests/test_smoothing.py checks that both give
the same numbers.

A debiased exponential moving average over a series' points in order, as TensorBoard's:
avg = avg * weight + (1 - weight) * value, shown divided by (1 - weight**n) after n values. A gap
(None, NaN) stays a gap and leaves the average as it was. weight**n is kept by multiplication,
as the page does, so that both round alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def ema(values: Sequence[float | None], weight: float) -> list[float | None]:
    """The smoothed series; `weight` in [0, 1): 0 leaves the values as they are."""
    out: list[float | None] = []
    last, decay = 0.0, 1.0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(None)
            continue
        last = last * weight + (1 - weight) * v
        decay *= weight
        out.append(last / (1 - decay) if weight > 0 else v)
    return out


def default_smoothing(steps: int) -> float:
    """The smoothing a run of `steps` steps gets by default: off below 100 steps; from there
    an average over about a thirtieth of the run (weight 1 - 30 / steps), kept between 0.6 and
    0.95, to two decimals."""
    if not steps >= 100:
        return 0.0
    w = min(0.95, max(0.6, 1 - 30 / steps))
    return math.floor(w * 100 + 0.5) / 100
