"""TvizLogger: what training code passes in comes back out, and the loop never breaks."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import math
import os
import sqlite3
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from tviz import TvizLogger
from tviz.logger import TvizWarning
from tviz.store import Store


class Tensor0d:
    """What a 0-d torch / jax array offers: .item()."""

    def __init__(self, value: float) -> None:
        self._value = value

    def item(self) -> float:
        return self._value


class Optimizer(enum.Enum):
    ADAM = "adam"


@dataclasses.dataclass
class DatasetConfig:
    batch_size: int = 3
    path: Path = Path("/data/gsm8k")


@dataclasses.dataclass
class TrainConfig:
    model_name: str = "meta-llama/Llama-3.2-1B"
    learning_rate: float = 4e-5
    optimizer: Optimizer = Optimizer.ADAM
    dataset: DatasetConfig = dataclasses.field(default_factory=DatasetConfig)
    tags: tuple[str, ...] = ("grpo", "math")


class PydanticLike:
    """The pydantic v2 surface: model_dump()."""

    def model_dump(self) -> dict:
        return {"lora_rank": 32, "nested": {"temperature": 1.0}}


def _load(db_path: Path, run_id: str):
    with Store(db_path) as store:
        return store.load_run(run_id)


def test_every_value_kind_round_trips(db_path: Path) -> None:
    metrics = {
        "env/all/reward/total": 0.25,
        "int": 7,
        "np_float32": np.float32(0.5),
        "np_int64": np.int64(12),
        "np_bool": np.bool_(True),
        "tensor_0d": Tensor0d(1.5),
        "bool": False,
        "nan": float("nan"),
        "inf": float("inf"),
        "neg_inf": -math.inf,
        "np_nan": np.float64("nan"),
        "label": "warmup",
        "time/total": 30.5,
    }
    with TvizLogger(db_path, run_name="kinds", strict=True) as logger:
        logger.log_metrics(metrics, step=3)
    data = _load(db_path, logger.run_id)

    def value(name: str) -> float:
        series = data.metrics[name]
        assert series.steps == [3]
        return series.values[0]

    assert value("env/all/reward/total") == 0.25
    assert value("int") == 7 and value("np_int64") == 12
    assert value("np_float32") == 0.5 and value("tensor_0d") == 1.5
    assert value("np_bool") == 1.0 and value("bool") == 0.0
    assert math.isnan(value("nan")) and math.isnan(value("np_nan"))
    assert value("inf") == math.inf and value("neg_inf") == -math.inf
    assert data.text_metrics["label"] == [(3, "warmup")]
    # Every name kept as logged, nothing more.
    assert set(data.metrics) | set(data.text_metrics) == set(metrics)


def test_configs_of_every_shape_are_stored_as_json(db_path: Path) -> None:
    with TvizLogger(db_path, strict=True) as logger:
        logger.log_hparams(TrainConfig())
        logger.log_hparams(PydanticLike())  # a second call merges its keys
        logger.log_hparams({"paths": [Path("/a"), Path("/b")], "nan": float("nan")})
    config = _load(db_path, logger.run_id).config
    assert config["model_name"] == "meta-llama/Llama-3.2-1B"
    assert config["optimizer"] == "adam"
    assert config["dataset"] == {"batch_size": 3, "path": "/data/gsm8k"}
    assert config["tags"] == ["grpo", "math"]
    assert config["lora_rank"] == 32 and config["nested"] == {"temperature": 1.0}
    assert config["paths"] == ["/a", "/b"] and config["nan"] is None


def test_legacy_columns_are_filled_for_the_0_2_dashboard(db_path: Path) -> None:
    with TvizLogger(db_path, strict=True) as logger:
        logger.log_metrics(
            {
                "env/all/reward/total": 0.4,
                "optim/kl_sample_train_v1": 0.01,
                "optim/entropy": 0.6,
                "optim/lr": 4e-5,
                "env/all/ac_tokens_per_turn": 32.5,
                "env/all/total_ac_tokens": 391.0,
                "time/total": 12.0,
                "env/all/by_group/frac_mixed": 0.5,
                "env/all/by_group/frac_all_good": 0.25,
                "env/all/by_group/frac_all_bad": 0.25,
                "progress/done_frac": 0.1,
                "test/env/all/reward/total": 0.9,  # an eval metric: not the train reward
            },
            step=0,
        )
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM steps").fetchone()
    assert row["reward_mean"] == 0.4 and row["kl_divergence"] == 0.01
    assert row["entropy"] == 0.6 and row["learning_rate"] == 4e-5
    assert row["ac_tokens_per_turn"] == 32.5 and row["total_ac_tokens"] == 391
    assert row["time_total"] == 12.0
    assert (row["frac_mixed"], row["frac_all_good"], row["frac_all_bad"]) == (0.5, 0.25, 0.25)
    assert json.loads(row["extras"]) == {
        "progress/done_frac": 0.1,
        "test/env/all/reward/total": 0.9,
    }


def test_metrics_logged_in_several_calls_for_one_step_are_merged(db_path: Path) -> None:
    with TvizLogger(db_path, strict=True) as logger:
        logger.log_metrics({"env/all/reward/total": 0.4, "a": 1}, step=5)
        logger.log_metrics({"optim/entropy": 0.7, "b": 2}, step=5)
    conn = sqlite3.connect(db_path)
    reward, entropy, extras = conn.execute(
        "SELECT reward_mean, entropy, extras FROM steps WHERE step = 5"
    ).fetchone()
    assert (reward, entropy, json.loads(extras)) == (0.4, 0.7, {"a": 1, "b": 2})
    assert set(_load(db_path, logger.run_id).metrics) == {
        "env/all/reward/total",
        "a",
        "optim/entropy",
        "b",
    }


def test_stepless_metrics_are_kept_as_latest_values(db_path: Path) -> None:
    with TvizLogger(db_path, strict=True) as logger:
        logger.log_metrics({"tokens/total": 10}, step=None)
        logger.log_summary({"tokens/total": 25, "note": "ok"})
        logger.log_long_text("sample", "a long </script> text")
    data = _load(db_path, logger.run_id)
    assert data.summaries == {"tokens/total": 25.0, "note": "ok"}
    assert data.metrics == {}
    assert [(t.key, t.text) for t in data.long_texts] == [("sample", "a long </script> text")]


def test_rollouts_round_trip(db_path: Path) -> None:
    rollouts = [
        {
            "prompt_text": "What is 2+2?",
            "prompt_tokens": [1, 2, 3],
            "env": "gsm8k",  # unknown keys are kept, not dropped
            "trajectories": [
                {
                    "reward": 1.0,
                    "output_text": "4 \ud800 </script>",  # a lone surrogate from a tokenizer
                    "output_tokens": np.array([5, 6]),
                    "logprobs": np.array([-0.1, -0.25], dtype=np.float32),
                    "step_rewards": [0.0, 1.0],
                    "stop_reason": "stop",
                },
                {"reward": float("nan"), "output_text": "?"},
                {
                    "reward": np.float64(0.5),
                    "turns": [
                        {"observation": "hi", "action": "hello", "reward": 0.0},
                        {"observation": "more", "action": "done", "reward": 0.5},
                    ],
                },
            ],
        },
        {
            "group_idx": 7,
            "image_path": "img.png",
            "gt_lat": 48.85,
            "gt_lon": 2.35,
            "city": "Paris",
            "trajectories": [
                {"reward": 0.2, "pred_lat": 40.0, "pred_lon": 3.0, "distance_km": 980}
            ],
        },
    ]
    with TvizLogger(db_path, modality="vision", strict=True) as logger:
        logger.log_rollouts(rollouts, step=2)
    data = _load(db_path, logger.run_id)
    first, second = data.rollouts
    assert (first.step, first.group_idx, first.prompt_text) == (2, 0, "What is 2+2?")
    assert first.prompt_tokens == [1, 2, 3] and first.extras == {"env": "gsm8k"}
    assert first.mean_reward == 0.75 and first.best_reward == 1.0  # over the finite rewards
    a, b, c = first.trajectories
    assert a.output_text == "4 \ufffd </script>"
    assert a.output_tokens == [5, 6] and a.logprobs == pytest.approx([-0.1, -0.25])
    assert a.step_rewards == [0.0, 1.0] and a.extras == {"stop_reason": "stop"}
    assert math.isnan(b.reward) and b.extras == {}
    assert c.reward == 0.5 and [t["action"] for t in c.turns] == ["hello", "done"]
    assert (second.group_idx, second.city, second.gt_lat, second.image_path) == (
        7,
        "Paris",
        48.85,
        "img.png",
    )
    assert second.trajectories[0].distance_km == 980


def test_resuming_a_run_by_id_appends_to_it(db_path: Path) -> None:
    with TvizLogger(db_path, run_name="long", strict=True) as first:
        first.log_hparams({"lr": 1e-4})
        first.log_metrics({"loss": 1.0}, step=0)
    with TvizLogger(db_path, run_id=first.run_id, strict=True) as again:
        again.log_metrics({"loss": 0.5}, step=1)
    with Store(db_path) as store:
        (run,) = store.list_runs()
        data = store.load_run(run.id)
    assert run.name == "long" and run.num_steps == 2 and run.status == "finished"
    assert data.metrics["loss"].values == [1.0, 0.5] and data.config == {"lr": 1e-4}


def test_status_follows_how_the_run_ended(db_path: Path) -> None:
    with pytest.raises(RuntimeError), TvizLogger(db_path, run_name="boom", strict=True) as logger:
        logger.log_metrics({"loss": 1.0}, step=0)
        raise RuntimeError("diverged")
    running = TvizLogger(db_path, run_name="live", strict=True)
    running.log_metrics({"loss": 1.0}, step=0)
    with Store(db_path) as store:
        status = {run.name: run.status for run in store.list_runs()}
    running.close()
    assert status == {"boom": "crashed", "live": "running"}


def test_async_logging_is_durable_after_flush_and_close(db_path: Path) -> None:
    logger = TvizLogger(db_path, run_name="async")
    for step in range(200):
        logger.log_metrics({f"m{i}": step * i for i in range(30)}, step=step)
    logger.log_rollouts([{"prompt_text": "p", "trajectories": [{"reward": 1.0}]}], step=199)
    assert logger.flush() is True
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == 200 * 30
    assert conn.execute("SELECT count(*) FROM trajectories").fetchone()[0] == 1
    logger.close()
    logger.close()  # idempotent
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "finished"


def test_default_database_location(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TVIZ_DB_PATH", str(tmp_path / "env.db"))
    with TvizLogger(strict=True) as logger:
        logger.log_metrics({"x": 1}, step=0)
    assert (tmp_path / "env.db").exists() and logger.db_path == tmp_path / "env.db"
    monkeypatch.delenv("TVIZ_DB_PATH")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with TvizLogger(strict=True) as logger:
        logger.log_metrics({"x": 1}, step=0)
    assert (tmp_path / "home" / ".tviz" / "tviz.db").exists()


def test_it_is_a_tinker_cookbook_logger() -> None:
    """Every method tinker-cookbook's MultiplexLogger forwards, with compatible signatures."""
    expected = {
        "log_hparams": ["config"],
        "log_metrics": ["metrics", "step"],
        "log_summary": ["metrics"],
        "log_metrics_event": ["metrics", "step", "step_metric", "metric_axes"],
        "enable_event_steps": [],
        "log_long_text": ["key", "text"],
        "close": [],
        "sync": [],
        "get_logger_url": [],
    }
    for name, params in expected.items():
        signature = inspect.signature(getattr(TvizLogger, name))
        names = [p for p in signature.parameters if p != "self"]
        assert names[: len(params)] == params, name
        # Any parameter beyond the interface's must be optional.
        for extra in names[len(params) :]:
            assert signature.parameters[extra].default is not inspect.Parameter.empty
    assert isinstance(TvizLogger.store, property)


