"""`tviz demo` and its generator: a realistic run, deterministic, in its own folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser: a fixture)
from click.testing import CliRunner

from tviz import TvizLogger
from tviz.cli import main
from tviz.demo import simulate_run, write_demo_db
from tviz.render import build_site
from tviz.store import Store

# Strings a model may well write that would break a page that does not escape its data. The
# demo never shows them (a newcomer's first page); a test-only run carries them instead.
HOSTILE = ("</script><script>alert(1)</script>", "<!--", "<img src=x onerror=alert(2)>")

SMALL = {"steps": 8, "groups": 5, "samples": 4}


def content(db: Path) -> list[tuple]:
    """Everything logged, without timestamps."""
    conn = sqlite3.connect(db)
    try:
        return [
            *conn.execute("SELECT run_id, name, step, value, text FROM metrics ORDER BY 1, 2, 3"),
            *conn.execute(
                "SELECT r.step, r.group_idx, r.prompt_text, t.trajectory_idx, t.reward,"
                " t.output_text, t.logprobs, t.turns FROM rollouts r JOIN trajectories t"
                " ON t.rollout_id = r.id ORDER BY 1, 2, 4"
            ),
        ]
    finally:
        conn.close()


def test_same_seed_same_run(tmp_path: Path) -> None:
    dbs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        db = tmp_path / f"{name}.db"
        with TvizLogger(db, run_id="demo", strict=True) as logger:
            simulate_run(logger, seed=seed, **SMALL)
        dbs.append(content(db))
    assert dbs[0] == dbs[1]
    assert dbs[0] != dbs[2]


def test_demo_run_looks_like_a_cookbook_grpo_run(tmp_path: Path) -> None:
    result = write_demo_db(tmp_path / "demo.db", steps=24, groups=8, samples=8)
    with Store(result.db_path) as store:
        runs = {r.modality: r for r in store.list_runs()}
        text = store.load_run(runs["text"].id)
        vision = store.load_run(runs["vision"].id)

    for name in (
        "env/all/reward/total",
        "env/all/by_group/frac_mixed",
        "env/all/by_group/frac_all_good",
        "env/all/by_group/frac_all_bad",
        "env/all/ac_tokens_per_turn",
        "optim/kl_sample_train_v1",
        "optim/entropy",
        "optim/lr",
        "time/total",
        "progress/done_frac",
        "test/env/all/reward/total",
    ):
        assert name in text.metrics, name
    reward = text.metrics["env/all/reward/total"].values
    assert sum(reward[-6:]) / 6 > sum(reward[:6]) / 6 + 0.2  # it learns
    assert text.summary.latest_reward is not None  # the 0.2.x column is filled too

    # The reward metric agrees with the rollouts it summarises.
    last = [r for r in text.rollouts if r.step == 23]
    rewards = [t.reward for r in last for t in r.trajectories]
    assert reward[-1] == pytest.approx(sum(rewards) / len(rewards))

    groups = text.rollouts
    assert any(len({t.reward for t in g.trajectories}) == 1 for g in groups)  # no signal
    assert any(len({t.reward for t in g.trajectories}) > 1 for g in groups)
    trajs = [t for g in groups for t in g.trajectories]
    assert all(t.logprobs and len(t.logprobs) == len(t.output_tokens) for t in trajs)
    multi = [t for t in trajs if t.turns]
    assert multi and all(len(t.turns) == 2 and t.turns[1]["observation_text"] for t in multi)
    everything = " ".join([g.prompt_text for g in groups] + [t.output_text for t in trajs])
    assert not any(h in everything for h in HOSTILE)  # the demo shows what a newcomer should
    assert "<" not in " ".join(str(v) for v in text.config.values())
    # Its counts add up: a calculator episode has two turns, and the config says so.
    episodes = text.metrics["env/all/total_episodes"].values[-1]
    turns = text.metrics["env/all/total_turns"].values[-1]
    per_episode = text.metrics["env/all/turns_per_episode"].values[-1]
    assert turns > episodes and per_episode == pytest.approx(turns / episodes)
    assert "two-turn calculator episode" in text.config["notes"]

    assert vision.summary.modality == "vision"
    for group in vision.rollouts:
        # Relative to the database's folder, so the folder can be moved or shared whole.
        assert Path(group.image_path).parent == Path("images")
        image = tmp_path / group.image_path
        assert image.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert group.gt_lat is not None and group.city
        for traj in group.trajectories:
            assert traj.pred_lat is not None and traj.distance_km >= 0


def test_write_demo_db_never_overwrites_by_accident(tmp_path: Path) -> None:
    db = tmp_path / "mine.db"
    db.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_demo_db(db, **SMALL)
    assert db.read_bytes() == b"precious"


@pytest.fixture
def user_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the user's own database would be: the demo must not touch it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TVIZ_DB_PATH", str(tmp_path / "user.db"))
    return tmp_path / "user.db"


def test_cli_demo_writes_its_own_database_and_report(tmp_path: Path, user_db: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--steps", "4", "--groups", "3", "--samples", "3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (out / "tviz-demo.db").exists()
    assert not user_db.exists() and not (tmp_path / "home" / ".tviz").exists()
    assert (out / "index.html").exists()
    assert (out / "index.html").resolve().as_uri() in result.output
    # Running it again replaces the demo, it does not append to it.
    assert CliRunner().invoke(main, args).exit_code == 0
    with Store(out / "tviz-demo.db") as store:
        assert [r.num_steps for r in store.list_runs()] == [2, 4]


def test_demo_report_opens_in_chromium(tmp_path: Path, browser: object) -> None:  # noqa: F811
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--steps", "6"])
    assert result.exit_code == 0, result.output
    pages = [out / "index.html", *sorted((out / "runs").glob("*.html"))]
    assert len(pages) == 3  # the index, the math run, the vision run
    for path in pages:
        page = open_page(browser, path)
        assert page.errors == [], (path.name, page.errors)
        assert page.requests == [], (path.name, page.requests)  # offline
        assert page.dialogs == [], (path.name, page.dialogs)  # the alert(1) in model text
        close_page(page)


def test_model_text_that_would_break_a_page_shows_as_text(tmp_path: Path, browser: object):  # noqa: F811
    """The demo's generator, given markup to write (a test-only run), makes a page where that
    markup shows as text and never runs."""
    db = tmp_path / "hostile.db"
    with TvizLogger(db, "hostile-demo", run_id="hostile", strict=True) as logger:
        simulate_run(logger, steps=6, groups=6, samples=3, inject=HOSTILE)
    with Store(db) as store:
        run = store.load_run("hostile")
    texts = [g.prompt_text for g in run.rollouts] + [
        t.output_text for g in run.rollouts for t in g.trajectories
    ]
    assert all(any(h in t for t in texts) for h in HOSTILE)
    build_site(db, tmp_path / "out")
    page = open_page(browser, next((tmp_path / "out" / "runs").glob("hostile-demo*.html")))
    page.click("details.step >> nth=0 >> summary")
    page.wait_for_selector("details.step[data-filled=yes]")
    shown = page.locator("details.step >> nth=0").inner_text()
    assert HOSTILE[0] in shown and HOSTILE[2] in shown  # in the group headers, as text
    assert page.locator(".step-body img, .step-body script").count() == 0
    assert page.dialogs == [] and page.errors == [] and page.requests == []
    close_page(page)
