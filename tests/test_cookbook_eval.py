"""Eval rollouts of a tinker-cookbook folder (`eval_<name>_rollout_summaries.jsonl` and
`eval_<name>_logtree.json`): imported into the same run, marked with their eval set's name,
and kept apart from training everywhere (counts, charts, the samples table, the budget)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser is a fixture)
from conftest import fixture_path
from render_data import page_data

from tviz.adapters.cookbook import import_cookbook_run, run_id_for
from tviz.render.site import build_site
from tviz.store import Store


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "eval-run"
    shutil.copytree(fixture_path("cookbook-run"), dest)
    return dest


def without_evals(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest)
    for path in dest.glob("iteration_*/eval_*"):
        path.unlink()
    return dest


def load(db: Path, run_id: str):
    with Store(db) as store:
        return store.load_run(run_id)


def block(page: Path, name: str) -> dict:
    found = re.search(rf'id="{name}">([^<]*)</script>', page.read_text("utf-8"))
    return json.loads(found.group(1)) if found else {}


def test_eval_files_are_imported_as_eval_rollouts(run_dir: Path, db_path: Path) -> None:
    result = import_cookbook_run(run_dir, db_path)
    assert result.eval_groups_written == 6 and result.rollout_groups_written > 0
    data = load(db_path, run_id_for(run_dir))
    evals = data.eval_rollouts
    assert {(g.eval_name, g.step) for g in evals} == {("test", 0), ("test", 6)}
    assert len([g for g in evals if g.step == 0]) == 3
    assert all(g.eval_name is None for g in data.rollouts)
    # The logtree's text reached the eval groups it shows.
    assert any(g.prompt_text and g.trajectories[0].output_text for g in evals)
    # Per-step summaries match the file: three one-sample groups, rewards as written.
    lines = (run_dir / "iteration_000000" / "eval_test_rollout_summaries.jsonl").read_text()
    rewards = sorted(json.loads(x)["total_reward"] for x in lines.splitlines())
    assert sorted(t.reward for g in evals if g.step == 0 for t in g.trajectories) == rewards


def test_training_figures_are_the_same_with_or_without_evals(run_dir: Path, tmp_path: Path) -> None:
    plain = without_evals(run_dir, tmp_path / "plain")
    import_cookbook_run(run_dir, tmp_path / "with.db", run_id="r")
    import_cookbook_run(plain, tmp_path / "without.db", run_id="r")
    with_evals, without = load(tmp_path / "with.db", "r"), load(tmp_path / "without.db", "r")
    assert with_evals.eval_rollouts and not without.eval_rollouts
    for field in ("num_steps", "last_step", "num_rollouts", "num_trajectories", "num_tokens"):
        assert getattr(with_evals.summary, field) == getattr(without.summary, field), field
    with Store(tmp_path / "with.db") as a, Store(tmp_path / "without.db") as b:
        assert set(a.rollout_index("r")) == set(b.rollout_index("r"))

    build_site(tmp_path / "with.db", tmp_path / "out-with")
    build_site(tmp_path / "without.db", tmp_path / "out-without")
    (page,) = (tmp_path / "out-with" / "runs").glob("*.html")
    (other,) = (tmp_path / "out-without" / "runs").glob("*.html")
    assert page_data(page)["steps"] == page_data(other)["steps"]
    assert page_data(page)["charts"] == page_data(other)["charts"]
    assert block(page, "rollout-data") == block(other, "rollout-data")
    rows = re.search(r'id="sample-rows">([^<]*)</script>', page.read_text("utf-8")).group(1)
    assert rows == re.search(r'id="sample-rows">([^<]*)</script>', other.read_text()).group(1)
    html, other_html = page.read_text("utf-8"), other.read_text("utf-8")
    assert 'id="eval-samples"' in html and 'id="eval-samples"' not in other_html
    assert 'id="eval-chunk-' not in other_html and 'id="eval-data"' not in other_html
    sets = block(page, "eval-data")["sets"]
    assert [(s["name"], [x["step"] for x in s["steps"]]) for s in sets] == [("test", [6, 0])]


def test_eval_groups_are_cut_with_a_notice_past_the_budget(run_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    import_cookbook_run(run_dir, db, run_id="r")
    full = build_site(db, tmp_path / "full")
    assert not full.notices
    size = (tmp_path / "full" / full.written[0].relative_to(tmp_path / "full")).stat().st_size
    # Just too small for everything: something must go, and the page says what.
    report = build_site(db, tmp_path / "small", budget_bytes=size - 30_000)
    (page,) = (tmp_path / "small" / "runs").glob("*.html")
    evals = block(page, "eval-data")
    kept = sum(s["kept"] for x in evals["sets"] for s in x["steps"])
    total = sum(s["groups"] for x in evals["sets"] for s in x["steps"])
    if kept < total:
        assert "eval groups are included" in evals["notice"]
        assert "eval groups are included" in " ".join(report.notices.values())
    else:
        assert evals["notice"] == ""  # eval groups kept first; training groups were cut
        assert "rollout groups are included" in " ".join(report.notices.values())


def test_eval_samples_show_apart_in_the_browser(browser, run_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "t.db"
    import_cookbook_run(run_dir, db)
    build_site(db, tmp_path / "out")
    (page_path,) = (tmp_path / "out" / "runs").glob("*.html")
    check_eval_page(browser, page_path)


def check_eval_page(browser, page_path: Path) -> None:  # noqa: F811
    """The eval section lists eval set -> steps -> groups -> trajectories, apart from the
    training steps; no console error."""
    page = open_page(browser, page_path)
    try:
        training_steps = page.locator("#steps > details.step").count()
        assert training_steps > 0
        assert page.locator("#steps details.eval-step").count() == 0
        sets = page.locator("#eval-sets .eval-set")
        assert sets.count() >= 1
        step = page.locator("#eval-sets details.eval-step").first
        step.locator("summary").click()
        page.wait_for_selector("#eval-sets details.eval-step[data-filled=yes] .group")
        group = step.locator(".group").first
        group.locator(".group-head").click()
        page.wait_for_selector("#eval-sets .group .traj")
        # The samples table (training) has no eval trajectory in it.
        assert page.locator("#samples-table").count() == 1
        assert page.errors == [] and page.requests == []
    finally:
        close_page(page)
