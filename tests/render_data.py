"""Small real databases for the renderer's tests, written through TvizLogger(strict=True)."""

from __future__ import annotations

import base64
import gzip
import json
import math
import re
import sqlite3
from pathlib import Path

from tviz import TvizLogger

# Text that breaks a page which does not escape it. Each payload would call alert() if run.
SCRIPT = "</script><script>alert('script')</script>"
IMG = "<img src=x onerror=alert('img')>"
COMMENT = "<!-- not a comment"
SEP = "line\u2028separator\u2029end"
HOSTILE_NAME = f"evil {SCRIPT} run"
# One string per sampled token (8 per trajectory in text_run), hostile ones among them.
TOKEN_TEXTS = ["The", " answer", " is", " 42", ".", "\n", SCRIPT, IMG]


def text_run(path: Path, *, steps: int = 6, groups: int = 4, samples: int = 4) -> str:
    """An RL text run with hostile text everywhere, multi-turn episodes and NaN metrics."""
    config = {
        "model_name": "Qwen/Qwen3-8B",
        "learning_rate": 4e-5,
        "group_size": samples,
        "note": SCRIPT + IMG,
        "nested": {"renderer": {"name": "qwen3", "tags": ["<b>bold</b>", COMMENT]}},
    }
    with TvizLogger(path, HOSTILE_NAME, run_id="textrun", config=config, strict=True) as log:
        for step in range(steps):
            rollouts = []
            for g in range(groups):
                trajectories = []
                for i in range(samples):
                    flat = g == 0  # group 0: every sample the same reward (no signal)
                    reward = 1.0 if flat else float((i + step + g) % 2)
                    trajectories.append(
                        {
                            "reward": reward,
                            "output_text": f"answer {step}.{g}.{i} {SCRIPT} {IMG} {COMMENT} {SEP}",
                            "output_tokens": list(range(8)),
                            "logprobs": [-0.1 * k for k in range(8)],
                            "step_rewards": [0.0, reward],
                            "turns": [
                                {"role": "user", "content": f"turn question {IMG}"},
                                {"role": "assistant", "content": "turn answer 42"},
                            ]
                            if g == 1
                            else None,
                        }
                    )
                    if g == 2:  # decoded tokens: the heatmap shows them as text
                        trajectories[-1]["token_texts"] = TOKEN_TEXTS
                rollouts.append(
                    {
                        "prompt_text": f"Prompt {step}/{g}: what is 6 x 7? {SCRIPT}",
                        "trajectories": trajectories,
                    }
                )
            log.log_rollouts(rollouts, step=step)
            log.log_metrics(
                {
                    "env/all/reward/total": step / steps,
                    "optim/kl": math.nan if step == 2 else 0.01 * step,
                    "optim/lr": 4e-5,
                    "time/total": 10.0 + step,
                    "env/all/by_group/frac_mixed": 0.75,
                    "notes/phase": f"phase {IMG}",
                },
                step=step,
            )
    return "textrun"


def sl_run(path: Path, steps: int = 5) -> str:
    """A supervised run: metrics only, no rollouts."""
    with TvizLogger(path, "sft-run", run_id="sftrun", run_type="sl", strict=True) as log:
        for step in range(steps):
            log.log_metrics({"train/loss": 2.0 / (step + 1), "train/lr": 1e-4}, step=step)
    return "sftrun"


def vision_run(path: Path, image: Path) -> str:
    with TvizLogger(path, "geo", "vision", run_id="georun", strict=True) as log:
        for step in range(2):
            log.log_rollouts(
                [
                    {
                        "prompt_text": "Where is this?",
                        "image_path": str(image),
                        "gt_lat": 48.85,
                        "gt_lon": 2.35,
                        "city": "Paris",
                        "country": "France",
                        "trajectories": [
                            {
                                "reward": 0.9,
                                "output_text": "Paris",
                                "pred_lat": 48.0,
                                "pred_lon": 2.0,
                                "distance_km": 97.0,
                            },
                            {
                                "reward": 0.1,
                                "output_text": "Rome",
                                "pred_lat": 41.9,
                                "pred_lon": 12.5,
                                "distance_km": 1105.0,
                            },
                        ],
                    }
                ],
                step=step,
            )
            log.log_metrics({"env/all/reward/total": 0.5}, step=step)
    return "georun"


# 2026-11-25 00:00 UTC: the days the tokens-per-day tests log on.
DAY0 = 1_795_564_800.0


