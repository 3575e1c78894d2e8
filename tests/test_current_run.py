"""`tviz.init / log / log_rollouts / finish`: wandb- or trackio-style code ports by its import."""

from __future__ import annotations

from pathlib import Path

import pytest

import tviz
from tviz.store import Store


@pytest.fixture(autouse=True)
def no_current_run():
    yield
    tviz.finish()


def test_wandb_style_loop_logs_steps_counting_up(db_path: Path) -> None:
    run = tviz.init(
        project="math", name="grpo-lr3e-5", group="lr-sweep", config={"lr": 3e-5}, db_path=db_path
    )
    assert tviz.run is run
    for i in range(3):
        tviz.log({"reward": i / 10, "kl": 0.01 * i})
    tviz.log({"eval/accuracy": 0.5}, step=10)
    tviz.log({"reward": 0.9})  # counts on from the explicit step
    tviz.finish()
    assert tviz.run is None

    with Store(db_path) as store:
        (summary,) = store.list_runs()
        data = store.load_run(summary.id)
    assert (summary.name, summary.status) == ("grpo-lr3e-5", "finished")
    assert data.metrics["reward"].steps == [0, 1, 2, 11]
    assert data.metrics["reward"].values == [0.0, 0.1, 0.2, 0.9]
    assert data.metrics["eval/accuracy"].steps == [10]
    assert data.config == {"lr": 3e-5}


def test_project_and_group_are_kept_on_the_run(db_path: Path) -> None:
    tviz.init("proj", name="seed-1", group="seeds", db_path=db_path, strict=True)
    tviz.finish()
    import sqlite3

    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT name, project, run_group FROM runs").fetchall() == [
        ("seed-1", "proj", "seeds")
    ]
    conn.close()


def test_rollouts_land_on_the_step_of_the_metrics_logged_with_them(db_path: Path) -> None:
    tviz.init(name="r", db_path=db_path)
    for step in range(2):
        group = {"prompt_text": f"q{step}", "trajectories": [{"reward": 1.0, "output_text": "a"}]}
        tviz.log_rollouts([group])  # before the metrics of the same step
        tviz.log({"reward": 1.0})
    tviz.finish()
    with Store(db_path) as store:
        (summary,) = store.list_runs()
        data = store.load_run(summary.id)
    assert data.metrics["reward"].steps == [0, 1]
    assert summary.num_rollouts == 2
    assert summary.num_trajectories == 2


def test_init_ends_the_previous_run_and_log_needs_a_run(db_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"tviz.init\(\)"):
        tviz.log({"reward": 1.0})
    first = tviz.init(name="a", db_path=db_path)
    tviz.log({"x": 1})
    second = tviz.init(name="b", db_path=db_path)
    assert tviz.run is second and first is not second
    tviz.finish()
    with Store(db_path) as store:
        runs = {r.name: r.status for r in store.list_runs()}
    assert runs == {"a": "finished", "b": "finished"}


def test_a_run_used_as_a_context_manager_is_marked_crashed_on_error(db_path: Path) -> None:
    with pytest.raises(ValueError), tviz.init(name="c", db_path=db_path):
        tviz.log({"x": 1})
        raise ValueError("boom")
    assert tviz.run is None
    with Store(db_path) as store:
        assert [r.status for r in store.list_runs()] == ["crashed"]


def test_a_step_that_is_no_number_never_raises_into_the_loop(db_path: Path) -> None:
    tviz.init(name="s", db_path=db_path)
    with pytest.warns(tviz.logger.TvizWarning):
        tviz.log({"a": 1.0}, step="epoch-1")
        tviz.run.logger.flush()
    tviz.log({"a": 2.0})  # the count goes on
    tviz.finish()
    with Store(db_path) as store:
        (summary,) = store.list_runs()
        assert store.load_run(summary.id).metrics["a"].steps == [0]


def test_leaving_a_runs_block_ends_that_run_not_the_current_one(db_path: Path) -> None:
    first = tviz.init(name="a", db_path=db_path)
    second = tviz.init(name="b", db_path=db_path)  # ends `first`
    with first:
        pass
    assert tviz.run is second
    second.finish()
    assert tviz.run is None
