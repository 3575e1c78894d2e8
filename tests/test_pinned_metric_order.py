"""A run page shows every numeric metric in a panel, grouped by the first segment of its name:
the usual training groups first in a fixed order, then the others alphabetically, and the
metrics without a prefix ("other") last."""

from __future__ import annotations

import re
from pathlib import Path

from tviz import TvizLogger
from tviz.render import build_site

# Logged in this (scrambled) order; alphabetical order of the prefixes differs from the rule.
LOGGED = [
    "zeta/b",
    "loss",
    "time/total",
    "aaa/x",
    "progress/done_frac",
    "test/env/all/reward/total",
    "train/loss",
    "optim/lr",
    "optim/entropy",
    "accuracy",
    "reward/mean",
    "zeta/a",
    "env/all/reward/total",
    "eval/score",
]
# The rule applied to LOGGED: env, reward, optim, train, test, eval, progress, time; then the
# rest alphabetically; then "other". Inside a group, panels are sorted by metric name.
EXPECTED = [
    ("env/", ["env/all/reward/total"]),
    ("reward/", ["reward/mean"]),
    ("optim/", ["optim/entropy", "optim/lr"]),
    ("train/", ["train/loss"]),
    ("test/", ["test/env/all/reward/total"]),
    ("eval/", ["eval/score"]),
    ("progress/", ["progress/done_frac"]),
    ("time/", ["time/total"]),
    ("aaa/", ["aaa/x"]),
    ("zeta/", ["zeta/a", "zeta/b"]),
    ("other", ["accuracy", "loss"]),
]


def _metric_groups(page: Path) -> list[tuple[str, list[str]]]:
    """(group name, panel titles) of each metric group, in page order."""
    html = page.read_text("utf-8")
    section = re.search(r'<section class="metrics".*?</section>', html, re.S).group(0)
    out = []
    for block in section.split('<details class="metric-group"')[1:]:
        name = re.search(r'<span class="group-name">([^<]*)</span>', block).group(1)
        panels = re.findall(r'<figcaption class="panel-title" title="([^"]*)">', block)
        out.append((name, panels))
    return out


def test_metric_groups_follow_the_fixed_order_then_alphabetical_then_other(tmp_path):
    db = tmp_path / "tviz.db"
    with TvizLogger(db, "metrics", run_id="metricrun", strict=True) as log:
        for step in range(3):
            log.log_metrics({name: float(step + i) for i, name in enumerate(LOGGED)}, step=step)
            log.log_metrics({"notes/phase": f"phase {step}"}, step=step)  # text: no panel
    report = build_site(db, tmp_path / "out")
    page = next(p for p in report.written if p.parent.name == "runs")
    assert _metric_groups(page) == EXPECTED
