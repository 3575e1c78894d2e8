"""The size budget counts the metric charts: past it, lines are drawn with fewer points, then
panels are listed by name and last value instead of drawn, and the page says which."""

from __future__ import annotations

import html as html_module
import math
import re
import sqlite3
from pathlib import Path

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser is a fixture)
from render_data import page_data

from tviz import TvizLogger
from tviz.names import DEFAULT_BUDGET_BYTES
from tviz.render import SiteBuilder

RUN = "manyrun"
# Catalog names (reward, KL): the overview charts them and their panels are always drawn.
REWARD, KL = "env/all/reward/total", "optim/kl_sample_train_v1"


def many_metrics(db: Path, metrics: int, steps: int) -> list[str]:
    """A run logging `metrics` metrics (in five groups) at each of `steps` steps, plus the
    reward and the KL: the run made by TvizLogger, the rows written with SQL in the shape the
    logger writes them (writing a million rows through the logger would take a minute)."""
    with TvizLogger(db, "many metrics", run_id=RUN, strict=True) as log:
        log.log_metrics({REWARD: 0.0, KL: 0.0}, step=0)
    names = [f"{('env', 'optim', 'train', 'time', 'misc')[m % 5]}/m{m:05d}" for m in range(metrics)]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO metrics (run_id, name, step, value, text, ts)"
            " VALUES (?, ?, ?, ?, NULL, ?)",
            (
                (RUN, name, s, math.sin(s / 9 + m) + (s % 7) / 50, 1.7e9 + s)
                for m, name in enumerate([REWARD, KL, *names])
                for s in range(steps)
            ),
        )
    return names


def _build(db: Path, out: Path, budget: int = DEFAULT_BUDGET_BYTES) -> tuple[Path, str, str]:
    report = SiteBuilder(db, out, budget_bytes=budget).build()
    page = report.written[0]
    return page, page.read_text("utf-8"), report.notices.get(RUN, "")


def _listed(html: str) -> list[tuple[str, str]]:
    """(name, value) of each panel listed and not drawn."""
    return re.findall(
        r'<div class="constant listed" data-name="([^"]*)"><dt>[^<]*</dt><dd>([^<]*)', html
    )


def test_many_metrics_past_a_small_budget_thin_then_list_and_say_so(tmp_path):
    db = tmp_path / "tviz.db"
    names = many_metrics(db, 200, 1_500)  # a 3.6 MB page today, 1.1 MB of it Vega and the rest
    budget = 1_500_000
    page, html, notice = _build(db, tmp_path / "out", budget)
    assert page.stat().st_size <= budget

    # The notice says what was thinned and what is listed, on the page and in the build's line.
    assert "draw at most 100 points per line instead of 1,000" in notice
    listed = _listed(html)
    assert listed and f"{len(listed):,} of {len(names) + 2:,} metric charts are listed" in notice
    shown = re.search(r'<p class="notice" id="metrics-notice">([^<]*)</p>', html)
    assert shown and html_module.unescape(shown.group(1)) == notice

    charts = page_data(page)["charts"]
    # The overview is drawn in full; the catalog's metrics keep their panels.
    assert "reward" in charts and "kl" in charts
    assert len(charts["reward"]["series"]["mean"][0]) > 500
    drawn = {c["name"]: c for c in charts.values() if c.get("metric")}
    assert REWARD in drawn and KL in drawn
    # Drawn panels have at most about 100 points and say how many of how many they draw.
    assert all(len(c["series"]["value"][0]) <= 100 for c in drawn.values())
    assert "100 of 1,500 points drawn per line" in drawn[KL]["note"]
    # Every metric is on the page: drawn, or listed by name with its last value, in the page's
    # order (the groups read first keep their charts).
    listed_names = [name for name, _ in listed]
    assert set(listed_names) | set(drawn) == {REWARD, KL, *names}
    assert not set(listed_names) & set(drawn)
    assert all(re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", value) for _, value in listed)
    groups = ("env", "optim", "train", "time", "misc")  # the page's order of these groups
    in_order = sorted(names, key=lambda n: (groups.index(n.split("/")[0]), n))
    assert listed_names == in_order[-len(listed_names) :]


def test_past_the_budget_lines_are_thinned_before_any_panel_is_listed(tmp_path):
    db = tmp_path / "tviz.db"
    many_metrics(db, 30, 3_000)
    _, _, notice = _build(db, tmp_path / "full")
    assert notice == ""
    full = (tmp_path / "full").glob("runs/*.html").__next__().stat().st_size
    bare, _, _ = _build(db, tmp_path / "bare", 1)  # as little as the page can be
    budget = (full + bare.stat().st_size) // 2
    page, html, notice = _build(db, tmp_path / "half", budget)
    assert page.stat().st_size <= budget
    assert not _listed(html) and "listed" not in notice
    points = int(re.search(r"draw at most (\d+) points per line", notice).group(1))
    assert points in (500, 250)
    notes = {c["note"] for c in page_data(page)["charts"].values() if c.get("metric")}
    assert notes == {
        f"{points} of 3,000 points drawn per line: the lowest and highest value of each step "
        "range are kept, so spikes are never hidden."
    }


def test_twenty_thousand_metrics_stay_within_the_default_budget(tmp_path):
    db = tmp_path / "tviz.db"
    names = many_metrics(db, 20_000, 20)  # a 28 MB page today
    page, html, notice = _build(db, tmp_path / "out")
    assert page.stat().st_size <= DEFAULT_BUDGET_BYTES
    assert "metric charts are listed by name and last value" in notice
    assert all(f'data-name="{name}"' in html for name in names[::997])


def test_a_run_within_its_budget_draws_every_panel_with_no_notice(tmp_path):
    db = tmp_path / "tviz.db"
    many_metrics(db, 10, 1_500)
    page, html, notice = _build(db, tmp_path / "out")
    assert notice == "" and 'id="metrics-notice"' not in html and not _listed(html)
    notes = {c["note"] for c in page_data(page)["charts"].values() if c.get("metric")}
    assert notes == {
        "1,000 of 1,500 points drawn per line: the lowest and highest value of each step range "
        "are kept, so spikes are never hidden."
    }


@pytest.fixture(scope="module")
def listed_page(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("listed")
    many_metrics(tmp / "tviz.db", 60, 2_000)
    page, html, _ = _build(tmp / "tviz.db", tmp / "out", 1_150_000)
    assert _listed(html)
    return page


def test_listed_panels_show_their_name_and_value_in_the_browser(browser, listed_page):  # noqa: F811
    opened = open_page(browser, listed_page)
    try:
        name, value = _listed(listed_page.read_text("utf-8"))[-1]
        item = opened.locator(f'.constant.listed[data-name="{name}"]')
        item.scroll_into_view_if_needed()
        assert item.is_visible()
        assert item.locator("dt").inner_text() == name
        assert item.locator("dd").inner_text() == value
        assert opened.locator("#metrics-notice").is_visible()
        # The filter finds listed panels as it finds drawn ones.
        opened.fill("#metric-filter", name)
        assert item.is_visible()
        assert opened.locator("#metric-filter-status").inner_text() == "1 of 62 metrics"
        opened.wait_for_timeout(300)
        assert opened.errors == [] and opened.requests == []
    finally:
        close_page(opened)
