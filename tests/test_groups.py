"""Groups of runs (seeds): the alignment rule, --group-by, and drawing them in compare and
the index as a mean with a min-max band."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import browser, open_page  # noqa: F401  (browser is a fixture)
from click.testing import CliRunner
from compare_runs import COUNT_COLOR, rl_run
from render_data import page_json

from tviz.cli import main
from tviz.render import build_site, comparison
from tviz.render.groups import aggregate, config_value, group_of


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("groups") / "tviz.db"
    for seed in range(3):  # three seeds, logged every 1, 2 and 3 steps
        rl_run(
            path,
            f"s{seed}",
            lr=1e-5,
            seed=seed,
            skill=0.3 + 0.1 * seed,
            group="lr=1e-5",
            step_every=seed + 1,
            steps=10,
        )
    rl_run(path, "other", lr=3e-5, skill=0.9, steps=10, project="other-project")
    return path


def test_aggregate_aligns_runs_on_a_common_grid():
    a = ([0, 2, 4], [0.0, 2.0, 4.0])
    b = ([1, 3, 5, 7], [10.0, 10.0, 10.0, 10.0])
    agg = aggregate([a, b])
    # The union of steps within the range both cover (1..4); a interpolated linearly.
    assert agg["steps"] == [1, 2, 3, 4]
    assert agg["mean"] == [5.5, 6.0, 6.5, 7.0]
    assert agg["lo"] == [1.0, 2.0, 3.0, 4.0] and agg["hi"] == [10.0] * 4
    assert aggregate([([0, 1], [1.0, 2.0]), ([5, 6], [1.0, 2.0])]) is None  # no shared range
    gaps = aggregate([([0, 1, 2], [1.0, float("nan"), 3.0]), ([0, 2], [1.0, 3.0])])
    assert gaps["steps"] == [0, 2] and gaps["mean"] == [1.0, 3.0]  # a gap is not a point


def test_group_by_config_keys():
    config = {"optim": {"lr": 0.1}, "a.b": 3, "seed": 2}
    assert config_value(config, "optim.lr") == 0.1
    assert config_value(config, "a.b") == 3
    assert config_value(config, "missing.key") is None
    assert group_of(config, "logged", "optim.lr") == "optim.lr=0.1"
    assert group_of(config, "logged", None) == "logged"


def test_compare_draws_three_seeds_as_a_group(browser, db, tmp_path):  # noqa: F811
    out = tmp_path / "g.html"
    args = ["compare", "s0", "s1", "s2", "other", "--db", str(db), "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    page = open_page(browser, out)
    assert page.requests == [] and page.errors == []
    page.wait_for_function("() => document.querySelectorAll('.chart[data-drawn=yes]').length >= 4")
    assert "min-max" in page.text_content("#group-rule")
    slots = page.eval_on_selector_all(
        "#slot-toggles label",
        "ls => ls.map(l => [l.textContent.trim(), l.querySelector('input').checked])",
    )
    assert slots[:3] == [["s0", False], ["s1", False], ["s2", False]]  # folded
    assert slots[3] == ["other", True] and slots[4][0].startswith("group lr=1e-5")
    assert slots[4][1] is True
    data = page.evaluate("() => JSON.parse(document.getElementById('compare-data').textContent)")
    reward = data["charts"][0]
    assert reward["id"] == "role-reward" and set(reward["bands"]) == {"4"}
    steps, lo, hi = reward["bands"]["4"]
    assert steps[0] == 0 and steps[-1] == 9  # the range all three seeds cover (s0: 0-9)
    assert all(a <= b for a, b in zip(lo, hi, strict=True))
    group_color = data["slots"][4]["color"]
    assert page.evaluate(COUNT_COLOR, ["role-reward", group_color]) > 20
    page.click('label[data-slot="0"] input')  # unfold one seed
    page.wait_for_timeout(300)
    assert page.errors == []


def test_group_by_option_forms_groups(db, tmp_path):
    c = comparison.load(["s0", "s1", "s2", "other"], [db], group_by="learning_rate")
    assert list(c.groups) == ["learning_rate=1e-05"] and c.groups["learning_rate=1e-05"] == [
        0,
        1,
        2,
    ]
    assert c.runs[3].group is None and c.runs[3].color != c.runs[0].color
    assert c.runs[0].color == c.runs[1].color == c.runs[2].color


def test_index_shows_groups_projects_and_keeps_colours(browser, db, tmp_path):  # noqa: F811
    build_site(db, tmp_path / "site")
    page = open_page(browser, tmp_path / "site" / "index.html")
    assert page.requests == [] and page.errors == []
    page.wait_for_function("() => document.querySelector('#overlay[data-drawn=yes] canvas')")
    heads = page.eval_on_selector_all("#runs th", "t => t.map(x => x.dataset.key)")
    assert "project" in heads and "group" in heads
    text = page.text_content("#runs")
    assert "other-project" in text and "lr=1e-5" in text
    assert "min-max" in page.text_content("#index-group-rule")
    command = page.text_content("#compare-command")
    assert command.startswith("tviz compare ") and "--db tviz.db" in command
    # Each run keeps its colour when another is unticked (runs drawn one by one).
    page.click("#as-groups")
    page.wait_for_timeout(300)
    runs = page.evaluate("() => JSON.parse(document.getElementById('index-data').textContent).runs")
    color = comparison.PALETTE[1]
    before = page.evaluate(COUNT_COLOR, ["overlay", color])
    page.click(f'.pick[value="{runs[0]["id"]}"]')
    page.wait_for_timeout(300)
    after = page.evaluate(COUNT_COLOR, ["overlay", color])
    assert before > 20 and after > 20
    assert page.evaluate(COUNT_COLOR, ["overlay", comparison.PALETTE[0]]) == 0
    assert runs[0]["id"] not in page.text_content("#compare-command")


def test_build_group_by_groups_the_index_by_a_config_key(tmp_path):
    db = tmp_path / "tviz.db"
    for seed in range(3):  # no logger group: the config says which runs belong together
        rl_run(db, f"a{seed}", lr=1e-5, seed=seed, steps=6, rollouts=False)
    rl_run(db, "b0", lr=3e-5, steps=6, rollouts=False)
    out = tmp_path / "site"
    args = ["build", "--db", str(db), "--out", str(out), "--group-by", "learning_rate"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = page_json(out / "index.html", "index-data")
    assert {r["id"]: r["group"] for r in data["runs"]} == {
        "a0": "learning_rate=1e-05",
        "a1": "learning_rate=1e-05",
        "a2": "learning_rate=1e-05",
        "b0": "learning_rate=3e-05",
    }
    # A group of three is drawn as mean and band; a run alone is no group.
    assert set(data["groups"]) == {"learning_rate=1e-05"}
    assert sorted(data["groups"]["learning_rate=1e-05"]["runs"]) == ["a0", "a1", "a2"]
    # Over the headline roles (each run's own metric for it), not every metric logged.
    group = data["groups"]["learning_rate=1e-05"]["metrics"]
    assert sorted(group) == ["entropy", "kl", "output_length", "reward"]
    assert data["sources"]["a0"]["kl"] == "optim/kl_sample_train_v1"
    assert "optim/lr" not in json.dumps(data["metrics"]) and "optim/lr" not in json.dumps(group)


def test_index_over_two_files_offers_a_compare_command_naming_both(tmp_path):
    a, b = tmp_path / "node-a.db", tmp_path / "node-b.db"
    rl_run(a, "r1", lr=1e-5, steps=4, rollouts=False)
    rl_run(b, "r2", lr=3e-5, steps=4, rollouts=False)
    result = CliRunner().invoke(
        main, ["build", "--db", str(a), "--db", str(b), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    data = page_json(tmp_path / "s" / "index.html", "index-data")
    assert data["dbNames"] == ["node-a.db", "node-b.db"]
