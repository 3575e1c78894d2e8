"""Past its size budget a run page keeps, per step, the best and the worst group, then the mixed
groups with the widest spread of rewards, and says how many groups it left out (README)."""

from __future__ import annotations

import random
import re
from pathlib import Path

from click.testing import CliRunner
from render_data import embedded_groups

from tviz import TvizLogger
from tviz.cli import main
from tviz.render import SiteBuilder

# One step's groups, in the order the rule keeps them: the best mean, the worst mean, then the
# mixed groups from the widest spread of rewards to the narrowest, then the flat rest.
PRIORITY = [
    ("best", [1.0, 1.0, 1.0, 1.0]),
    ("worst", [0.0, 0.0, 0.0, 0.0]),
    ("mixed-wide", [0.0, 1.0, 0.0, 1.0]),
    ("mixed-mid", [0.3, 0.7, 0.3, 0.7]),
    ("mixed-narrow", [0.45, 0.55, 0.45, 0.55]),
    ("flat-low", [0.2, 0.2, 0.2, 0.2]),
    ("flat-high", [0.8, 0.8, 0.8, 0.8]),
]
STEPS = 3


def _run(db: Path) -> None:
    """Each step logs the groups in its own shuffled order, with texts that do not compress."""
    with TvizLogger(db, "budget", run_id="budgetrun", strict=True) as log:
        for step in range(STEPS):
            rng = random.Random(step)
            groups = [
                {
                    "prompt_text": f"step {step}: {name}",
                    "trajectories": [
                        {"reward": r, "output_text": "".join(rng.choices("abcdefghij ", k=1500))}
                        for r in rewards
                    ],
                }
                for name, rewards in PRIORITY
            ]
            rng.shuffle(groups)
            log.log_rollouts(groups, step=step)


def _kept(page: Path, step: int) -> list[str]:
    return [g["p"].split(": ", 1)[1] for g in embedded_groups(page, step)]


def test_past_the_budget_each_step_keeps_best_worst_then_widest_mixed(tmp_path):
    db = tmp_path / "tviz.db"
    _run(db)
    full = SiteBuilder(db, tmp_path / "full").build().written[0]
    bare = SiteBuilder(db, tmp_path / "bare", budget_bytes=1).build().written[0]
    assert 'id="chunk-' not in bare.read_text("utf-8")
    # Room for four or five of the seven groups of each step.
    rollouts = full.stat().st_size - bare.stat().st_size
    budget = bare.stat().st_size + 4_096 + rollouts * 9 // (2 * len(PRIORITY))

    report = SiteBuilder(db, tmp_path / "small", budget_bytes=budget).build()
    page = report.written[0]
    assert page.stat().st_size <= budget
    n = len(PRIORITY)
    kept = {step: _kept(page, step) for step in range(STEPS)}
    k = len(kept[0])
    assert 3 <= k < n, kept  # best, worst and at least one mixed group; not everything
    for step in range(STEPS):
        assert sorted(kept[step]) == sorted(name for name, _ in PRIORITY[:k]), step

    total, included = STEPS * n, STEPS * k
    notice = report.notices.get("budgetrun", "")
    assert f"{included} of {total} rollout groups are included ({total - included} left out)" in (
        notice
    )
    shown = re.search(r'<p class="notice" id="budget-notice">([^<]*)</p>', page.read_text("utf-8"))
    assert shown and shown.group(1).replace("&amp;", "&") == notice


def test_a_large_enough_budget_keeps_every_group_and_says_nothing(tmp_path):
    db = tmp_path / "tviz.db"
    _run(db)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    (page,) = (out / "runs").glob("*.html")
    for step in range(STEPS):
        assert sorted(_kept(page, step)) == sorted(name for name, _ in PRIORITY)
    html = page.read_text("utf-8")
    assert "budget-notice" not in html and "rollout groups are included" not in html
