"""`tviz compare`: one offline HTML file comparing two or three runs, opened in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import browser, open_page  # noqa: F401  (browser is a fixture)
from click.testing import CliRunner
from compare_runs import COUNT_COLOR, HOSTILE, PROMPTS, chatml, llama, rl_run

from tviz.cli import main
from tviz.render import comparison
from tviz.render.compare import config_diff, render_compare
from tviz.render.samples import match_key, side_by_side

# The keys whose values differ between run-a and run-b, as written in rl_run's config.
DIFFER = {"learning_rate", "seed", "optim.beta1", "kl_coef"}


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cmp") / "tviz.db"
    rl_run(path, "run-a", lr=1e-5, skill=0.3)
    rl_run(
        path,
        "run-b",
        lr=3e-5,
        seed=1,
        skill=0.9,
        template=llama,
        extra_config={"optim": {"beta1": 0.95, "schedule": "cosine"}, "kl_coef": 0.1},
    )
    rl_run(path, "run-m", lr=3e-5, skill=0.6, rollouts=False, step_every=2)
    return path


def _compare(db: Path, out: Path, *runs: str) -> Path:
    result = CliRunner().invoke(main, ["compare", *runs, "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_two_runs_offline_diff_colours_and_pairs(browser, db, tmp_path):  # noqa: F811
    page = open_page(browser, _compare(db, tmp_path / "ab.html", "run-a", "run-b"))
    assert page.requests == [] and page.errors == [] and page.dialogs == []
    html = (tmp_path / "ab.html").read_text()
    assert html.count("vega-embed") >= 1 and "<script>alert" not in html
    assert html.count('"$schema"') <= 1  # Vega inlined once
    page.wait_for_function(
        "() => document.querySelectorAll('.chart[data-drawn=yes] canvas').length >= 6"
    )
    # The config diff lists exactly the keys that differ, highlighted; the others are folded.
    differ = page.eval_on_selector_all("#config-diff tr.differs", "r => r.map(x => x.dataset.key)")
    assert set(differ) == DIFFER and len(differ) == len(DIFFER)
    same = page.eval_on_selector_all("#config-same tr", "r => r.map(x => x.dataset.key)")
    assert "note" in same and not DIFFER & set(same)
    assert page.evaluate("() => document.querySelector('#config-same').open") is False
    # Colours: run-b keeps its colour when run-a is hidden, and run-a's is gone.
    a, b = comparison.PALETTE[:2]
    before = [page.evaluate(COUNT_COLOR, ["role-reward", c]) for c in (a, b)]
    assert before[0] > 20 and before[1] > 20
    page.click('label[data-slot="0"] input')
    page.wait_for_timeout(300)
    after = [page.evaluate(COUNT_COLOR, ["role-reward", c]) for c in (a, b)]
    assert after[0] == 0 and after[1] > 20
    swatch = page.eval_on_selector('label[data-slot="1"] .swatch', "s => s.style.background")
    assert swatch.replace(" ", "") in ("rgb(242,142,43)", b)
    # Side by side: every prompt paired (chat templates differ), each column from its run.
    pairs = page.eval_on_selector_all(
        ".pair",
        """ps => ps.map(p => ({prompt: p.querySelector('.prompt').textContent,
            spread: Number(p.dataset.spread),
            cols: [...p.querySelectorAll('.pair-col')].map(c =>
              [...c.querySelectorAll('.traj')].map(t => t.textContent))}))""",
    )
    assert len(pairs) == len(PROMPTS)
    assert {p["prompt"].strip() for p in pairs} == {" ".join(t.split()) for t in PROMPTS}
    assert [p["spread"] for p in pairs] == sorted((p["spread"] for p in pairs), reverse=True)
    for p in pairs:
        left, right = p["cols"]
        assert left and all("run-a answer" in t for t in left)
        assert right and all("run-b answer" in t for t in right)
    assert any(HOSTILE in p["prompt"] for p in pairs)  # shown as text, not run


def test_three_runs_one_metrics_only(browser, db, tmp_path):  # noqa: F811
    out = _compare(db, tmp_path / "abm.html", "run-a", "run-b", "run-m")
    page = open_page(browser, out)
    assert page.requests == [] and page.errors == []
    page.wait_for_function("() => document.querySelectorAll('.chart[data-drawn=yes]').length >= 4")
    rows = page.eval_on_selector_all("#summary-table tbody tr", "r => r.length")
    assert rows == 3
    cols = page.eval_on_selector_all(".pair:first-of-type .pair-col", "c => c.length")
    assert cols == 3
    missing = page.eval_on_selector(".pair .pair-col[data-run='2']", "c => c.textContent")
    assert "not seen by this run" in missing
    # Every metric the runs share is drawn, the headline roles first.
    ids = page.eval_on_selector_all("[data-chart-card]", "c => c.map(x => x.dataset.chartCard)")
    assert ids[:4] == ["role-reward", "role-kl", "role-entropy", "role-output_length"]
    assert "x-axis" in page.content()
    options = page.eval_on_selector_all("#x-axis option", "o => o.map(x => x.value)")
    assert options[0] == "step" and "tokens" in options
    page.select_option("#x-axis", "tokens")
    page.wait_for_timeout(200)
    assert page.errors == []


def test_config_diff_and_matching_units():
    diff = config_diff([{"a": 1, "n": {"x": 1, "y": 2}}, {"a": 1, "n": {"x": 3}}])
    assert [d["key"] for d in diff["differ"]] == ["n.x", "n.y"]
    assert diff["differ"][1]["values"] == ["2", None]
    assert [s["key"] for s in diff["same"]] == ["a"]
    question = "What is 2 + 2?"
    messages = (
        '[{"role": "system", "content": "hi"}, {"role": "user", "content": "What is 2 + 2?"}]'
    )
    assert match_key(chatml(question)) == match_key(llama(question)) == question
    assert match_key(messages) == match_key(f"  {question}\n") == question


def test_side_by_side_orders_by_difference():
    from tviz.store import Rollout, Trajectory

    def group(step, prompt, rewards):
        ts = [Trajectory(i, r, output_text=str(r)) for i, r in enumerate(rewards)]
        return Rollout(id=step, step=step, group_idx=0, prompt_text=prompt, trajectories=ts)

    a = [group(0, "p1", [1, 1]), group(0, "p2", [0, 0]), group(3, "p2", [1, 0]), group(0, "x", [1])]
    b = [group(1, "p1", [1, 1]), group(1, "p2", [0, 0]), group(1, "y", [1])]
    pairs = side_by_side([a, b])
    assert [p["key"] for p in pairs] == ["p2", "p1"]  # p2: 0.5 vs 0, p1: equal
    assert pairs[0]["groups"][0]["step"] == 3  # each run's latest group for the prompt


def test_budget_cuts_samples_and_says_so(db):
    c = comparison.load(["run-a", "run-b"], [db])
    full, notice = render_compare(c)
    assert notice == "" and full.count('class="pair"') == len(PROMPTS)
    small = len(full.encode()) - 3_000
    html, notice = render_compare(c, budget_bytes=small)
    assert "size budget" in notice and 'id="budget-notice"' in html
    assert 0 < html.count('class="pair"') < len(PROMPTS)
    assert len(html.encode()) <= small


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "nope"], "no run named or with id 'nope'"),
        (["compare", "run-a", "--db", "/nonexistent/x.db"], "no database at"),
        (["export", "nope"], "no run named or with id 'nope'"),
    ],
)
def test_bad_input_is_one_line(db, args, message):
    if "--db" not in args:
        args = [*args, "--db", str(db)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_runs_from_two_databases(db, tmp_path):
    other = tmp_path / "other.db"
    rl_run(other, "run-x", lr=5e-5, steps=4)
    out = tmp_path / "two-dbs.html"
    args = ["compare", "run-a", "run-x", "--db", str(db), "--db", str(other), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "other.db" in html and f"--db {db}" in html and f"--db {other}" in html
