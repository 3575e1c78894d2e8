"""One simulated run through a TvizLogger: its config, then a step at a time its groups and the
metrics tinker-cookbook logs (`env/all/reward/total`, `env/all/by_group/frac_mixed`,
`optim/entropy`, `time/total`, ...), on a simulated clock."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from tviz.demo.policy import skill_at
from tviz.demo.text import text_step
from tviz.demo.vision import vision_step
from tviz.logger import TvizLogger
from tviz.records import Rollout


def _config(
    modality: str, steps: int, groups: int, samples: int, max_tokens: int, seed: int
) -> dict[str, Any]:
    return {
        "model_name": "Qwen/Qwen3-8B" if modality == "text" else "Qwen/Qwen3-VL-30B-A3B-Instruct",
        "recipe_name": "math_rl" if modality == "text" else "geo_guess_rl",
        "learning_rate": 4e-5,
        "lora_rank": 32,
        "loss_fn": "importance_sampling",
        "max_tokens": max_tokens,
        "temperature": 1.0,
        "num_substeps": 1,
        "kl_penalty_coef": 0.0,
        "dataset_builder": {
            "batch_size": groups,
            "group_size": samples,
            "renderer_name": "qwen3",
            "seed": seed,
        },
        "max_steps": steps,
        "simulated": True,
        "notes": "a simulated run (tviz demo)"
        + (
            "; one group in five is a two-turn calculator episode, so a step has more turns"
            " than episodes"
            if modality == "text"
            else "; each guess is rewarded by its distance from the true location"
        ),
    }


def _group_outcomes(rollouts: list[Rollout]) -> dict[str, int]:
    """How many groups got mixed rewards (GRPO's signal), all good or all bad ones."""
    counts = {"mixed": 0, "all_good": 0, "all_bad": 0}
    for rollout in rollouts:
        rewards = [t["reward"] for t in rollout["trajectories"]]
        if len(set(rewards)) > 1:
            counts["mixed"] += 1
        elif rewards[0] >= 0.5:
            counts["all_good"] += 1
        else:
            counts["all_bad"] += 1
    return counts


def simulate_run(
    logger: TvizLogger,
    *,
    steps: int = 30,
    groups: int = 8,
    samples: int = 8,
    output_tokens: int = 160,
    seed: int = 0,
    modality: str = "text",
    image_dir: str | os.PathLike[str] | None = None,
    eval_every: int = 5,
    start: float | None = None,
    inject: tuple[str, ...] = (),
) -> float:
    """Log a simulated GRPO run into `logger`: config, per-step metrics and rollouts.

    Args:
        logger: where to log; the caller closes it.
        steps, groups, samples: training iterations, prompts per batch, samples per prompt.
        output_tokens: the most tokens an answer has (answers cut there are "truncated").
        seed: the same seed gives the same run.
        modality: "text" (math) or "vision" (geo-guessing; needs `image_dir`).
        image_dir: where the vision run writes its PNG images.
        eval_every: log `test/env/all/...` metrics every this many steps (0: never).
        start: if given, the run's simulated clock (Unix seconds) at step 0: each step is
            logged at the time it would have ended, so durations and tokens per day look real.
        inject: strings some prompts and answers of the math run carry (tests give markup
            that would break a page that did not escape it; the demo gives none).

    Returns the simulated duration in seconds.
    """
    if modality == "vision" and image_dir is None:
        raise ValueError("a vision run needs image_dir for its images")
    rng = random.Random(seed)
    logger.log_hparams(_config(modality, steps, groups, samples, output_tokens, seed))
    lr = 4e-5
    cumulative_tokens = 0
    cumulative_cost = 0.0
    elapsed = 0.0
    for step in range(steps):
        if modality == "vision":
            rollouts, stats = vision_step(
                rng, step, steps, groups, samples, Path(image_dir), logger.db_path.parent
            )
        else:
            rollouts, stats = text_step(
                rng, step, steps, groups, samples, output_tokens, tuple(inject)
            )
        # Sampling ends, then the step's metrics after its training: the simulated clock.
        sample_clock = None if start is None else start + elapsed + 8.0

        skill = skill_at(step, steps, 0.0)
        sampled = stats["ac_tokens"]
        cumulative_tokens += sampled
        step_cost = sampled * 2.4e-7 + stats["ob_tokens"] * 6e-8
        cumulative_cost += step_cost
        sampling_s = 8.0 + sampled / 900 + rng.random() * 3
        train_s = 4.0 + sampled / 2500 + rng.random()
        total_s = sampling_s + train_s + 0.4
        elapsed += total_s
        logger.log_rollouts(rollouts, step=step, timestamp=sample_clock)
        rewards = [t["reward"] for rollout in rollouts for t in rollout["trajectories"]]
        outcomes = _group_outcomes(rollouts)
        metrics: dict[str, Any] = {
            "progress/batch": step,
            "progress/done_frac": (step + 1) / steps,
            "optim/lr": lr,
            "env/all/reward/total": sum(rewards) / len(rewards),
            "env/all/turns_per_episode": stats["turns"] / len(rewards),
            "env/all/total_episodes": len(rewards),
            "env/all/total_turns": stats["turns"],
            "env/all/total_ac_tokens": sampled,
            "env/all/total_ob_tokens": stats["ob_tokens"],
            "env/all/ac_tokens_per_turn": sampled / max(1, stats["turns"]),
            "env/all/ob_tokens_per_turn": stats["ob_tokens"] / max(1, stats["turns"]),
            "env/all/by_group/frac_mixed": outcomes["mixed"] / groups,
            "env/all/by_group/frac_all_good": outcomes["all_good"] / groups,
            "env/all/by_group/frac_all_bad": outcomes["all_bad"] / groups,
            "optim/kl_sample_train_v1": abs(rng.gauss(2e-4, 1e-4)) * (1 + 2 * skill),
            "optim/kl_sample_train_v2": abs(rng.gauss(4e-4, 2e-4)) * (1 + 2 * skill),
            "optim/entropy": max(0.05, 0.85 - 0.55 * skill + rng.gauss(0, 0.03)),
            "tokens/sampled": sampled,
            "tokens/cumulative/sampled": cumulative_tokens,
            "cost/step_usd": step_cost,
            "cost/cumulative_usd": cumulative_cost,
            "time/sampling": sampling_s,
            "time/train_step": train_s,
            "time/policy_sample:mean": sampling_s / max(1, stats["turns"]) * groups,
            "time/total": total_s,
            "time/elapsed": elapsed,
        }
        for key in ("correct", "format", "distance_km"):
            if key in stats:
                metrics[f"env/all/{key}"] = stats[key]
        if eval_every and step % eval_every == 0:
            metrics["test/env/all/reward/total"] = min(1.0, max(-0.1, skill + rng.gauss(0, 0.05)))
            metrics["test/env/all/correct"] = min(1.0, max(0.0, skill + rng.gauss(0, 0.05)))
        logger.log_metrics(metrics, step=step, timestamp=None if start is None else start + elapsed)
    logger.log_summary({"cost/cumulative_usd": cumulative_cost})
    return elapsed
