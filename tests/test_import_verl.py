"""`tviz import` of what verl's trainer writes: its file logger's metrics and its rollout dumps.

verl needs Ray and torch, so the files are written here the way verl 0.9.1 writes them: the two
writers below follow verl's source line by line (quoted in their comments).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_import_cookbook import counts

from tviz.cli import main
from tviz.importers import ImportFailed, import_path
from tviz.importers.verl import SETTLED_S, import_verl
from tviz.store import Store

PROMPTS = ["What is 6 x 7?", "Name a prime above 10.", "Solve x + 2 = 5."]
N_SAMPLES = 4  # actor_rollout_ref.rollout.n


# -- verl's writers -------------------------------------------------------------------------------


def file_logger_write(path: Path, step: int, data: dict) -> None:
    """One `Tracking.log(data, step)` through verl's `FileLogger` (verl 0.9.1,
    verl/utils/tracking.py lines 543-545):

        def log(self, data, step):
            data = {"step": step, "data": data}
            self.fp.write(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY) + b"\\n")

    orjson writes compact JSON, NaN and infinities as null, numpy arrays as lists.
    """
    plain = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in data.items()
    }
    line = json.dumps({"step": step, "data": plain}, separators=(",", ":"), allow_nan=False)
    with path.open("ab") as fp:  # verl opens it once, "wb", unbuffered: appending is the same
        fp.write(line.encode("utf-8") + b"\n")


def write_generations(
    inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path, global_steps
):
    """verl's `RayPPOTrainer._write_generations`, as it is (verl 0.9.1,
    verl/trainer/ppo/ray_trainer.py lines 454-477)."""
    os.makedirs(dump_path, exist_ok=True)
    filename = os.path.join(dump_path, f"{global_steps}.jsonl")

    n = len(inputs)
    base_data = {
        "input": inputs,
        "output": outputs,
        "gts": gts,
        "score": scores,
        "step": [global_steps] * n,
    }

    for k, v in reward_extra_infos_dict.items():
        if len(v) == n:
            base_data[k] = v

    with open(filename, "w") as f:
        for i in range(n):
            entry = {k: v[i] for k, v in base_data.items()}
            f.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


def score(step: int, prompt: int, sample: int) -> float:
    """Better with training: at step 1 a group all wrong, at step 3 one all right."""
    return 1.0 if sample + prompt <= step else 0.0


def dump_step(rollout_dir: Path, step: int) -> None:
    """What `_log_rollout_data` hands `_write_generations` for one step of GRPO: every prompt's
    samples side by side (verl repeats the batch with interleave=True)."""
    inputs, outputs, gts, scores = [], [], [], []
    extras: dict[str, list] = {"acc": [], "pred": [], "reward": [], "too_short": [1]}
    for p, prompt in enumerate(PROMPTS):
        for s in range(N_SAMPLES):
            inputs.append(f"user\n{prompt}\nassistant\n")
            outputs.append(f"step {step} answer {p}.{s}: \\boxed{{{40 + s}}} ✓")
            gts.append(str(42 + p))
            scores.append(score(step, p, s))
            extras["acc"].append(bool(score(step, p, s)))
            extras["pred"].append(str(40 + s))
            extras["reward"].append(score(step, p, s) - 0.5)  # named like a tviz field
    write_generations(inputs, outputs, gts, scores, extras, str(rollout_dir), step)


def metrics(step: int) -> dict:
    rewards = [score(step, p, s) for p in range(len(PROMPTS)) for s in range(N_SAMPLES)]
    return {
        "critic/score/mean": sum(rewards) / len(rewards),
        "critic/score/max": max(rewards),
        "critic/score/min": min(rewards),
        "actor/entropy": 0.5 - 0.01 * step,
        "actor/pg_loss": -0.1 * step,
        "actor/grad_norm": math.nan if step == 2 else 1.0 / step,
        "response_length/mean": 120.0 + step,
        "training/global_step": step,
        "training/epoch": 0,
        "timing_s/step": 30.0 + step,
    }


def train(metrics_file: Path, rollout_dir: Path, steps: range) -> None:
    """verl's fit loop: validation at step 0, then per step the samples' dump, then the metrics."""
    if steps.start == 0:
        file_logger_write(metrics_file, 0, {"val-core/openai/gsm8k/reward/mean@1": 0.25})
        steps = range(1, steps.stop)
    for step in steps:
        dump_step(rollout_dir, step)
        file_logger_write(metrics_file, step, metrics(step))


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path]:
    """verl's files for steps 0..3: `<project>/<experiment>.jsonl` and the rollout_data_dir."""
    metrics_file = tmp_path / "verl_grpo_example_gsm8k" / "qwen2_7b_function_rm.jsonl"
    metrics_file.parent.mkdir()
    rollout_dir = tmp_path / "rollouts"
    train(metrics_file, rollout_dir, range(0, 4))
    return metrics_file, rollout_dir


