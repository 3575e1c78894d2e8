"""Small real databases of runs to compare, written through TvizLogger(strict=True)."""

from __future__ import annotations

import math
from pathlib import Path

from tviz import TvizLogger

HOSTILE = "</script><script>alert('x')</script><img src=x onerror=alert(1)>"
PROMPTS = [f"What is {a} + {a}? {HOSTILE if a == 3 else ''}".strip() for a in range(1, 7)]


# Pixels of `color` in a chart's canvas (the lines' colours are fixed per run).
COUNT_COLOR = """([id, hex]) => {
  const c = document.querySelector(`.chart[data-chart="${id}"] canvas`);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const want = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 200 && Math.abs(d[i] - want[0]) < 12 && Math.abs(d[i + 1] - want[1]) < 12
        && Math.abs(d[i + 2] - want[2]) < 12) n++;
  }
  return n;
}"""


def chatml(text: str) -> str:
    return f"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n"


def llama(text: str) -> str:
    return (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"{text}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def rl_run(
    db: Path,
    run_id: str,
    *,
    lr: float,
    seed: int = 0,
    steps: int = 12,
    template=chatml,
    skill: float = 0.5,
    group: str | None = None,
    project: str | None = "math-rl",
    step_every: int = 1,
    rollouts: bool = True,
    extra_config: dict | None = None,
) -> str:
    """A GRPO-like run: tinker-cookbook metric names, rollouts on PROMPTS in `template`."""
    config = {
        "model_name": "Qwen/Qwen3-8B",
        "learning_rate": lr,
        "seed": seed,
        "group_size": 4,
        "optim": {"beta1": 0.9, "schedule": "cosine"},
        "note": HOSTILE,
        **(extra_config or {}),
    }
    with TvizLogger(
        db, run_id, run_id=run_id, config=config, project=project, group=group, strict=True
    ) as log:
        for step in range(0, steps * step_every, step_every):
            frac = step / max(1, steps * step_every)
            reward = min(1.0, skill * frac + 0.1 + 0.02 * math.sin(seed + step))
            log.log_metrics(
                {
                    "env/all/reward/total": reward,
                    "optim/kl_sample_train_v1": 0.01 * (1 + frac) * (1 + seed / 10),
                    "optim/entropy": 1.0 - 0.3 * frac,
                    "env/all/ac_tokens_per_turn": 100 + 20 * frac,
                    "env/all/total_ac_tokens": 400,
                    "optim/lr": lr,
                },
                step=step,
            )
            if not rollouts:
                continue
            groups = []
            for p, prompt in enumerate(PROMPTS):
                good = (p + step) % 6 < int(6 * (skill + frac) / 2)
                groups.append(
                    {
                        "prompt_text": template(prompt),
                        "trajectories": [
                            {
                                "reward": 1.0 if good and i % 2 == 0 else 0.0,
                                "output_text": f"{run_id} answer {step}.{p}.{i} {HOSTILE}",
                            }
                            for i in range(4)
                        ],
                    }
                )
            log.log_rollouts(groups, step=step)
    return run_id
