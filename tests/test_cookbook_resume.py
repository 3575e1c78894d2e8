"""Re-importing a tinker-cookbook folder after the run resumed from a checkpoint.

On resume the cookbook copies metrics.jsonl to `metrics.jsonl.pre_resume_<N>`, keeps only the
rows before step N and runs the iterations from N again, overwriting their files. A re-import
replaces what the folder rewrote and keeps what it no longer has.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import fixture_path

from tviz.adapters.cookbook import import_cookbook_run, run_id_for
from tviz.store import Store

REWARD = "env/all/reward/total"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "resumed-run"
    shutil.copytree(fixture_path("cookbook-run"), dest)
    return dest


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_rows(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def resume_at(run_dir: Path, step: int) -> list[dict]:
    """What `TrainingRunStore.truncate_metrics(step)` does; returns the rows it kept."""
    metrics = run_dir / "metrics.jsonl"
    shutil.copy2(metrics, run_dir / f"metrics.jsonl.pre_resume_{step:06d}")
    kept = [r for r in rows(metrics) if not isinstance(r.get("step"), int) or r["step"] < step]
    write_rows(metrics, kept)
    return kept


def rewrite_iteration(run_dir: Path, step: int, reward: float) -> None:
    """The resumed session samples iteration `step` again: other rewards, newer files."""
    folder = run_dir / f"iteration_{step:06d}"
    path = folder / "train_rollout_summaries.jsonl"
    records = rows(path)
    for record in records:
        record["total_reward"] = reward
        for s in record["steps"]:
            s["reward"] = reward
    write_rows(path, records)
    (folder / "train_logtree.json").unlink()  # its text was of the old samples
    later = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(later, later))


def load(run_dir: Path, db: Path):
    with Store(db) as store:
        return store.load_run(run_id_for(run_dir))


def values(data, name: str = REWARD) -> dict[int, float]:
    series = data.metrics[name]
    return dict(zip(series.steps, series.values, strict=True))


def test_reimport_after_resume_replaces_the_rewritten_steps(run_dir: Path, db_path: Path) -> None:
    import_cookbook_run(run_dir, db_path)
    before = load(run_dir, db_path)
    old_rows = {r["step"]: r for r in rows(run_dir / "metrics.jsonl") if "step" in r}
    old_groups = {s: [r for r in before.rollouts if r.step == s] for s in (3, 4, 5)}

    # Resume from the checkpoint at step 3: step 3 runs again, logs fewer names and other
    # values; iteration 3's files are written again. Steps 4 and 5 are only in pre_resume.
    kept = resume_at(run_dir, 3)
    write_rows(run_dir / "metrics.jsonl", [*kept, {"step": 3, REWARD: 0.125, "optim/lr": 1e-5}])
    rewrite_iteration(run_dir, 3, reward=0.75)

    result = import_cookbook_run(run_dir, db_path)
    assert result.metric_steps_replaced == 1 and result.rollout_steps_replaced == 1
    after = load(run_dir, db_path)
    step3 = {n for n, s in after.metrics.items() if 3 in s.steps}
    assert step3 == {REWARD, "optim/lr"}  # the old session's other names at step 3 are gone
    assert values(after)[3] == 0.125
    # Steps only in the pre_resume file stay as they were.
    assert values(after)[4] == old_rows[4][REWARD] and values(after)[5] == old_rows[5][REWARD]
    # Iteration 3's groups are the new ones, as many as the new file has; 4 and 5 untouched.
    groups3 = [r for r in after.rollouts if r.step == 3]
    assert len(groups3) == len(old_groups[3])
    assert all(t.reward == 0.75 for g in groups3 for t in g.trajectories)
    for s in (4, 5):
        now = [r for r in after.rollouts if r.step == s]
        was = old_groups[s]
        assert [(g.id, g.mean_reward) for g in now] == [(g.id, g.mean_reward) for g in was]
    assert after.summary.num_rollouts == before.summary.num_rollouts

    again = import_cookbook_run(run_dir, db_path)
    assert not again.changed  # replaced once, then nothing new


def test_first_import_of_a_resumed_folder_takes_steps_only_in_pre_resume(
    run_dir: Path, db_path: Path
) -> None:
    old_rows = {r["step"]: r for r in rows(run_dir / "metrics.jsonl") if "step" in r}
    kept = resume_at(run_dir, 3)
    write_rows(run_dir / "metrics.jsonl", [*kept, {"step": 3, REWARD: 0.125}])
    import_cookbook_run(run_dir, db_path)
    got = values(load(run_dir, db_path))
    assert got[3] == 0.125  # the resumed session's row wins over the pre_resume copy
    assert got[4] == old_rows[4][REWARD] and got[5] == old_rows[5][REWARD]


def test_pruned_iteration_folders_keep_their_rollouts(run_dir: Path, db_path: Path) -> None:
    import_cookbook_run(run_dir, db_path)
    before = load(run_dir, db_path)
    for step in (0, 1, 2):  # removed to save space, after a resume from step 3
        shutil.rmtree(run_dir / f"iteration_{step:06d}")
    resume_at(run_dir, 3)
    import_cookbook_run(run_dir, db_path)
    after = load(run_dir, db_path)
    assert [g.id for g in after.rollouts] == [g.id for g in before.rollouts]
    assert [g.id for g in after.eval_rollouts] == [g.id for g in before.eval_rollouts]
    assert values(after) == values(before)  # steps 3.. only in pre_resume now: kept


def test_files_copied_with_new_times_but_same_bytes_are_not_imported_again(
    run_dir: Path, db_path: Path
) -> None:
    import_cookbook_run(run_dir, db_path)
    before = load(run_dir, db_path)
    for path in run_dir.glob("iteration_*/*"):
        os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    result = import_cookbook_run(run_dir, db_path)
    assert not result.changed
    assert [g.id for g in load(run_dir, db_path).rollouts] == [g.id for g in before.rollouts]


def test_an_iteration_written_again_without_a_resume_is_replaced(
    run_dir: Path, db_path: Path
) -> None:
    """A folder still being written: the eval set's logtree (its text) arrives after the
    summaries were imported; the next import brings the text in."""
    logtree = run_dir / "iteration_000000" / "eval_test_logtree.json"
    held = logtree.read_bytes()
    logtree.unlink()
    import_cookbook_run(run_dir, db_path)
    assert not any(g.prompt_text for g in load(run_dir, db_path).eval_rollouts if g.step == 0)
    logtree.write_bytes(held)
    import_cookbook_run(run_dir, db_path)
    data = load(run_dir, db_path)
    assert any(g.prompt_text for g in data.eval_rollouts if g.step == 0)
    assert len([g for g in data.rollouts if g.step == 0]) == 3  # the training groups once