def invoke(*args: str | Path):
    return CliRunner().invoke(main, ["import", *map(str, args)])


# -- tests ----------------------------------------------------------------------------------------


def test_metrics_and_rollouts_import_with_verl_names_groups_and_extras(run, db_path):
    metrics_file, rollout_dir = run
    result = invoke(metrics_file, "--rollouts", rollout_dir, "--db", db_path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "imported verl metrics: 4 steps, 11 metrics, 36 samples in 9 groups"
        f' into run "qwen2_7b_function_rm" ({db_path})'
    )

    with Store(db_path) as store:
        (summary,) = store.list_runs()
        data = store.load_run(summary.id)
    assert summary.name == "qwen2_7b_function_rm" and summary.status == "running"
    assert data.metrics["val-core/openai/gsm8k/reward/mean@1"].steps == [0]
    mean = data.metrics["critic/score/mean"]
    assert dict(zip(mean.steps, mean.values, strict=True)) == {
        s: metrics(s)["critic/score/mean"] for s in (1, 2, 3)
    }
    grad = data.metrics["actor/grad_norm"]
    assert math.isnan(grad.values[grad.steps.index(2)])  # orjson's null: a gap, not a zero

    # One group per prompt and step, its samples in the order verl wrote them.
    assert sorted({r.step for r in data.rollouts}) == [1, 2, 3]
    step2 = [r for r in data.rollouts if r.step == 2]
    assert [r.prompt_text for r in step2] == [f"user\n{p}\nassistant\n" for p in PROMPTS]
    assert all(r.extras["source"] == "verl" for r in step2)
    group = step2[1]
    assert [t.reward for t in group.trajectories] == [score(2, 1, s) for s in range(N_SAMPLES)]
    first = group.trajectories[0]
    assert first.output_text == "step 2 answer 1.0: \\boxed{40} ✓"
    assert first.extras["gts"] == "43" and first.extras["pred"] == "40"
    assert first.extras["acc"] is (score(2, 1, 0) == 1.0)
    assert first.extras["verl_reward"] == score(2, 1, 0) - 0.5  # never in the reward's place
    assert "too_short" not in first.extras  # verl writes only extras with a value per sample

    # verl writes no clock times: steps end at the file's time, counting back timing_s/step.
    end = metrics_file.stat().st_mtime
    assert summary.started_at == pytest.approx(end - sum(30.0 + s for s in (1, 2, 3)))


def test_import_again_adds_only_the_new_steps_and_files(run, db_path):
    metrics_file, rollout_dir = run
    import_verl(metrics_file, db_path, rollouts_dir=rollout_dir)
    train(metrics_file, rollout_dir, range(4, 6))
    again = invoke(metrics_file, "--rollouts", rollout_dir, "--db", db_path)
    assert again.exit_code == 0, again.output
    assert again.output.startswith("imported verl metrics: 2 steps, 10 metrics, 24 samples")
    with Store(db_path) as store:
        (summary,) = store.list_runs()
        assert sorted(store.rollout_index(summary.id)) == [1, 2, 3, 4, 5]
        assert store.load_run(summary.id).metrics["actor/entropy"].steps == [1, 2, 3, 4, 5]
        fingerprint = store.versions()
    before = counts(db_path)

    third = invoke(metrics_file, "--rollouts", rollout_dir, "--db", db_path, "--name", "other")
    assert third.exit_code == 0, third.output
    assert third.output == (
        f'run "qwen2_7b_function_rm" ({db_path}) is up to date: nothing new in {metrics_file}\n'
    )
    assert counts(db_path) == before
    with Store(db_path) as store:
        assert store.versions() == fingerprint  # not even the run's row was touched


