"""A short GRPO loop on the Tinker API with tviz wired in (needs TINKER_API_KEY).

    pip install tinker tinker-cookbook tviz
    export TINKER_API_KEY=...
    python examples/tinker_rl.py
    tviz build --out tviz-report && open tviz-report/index.html

It uses tinker-cookbook's own pieces (0.6): a `ProblemEnv`, `do_group_rollout`,
`compute_advantages`, `assemble_training_data`, and `setup_logging`'s MultiplexLogger. tviz comes
in twice:
- a TvizLogger appended to the cookbook's MultiplexLogger gets every metric, under its name;
- `from_tinker_batch` turns each iteration's TrajectoryGroups (with the tokenizer, so prompts and
  answers are text) into rollouts for `log_rollouts`.
If you run `tinker_cookbook.rl.train.main` unchanged instead, use `tviz import LOG_PATH`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from functools import partial

MODEL = "meta-llama/Llama-3.2-1B"
LOG_PATH = "/tmp/tviz-examples/tinker-rl"
STEPS, GROUPS, GROUP_SIZE, MAX_TOKENS, LEARNING_RATE = 8, 8, 8, 256, 4e-5

# (question, answer): a few GSM8K-style problems, so the example needs no dataset download.
PROBLEMS = [
    ("A train travels at 60 miles per hour for 2.5 hours. How many miles does it travel?", "150"),
    ("Maria has 17 apples, gives 5 away and buys 12 more. How many does she have?", "24"),
    ("A rectangle is 12 cm long and 7 cm wide. What is its area in square cm?", "84"),
    ("What is 8 + 6 * 7?", "50"),
    ("Pens come in packs of 12. How many packs hold 60 pens?", "5"),
    ("Tom reads 15 pages a day. How many pages does he read in 3 weeks?", "315"),
    ("A shirt costs $25 and is 20% off. What does it cost now, in dollars?", "20"),
    ("There are 4 boxes with 36 eggs in total. How many eggs per box?", "9"),
]
SUFFIX = " Write your answer in \\boxed{} format."


def main() -> int:
    if not os.environ.get("TINKER_API_KEY"):
        print(
            "examples/tinker_rl.py trains on the Tinker API and needs TINKER_API_KEY.\n"
            "Set it (export TINKER_API_KEY=...) or, without Tinker, try:\n"
            "  python examples/quickstart.py     # log a small simulated run\n"
            "  tviz demo                         # a realistic simulated run and its report",
            file=sys.stderr,
        )
        return 2
    try:
        import tinker  # noqa: F401
        import tinker_cookbook  # noqa: F401
    except ImportError as exc:
        print(f"needs tinker and tinker-cookbook: pip install tinker tinker-cookbook ({exc})")
        return 2
    return asyncio.run(train())


async def train() -> int:
    import tinker
    from tinker_cookbook import model_info, renderers
    from tinker_cookbook.completers import TinkerTokenCompleter
    from tinker_cookbook.recipes.math_rl.math_grading import extract_boxed, grade_answer
    from tinker_cookbook.rl.data_processing import assemble_training_data, compute_advantages
    from tinker_cookbook.rl.metric_util import compute_trajectory_metrics
    from tinker_cookbook.rl.problem_env import ProblemEnv, ProblemGroupBuilder
    from tinker_cookbook.rl.rollouts import do_group_rollout
    from tinker_cookbook.tokenizer_utils import get_tokenizer
    from tinker_cookbook.utils import ml_log

    from tviz import TvizLogger
    from tviz.adapters.tinker import from_tinker_batch

    class MathEnv(ProblemEnv):
        def __init__(self, renderer: renderers.Renderer, question: str, answer: str) -> None:
            super().__init__(renderer)
            self.question, self.answer = question, answer

        def get_question(self) -> str:
            return self.question + SUFFIX

        def check_answer(self, sample_str: str) -> bool:
            try:
                return grade_answer(extract_boxed(sample_str), self.answer)
            except ValueError:
                return False

        def check_format(self, sample_str: str) -> bool:
            return "\\boxed{" in sample_str

        def get_reference_answer(self) -> str:
            return self.answer

    config = {
        "model_name": MODEL,
        "learning_rate": LEARNING_RATE,
        "group_size": GROUP_SIZE,
        "batch_size": GROUPS,
        "max_tokens": MAX_TOKENS,
        "loss_fn": "importance_sampling",
    }
    # The cookbook's loggers (metrics.jsonl, console) plus ours: every metric reaches both.
    ml_logger = ml_log.setup_logging(log_dir=LOG_PATH, config=config)
    tviz_logger = TvizLogger(run_name="tinker-rl-example", config=config)
    ml_logger.loggers.append(tviz_logger)

    tokenizer = get_tokenizer(MODEL)
    renderer = renderers.get_renderer(model_info.get_recommended_renderer_name(MODEL), tokenizer)
    service_client = tinker.ServiceClient()
    training_client = await service_client.create_lora_training_client_async(
        base_model=MODEL, rank=32
    )
    adam = tinker.AdamParams(learning_rate=LEARNING_RATE, beta1=0.9, beta2=0.95, eps=1e-8)

    n_problems = len(PROBLEMS)
    for step in range(STEPS):
        t_start = time.time()
        sampling_client = await training_client.save_weights_and_get_sampling_client_async()
        policy = TinkerTokenCompleter(sampling_client, max_tokens=MAX_TOKENS)
        builders = [
            ProblemGroupBuilder(
                env_thunk=partial(MathEnv, renderer, *PROBLEMS[(step * GROUPS + i) % n_problems]),
                num_envs=GROUP_SIZE,
            )
            for i in range(GROUPS)
        ]
        groups = await asyncio.gather(*(do_group_rollout(b, policy) for b in builders))

        # tviz: the batch's prompts, answers, rewards and logprobs, as text (token_texts: each
        # token's own text too, so the report's logprob heatmap shows words).
        rollouts = from_tinker_batch(groups, tokenizer=tokenizer, token_texts=True)
        tviz_logger.log_rollouts(rollouts, step=step)

        advantages = compute_advantages(groups)
        data, _metadata = assemble_training_data(groups, advantages)
        data = [  # the "mask" input is for the cookbook's bookkeeping, not the loss
            dataclasses.replace(
                d, loss_fn_inputs={k: v for k, v in d.loss_fn_inputs.items() if k != "mask"}
            )
            for d in data
        ]
        fwd_bwd = await training_client.forward_backward_async(data, loss_fn="importance_sampling")
        optim = await training_client.optim_step_async(adam)
        await fwd_bwd.result_async()
        optim_result = await optim.result_async()

        metrics = {
            "progress/batch": step,
            "progress/done_frac": (step + 1) / STEPS,
            "optim/lr": LEARNING_RATE,
        }
        # env/all/reward/total, env/all/by_group/frac_mixed, ... as the cookbook names them.
        metrics.update(compute_trajectory_metrics(groups, [b.logging_tags() for b in builders]))
        if optim_result.metrics:
            metrics.update(optim_result.metrics)
        metrics["time/total"] = time.time() - t_start
        ml_logger.log_metrics(metrics, step=step)

    ml_logger.close()  # closes the TvizLogger too: everything is on disk
    print(f"done: tviz build --db {tviz_logger.db_path} --out tviz-report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
