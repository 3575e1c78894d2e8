"""A step's figures read without its texts equal the figures of its whole rows, and a page
that keeps a sample of a run's groups reads and encodes about that sample only, with the same
page as encoding every group gives."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

import tviz.render.site as site_module
from tviz import TvizLogger
from tviz.render import SiteBuilder
from tviz.render.rollouts import StepChunk, encode_step, figure_step, figures_of, plan_sample
from tviz.store import Rollout, Store, Trajectory
from tviz.values import finite_number

GROUPS = 12


def _odd_rows(db: Path, *, edit: bool) -> None:
    """A run whose trajectories hold every shape a file may hold: token lists of numbers and of
    strings (with commas), logprobs only, nothing at all, non-finite rewards, indices out of
    order, a group without trajectories. With `edit`, rows another program changed after
    (0.2.x's JSON with spaces, text as a blob or a number, odd JSON), whose groups lose the
    figures the logger stored, as a file written before schema v5 has none."""
    with TvizLogger(db, "odd", run_id="odd", strict=True) as log:
        log.log_rollouts(
            [
                {
                    "prompt_text": "p0",
                    "trajectories": [
                        {"reward": 1.0, "output_text": "a", "output_tokens": [1, 2, 3]},
                        {"reward": 0.0, "output_text": "bb", "logprobs": [-0.5, -0.25]},
                        {"reward": float("nan"), "output_text": "ccc"},
                        {"reward": float("inf"), "output_text": "déjà vu"},
                    ],
                },
                {
                    "prompt_text": "p1",
                    "trajectories": [
                        {"trajectory_idx": 2, "reward": 0.25, "output_tokens": ["a,b", "c"]},
                        {"trajectory_idx": 0, "reward": 0.5, "output_tokens": [], "logprobs": [-1]},
                        {"trajectory_idx": 1, "reward": -1.0, "output_tokens": [7, 8]},
                    ],
                },
                {"prompt_text": "p2", "trajectories": []},
            ],
            step=0,
        )
    if not edit:
        return
    conn = sqlite3.connect(db)
    with conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM trajectories ORDER BY id")]
        odd = {
            ids[0]: ("output_tokens", "[1, 2, 3, 4]"),  # 0.2.x's separators
            ids[1]: ("output_text", b"\xffbytes"),  # a blob
            ids[2]: ("output_text", 12345),  # a number
            ids[4]: ("output_tokens", " [1,2]"),  # not counted in SQL: read as JSON
            ids[5]: ("output_tokens", "[1,2"),  # not JSON at all
            ids[6]: ("logprobs", "[[1], [2]]"),  # nested
        }
        for tid, (column, value) in odd.items():
            conn.execute(f"UPDATE trajectories SET {column} = ? WHERE id = ?", (value, tid))
        conn.execute("UPDATE rollouts SET figures = NULL")
    conn.close()


@pytest.mark.parametrize("edit", [False, True], ids=["stored", "counted-from-rows"])
def test_figures_equal_the_figures_of_the_whole_rows(db_path: Path, edit: bool) -> None:
    _odd_rows(db_path, edit=edit)
    with Store(db_path) as store:
        whole = store.load_run("odd").rollouts
        figures = store.step_figures("odd", 0)
        stored = [r[0] for r in store.conn.execute("SELECT figures FROM rollouts ORDER BY id")]
    assert all(f is None for f in stored) if edit else all(f is not None for f in stored)
    assert [f.key for f in figures] == [r.id for r in whole]
    for got, rollout in zip(figures, whole, strict=True):
        want = figures_of(rollout, rollout.id)
        finite = [finite_number(r) for r in got.rewards]
        assert finite == [finite_number(r) for r in want.rewards], rollout.prompt_text
        assert got.lengths == want.lengths, rollout.prompt_text
        assert (got.tokens, got.geo) == (want.tokens, want.geo)
    a = figure_step(0, figures, (0, 0))
    b = figure_step(0, [figures_of(r, r.id) for r in whole], (0, 0))
    assert (a.stats, list(a.rewards), a.keys) == (b.stats, list(b.rewards), b.keys)
    assert (a.length_total, a.length_count, a.length_unit) == (
        b.length_total,
        b.length_count,
        b.length_unit,
    )


def _big_run(db: Path, steps: int = 40) -> None:
    rng = random.Random(3)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
    ]
    with TvizLogger(db, "big", run_id="big", strict=True) as log:
        for step in range(steps):
            groups = []
            for g in range(GROUPS):
                trajectories = []
                for i in range(4):
                    text = " ".join(rng.choice(words) for _ in range(rng.randint(50, 300)))
                    trajectories.append(
                        {
                            "trajectory_idx": i,
                            "reward": float(rng.random() < 0.5),
                            "output_text": text,
                            "logprobs": [round(-rng.random(), 3) for _ in range(40)],
                        }
                    )
                groups.append({"prompt_text": f"q{step}-{g}", "trajectories": trajectories})
            log.log_rollouts(groups, step=step)
            log.log_metrics({"env/all/reward/total": step / steps}, step=step)


def test_a_sampled_page_reads_about_the_sample_and_equals_the_page_of_every_group(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _big_run(db_path)
    report = SiteBuilder(db_path, tmp_path / "all", budget_bytes=10**9).build()
    full = report.written[0].stat().st_size
    empty = SiteBuilder(db_path, tmp_path / "none", budget_bytes=1).build()
    bare = empty.written[0].stat().st_size
    budget = bare + (full - bare) // 4
    read: list[int] = []
    real_groups = Store.groups

    def counting(self, run_id, keys):
        read.extend(keys)
        return real_groups(self, run_id, keys)

    monkeypatch.setattr(Store, "groups", counting)
    report = SiteBuilder(db_path, tmp_path / "sampled", budget_bytes=budget).build()
    page = report.written[0].read_bytes()
    assert len(page) <= budget
    notice = report.notices["big"]
    assert "of 480 rollout groups are included" in notice
    shown = int(notice.split("budget, ")[1].split(" of ")[0].replace(",", ""))
    assert 40 <= shown < 480
    # Groups read whole: the sample, one more a step to learn that it no longer fits, and the
    # first group of a few steps to learn the bytes per character (each read once or twice).
    assert len(read) <= 2 * (shown + 40 + site_module.CALIBRATE_STEPS)
    assert len(set(read)) < 480

    # Encoding every group first (what the code before this change did) gives the same page.
    def everything(self, data, chunks, history=None, grow=None):
        if grow is not None:
            grow(max(c.n_groups for c in chunks), None)
        return real_render(self, data, chunks, history, grow)

    real_render = SiteBuilder._render_within_budget
    monkeypatch.setattr(SiteBuilder, "_render_within_budget", everything)
    whole = SiteBuilder(db_path, tmp_path / "whole", budget_bytes=budget).build()
    assert whole.written[0].read_bytes() == page


def _random_step(rng: random.Random, step: int) -> list[Rollout]:
    return [
        Rollout(
            id=100 * step + g,
            step=step,
            group_idx=g,
            prompt_text=f"q{g}",
            trajectories=[
                Trajectory(idx=i, reward=float(rng.random() < 0.5), output_text="x" * n)
                for i, n in enumerate(rng.choices(range(10, 3_000), k=3))
            ],
        )
        for g in range(rng.randint(1, 9))
    ]


def test_the_plan_does_not_depend_on_the_hint() -> None:
    """Whatever the first guess, the search finds the largest count that fits (or the newest
    steps' first groups when none does), and encodes at most about twice that many."""
    rng = random.Random(7)
    for _ in range(30):
        steps = {step: _random_step(rng, step) for step in range(rng.randint(1, 10))}
        whole = [encode_step(step, groups, (0, 0), None) for step, groups in steps.items()]
        available = rng.randint(0, sum(c.cost(c.n_groups) for c in whole) + 100)
        want = plan_sample(whole, available)
        answer = max(want.values())
        for hint in range(0, 11):
            chunks = [
                figure_step(step, [figures_of(r, r.id) for r in groups], (0, 0))
                for step, groups in steps.items()
            ]
            by_id = {r.id: r for groups in steps.values() for r in groups}

            def grow(k: int, some: list[StepChunk] | None = None, chunks=chunks, by_id=by_id):
                for c in chunks if some is None else some:
                    more = c.keys[c.held : min(k, c.n_groups)]
                    c.encode([by_id[key] for key in more], None)

            assert plan_sample(chunks, available, grow=grow, hint=hint) == want
            assert max(c.ready for c in chunks) <= max(hint, 2 * answer + 1)