def test_multiplexed_calls_reach_the_database(db_path: Path) -> None:
    """What MultiplexLogger does with its children, in the order rl/train.py does it."""
    logger = TvizLogger(db_path, run_name="cookbook", strict=True)
    logger.log_hparams({"model_name": "m"})
    logger.enable_event_steps()
    logger.log_metrics({"env/all/reward/total": 0.5}, 0)
    logger.log_metrics_event({"eval/score": 0.9}, step=0, step_metric="eval/step")
    logger.log_summary({"tokens/cumulative": 100})
    logger.sync()
    # No `tviz watch` serves this database: no link for Tinker (tests/test_logger_env.py has
    # the one with a watch, ending in f"-{logger.run_id}.html").
    assert logger.get_logger_url() is None
    logger.close()
    data = _load(db_path, logger.run_id)
    assert data.metrics["eval/score"].values == [0.9] and data.metrics["eval/step"].values == [0.0]


# -- never crash the training loop -------------------------------------------------------------


def test_bad_input_warns_and_the_loop_goes_on(db_path: Path) -> None:
    logger = TvizLogger(db_path)
    with pytest.warns(TvizWarning, match="mapping"):
        logger.log_metrics(["not", "a", "dict"], step=0)  # type: ignore[arg-type]
    with pytest.warns(TvizWarning, match="list of rollout dicts"):
        logger.log_rollouts([1, 2], step=0)  # type: ignore[list-item]
    logger.log_metrics({"odd": object(), "ok": 1.0}, step=1)  # odd values are kept as text
    assert logger.flush()
    logger.close()
    with pytest.warns(TvizWarning, match="closed"):
        logger.log_metrics({"late": 1}, step=2)
    data = _load(db_path, logger.run_id)
    assert data.metrics["ok"].values == [1.0] and "object" in data.text_metrics["odd"][0][1]


