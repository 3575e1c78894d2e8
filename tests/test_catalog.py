"""The metric catalog: runs named the TRL or verl way get the overview's standard charts, from
real SQLite files written through TvizLogger and built into pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tviz import TvizLogger, catalog
from tviz.names import REWARD_METRICS
from tviz.render import build_site

STEPS = [1, 2, 3, 4]
TRL_METRICS = {
    "reward": [0.1, 0.3, 0.5, 0.7],
    "reward_std": [0.4, 0.4, 0.3, 0.2],
    "kl": [0.0, 0.01, 0.02, 0.04],
    "entropy": [2.9, 2.7, 2.4, 2.2],
    "completions/mean_length": [120.0, 140.0, 150.0, 170.0],
    "frac_reward_zero_std": [0.75, 0.5, 0.25, 0.5],
    "loss": [0.01, 0.02, 0.0, 0.01],
    "learning_rate": [1e-6, 1e-6, 1e-6, 1e-6],
    "grad_norm": [0.5, 0.6, 0.4, 0.3],
}
VERL_METRICS = {
    "critic/score/mean": [0.2, 0.4, 0.5, 0.6],
    "critic/rewards/mean": [0.19, 0.38, 0.49, 0.58],
    "actor/ppo_kl": [0.001, 0.002, 0.002, 0.003],
    "actor/entropy": [1.5, 1.4, 1.2, 1.1],
    "response_length/mean": [300.0, 320.0, 310.0, 290.0],
    "actor/pg_loss": [0.1, -0.1, 0.05, 0.0],
}


def _log_run(db: Path, run_id: str, metrics: dict[str, list[float]], rollouts=False) -> None:
    with TvizLogger(db, run_id, run_id=run_id, strict=True) as log:
        for i, step in enumerate(STEPS):
            log.log_metrics({name: values[i] for name, values in metrics.items()}, step=step)
            if rollouts:  # two groups a step: one all right, one mixed
                groups = [[1.0, 1.0], [1.0, 0.0]]
                log.log_rollouts(
                    [
                        {
                            "prompt_text": f"question {g}",
                            "trajectories": [
                                {"reward": r, "output_text": "answer" * (step + 1)} for r in rewards
                            ],
                        }
                        for g, rewards in enumerate(groups)
                    ],
                    step=step,
                )


def _overview(db: Path, tmp_path: Path, run_id: str) -> dict[str, dict]:
    """The run page's overview charts by id, in page order, as the page embeds them."""
    build_site(db, tmp_path / "site", run_ids=[run_id])
    page = next((tmp_path / "site" / "runs").glob(f"*{run_id}.html"))
    data = json.loads(re.search(r'id="page-data">([^<]*)</script>', page.read_text()).group(1))
    return {k: c for k, c in data["charts"].items() if not re.fullmatch(r"m\d+-\d+", k)}


def test_trl_named_run_gets_reward_kl_entropy_length_and_signal(db_path, tmp_path):
    _log_run(db_path, "trlrun", TRL_METRICS)
    overview = _overview(db_path, tmp_path, "trlrun")
    assert list(overview) == ["reward", "length", "kl", "entropy", "signal"]
    assert overview["reward"]["series"] == {"mean": [STEPS, TRL_METRICS["reward"]]}
    assert overview["reward"]["title"] == "Reward (reward)"
    assert overview["length"]["series"] == {
        "mean length": [STEPS, TRL_METRICS["completions/mean_length"]]
    }
    assert overview["length"]["title"] == "Mean output length in tokens (completions/mean_length)"
    assert overview["kl"]["series"] == {"kl": [STEPS, TRL_METRICS["kl"]]}
    assert overview["entropy"]["series"] == {"entropy": [STEPS, TRL_METRICS["entropy"]]}
    # TRL logs the share of groups without signal; the chart shows the mixed share.
    mixed = [1 - v for v in TRL_METRICS["frac_reward_zero_std"]]
    assert overview["signal"]["series"] == {"mixed": [STEPS, pytest.approx(mixed)]}
    assert overview["signal"]["note"] == "mixed = 1 − frac_reward_zero_std."


