"""TvizCallback on a real TRL GRPOTrainer: a tiny random model trained on the CPU, then the
database and the report read back. Skipped when TRL is not installed."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from render_data import embedded_groups  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import (  # noqa: E402
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Trainer,
    TrainingArguments,
)
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from tviz.integrations.trl import TvizCallback  # noqa: E402
from tviz.logger import TvizWarning  # noqa: E402
from tviz.render import build_site  # noqa: E402
from tviz.store import Store  # noqa: E402

WORDS = ["what", "is", "one", "two", "three", "four", "five", "six", "plus", "minus", "the"]
WORDS += ["answer", "yes", "no", "maybe"]
SPECIAL = ["[PAD]", "[UNK]", "[EOS]", "user:", "assistant:"]
GROUP = 2  # num_generations


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", eos_token="[EOS]", unk_token="[UNK]"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return tokenizer


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised 1-layer Qwen2 saved to a folder, as a user's model id would be."""
    folder = tmp_path_factory.mktemp("models") / "tiny-qwen2"
    config = Qwen2Config(
        vocab_size=len(SPECIAL) + len(WORDS),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _no_tviz_warnings(recwarn):
    """Logging a healthy run warns about nothing."""
    yield
    assert [str(w.message) for w in recwarn if issubclass(w.category, TvizWarning)] == []


def _plain(completion) -> str:
    return completion if isinstance(completion, str) else completion[0]["content"]


class Rewards:
    """Two reward functions that remember every batch they scored (train and eval)."""

    def __init__(self) -> None:
        self.batches: list[tuple[list, list[str]]] = []

    @staticmethod
    def yes(text: str) -> float:
        return 1.0 if "yes" in text.split() else 0.0

    @staticmethod
    def brevity(text: str) -> float:
        return 1.0 / (1 + len(text.split()))

    def functions(self):
        def has_yes(prompts, completions, log_extra=None, **kwargs):
            texts = [_plain(c) for c in completions]
            self.batches.append((list(prompts), texts))
            if log_extra is not None:
                log_extra("words", [len(t.split()) for t in texts])
            return [self.yes(t) for t in texts]

        def brevity(completions, **kwargs):
            return [self.brevity(_plain(c)) for c in completions]

        return [has_yes, brevity]

    def train_batches(self) -> list[tuple[list, list[str]]]:
        return [b for b in self.batches if "eval" not in str(b[0][0])]


def _train(
    model_dir: Path, tmp_path: Path, rewards: Rewards, prompts: list, eval_prompts=None, **config
):
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        num_generations=GROUP,
        max_completion_length=8,
        log_completions=True,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        seed=0,
        **config,
    )
    return GRPOTrainer(
        model=str(model_dir),
        reward_funcs=rewards.functions(),
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        eval_dataset=Dataset.from_dict({"prompt": eval_prompts}) if eval_prompts else None,
        processing_class=_tokenizer(),
    )


def _page_data(page: Path) -> dict:
    found = re.search(r'id="page-data">([^<]*)</script>', page.read_text("utf-8"))
    return json.loads(found.group(1))


def _overview(data: dict) -> dict[str, dict]:
    return {k: c for k, c in data["charts"].items() if not re.fullmatch(r"m\d+-\d+", k)}


def _value(data, name: str, step: int) -> float:
    series = data.metrics[name]
    return series.values[series.steps.index(step)]


