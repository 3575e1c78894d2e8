"""Deleting what an import replaces: the stored metrics of steps a resumed run wrote again,
and the stored groups of iterations whose files changed.

`TvizLogger` only adds and overwrites, so this is the one place where an import deletes. It
deletes only steps it writes again right after (same import), in one transaction before the
logger opens: an import that stops in between leaves the steps missing, and the next import,
seeing them missing, writes them.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from tviz import schema

__all__ = ["delete_steps"]


def delete_steps(
    db_path: Path, run_id: str, metric_steps: set[int], rollout_steps: set[int]
) -> None:
    """Delete run `run_id`'s metric values at `metric_steps` (and the steps' 0.2.x rows) and
    every rollout group (training and eval) at `rollout_steps`."""
    if not metric_steps and not rollout_steps:
        return
    with closing(schema.connect(db_path, create=False)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for step in sorted(metric_steps):
                conn.execute("DELETE FROM metrics WHERE run_id = ? AND step = ?", (run_id, step))
                conn.execute("DELETE FROM steps WHERE run_id = ? AND step = ?", (run_id, step))
            for step in sorted(rollout_steps):
                groups = "SELECT id FROM rollouts WHERE run_id = ? AND step = ?"
                conn.execute(
                    f"DELETE FROM trajectories WHERE rollout_id IN ({groups})", (run_id, step)
                )
                conn.execute("DELETE FROM rollouts WHERE run_id = ? AND step = ?", (run_id, step))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