def test_verl_named_run_gets_reward_kl_entropy_and_length(db_path, tmp_path):
    _log_run(db_path, "verlrun", VERL_METRICS)
    overview = _overview(db_path, tmp_path, "verlrun")
    # verl logs no group signal, so there is none to chart.
    assert list(overview) == ["reward", "length", "kl", "entropy"]
    assert overview["reward"]["series"] == {"mean": [STEPS, VERL_METRICS["critic/score/mean"]]}
    assert overview["length"]["series"] == {
        "mean length": [STEPS, VERL_METRICS["response_length/mean"]]
    }
    assert overview["kl"]["series"] == {"kl": [STEPS, VERL_METRICS["actor/ppo_kl"]]}
    assert overview["kl"]["title"] == "KL old → new policy (actor/ppo_kl)"
    assert overview["entropy"]["series"] == {"entropy": [STEPS, VERL_METRICS["actor/entropy"]]}


def test_rollouts_keep_the_exact_charts_and_add_logged_kl_and_entropy(db_path, tmp_path):
    _log_run(db_path, "verlroll", VERL_METRICS, rollouts=True)
    overview = _overview(db_path, tmp_path, "verlroll")
    assert list(overview) == ["reward", "length", "kl", "entropy", "dist", "signal"]
    assert overview["reward"]["title"] == "Reward per step (best / mean / worst trajectory)"
    assert overview["reward"]["series"]["mean"] == [STEPS, [0.75] * 4]
    assert overview["length"]["title"] == "Mean output length (characters)"
    assert overview["length"]["series"]["mean length"] == [STEPS, [6.0 * (s + 1) for s in STEPS]]
    assert overview["signal"]["series"] == {
        "all good": [STEPS, [0.5] * 4],
        "all bad": [STEPS, [0.0] * 4],
        "mixed": [STEPS, [0.5] * 4],
    }


def test_tinker_named_run_gets_kl_and_entropy_on_its_first_screen(db_path, tmp_path):
    metrics = {
        "env/all/reward/total": [0.1, 0.2, 0.3, 0.4],
        "env/all/ac_tokens_per_turn": [50.0, 60.0, 70.0, 80.0],
        "optim/kl_sample_train_v1": [0.001, 0.002, 0.001, 0.003],
        "optim/entropy": [1.0, 0.9, 0.8, 0.7],
        "env/all/by_group/frac_mixed": [0.5, 0.6, 0.7, 0.6],
    }
    _log_run(db_path, "tinkerrun", metrics)
    overview = _overview(db_path, tmp_path, "tinkerrun")
    assert list(overview) == ["reward", "length", "kl", "entropy", "signal"]
    assert overview["reward"]["title"] == "Reward (env/all/reward/total)"
    assert overview["kl"]["series"] == {"kl": [STEPS, metrics["optim/kl_sample_train_v1"]]}
    assert overview["signal"]["series"] == {
        "mixed": [STEPS, metrics["env/all/by_group/frac_mixed"]]
    }
    assert overview["signal"]["note"] == ""


def test_find_takes_the_first_name_in_the_catalogs_order():
    names = ["reward", "env/all/reward/total", "critic/score/mean", "loss"]
    name, entry = catalog.find("reward", names)
    assert (name, entry.trainer, entry.better) == (
        "env/all/reward/total",
        "tinker-cookbook",
        "higher",
    )
    assert catalog.find("kl", names) is None
    name, entry = catalog.find("frac_mixed", ["frac_reward_zero_std"])
    assert (entry.unit, entry.transform, entry.apply([0.25, 1.0])) == (
        "fraction",
        "one_minus",
        [0.75, 0.0],
    )
    # A group signal logged under any prefix is found, the shortest name first.
    assert catalog.find("frac_mixed", ["test/x/frac_mixed", "x/frac_mixed"])[0] == "x/frac_mixed"
    # The reward names the store and the index use are the catalog's, tinker-cookbook's first.
    assert catalog.names("reward") == REWARD_METRICS
    assert REWARD_METRICS[:5] == (
        "env/all/reward/total",
        "reward/total",
        "reward_mean",
        "reward",
        "env/all/reward",
    )


def test_every_entry_is_described():
    for entry in catalog.ENTRIES:
        assert entry.role in catalog.ROLES and entry.label, entry
        assert entry.better in ("higher", "lower", "none"), entry
        assert entry.transform is None or entry.transform in catalog.TRANSFORMS, entry
    assert catalog.trainer_of(TRL_METRICS).key == "trl"
    assert catalog.trainer_of(VERL_METRICS).key == "verl"
    assert catalog.trainer_of(["loss", "entropy"]) is None  # names every trainer might log