def tokens_run(path: Path, days: list[int], run_id: str = "tokrun") -> dict[str, int]:
    """A run that logs sampled tokens on each day offset (from DAY0) in `days`, two steps a
    day at 01:00 and 23:00 UTC, so a day's tokens come from two steps. Returns the
    expected tokens per 'YYYY-MM-DD'."""
    import datetime as dt

    expected: dict[str, int] = {}
    with TvizLogger(path, f"tokens-{run_id}", run_id=run_id, strict=True) as log:
        step = 0
        for day in days:
            for hour, tokens in ((1, 1000 + day), (23, 500)):
                ts = DAY0 + day * 86400 + hour * 3600
                log.log_metrics({"env/all/total_ac_tokens": tokens}, step=step, timestamp=ts)
                key = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")
                expected[key] = expected.get(key, 0) + tokens
                step += 1
    return expected


def quiet_run(path: Path, last_data_ago_s: float, run_id: str = "quietrun") -> str:
    """A run still marked running (never closed) whose last data is `last_data_ago_s` old."""
    import time

    t0 = time.time() - last_data_ago_s - 60
    log = TvizLogger(path, f"open-{run_id}", run_id=run_id, started_at=t0, strict=True)
    for step in range(3):
        log.log_metrics({"env/all/reward/total": 0.1 * step}, step=step, timestamp=t0 + 20 * step)
    log.close(status=None)  # writes everything, leaves the run open
    return run_id


def prototype_metric_runs(path: Path) -> None:
    """Two runs: one logs metrics named like Object.prototype's keys, one does not."""
    with TvizLogger(path, "proto-names", run_id="protorun", strict=True) as log:
        for step in range(4):
            log.log_metrics(
                {"constructor": step, "toString": 2.0 * step, "__proto__": 1.0, "loss": 1.0},
                step=step,
            )
    with TvizLogger(path, "plain-names", run_id="plainrun", strict=True) as log:
        for step in range(4):
            log.log_metrics({"loss": 1.0 / (step + 1)}, step=step)


# -- reading a built page back ---------------------------------------------------------------


def embedded_groups(page: Path, step: int) -> list[dict]:
    """The rollout groups a run page embeds for `step` (its gzip + base64 chunk), in the order
    the page holds them."""
    html = page.read_text("utf-8")
    found = re.search(rf'id="chunk-{step}">([^<]*)</script>', html)
    return json.loads(gzip.decompress(base64.b64decode(found.group(1))))


def history_run(path: Path, steps: int = 6, groups: int = 5) -> str:
    """The same `groups` prompts at every step (a dataset's epochs), with outputs that do not
    compress, so that a tight budget leaves groups out. Group g's mean reward is g / 10 + step
    / 100 (its first trajectory gets 2 * that, the second 0)."""
    import random

    rng = random.Random(0)
    with TvizLogger(path, "history", run_id="histrun", strict=True) as log:
        for step in range(steps):
            rollouts = []
            for g in range(groups):
                mean = g / 10 + step / 100
                rollouts.append(
                    {
                        "prompt_text": f"Question {g}: how many legs do {g + 2} spiders have?",
                        "trajectories": [
                            {
                                "reward": r,
                                "output_text": "".join(rng.choices("abcdefghij ", k=1500)),
                                "logprobs": [-0.1 * k for k in range(6)],
                                "output_tokens": list(range(6)),
                            }
                            for r in (2 * mean, 0.0)
                        ],
                    }
                )
            log.log_rollouts(rollouts, step=step)
    return "histrun"


def range_run(path: Path, steps: int = 12) -> str:
    """Metrics whose labels need their range's digits: a 16.14-16.165 dip, a constant
    learning rate of 4e-5 and 1.125 turns per episode."""
    with TvizLogger(path, "ranges", run_id="rangerun", strict=True) as log:
        for step in range(steps):
            dip = 16.14 + abs(step - steps / 2) / (steps / 2) * 0.025
            log.log_metrics(
                {
                    "time/total": dip,
                    "optim/lr": 4e-5,
                    "env/all/turns_per_episode": 1.125,
                    "env/all/reward/total": step / steps,
                },
                step=step,
            )
    return "rangerun"


def page_data(page: Path) -> dict:
    """A run page's `page-data` block: its charts, specs, steps and prompt histories."""
    return page_json(page, "page-data")


def page_json(page: Path, block_id: str) -> dict:
    """The JSON of a page's `<script type="application/json" id=block_id>` block."""
    html = page.read_text("utf-8")
    found = re.search(rf'id="{re.escape(block_id)}">([^<]*)</script>', html)
    return json.loads(found.group(1))


def spoil(db: Path, *statements: str | tuple[str, tuple]) -> None:
    """Write into the database as another program (or tviz 0.2.x) would: plain sqlite3."""
    conn = sqlite3.connect(db)
    for statement in statements:
        sql, params = statement if isinstance(statement, tuple) else (statement, ())
        conn.execute(sql, params)
    conn.commit()
    conn.close()
