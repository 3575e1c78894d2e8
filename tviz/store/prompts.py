"""Prompt history: each prompt a run saw at several steps, and its group's mean reward there.

Read from every group the run logged (the store's per-group `rollouts.mean_reward`), not only
the groups a page keeps within its size budget, so a page can show how one prompt fared over
the whole of training. A function of the store's snapshot connection: called inside
`Store.snapshot()`, it reads the same moment as the rest of the page.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3

# The most points a prompt's history keeps (the newest): a prompt seen at every step of a
# 100,000-step run must not fill the page.
MAX_POINTS = 400


def prompt_key(text: str, image: str | None = None) -> str:
    """A short, stable name for a prompt: its text and, for a vision prompt, its image's path
    (one question asked of many photos is many prompts). The page matches groups to
    histories by it."""
    whole = text if not image else f"{text}\x00{image}"
    return hashlib.sha1(whole.encode("utf-8", "replace")).hexdigest()[:12]


def prompt_history(conn: sqlite3.Connection, run_id: str) -> dict[str, list[list[float]]]:
    """prompt key -> [steps, mean rewards] for each prompt seen at two or more steps, in step
    order. A group without a stored mean gets its trajectories' mean reward. Training groups
    only: eval rollouts (`eval_name` set) are no step of training."""
    rows = conn.execute(
        """
        SELECT r.prompt_text, r.image_path, r.step,
               COALESCE(r.mean_reward,
                        (SELECT avg(t.reward) FROM trajectories t WHERE t.rollout_id = r.id))
        FROM rollouts r JOIN (
            SELECT prompt_text, COALESCE(image_path, '') AS image FROM rollouts
            WHERE run_id = ? AND prompt_text IS NOT NULL AND prompt_text != ''
              AND eval_name IS NULL
            GROUP BY prompt_text, image HAVING count(DISTINCT step) > 1
        ) seen ON seen.prompt_text = r.prompt_text AND seen.image = COALESCE(r.image_path, '')
        WHERE r.run_id = ? AND r.eval_name IS NULL
        ORDER BY r.step, r.group_idx, r.id
        """,
        (run_id, run_id),
    )
    out: dict[str, list[list[float]]] = {}
    keys: dict[tuple[str, str], str] = {}
    for text, image, step, mean in rows:
        if not isinstance(text, str):
            continue
        image = image if isinstance(image, str) else None
        key = keys.get((text, image or ""))
        if key is None:
            key = keys[text, image or ""] = prompt_key(text, image)
        mean = float(mean) if isinstance(mean, (int, float)) and math.isfinite(mean) else None
        steps, means = out.setdefault(key, [[], []])
        steps.append(step)
        means.append(mean)
    for key, (steps, means) in out.items():
        if len(steps) > MAX_POINTS:
            out[key] = [steps[-MAX_POINTS:], means[-MAX_POINTS:]]
    return out
