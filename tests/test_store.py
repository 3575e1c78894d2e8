"""The read API: run summaries and aggregates that the pages show."""

from __future__ import annotations

from pathlib import Path

import pytest

from tviz import TvizLogger
from tviz.store import QUIET_AFTER_S, Store, StoreError

DAY = 86_400.0
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def test_summary_of_a_run(db_path: Path) -> None:
    with TvizLogger(db_path, run_name="r", started_at=START, strict=True) as logger:
        logger.log_hparams({"model_name": "Qwen/Qwen3-8B"})
        for step, reward in enumerate([0.2, 0.9, 0.5]):
            logger.log_metrics(
                {"env/all/reward/total": reward, "env/all/total_ac_tokens": 100},
                step=step,
                timestamp=START + 60 * (step + 1),
            )
        logger.log_rollouts(
            [{"prompt_text": "p", "trajectories": [{"reward": 1}, {"reward": 0}]}] * 3,
            step=2,
            timestamp=START + 180,
        )
    with Store(db_path) as store:
        (run,) = store.list_runs()
    assert (run.num_steps, run.last_step, run.latest_reward, run.best_reward) == (3, 2, 0.5, 0.9)
    assert (run.num_rollouts, run.num_trajectories, run.num_tokens) == (3, 6, 300)
    assert run.model == "Qwen/Qwen3-8B" and run.status == "finished"
    assert run.started_at == START and run.last_data_at == START + 180


def test_quiet_runs(db_path: Path) -> None:
    logger = TvizLogger(db_path, started_at=START, strict=True)
    logger.log_metrics({"x": 1}, step=0, timestamp=START + 10)
    with Store(db_path) as store:
        (run,) = store.list_runs()
    logger.close(None)
    assert not run.is_quiet(now=START + 10 + QUIET_AFTER_S - 1)
    assert run.is_quiet(now=START + 10 + QUIET_AFTER_S + 1)


def test_tokens_by_day_follow_each_steps_time(db_path: Path) -> None:
    for name, offset in (("a", 0.0), ("b", DAY)):
        with TvizLogger(db_path, run_name=name, started_at=START + offset, strict=True) as lg:
            for step in range(4):  # two steps before midnight UTC, two after
                when = START + offset + DAY - 7200 + 3600 * step
                lg.log_metrics({"env/all/total_ac_tokens": 10 * (step + 1)}, step, timestamp=when)
    with Store(db_path) as store:
        days = store.tokens_by_day()
    assert days == {"2026-01-01": 30, "2026-01-02": 70 + 30, "2026-01-03": 70}


def test_finding_a_run_by_name_id_or_unique_prefix(db_path: Path) -> None:
    for run_id, name in (("abc111", "alpha"), ("abc222", "beta")):
        with TvizLogger(db_path, run_name=name, run_id=run_id, strict=True):
            pass
    with Store(db_path) as store:
        assert store.find_run("abc111").name == "alpha"
        assert store.find_run("beta").id == "abc222"
        assert store.find_run("abc2").id == "abc222"
        with pytest.raises(StoreError, match="several run ids"):
            store.find_run("abc")
        with pytest.raises(StoreError, match="empty"):
            store.find_run("")
        with pytest.raises(StoreError, match="no run named"):
            store.find_run("gamma")


def test_versions_change_with_every_write_even_with_old_timestamps(db_path: Path) -> None:
    logger = TvizLogger(db_path, started_at=START, strict=True)
    logger.log_metrics({"loss": 1.0}, step=0, timestamp=START + 100)
    with Store(db_path) as store:
        before = store.versions()[logger.run_id]
        # The same step again, with a time not newer than the run's last data (an importer,
        # or a second writer flushing late): only the revision says it changed.
        logger.log_metrics({"eval/acc": 0.5}, step=0, timestamp=START + 50)
        after = store.versions()[logger.run_id]
    logger.close(None)
    assert before != after
