"""A run folder written by the real tinker-cookbook 0.6.1 code, offline, then imported.

The cookbook's own writers make the folder: `ml_log.setup_logging` (config.json,
metrics.jsonl), `rl.rollouts.do_group_rollout` inside `rl.train`'s logtree scope (the
`*_logtree.json` files), its rollout summary export (`*_rollout_summaries.jsonl`) for the
training batch and an eval set, and `TrainingRunStore.truncate_metrics` for a resume. Only the
environment and the policy are stand-ins (no API key, no model). Skipped when tinker_cookbook
is not installed.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("tinker_cookbook")

import tinker  # noqa: E402
from browser import browser  # noqa: E402, F401  (browser is a fixture)
from test_cookbook_eval import check_eval_page  # noqa: E402
from tinker_cookbook.completers import TokenCompleter, TokensWithLogprobs  # noqa: E402
from tinker_cookbook.rl import rollouts as cookbook_rollouts  # noqa: E402
from tinker_cookbook.rl import train as cookbook_train  # noqa: E402
from tinker_cookbook.rl.rollout_logging import RolloutSummaryGroup  # noqa: E402
from tinker_cookbook.rl.types import Env, EnvGroupBuilder, StepResult  # noqa: E402
from tinker_cookbook.stores.storage import LocalStorage  # noqa: E402
from tinker_cookbook.stores.training_store import TrainingRunStore  # noqa: E402
from tinker_cookbook.utils import logtree, ml_log  # noqa: E402
from tinker_cookbook.utils.logtree_formatters import ConversationFormatter  # noqa: E402

from tviz.adapters.cookbook import import_cookbook_run, run_id_for  # noqa: E402
from tviz.render.site import build_site  # noqa: E402
from tviz.store import Store  # noqa: E402

GROUP_SIZE = 3
GROUPS = 3


class StandInEnv(Env):
    """One question; the reward is whether the answer has the expected length."""

    def __init__(self, question: int, salt: int) -> None:
        self.question, self.salt = question, salt

    async def initial_observation(self):
        return tinker.ModelInput.from_ints(list(range(4 + self.question))), []

    async def step(self, action, *, extra=None):
        reward = 1.0 if (len(action) + self.salt) % 2 == 0 else 0.0
        question = {"role": "user", "content": f"What is {self.question} + {self.question}?"}
        answer = {"role": "assistant", "content": f"{len(action)} tokens of answer"}
        with logtree.scope_header("Prompt"):  # as rl.problem_env logs an attempt
            logtree.log_formatter(ConversationFormatter(messages=[question]))
        with logtree.scope_header("Policy Response"):
            logtree.log_formatter(ConversationFormatter(messages=[answer]))
        with logtree.scope_header("Reward"):
            logtree.table_from_dict({"reward": reward}, caption="Reward components")
        return StepResult(
            reward=reward,
            episode_done=True,
            next_observation=tinker.ModelInput.from_ints([]),
            next_stop_condition=[],
            metrics={"correct": reward},
        )


class StandInGroup(EnvGroupBuilder):
    def __init__(self, question: int, salt: int) -> None:
        self.question, self.salt = question, salt

    async def make_envs(self):
        return [StandInEnv(self.question, self.salt + i) for i in range(GROUP_SIZE)]

    def logging_tags(self) -> list[str]:
        return ["stand-in"]


class StandInPolicy(TokenCompleter):
    def __init__(self, seed: int) -> None:
        self.calls, self.seed = 0, seed

    async def __call__(self, model_input, stop, *, max_tokens=None):
        self.calls += 1
        n = 2 + (self.calls * 7 + self.seed) % 5
        return TokensWithLogprobs(tokens=list(range(n)), maybe_logprobs=[-0.5] * n)


async def _iteration(store, log_dir: Path, step: int, base: str, split: str, seed: int):
    """One batch of groups as `rl.train` logs it: in its logtree scope, then exported."""
    policy = StandInPolicy(seed)
    with cookbook_train._get_logtree_scope(
        output_dir=log_dir / f"iteration_{step:06d}",
        num_groups_to_log=2,
        f_name=base,
        scope_name=f"{base} {step}",
        iteration=step,
        store=store,
    ):
        groups = []
        for g in range(GROUPS):
            with logtree.optional_enable_logging(g < 2):  # the first num_groups_to_log
                group = StandInGroup(question=g + step, salt=seed + g)
                groups.append(await cookbook_rollouts.do_group_rollout(group, policy))
    cookbook_train._maybe_export_rollout_summary_jsonl(
        config=SimpleNamespace(rollout_json_export=True),
        base_name=base,
        split=split,
        iteration=step,
        groups_P=[RolloutSummaryGroup(g, ["stand-in"], step) for g in groups],
        store=store,
    )
    return groups


def session(log_dir: Path, steps: range, seed: int, eval_every: int = 2) -> None:
    """A training session over `steps`: an eval at every `eval_every`th step, then training."""
    ml_logger = ml_log.setup_logging(
        str(log_dir),
        config={"model_name": "stand-in", "rollout_json_export": True, "seed": seed},
        do_configure_logging_module=False,
    )
    store = TrainingRunStore(LocalStorage(log_dir))

    async def run() -> None:
        for step in steps:
            metrics: dict[str, float] = {"optim/lr": 1e-5, "seed": float(seed)}
            if step % eval_every == 0:
                evals = await _iteration(store, log_dir, step, "eval_test", "eval/test", seed)
                rewards = [r for g in evals for r in g.get_total_rewards()]
                metrics["test/env/all/reward/total"] = sum(rewards) / len(rewards)
            groups = await _iteration(store, log_dir, step, "train", "train", seed)
            rewards = [r for g in groups for r in g.get_total_rewards()]
            metrics["env/all/reward/total"] = sum(rewards) / len(rewards)
            ml_logger.log_metrics(metrics, step=step)

    # In a thread of its own: a test's browser (playwright) runs an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
    ml_logger.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    log_dir = tmp_path / "real-run"
    session(log_dir, range(0, 5), seed=1)
    return log_dir


def resume(log_dir: Path, at: int, to: int) -> None:
    """A second process resumes from the checkpoint at `at` (as rl.train.main does)."""
    store = TrainingRunStore(LocalStorage(log_dir))
    cookbook_train._drop_metrics_logged_after_checkpoint(store, at)
    session(log_dir, range(at, to), seed=2)


def test_real_folder_imports_train_and_eval_rollouts(run_dir: Path, db_path: Path) -> None:
    assert (run_dir / "iteration_000002" / "eval_test_rollout_summaries.jsonl").exists()
    result = import_cookbook_run(run_dir, db_path)
    assert result.rollout_groups_written == 5 * GROUPS
    assert result.eval_groups_written == 3 * GROUPS  # evals at steps 0, 2, 4
    with Store(db_path) as store:
        data = store.load_run(run_id_for(run_dir))
    assert data.config["model_name"] == "stand-in"
    assert data.summary.num_rollouts == 5 * GROUPS
    assert data.summary.num_trajectories == 5 * GROUPS * GROUP_SIZE
    assert {g.step for g in data.rollouts} == set(range(5))
    assert {(g.eval_name, g.step) for g in data.eval_rollouts} == {("test", s) for s in (0, 2, 4)}
    # The logtree's first groups carry their text, for training and eval alike.
    assert any(g.prompt_text for g in data.rollouts if g.step == 1)
    assert any(g.prompt_text for g in data.eval_rollouts if g.step == 2)


def test_real_resume_replaces_what_the_new_session_rewrote(run_dir: Path, db_path: Path) -> None:
    import_cookbook_run(run_dir, db_path)
    resume(run_dir, at=2, to=4)  # steps 2, 3 again (another seed); step 4 only in pre_resume
    assert (run_dir / "metrics.jsonl.pre_resume_000002").exists()
    result = import_cookbook_run(run_dir, db_path)
    assert result.rollout_steps_replaced == 2  # iterations 2 and 3
    with Store(db_path) as store:
        data = store.load_run(run_id_for(run_dir))
    seeds = data.metrics["seed"]
    assert dict(zip(seeds.steps, seeds.values, strict=True)) == {0: 1, 1: 1, 2: 2, 3: 2, 4: 1}
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    reward = data.metrics["env/all/reward/total"]
    got = dict(zip(reward.steps, reward.values, strict=True))
    assert all(got[r["step"]] == r["env/all/reward/total"] for r in rows)
    # Every step's groups once: the rewritten ones replaced, step 4's kept.
    for step in range(5):
        assert len([g for g in data.rollouts if g.step == step]) == GROUPS
    assert sorted({g.step for g in data.eval_rollouts}) == [0, 2, 4]
    assert len([g for g in data.eval_rollouts if g.step == 2]) == GROUPS
    assert not import_cookbook_run(run_dir, db_path).changed


def test_real_run_report_shows_eval_samples_apart(browser, run_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "t.db"
    import_cookbook_run(run_dir, db)
    resume(run_dir, at=2, to=5)
    import_cookbook_run(run_dir, db)
    build_site(db, tmp_path / "out")
    (page,) = (tmp_path / "out" / "runs").glob("*.html")
    check_eval_page(browser, page)
