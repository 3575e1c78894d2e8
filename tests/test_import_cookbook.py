"""`tviz import`: a run folder written by the real tinker-cookbook code, into a tviz database."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import fixture_path

from tviz.adapters.cookbook import CookbookImportError, import_cookbook_run, run_id_for
from tviz.cli import main
from tviz.store import Store

TABLES = ("runs", "steps", "metrics", "summaries", "rollouts", "trajectories")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A writable copy of the cookbook run folder."""
    dest = tmp_path / "gsm8k-run"
    shutil.copytree(fixture_path("cookbook-run"), dest)
    return dest


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def metric_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_import_fixture_runs_steps_metrics_and_rollouts(run_dir: Path, db_path: Path) -> None:
    result = import_cookbook_run(run_dir, db_path)
    assert result.finished  # checkpoints.jsonl has its "final" entry

    with Store(db_path) as store:
        (run,) = store.list_runs()
        data = store.load_run(run.id)
    assert run.id == run_id_for(run_dir) and run.name == "gsm8k-run"
    assert run.status == "finished"
    assert run.model == "meta-llama/Llama-3.2-1B"
    assert data.config["dataset_builder"]["group_size"] == 4

    # Metrics keep their real names, one point per step, values as written.
    rows = metric_rows(run_dir)
    reward = data.metrics["env/all/reward/total"]
    expected = {r["step"]: r["env/all/reward/total"] for r in rows if "env/all/reward/total" in r}
    assert dict(zip(reward.steps, reward.values, strict=True)) == expected
    for name in (
        "optim/kl_sample_train_v1",
        "optim/entropy",
        "optim/lr",
        "time/total",
        "progress/done_frac",
        "env/all/by_group/frac_mixed",
        "test/env/all/reward/total",
    ):
        assert name in data.metrics, name
    # Step 6 is written in two rows (final eval, then token totals): both are kept.
    assert data.metrics["test/env/all/reward/total"].steps == [0, 6]
    assert 6 in data.metrics["tokens/cumulative/sampled"].steps

    # Rollouts: every group of every iteration, with rewards; logged groups with their text.
    assert sorted({r.step for r in data.rollouts}) == [0, 1, 2, 3, 4, 5]
    assert len(data.rollouts) == 18
    assert all(len(r.trajectories) == 4 for r in data.rollouts)
    step1 = [r for r in data.rollouts if r.step == 1]
    logged = [r for r in step1 if r.extras.get("text_logged")]
    assert len(logged) == 1  # num_groups_to_log = 1
    (group,) = logged
    assert "A train travels at 60 miles per hour" in group.prompt_text
    by_reward = {t.reward: t for t in group.trajectories}
    # Each response is attached to the trajectory it came from (matched by reward).
    assert "\\boxed{150}" in by_reward[1.0].output_text
    assert by_reward[1.0].extras["logs"]["correct"] == "True"
    assert by_reward[-0.1].extras["logs"]["format_valid"] == "False"
    assert by_reward[1.0].extras["metrics"] == {"format": 1.0, "correct": 1.0}
    others = [r for r in step1 if not r.extras.get("text_logged")]
    assert all(r.prompt_text is None and r.trajectories for r in others)


def test_second_import_adds_nothing(run_dir: Path, db_path: Path) -> None:
    import_cookbook_run(run_dir, db_path)
    before = counts(db_path)
    with Store(db_path) as store:
        fingerprint = store.versions()
    again = import_cookbook_run(run_dir, db_path)
    assert not again.changed
    assert counts(db_path) == before
    with Store(db_path) as store:
        assert store.versions() == fingerprint  # not even the run's row was touched