def test_a_restarted_run_keeps_the_steps_its_new_file_no_longer_has(run, db_path):
    """FileLogger opens its file "wb": a run resumed from a checkpoint starts it anew."""
    metrics_file, rollout_dir = run
    import_verl(metrics_file, db_path, rollouts_dir=rollout_dir)
    metrics_file.write_bytes(b"")
    file_logger_write(metrics_file, 3, {**metrics(3), "actor/entropy": 0.1})
    file_logger_write(metrics_file, 4, metrics(4))
    outcome = import_verl(metrics_file, db_path)
    assert outcome.runs[0].steps == 2  # step 3 changed, step 4 is new
    with Store(db_path) as store:
        entropy = store.load_run(outcome.runs[0].run_id).metrics["actor/entropy"]
    assert entropy.steps == [1, 2, 3, 4] and entropy.values[2] == 0.1


def test_a_rollout_file_is_read_once_verl_is_done_with_it(run, db_path):
    metrics_file, rollout_dir = run
    dump_step(rollout_dir, 4)  # dumped; step 4's metrics not logged yet
    (rollout_dir / "5.jsonl").write_text('{"input": "q", "output": "cut sho')  # being written
    first = import_verl(metrics_file, db_path, rollouts_dir=rollout_dir)
    assert first.runs[0].rollout_steps == 3
    assert first.warnings == [
        "rollout file(s) 4.jsonl, 5.jsonl still being written: import again to add them"
    ]
    file_logger_write(metrics_file, 4, metrics(4))  # the trainer went on
    second = import_verl(metrics_file, db_path, rollouts_dir=rollout_dir)
    assert second.runs[0].rollout_steps == 1 and second.runs[0].groups == 3
    # A run that stopped after its last dump: a whole file left alone for a while is done.
    (rollout_dir / "5.jsonl").write_text('{"input": "q", "output": "a", "score": 1}\n')
    later = time.time() + SETTLED_S + 1
    third = import_verl(metrics_file, db_path, rollouts_dir=rollout_dir, now=later)
    assert third.runs[0].groups == 1 and not third.warnings


def test_garbage_lines_are_skipped_and_reported(run, db_path):
    metrics_file, rollout_dir = run
    lines = metrics_file.read_bytes().splitlines(keepends=True)
    metrics_file.write_bytes(lines[0] + b"{garbage\n" + b"".join(lines[1:]) + b'{"step": 9}\n')
    with (rollout_dir / "2.jsonl").open("a") as f:
        f.write("not json\n[1, 2]\n")
    result = invoke(metrics_file, "--rollouts", rollout_dir, "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "warning: skipped 4 malformed JSON line(s)" in result.output
    assert "Traceback" not in result.output
    with Store(db_path) as store:
        (summary,) = store.list_runs()
    assert summary.num_steps == 4 and summary.num_trajectories == 36


@pytest.mark.parametrize("case", ["all-garbage", "empty", "no-rollouts-dir", "rollouts-is-a-file"])
def test_bad_input_is_one_line_and_a_nonzero_exit(case, run, tmp_path, db_path):
    metrics_file, rollout_dir = run
    args: list = [metrics_file, "--rollouts", rollout_dir]
    if case == "all-garbage":
        metrics_file.write_text("garbage\n{nope\n")
    elif case == "empty":
        metrics_file.write_bytes(b"")
    elif case == "no-rollouts-dir":
        args[-1] = tmp_path / "missing"
    else:
        args[-1] = rollout_dir / "1.jsonl"
    result = invoke(*args, "--db", db_path)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    with pytest.raises(ImportFailed):
        import_path(*args[:1], db_path, rollouts=args[-1])
    assert not db_path.exists()  # nothing written before the input was known to be good