def test_grpo_run_is_logged_with_metrics_summary_and_every_completion(tiny_model, tmp_path):
    rewards = Rewards()
    prompts = [f"what is {w} plus one" for w in WORDS[2:10]]
    trainer = _train(
        tiny_model,
        tmp_path,
        rewards,
        prompts,
        per_device_train_batch_size=4,
        logging_steps=1,
        beta=0.1,  # KL to the reference model is logged
        reward_weights=[1.0, 0.5],
        run_name="tiny-grpo",
    )
    db = tmp_path / "tviz.db"
    trainer.add_callback(TvizCallback(trainer, db_path=db))
    trainer.train()

    with Store(db) as store:
        [run] = store.list_runs()
        data = store.load_run(run.id)
    assert (run.name, run.status, run.model) == ("tiny-grpo", "finished", str(tiny_model))
    assert data.config["num_generations"] == GROUP and data.config["beta"] == 0.1
    assert data.config["reward_funcs"] == ["has_yes", "brevity"]
    assert data.config["trl_version"]

    # Every metric TRL logged, under its own name, at its step; the summary apart.
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert [h["step"] for h in logged] == [1, 2]
    for entry in logged:
        for name in (
            "reward",
            "reward_std",
            "kl",
            "entropy",
            "completions/mean_length",
            "frac_reward_zero_std",
            "rewards/has_yes/mean",
            "rewards/brevity/mean",
            "loss",
            "grad_norm",
            "learning_rate",
        ):
            assert _value(data, name, entry["step"]) == pytest.approx(entry[name]), name
    assert {"train_runtime", "train_loss", "train_samples_per_second"} <= set(data.summaries)
    assert "train_runtime" not in data.metrics and "train_loss" not in data.metrics

    # Each generation batch once, at its step: groups of GROUP completions of one prompt.
    batches = rewards.train_batches()
    assert len(batches) == 2
    for step, (batch_prompts, texts) in enumerate(batches, start=1):
        groups = sorted((r for r in data.rollouts if r.step == step), key=lambda r: r.group_idx)
        assert [r.prompt_text for r in groups] == batch_prompts[::GROUP]
        assert all(len(r.trajectories) == GROUP for r in groups)
        trajectories = [t for r in groups for t in sorted(r.trajectories, key=lambda t: t.idx)]
        assert [t.output_text for t in trajectories] == texts
        for t in trajectories:
            by_func = {
                "has_yes": Rewards.yes(t.output_text),
                "brevity": Rewards.brevity(t.output_text),
            }
            assert t.extras["rewards"] == pytest.approx(by_func)
            assert t.reward == pytest.approx(by_func["has_yes"] + 0.5 * by_func["brevity"])
        for r in groups:  # GRPO's advantages are centred within each group
            assert math.fsum(t.extras["advantage"] for t in r.trajectories) == pytest.approx(
                0, abs=1e-4
            )

    # The report: rewards, KL, entropy, lengths and the signal; groups with their completions.
    build_site(db, tmp_path / "site")
    page = next((tmp_path / "site" / "runs").glob("tiny-grpo-*.html"))
    overview = _overview(_page_data(page))
    assert list(overview) == ["reward", "length", "kl", "entropy", "dist", "signal"]
    assert overview["kl"]["series"]["kl"] == [[1, 2], [h["kl"] for h in logged]]
    mixed = overview["signal"]["series"]["mixed"]
    assert mixed[1] == pytest.approx([1 - h["frac_reward_zero_std"] for h in logged])
    assert "1 − frac_reward_zero_std" in overview["signal"]["note"]
    html = page.read_text("utf-8")  # every logged metric has a panel (or, if flat, a value)
    assert all(name in html for name in ("rewards/has_yes/mean", "frac_reward_zero_std", "kl"))
    shown = embedded_groups(page, 1)
    assert sorted(g["p"] for g in shown) == sorted(batches[0][0][::GROUP])
    texts = sorted(t["o"] for g in shown for t in g["t"])
    assert texts == sorted(batches[0][1])
    assert all({"rewards", "advantage"} <= set(t["x"]) for g in shown for t in g["t"])


def test_every_generation_batch_is_logged_once_whatever_logging_steps(
    tiny_model, tmp_path, monkeypatch
):
    """logging_steps=10 (no log during the run), two generation batches per optimizer step,
    chat prompts, and evaluations that refill TRL's buffer with their own completions."""
    monkeypatch.setenv("TVIZ_DB_PATH", str(tmp_path / "env.db"))
    rewards = Rewards()
    prompts = [[{"role": "user", "content": f"what is {w} minus one"}] for w in WORDS[2:10]]
    trainer = _train(
        tiny_model,
        tmp_path,
        rewards,
        prompts,
        [[{"role": "user", "content": f"eval {w} plus two"}] for w in WORDS[2:4]],
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        steps_per_generation=1,  # a generation batch per micro-step: two per step
        logging_steps=10,
        eval_strategy="steps",
        eval_steps=1,
        per_device_eval_batch_size=2,
    )
    callback = TvizCallback(trainer, run_name="chat-run")
    trainer.add_callback(callback)
    trainer.train()

    with Store(tmp_path / "env.db") as store:
        [run] = store.list_runs()
        data = store.load_run(run.id)
    assert run.name == "chat-run" and run.status == "finished"
    batches = rewards.train_batches()
    assert len(batches) == 4 and len(rewards.batches) > 4  # evaluations scored batches too
    logged = sorted(data.rollouts, key=lambda r: (r.step, r.group_idx))
    assert [(r.step, r.group_idx) for r in logged] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    for rollout, (batch_prompts, texts) in zip(logged, batches, strict=True):
        assert rollout.prompt_text == batch_prompts[0][0]["content"]
        assert rollout.extras["prompt_messages"] == batch_prompts[0]
        trajectories = sorted(rollout.trajectories, key=lambda t: t.idx)
        assert [t.output_text for t in trajectories] == texts
        for t in trajectories:
            assert t.extras["completion_messages"] == [
                {"role": "assistant", "content": t.output_text}
            ]
            assert t.extras["words"] == len(t.output_text.split())  # a log_extra column

    # Evaluation metrics under eval/, at their steps; the summary apart.
    evals = [h for h in trainer.state.log_history if "eval_reward" in h]
    assert data.metrics["eval/reward"].steps == [h["step"] for h in evals] == [1, 2]
    assert data.metrics["eval/reward"].values == pytest.approx([h["eval_reward"] for h in evals])
    assert "eval/loss" in data.metrics and "eval_reward" not in data.metrics
    assert "train_runtime" in data.summaries and "train_runtime" not in data.metrics

    # An evaluation after training goes into the same run.
    after = trainer.evaluate()
    callback.logger.close()
    with Store(tmp_path / "env.db") as store:
        assert [r.id for r in store.list_runs()] == [run.id]
        data = store.load_run(run.id)
    assert data.summary.status == "finished"
    assert _value(data, "eval/reward", 2) == pytest.approx(after["eval_reward"])