def test_import_again_after_new_iterations(run_dir: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.db"
    import_cookbook_run(run_dir, full, run_id="same")

    # The same folder while it was still being written: iterations 3.. not there yet, and a
    # metrics line cut in the middle of being written.
    partial_dir = tmp_path / "later"
    shutil.copytree(run_dir, partial_dir)
    for i in (3, 4, 5, 6):
        shutil.rmtree(partial_dir / f"iteration_{i:06d}")
    (partial_dir / "checkpoints.jsonl").write_text(
        (run_dir / "checkpoints.jsonl").read_text().splitlines()[0] + "\n"
    )
    lines = (run_dir / "metrics.jsonl").read_text().splitlines(keepends=True)
    (partial_dir / "metrics.jsonl").write_text("".join(lines[:3]) + lines[3][:40])

    db = tmp_path / "incremental.db"
    first = import_cookbook_run(partial_dir, db, run_id="same")
    assert not first.finished and first.skipped_lines == 0  # a cut last line is not an error
    with Store(db) as store:
        (run,) = store.list_runs()
        assert run.status == "running"
        assert sorted(store.rollout_index("same")) == [0, 1, 2]
        assert store.load_run("same").metrics["env/all/reward/total"].steps == [0, 1, 2]

    # Training went on: the rest appears; importing again adds exactly what is new.
    shutil.rmtree(partial_dir)
    shutil.copytree(run_dir, partial_dir)
    second = import_cookbook_run(partial_dir, db, run_id="same")
    assert second.rollout_steps_written == 3 and second.finished
    assert counts(db) == counts(full)
    with Store(db) as store:
        data = store.load_run("same")
        assert data.summary.status == "finished"
        assert data.metrics["env/all/reward/total"].steps == [0, 1, 2, 3, 4, 5]


def test_resumed_run_last_write_wins_and_summary_rows(run_dir: Path, db_path: Path) -> None:
    rows = metric_rows(run_dir)
    # A resumed run rewrote steps 4 and 5 with other values; a log_summary row has no step.
    rewritten = [
        {"step": 4, "env/all/reward/total": 0.25},
        {"step": 5, "env/all/reward/total": 0.5},
        {"cost/cumulative_usd": 0.002},
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + rewritten))
    import_cookbook_run(run_dir, db_path)
    with Store(db_path) as store:
        data = store.load_run(run_id_for(run_dir))
    series = data.metrics["env/all/reward/total"]
    values = dict(zip(series.steps, series.values, strict=True))
    assert values[4] == 0.25 and values[5] == 0.5
    assert values[3] == rows[3]["env/all/reward/total"]
    assert data.summaries["cost/cumulative_usd"] == 0.002


def test_malformed_lines_are_skipped_and_counted(run_dir: Path, db_path: Path) -> None:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{not json\n" + "".join(lines[1:]) + "[1, 2]\n")
    result = CliRunner().invoke(main, ["import", str(run_dir), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "skipped 2 malformed JSON line(s)" in result.output
    with Store(db_path) as store:
        assert store.list_runs()[0].num_steps == 7


@pytest.mark.parametrize("case", ["missing", "no-metrics", "garbage", "a-file"])
def test_bad_folders_give_one_line_errors(case: str, tmp_path: Path, db_path: Path) -> None:
    target = tmp_path / "run"
    if case == "no-metrics":
        target.mkdir()
        (target / "config.json").write_text("{}")
    elif case == "garbage":
        target.mkdir()
        (target / "metrics.jsonl").write_text("not json\nnor this\n")
    elif case == "a-file":
        target.write_text("x")
    result = CliRunner().invoke(main, ["import", str(target), "--db", str(db_path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    with pytest.raises(CookbookImportError):
        import_cookbook_run(target, db_path)


def test_cli_import_reports_and_is_idempotent(run_dir: Path, db_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["import", str(run_dir), "--db", str(db_path), "--name", "gsm"])
    assert first.exit_code == 0, first.output
    assert "18 rollout groups" in first.output and "tviz build --db" in first.output
    second = runner.invoke(main, ["import", str(run_dir), "--db", str(db_path)])
    assert second.exit_code == 0 and "up to date" in second.output
    with Store(db_path) as store:
        assert [r.name for r in store.list_runs()] == ["gsm"]


def test_imported_run_keeps_its_own_start_and_duration(run_dir: Path, db_path: Path) -> None:
    """Not the time of the import: config.json's time, plus each step's time/total."""
    start = 1_750_000_000.0
    os.utime(run_dir / "config.json", (start, start))
    import_cookbook_run(run_dir, db_path)
    with Store(db_path) as store:
        (run,) = store.list_runs()
    seconds = sum(r["time/total"] for r in metric_rows(run_dir) if "time/total" in r)
    assert run.started_at == start
    assert run.duration_s == pytest.approx(seconds)


def test_json_valid_but_impossible_records_are_skipped(run_dir: Path, db_path: Path) -> None:
    """NaN, Infinity and 1e300 steps, 400-digit values, records of the wrong shape."""
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write('{"step": NaN, "x": 1}\n{"step": Infinity, "x": 1}\n{"step": 1e300, "x": 1}\n')
        f.write('{"step": 2, "huge": ' + "9" * 400 + "}\n")
    summaries = run_dir / "iteration_000002" / "train_rollout_summaries.jsonl"
    with summaries.open("a") as f:
        f.write('{"group_idx": 0, "traj_idx": "a", "steps": []}\n')
        f.write('{"group_idx": 0, "traj_idx": 9, "steps": [{"metrics": [1, 2]}]}\n')
        f.write('{"group_idx": 0, "traj_idx": 9, "trajectory_metrics": 5, "steps": []}\n')
    result = CliRunner().invoke(main, ["import", str(run_dir), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "skipped 6 malformed" in result.output
    with Store(db_path) as store:
        (run,) = store.list_runs()
        data = store.load_run(run.id)
    assert data.text_metrics["huge"] == [(2, "9" * 400)]
    assert 2 in {r.step for r in data.rollouts}  # the iteration's valid groups still came in
