"""Quickstart: log a small RL run with tviz (no Tinker needed), then build its report.

    python examples/quickstart.py            # writes ./tviz-quickstart.db
    tviz build --db tviz-quickstart.db --out tviz-report
    open tviz-report/index.html

In your own loop, only the three `logger.` calls matter: config once, metrics and rollouts per
step. Metric names are free; tinker-cookbook's (`env/all/reward/total`, `optim/entropy`, ...) get
the standard charts.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from tviz import TvizLogger

QUESTIONS = [(f"What is {a} + {b}?", a + b) for a, b in ((12, 30), (7, 8), (120, 5), (33, 44))]


def sample_answer(rng: random.Random, answer: int, skill: float) -> tuple[str, float]:
    """Stand-in for your policy and reward function."""
    guess = answer if rng.random() < skill else answer + rng.choice((-2, -1, 1, 10))
    text = f"Let me add the numbers step by step. The sum is \\boxed{{{guess}}}."
    return text, 1.0 if guess == answer else 0.0


def main() -> int:
    db_path = Path(sys.argv[1] if len(sys.argv) > 1 else "tviz-quickstart.db")
    rng = random.Random(0)
    config = {"model_name": "my-model", "learning_rate": 4e-5, "group_size": 4}
    with TvizLogger(db_path, run_name="quickstart", config=config) as logger:
        for step in range(20):
            skill = 0.2 + 0.7 * step / 19
            rollouts, rewards = [], []
            for group_idx, (question, answer) in enumerate(QUESTIONS):
                trajectories = []
                for _ in range(4):  # four samples per prompt, as GRPO does
                    text, reward = sample_answer(rng, answer, skill)
                    trajectories.append({"reward": reward, "output_text": text})
                    rewards.append(reward)
                rollouts.append(
                    {"group_idx": group_idx, "prompt_text": question, "trajectories": trajectories}
                )
            logger.log_rollouts(rollouts, step=step)
            logger.log_metrics(
                {
                    "env/all/reward/total": sum(rewards) / len(rewards),
                    "optim/entropy": 0.9 - 0.03 * step,
                    "optim/lr": config["learning_rate"],
                },
                step=step,
            )
    print(f"logged run 'quickstart' to {db_path}")
    print(f"build the report:  tviz build --db {db_path} --out tviz-report")
    print("then open tviz-report/index.html  (or try `tviz demo` for a bigger simulated run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