def test_strict_mode_raises_instead(db_path: Path) -> None:
    logger = TvizLogger(db_path, strict=True)
    with pytest.raises(TypeError):
        logger.log_metrics(42, step=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        logger.log_metrics({"x": 1}, step="not a step")  # type: ignore[arg-type]
    logger.close()


def test_unwritable_database_warns_keeps_data_and_recovers(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database's folder should be")
    db_path = blocker / "tviz.db"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = TvizLogger(db_path, run_name="outage")
        for step in range(5):
            logger.log_metrics({"loss": 1.0 / (step + 1)}, step=step)  # never raises
        assert logger.flush(timeout=10) is False
        problems = [w for w in caught if issubclass(w.category, TvizWarning)]
        assert len(problems) == 1 and "cannot write" in str(problems[0].message)
        # The disk comes back: everything logged during the outage is written.
        blocker.unlink()
        blocker.mkdir()
        logger.log_metrics({"loss": 0.1}, step=5)
        assert logger.flush(timeout=10) is True
        logger.close()
    assert any("works again" in str(w.message) for w in caught)
    assert _load(db_path, logger.run_id).metrics["loss"].steps == [0, 1, 2, 3, 4, 5]


def test_deleted_database_is_recreated_with_the_run(db_path: Path) -> None:
    logger = TvizLogger(db_path, run_name="phoenix")
    logger.log_hparams({"lr": 1})
    logger.log_metrics({"loss": 1.0}, step=0)
    assert logger.flush()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    with pytest.warns(TvizWarning, match="deleted or replaced"):
        logger.log_metrics({"loss": 0.5}, step=1)
        assert logger.flush()
    logger.close()
    with Store(db_path) as store:
        (run,) = store.list_runs()
        data = store.load_run(run.id)
    assert run.name == "phoenix" and data.metrics["loss"].steps == [1] and data.config == {"lr": 1}


def test_a_locked_database_delays_but_loses_nothing(db_path: Path) -> None:
    logger = TvizLogger(db_path)
    logger.log_metrics({"x": 0}, step=0)
    assert logger.flush()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    for step in range(1, 20):
        logger.log_metrics({"x": step}, step=step)  # returns at once regardless
    assert logger.flush(timeout=0.3) is False
    blocker.execute("COMMIT")
    assert logger.flush(timeout=15)
    logger.close()
    assert _load(db_path, logger.run_id).metrics["x"].steps == list(range(20))


def test_close_without_status_leaves_the_run_open(db_path: Path) -> None:
    logger = TvizLogger(db_path, strict=True)
    logger.log_metrics({"x": 1}, step=0)
    logger.close(None)
    with Store(db_path) as store:
        (run,) = store.list_runs()
    assert run.status == "running" and run.ended_at is None and run.num_steps == 1


def test_an_importer_can_give_the_times_of_an_old_run(db_path: Path) -> None:
    start = 1_700_000_000.0
    logger = TvizLogger(db_path, started_at=start, strict=True)
    logger.log_metrics({"x": 1}, step=0, timestamp=start + 60)
    logger.log_rollouts([{"trajectories": [{"reward": 1}]}], step=0, timestamp=start + 90)
    logger.close(timestamp=start + 120)
    with Store(db_path) as store:
        (run,) = store.list_runs()
    assert (run.started_at, run.last_data_at, run.ended_at) == (start, start + 90, start + 120)
    assert run.duration_s == 120
    started_at, ended_at = (
        sqlite3.connect(db_path).execute("SELECT started_at, ended_at FROM runs").fetchone()
    )
    assert (started_at, ended_at) == ("2023-11-14 22:13:20", "2023-11-14 22:15:20")


# -- odd values: each bad call is skipped alone, everything else is kept -----------------------


def test_a_value_that_cannot_be_stored_skips_only_its_own_call(db_path: Path) -> None:
    cyclic: dict = {}
    cyclic["self"] = cyclic
    logger = TvizLogger(db_path, run_name="survivor")
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.log_hparams({"lr": 0.1, "odd": cyclic})  # nested too deep: kept, cut
    logger.log_rollouts(  # the second group's index is no number: the whole call is skipped
        [
            {"prompt_text": "ok", "trajectories": [{"reward": 1}]},
            {"prompt_text": "bad", "trajectories": [{"reward": 1, "trajectory_idx": "x"}]},
        ],
        step=0,
    )
    logger.log_metrics({"loss": 0.5}, step=1)
    with pytest.warns(TvizWarning, match="skipped a rollouts call"):
        assert logger.flush()
    logger.close()
    data = _load(db_path, logger.run_id)
    assert data.summary.name == "survivor" and data.config["lr"] == 0.1
    assert data.metrics["loss"].steps == [0, 1]
    assert data.rollouts == []  # all or nothing: no half-written call


def test_numbers_too_large_for_a_double_are_kept_as_text(db_path: Path) -> None:
    with TvizLogger(db_path, strict=True) as logger:
        logger.log_metrics({"big": 10**400, "a": 4.0}, step=0)
    data = _load(db_path, logger.run_id)
    assert data.metrics["a"].values == [4.0]
    assert data.text_metrics["big"] == [(0, str(10**400))]


def test_odd_run_fields_do_not_lose_the_run(db_path: Path) -> None:
    with TvizLogger(db_path, modality=["text"], run_type=Optimizer.ADAM) as logger:  # type: ignore[arg-type]
        logger.log_metrics({"x": 1}, step=0)
    data = _load(db_path, logger.run_id)
    assert data.summary.modality == "['text']" and data.summary.type == "adam"
    assert data.metrics["x"].values == [1.0]


def test_warnings_as_errors_do_not_break_the_loop(db_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger = TvizLogger(db_path)
        logger.log_metrics(42, step=0)  # type: ignore[arg-type]  # would warn: must not raise
        logger.log_metrics({"odd": object()}, step=1)
        logger.log_rollouts([{"trajectories": [{"reward": 1, "trajectory_idx": "x"}]}], step=1)
        logger.log_metrics({"x": 2.0}, step=2)
        assert logger.flush()
        logger.close()
    data = _load(db_path, logger.run_id)
    assert data.metrics["x"].steps == [2] and data.summary.status == "finished"


def test_values_changed_in_place_after_the_call_are_logged_as_they_were(db_path: Path) -> None:
    accumulator = np.zeros(())
    logger = TvizLogger(db_path)
    for step in range(5):
        accumulator += 1
        logger.log_metrics({"acc": accumulator}, step=step)
    logger.close()
    assert _load(db_path, logger.run_id).metrics["acc"].values == [1, 2, 3, 4, 5]


def test_list_fields_that_are_no_lists_are_kept_aside(db_path: Path) -> None:
    with TvizLogger(db_path, strict=True) as logger:
        logger.log_rollouts(
            [
                {
                    "trajectories": [
                        {"reward": 1, "output_tokens": 57, "logprobs": -12.5, "turns": "t"}
                    ]
                }
            ],
            step=0,
        )
    (traj,) = _load(db_path, logger.run_id).rollouts[0].trajectories
    assert (traj.output_tokens, traj.logprobs, traj.turns) == (None, None, None)
    assert traj.extras == {"output_tokens": 57, "logprobs": -12.5, "turns": "t"}


def test_a_resumed_run_replaces_the_rollouts_of_steps_it_logs_again(db_path: Path) -> None:
    def group(text: str) -> list[dict]:
        return [{"prompt_text": text, "trajectories": [{"reward": 1}]}]

    with TvizLogger(db_path, strict=True) as first:
        for step in range(5):
            first.log_rollouts(group(f"first {step}"), step=step)
    with TvizLogger(db_path, run_id=first.run_id, strict=True) as again:  # from checkpoint 3
        for step in (3, 4, 5):
            again.log_rollouts(group(f"again {step}"), step=step)
            again.log_rollouts(group(f"again {step} more"), step=step)  # same session: kept
    prompts = {(r.step, r.prompt_text) for r in _load(db_path, first.run_id).rollouts}
    assert prompts == {
        (0, "first 0"),
        (1, "first 1"),
        (2, "first 2"),
        *((s, f"again {s}") for s in (3, 4, 5)),
        *((s, f"again {s} more") for s in (3, 4, 5)),
    }


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MB filesystem of its own, to fill up (needs root, as in CI and the dev machine)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_warns_keeps_data_and_recovers(small_disk: Path) -> None:
    db_path = small_disk / "tviz.db"
    logger = TvizLogger(db_path, run_name="full")
    logger.log_metrics({"x": 0.0}, step=0)
    assert logger.flush()
    free = os.statvfs(small_disk)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 8192))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(1, 300):
            logger.log_metrics({f"m{i}": step + i for i in range(30)}, step=step)  # never raises
        assert logger.flush(timeout=15) is False
        assert any("cannot write" in str(w.message) for w in caught)
        filler.unlink()  # space again: what was held back is written
        assert logger.flush(timeout=15) is True
    logger.close()
    data = _load(db_path, logger.run_id)
    assert data.metrics["m29"].steps == list(range(1, 300)) and data.metrics["x"].steps == [0]


def test_forget_steps_deletes_what_an_importer_writes_again(db_path: Path) -> None:
    group = {"prompt_text": "q", "trajectories": [{"reward": 1.0}]}
    with TvizLogger(db_path=db_path, run_id="r", strict=True) as logger:
        for step in range(3):
            logger.log_metrics({"loss": float(step)}, step=step)
            logger.log_rollouts([group], step=step)
        logger.forget_steps([1], [0, 2])
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT step FROM metrics ORDER BY step").fetchall() == [(0,), (2,)]
    assert conn.execute("SELECT step FROM steps ORDER BY step").fetchall() == [(0,), (2,)]
    assert conn.execute("SELECT step FROM rollouts").fetchall() == [(1,)]
    assert conn.execute("SELECT count(*) FROM trajectories").fetchone() == (1,)
    conn.close()
