"""One `tviz import PATH` for every format: what it takes PATH for, what it says when PATH is none
of them, and the reports of runs imported each way."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import fixture_path
from render_data import embedded_groups
from test_import_verl import PROMPTS, score, train

from tviz.cli import main
from tviz.importers import COOKBOOK, TENSORBOARD, VERL, ImportFailed, detect, import_path
from tviz.render import build_site
from tviz.store import Store


@pytest.fixture
def verl_files(tmp_path: Path) -> tuple[Path, Path]:
    metrics = tmp_path / "verl_example" / "grpo-run.jsonl"
    metrics.parent.mkdir()
    train(metrics, tmp_path / "rollouts", range(0, 4))
    return metrics, tmp_path / "rollouts"


@pytest.fixture
def cookbook_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "gsm8k-run"
    shutil.copytree(fixture_path("cookbook-run"), dest)
    return dest


def tensorboard_dir(root: Path) -> Path:
    tensorboardX = pytest.importorskip("tensorboardX")
    pytest.importorskip("tensorboard")
    with tensorboardX.SummaryWriter(str(root / "exp" / "seed0" / "train")) as writer:
        for step in range(5):
            writer.add_scalar("train/reward", 0.2 * step, step)
        writer.add_text("generations", "<script>alert(1)</script> 42", 4)
    return root


def invoke(*args: str | Path):
    return CliRunner().invoke(main, ["import", *map(str, args)])


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    return result.output


# -- what PATH is ---------------------------------------------------------------------------------


def test_detect_tells_the_formats_apart(tmp_path, cookbook_dir, verl_files):
    assert detect(cookbook_dir) == COOKBOOK
    metrics_only = tmp_path / "just-started"
    metrics_only.mkdir()
    (metrics_only / "metrics.jsonl").write_text('{"step": 0, "env/all/reward/total": 0.1}\n')
    assert detect(metrics_only) == COOKBOOK  # a cookbook run before its first iteration

    metrics, _ = verl_files
    assert detect(metrics) == VERL
    garbage_first = tmp_path / "garbage-first.jsonl"
    garbage_first.write_bytes(b"{cut\n" + metrics.read_bytes())
    assert detect(garbage_first) == VERL

    deep = tmp_path / "tb" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "events.out.tfevents.1700000000.host").write_bytes(b"")
    assert detect(tmp_path / "tb") == TENSORBOARD


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("missing", "no such file or folder"),
        ("empty-folder", "no metrics.jsonl (tinker-cookbook run folder), no events.out.tfevents"),
        ("binary-file", "not a format tviz imports"),
        ("cookbook-metrics-file", "looks like tinker-cookbook's metrics.jsonl: import its folder"),
        ("verl-rollouts-folder", "looks like verl's rollout_data_dir"),
        ("empty-file", "is empty"),
        ("fifo", "is not a regular file"),
        ("fifo-named-like-events", "no metrics.jsonl"),
    ],
)
def test_a_path_that_is_none_of_the_formats_is_one_line(case, says, tmp_path, db_path, verl_files):
    target = tmp_path / "target"
    if case == "empty-folder":
        target.mkdir()
    elif case == "binary-file":
        target.write_bytes(bytes(range(256)) * 8)
    elif case == "cookbook-metrics-file":
        target = fixture_path("cookbook-run") / "metrics.jsonl"
    elif case == "verl-rollouts-folder":
        target = verl_files[1]
    elif case == "empty-file":
        target.write_bytes(b"")
    elif case == "fifo":
        os.mkfifo(target)
    elif case == "fifo-named-like-events":
        target.mkdir()
        os.mkfifo(target / "events.out.tfevents.1.host")
    signal.alarm(10)  # reading a FIFO would block: fail instead of hanging
    try:
        output = one_line_error(invoke(target, "--db", db_path))
    finally:
        signal.alarm(0)
    assert says in output
    assert not db_path.exists()


def test_rollouts_go_with_verl_only(cookbook_dir, verl_files, db_path):
    output = one_line_error(invoke(cookbook_dir, "--rollouts", verl_files[1], "--db", db_path))
    assert "--rollouts goes with verl's metrics file" in output


@pytest.mark.parametrize("kind", [VERL, TENSORBOARD, COOKBOOK])
def test_a_database_that_is_no_database_is_one_line(kind, tmp_path, verl_files, cookbook_dir):
    path = {VERL: verl_files[0], COOKBOOK: cookbook_dir}.get(kind) or tensorboard_dir(tmp_path)
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("not a database\n" * 100)
    assert "is not a readable SQLite database" in one_line_error(invoke(path, "--db", not_a_db))
    assert not_a_db.read_text() == "not a database\n" * 100


def test_the_cookbook_import_goes_through_the_same_entry_point(cookbook_dir, db_path):
    report = import_path(cookbook_dir, db_path, name="gsm")
    assert report.format == COOKBOOK and report.changed
    assert report.lines[0].startswith("imported gsm (cookbook-")
    assert "18 rollout groups (72 trajectories) from 6 iterations" in report.lines[0]
    with pytest.raises(ImportFailed, match="no such file or folder"):
        import_path(cookbook_dir / "nope", db_path)


# -- the reports of imported runs -----------------------------------------------------------------


def page_data(page: Path) -> dict:
    found = re.search(r'id="page-data">([^<]*)</script>', page.read_text("utf-8"))
    return json.loads(found.group(1))


def chart(data: dict, title: str) -> dict:
    return next(c for c in data["charts"].values() if c["title"] == title)


def build(tmp_path: Path, db: Path, *imports: list) -> dict[str, Path]:
    """Import each argument list, build the site: run name -> its page."""
    for args in imports:
        result = invoke(*args, "--db", db)
        assert result.exit_code == 0, result.output
    out = tmp_path / "site"
    build_site(db, out)
    with Store(db) as store:
        return {run.name: out / run.page for run in store.list_runs()}


def test_report_of_a_verl_run_shows_metrics_rewards_groups_and_completions(
    tmp_path, db_path, verl_files, cookbook_dir
):
    metrics, rollouts = verl_files
    pages = build(tmp_path, db_path, [metrics, "--rollouts", rollouts], [cookbook_dir])
    assert sorted(pages) == ["grpo-run", "gsm8k-run"]
    data = page_data(pages["grpo-run"])
    assert chart(data, "critic/score/mean")["series"]["value"][0] == [1, 2, 3]
    # Logged at one step only: shown as its value, not as a one-point chart.
    name = "val-core/openai/gsm8k/reward/mean@1"
    assert f'data-name="{name}"><dt>{name}</dt><dd>0.25</dd>' in pages["grpo-run"].read_text()

    # The rewards of the samples, per step and per group.
    reward = chart(data, "Reward per step (best / mean / worst trajectory)")["series"]
    rewards = {s: [score(s, p, i) for p in range(3) for i in range(4)] for s in (1, 2, 3)}
    assert reward["mean"] == [[1, 2, 3], [sum(r) / len(r) for r in rewards.values()]]
    assert reward["worst"][1] == [0.0, 0.0, 0.0] and reward["best"][1] == [1.0, 1.0, 1.0]
    signal_ = chart(data, "Group signal (share of groups, counted from rollouts)")["series"]
    assert signal_["all bad"][1][0] == pytest.approx(1 / 3)  # step 1: prompt 2 never right
    assert signal_["all good"][1][2] == pytest.approx(1 / 3)  # step 3: prompt 0 always

    # The groups: one per prompt, each sample's completion, reward and ground truth.
    groups = {g["g"]: g for g in embedded_groups(pages["grpo-run"], 3)}
    assert [groups[i]["p"] for i in range(3)] == [f"user\n{p}\nassistant\n" for p in PROMPTS]
    completions = {t["i"]: t for t in groups[2]["t"]}
    assert sorted(completions) == [0, 1, 2, 3]
    assert completions[1]["o"] == "step 3 answer 2.1: \\boxed{41} ✓"
    assert [completions[i]["r"] for i in range(4)] == [score(3, 2, i) for i in range(4)]
    assert completions[1]["x"]["gts"] == "44" and completions[1]["x"]["pred"] == "41"

    # The cookbook run in the same database keeps its page.
    cookbook = page_data(pages["gsm8k-run"])
    assert chart(cookbook, "Reward per step (best / mean / worst trajectory)")["series"]["mean"]


def test_report_of_a_tensorboard_run_shows_scalars_and_texts(tmp_path, db_path):
    pages = build(tmp_path, db_path, [tensorboard_dir(tmp_path / "tb")])
    page = pages["exp/seed0/train"]
    series = chart(page_data(page), "train/reward")["series"]["value"]
    assert series[0] == [0, 1, 2, 3, 4]
    assert series[1] == pytest.approx([0.2 * s for s in range(5)])
    html = page.read_text("utf-8")
    assert "generations (step 4)" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 42" in html and "<script>alert(1)" not in html