def test_a_trainer_without_grpo_buffers_gets_one_warning_and_its_metrics(tiny_model, tmp_path):
    """What another TRL version's GRPOTrainer would be: no `_logs` where tviz reads them."""
    tokens = [[5, 6, 7, 8, 9, 10]] * 8
    trainer = Trainer(
        model=Qwen2ForCausalLM.from_pretrained(tiny_model),
        args=TrainingArguments(
            output_dir=str(tmp_path / "out"),
            max_steps=2,
            per_device_train_batch_size=4,
            logging_steps=1,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
        ),
        train_dataset=Dataset.from_dict({"input_ids": tokens, "labels": tokens}),
    )
    db = tmp_path / "tviz.db"
    trainer.add_callback(TvizCallback(trainer, db_path=db, log_completions=True))
    with pytest.warns(TvizWarning, match="completions are not logged") as caught:
        trainer.train()
    assert len([w for w in caught if issubclass(w.category, TvizWarning)]) == 1
    with Store(db) as store:
        [run] = store.list_runs()
        data = store.load_run(run.id)
    assert run.status == "finished" and data.rollouts == []
    assert data.metrics["loss"].steps == [1, 2]


CRASHING_RUN = """
import sys
sys.path.insert(0, {tests!r})
from test_integration_trl import GRPOConfig, GRPOTrainer, Dataset, TvizCallback, _tokenizer

def reward(completions, **kwargs):
    reward.calls += 1
    if reward.calls == 2:
        raise RuntimeError("the reward server went away")
    return [0.0] * len(completions)
reward.calls = 0

args = GRPOConfig(output_dir={out!r}, max_steps=3, num_generations=2, per_device_train_batch_size=2,
    max_completion_length=4, log_completions=True, logging_steps=1, report_to=[], use_cpu=True,
    save_strategy="no")
prompts = Dataset.from_dict({{"prompt": ["what is one", "what is two"] * 2}})
trainer = GRPOTrainer(model={model!r}, reward_funcs=[reward], args=args, train_dataset=prompts,
    processing_class=_tokenizer())
trainer.add_callback(TvizCallback(trainer, db_path={db!r}))
trainer.train()
"""


def test_a_run_that_crashes_is_marked_crashed_with_what_it_logged(tiny_model, tmp_path):
    db = tmp_path / "tviz.db"
    script = CRASHING_RUN.format(
        tests=str(Path(__file__).parent),
        out=str(tmp_path / "out"),
        model=str(tiny_model),
        db=str(db),
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0 and "the reward server went away" in done.stderr
    with Store(db) as store:
        [run] = store.list_runs()
        data = store.load_run(run.id)
    assert run.status == "crashed"
    assert [(r.step, len(r.trajectories)) for r in data.rollouts] == [(1, 2)]
    assert data.metrics["reward"].steps == [1]


def test_importing_tviz_imports_neither_trl_nor_torch():
    code = (
        "import sys, tviz, tviz.integrations, tviz.render, tviz.catalog; "
        "print(sorted({'trl', 'torch', 'transformers'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
