"""Other x axes than the step: a run's wall time and sampled tokens at each step.

A function of the store's connection (as `store/prompts.py`), called inside `Store.snapshot()`
so it reads the same moment as the rest of the page.

- wall time: seconds since the run's first logged metric, at the first metric logged at each
  step (the `metrics.ts` the writer records);
- tokens: sampled (action) tokens summed up to and including each step, from the per-step
  totals the writer keeps in `steps.total_ac_tokens` (any alias of `total_ac_tokens` logged).
"""

from __future__ import annotations

import math
import sqlite3

Axis = list[list[float]]  # [steps, x values], in step order


def step_axes(conn: sqlite3.Connection, run_id: str) -> dict[str, Axis]:
    """{"time": ..., "tokens": ...}, each only if the run logged it at two steps or more."""
    out: dict[str, Axis] = {}
    rows = conn.execute(
        "SELECT step, min(ts) FROM metrics WHERE run_id = ? AND typeof(step) = 'integer'"
        " AND typeof(ts) IN ('integer', 'real') GROUP BY step ORDER BY step",
        (run_id,),
    ).fetchall()
    rows = [(s, t) for s, t in rows if math.isfinite(t)]
    if len(rows) >= 2:
        start = min(t for _, t in rows)
        out["time"] = [[s for s, _ in rows], [round(t - start, 3) for _, t in rows]]
    rows = conn.execute(
        "SELECT step, total_ac_tokens FROM steps WHERE run_id = ? AND typeof(step) = 'integer'"
        " AND typeof(total_ac_tokens) IN ('integer', 'real') ORDER BY step",
        (run_id,),
    ).fetchall()
    total, steps, tokens = 0.0, [], []
    for step, count in rows:
        if not math.isfinite(count) or (steps and step == steps[-1]):
            continue
        total += count
        steps.append(step)
        tokens.append(total)
    if len(steps) >= 2:
        out["tokens"] = [steps, tokens]
    return out
