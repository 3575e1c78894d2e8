"""The run report as a researcher reads it, in real Chromium (issue "The report a researcher
reads"): the wheel scrolls, zoom is a dragged range shared by every chart, one tooltip lists
every series, numbers fit their range, the samples table, prompt history, a chart click that
lands on its step, no sideways scroll, the dark theme, exports, vision and cookbook pages."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser is a fixture)
from click.testing import CliRunner
from conftest import fixture_path
from render_data import embedded_groups, history_run, page_data, range_run, text_run

from tviz.cli import main
from tviz.demo import write_demo_db
from tviz.render import build_site


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("reader")
    demo = write_demo_db(tmp / "demo" / "tviz.db", steps=120, groups=4, samples=4)
    build_site(demo.db_path, tmp / "demo-out")
    cookbook = tmp / "cookbook.db"
    result = CliRunner().invoke(
        main, ["import", str(fixture_path("cookbook-run")), "--db", str(cookbook)]
    )
    assert result.exit_code == 0, result.output
    build_site(cookbook, tmp / "cookbook-out")
    db = tmp / "misc.db"
    text_run(db)
    range_run(db)
    history_run(db)
    build_site(db, tmp / "misc-out")
    # The same prompts, with room for about two groups of each step's five.
    tight = tmp / "tight.db"
    history_run(tight)
    build_site(tight, tmp / "tight-out", budget_bytes=1)
    bare = next((tmp / "tight-out" / "runs").glob("*.html")).stat().st_size
    build_site(tight, tmp / "tight-out", budget_bytes=bare + 6 * 2 * 3_000)

    def one(out: str, prefix: str) -> Path:
        return next((tmp / out / "runs").glob(prefix + "*.html"))

    return {
        "math": one("demo-out", "grpo-math-demo"),
        "geo": one("demo-out", "geo-vision-demo"),
        "cookbook": one("cookbook-out", "cookbook-run"),
        "text": one("misc-out", "evil"),
        "ranges": one("misc-out", "ranges"),
        "history": one("misc-out", "history"),
        "tight": one("tight-out", "history"),
    }


def _drawn(opened, chart: str) -> None:
    opened.wait_for_selector(f".chart[data-chart={chart}][data-drawn=yes] canvas")


def _box(opened, chart: str) -> dict:
    _drawn(opened, chart)
    return opened.locator(f".chart[data-chart={chart}] canvas").bounding_box()


def _clean(opened) -> None:
    assert opened.errors == [] and opened.requests == [] and opened.dialogs == []
    assert opened.warnings == []  # no "Infinite extent" or any other warning


# -- charts ------------------------------------------------------------------------------------


def test_the_wheel_over_a_chart_scrolls_the_page_and_leaves_the_chart_as_it_was(
    browser,  # noqa: F811
    pages,
):
    opened = open_page(browser, pages["math"])
    box = _box(opened, "reward")
    before = opened.locator(".chart[data-chart=reward]").get_attribute("data-x")
    opened.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    opened.mouse.wheel(0, 500)
    opened.wait_for_function("() => window.scrollY > 300")
    opened.wait_for_timeout(300)
    assert opened.locator(".chart[data-chart=reward]").get_attribute("data-x") == before
    assert opened.locator("#zoom-status").is_hidden()
    _clean(opened)
    close_page(opened)


def test_a_dragged_range_zooms_every_step_chart_and_one_click_resets_it(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["math"])
    box = _box(opened, "reward")
    _drawn(opened, "length")
    full = opened.locator(".chart[data-chart=reward]").get_attribute("data-x")
    y = box["y"] + box["height"] / 2
    opened.mouse.move(box["x"] + box["width"] * 0.35, y)
    opened.mouse.down()
    opened.mouse.move(box["x"] + box["width"] * 0.65, y, steps=6)
    opened.mouse.up()
    opened.wait_for_selector("#zoom-status:not([hidden])")
    zoomed = "() => ['reward', 'length', 'dist'].map(id => document.querySelector(" + (
        "`.chart[data-chart=${id}]`).dataset.x)"
    )
    opened.wait_for_function(
        zoomed + ".every((x, i, all) => x === all[0] && x !== " + repr(full) + ")"
    )
    lo, hi = map(float, opened.evaluate(zoomed)[0].split(","))
    first, last = map(float, full.split(","))
    assert first < lo < hi < last and (hi - lo) < (last - first) / 2
    assert "steps" in opened.locator("#zoom-range").inner_text()
    opened.click("#zoom-reset")
    opened.wait_for_function(zoomed + f".every(x => x === {full!r})")
    assert opened.locator("#zoom-status").is_hidden()
    _clean(opened)
    close_page(opened)


def test_one_tooltip_lists_every_series_at_the_hovered_step(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["math"])
    box = _box(opened, "reward")
    opened.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    tip = opened.locator("#chart-tip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert re.match(r"step \d+", text)
    assert "undefined" not in text
    rows = tip.locator(".tip-row").all_inner_texts()
    assert [r.split()[0] for r in rows] == ["best", "mean", "worst"]
    assert all(re.search(r"-?\d", r) for r in rows)
    assert opened.locator(".chart[data-chart=reward] .hover-dot").count() == 3
    opened.mouse.move(5, 5)
    tip.wait_for(state="hidden")
    _clean(opened)
    close_page(opened)


def _save(opened, panel: str, label: str):
    opened.click(f'figure[data-panel="{panel}"] .save')
    with opened.expect_download() as info:
        opened.click(f'figure[data-panel="{panel}"] .save-menu >> text="{label}"')
    return Path(info.value.path())


def test_numbers_fit_their_range_and_axes_say_what_they_measure(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["ranges"], accept_downloads=True)
    constants = dict(
        c.split("\n")[:2] for c in opened.locator(".metrics .constant").all_inner_texts()
    )
    assert constants == {"optim/lr": "4e-5", "env/all/turns_per_episode": "1.125"}
    panel = opened.locator("figure.panel", has_text="time/total").get_attribute("data-panel")
    _drawn(opened, panel)
    svg = ET.parse(_save(opened, panel, "Chart as SVG")).getroot()
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.text]
    labels = [t for t in texts if re.fullmatch(r"16\.\d+", t)]
    assert len(labels) == len(set(labels)) >= 3  # 16.12, 16.14, ...: not "16, 16, 16"
    # and a 0.15% dip is drawn as one: at least 0.5% of the values' size top to bottom
    assert float(labels[-1]) - float(labels[0]) >= 0.04
    assert "16.161" in opened.locator(f'figure[data-panel="{panel}"] .panel-title').inner_text()
    assert "seconds" in texts and "step" in texts  # the y axis says what it measures
    _clean(opened)
    close_page(opened)


def test_charts_save_as_svg_png_and_csv_offline(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["math"], accept_downloads=True)
    _drawn(opened, "reward")
    svg = _save(opened, "reward", "Chart as SVG")
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    words = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Reward per step" in words and "best" in words and "worst" in words
    png = _save(opened, "reward", "Chart as PNG").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    csv = _save(opened, "reward", "Data as CSV").read_text("utf-8").splitlines()
    assert csv[0].startswith("step,best,mean,worst")
    assert len(csv) == 1 + 120
    _clean(opened)
    close_page(opened)


def test_smoothing_is_on_by_default_for_a_long_run_and_says_so(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["math"])
    assert opened.locator("#smoothing-value").inner_text() == "0.75"
    note = opened.locator("#smoothing-note")
    assert note.is_visible() and "120 steps" in note.inner_text()
    close_page(opened)
    opened = open_page(browser, pages["text"])  # six steps: every point is worth seeing
    assert opened.locator("#smoothing-value").inner_text() == "off"
    assert opened.locator("#smoothing-note").is_hidden()
    close_page(opened)


# -- the page's layout -------------------------------------------------------------------------


def test_pins_filter_and_section_links(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["math"])
    first = opened.locator(".metrics figure.panel").first
    name = first.get_attribute("data-name")
    first.locator(".pin").click()
    pinned = opened.locator("#pinned figure.panel")
    assert opened.locator("#pinned").is_visible() and pinned.count() == 1
    assert pinned.first.get_attribute("data-name") == name
    # Remembered by the browser (per run) from file://: it is pinned again after a reload.
    opened.reload()
    opened.wait_for_selector("body[data-ready=yes]")
    assert opened.locator("#pinned figure.panel").first.get_attribute("data-name") == name
    opened.locator("#pinned .pin").click()
    assert opened.locator("#pinned").is_hidden()
    # The filter box over metric names.
    opened.fill("#metric-filter", "kl_sample")
    shown = opened.locator(".metrics figure.panel:visible").evaluate_all(
        "fs => fs.map(f => f.dataset.name)"
    )
    assert shown and all("kl_sample" in n for n in shown)
    assert re.match(r"\d+ of \d+ metrics", opened.locator("#metric-filter-status").inner_text())
    opened.fill("#metric-filter", "")
    # Links to the sections land below the sticky toolbar.
    opened.click(".jump >> text=Samples")
    opened.wait_for_timeout(600)
    top = opened.locator("#rollouts").bounding_box()["y"]
    bar = opened.locator("#toolbar").bounding_box()
    assert bar["y"] + bar["height"] - 1 <= top <= bar["y"] + bar["height"] + 40
    _clean(opened)
    close_page(opened)


def test_pins_fail_silently_where_storage_is_blocked(browser, pages):  # noqa: F811
    context = browser.new_context()
    context.add_init_script(
        "Object.defineProperty(window, 'localStorage', { get() {"
        " throw new DOMException('blocked', 'SecurityError'); } });"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(pages["math"].resolve().as_uri())
    page.wait_for_selector("body[data-ready=yes]")
    page.locator(".metrics figure.panel .pin").first.click()
    assert page.locator("#pinned figure.panel").count() == 1
    assert errors == []
    context.close()


@pytest.mark.parametrize("width", [800, 1024])
@pytest.mark.parametrize("which", ["math", "geo", "cookbook"])
def test_no_sideways_scroll_from_800_px(browser, pages, which, width):  # noqa: F811
    opened = open_page(browser, pages[which], viewport={"width": width, "height": 900})
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    opened.click(".group-head >> nth=0")
    opened.click(".traj-head >> nth=0")
    opened.locator("#samples-table").scroll_into_view_if_needed()
    opened.wait_for_selector("#samples-table[data-rows]")
    opened.wait_for_timeout(300)
    widths = opened.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    _clean(opened)
    close_page(opened)


def test_the_dark_theme_follows_the_system(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["math"], color_scheme="dark")
    _drawn(opened, "reward")
    background = opened.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert sum(map(int, re.findall(r"\d+", background)[:3])) < 150  # dark
    label = opened.evaluate(
        "() => getComputedStyle(document.documentElement).getPropertyValue('--chart-label')"
    )
    assert label.strip() == "#a9b1c2"  # the charts' axis labels take the dark theme's
    _clean(opened)
    close_page(opened)
    light = open_page(browser, pages["math"], color_scheme="light")
    background = light.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert sum(map(int, re.findall(r"\d+", background)[:3])) > 600
    close_page(light)


# -- samples -----------------------------------------------------------------------------------


def _rows(opened) -> list[list[str]]:
    return opened.locator("#samples-table .tr").evaluate_all(
        "rs => rs.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))"
        ".map(r => [...r.children].map(c => c.textContent))"
    )


def test_the_samples_table_sorts_filters_and_opens_a_row(browser, pages):  # noqa: F811
    page = pages["math"]
    kept = sum(len(g["t"]) for step in range(120) for g in embedded_groups(page, step))
    opened = open_page(browser, page)
    opened.locator("#samples-table").scroll_into_view_if_needed()
    opened.wait_for_selector("#samples-table[data-rows]")
    assert int(opened.locator("#samples-table").get_attribute("data-rows")) == kept == 1920
    assert opened.locator("#samples-table .tr").count() < 40  # only the rows in sight
    opened.click("#samples-table [data-key=reward]")
    rewards = [float(r[2]) for r in _rows(opened)]
    assert rewards == sorted(rewards, reverse=True) and rewards[0] == 1
    opened.click("#samples-table [data-key=reward]")  # again: lowest first
    assert float(_rows(opened)[0][2]) == -0.1
    opened.click("#samples-table [data-key=length]")
    lengths = [int(r[3].replace(",", "")) for r in _rows(opened)]
    assert lengths == sorted(lengths, reverse=True)
    opened.fill("#reward-min", "0.5")
    opened.wait_for_function(
        "() => /of 1,920 rows/.test(document.querySelector('#table-status').textContent)"
    )
    assert all(float(r[2]) >= 0.5 for r in _rows(opened))
    opened.fill("#reward-min", "")
    opened.locator("#samples-table .tr").first.click()
    detail = opened.locator("#sample-detail")
    detail.wait_for(state="visible")
    opened.wait_for_selector("#sample-detail .token-text span")  # the heatmap, open
    assert "prompt" in detail.inner_text().lower() and "Step" in detail.inner_text()
    _clean(opened)
    close_page(opened)


def test_a_search_says_how_many_groups_of_each_step_match(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["text"])
    opened.fill("#search", "answer 3.2.1")
    opened.wait_for_function(
        "() => document.querySelector('#search-status').textContent.includes('match')"
    )
    assert opened.locator("details.step .stat-groups").all_inner_texts() == ["1 of 4 groups match"]
    opened.locator("#samples-table").scroll_into_view_if_needed()
    opened.wait_for_function(
        "() => /\\(1 of 96 rows\\)/.test(document.querySelector('#table-status').textContent)"
    )
    opened.fill("#search", "")
    opened.wait_for_function("() => document.querySelectorAll('details.step').length === 6")
    assert opened.locator("details.step .stat-groups").first.inner_text() == "4 groups"
    _clean(opened)
    close_page(opened)


def test_prompt_history_counts_every_group_the_run_logged(browser, pages):  # noqa: F811
    page = pages["tight"]
    kept = {step: [g["p"] for g in embedded_groups(page, step)] for step in range(6)}
    assert all(1 <= len(k) < 5 for k in kept.values()), kept  # the budget left groups out
    opened = open_page(browser, page)
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    button = opened.locator("details.step >> nth=0").locator(".history-toggle").first
    assert button.inner_text() == "seen at 6 steps"
    button.click()
    chart = opened.locator("details.step >> nth=0").locator(".history-chart").first
    assert chart.locator("circle").count() == 6  # every step, also where the group left out
    assert chart.locator("circle.here").count() == 1
    titles = chart.locator("circle title").all_text_contents()
    assert any("(this group)" in t for t in titles)
    _clean(opened)
    close_page(opened)


def test_a_chart_click_lands_on_its_step_below_the_toolbar_highlighted(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["math"])
    box = _box(opened, "reward")
    opened.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    step = opened.locator("details.step[open]")
    step.wait_for()
    opened.wait_for_timeout(1500)  # the smooth scroll, the step filled, the check after it
    top = step.bounding_box()["y"]
    bar = opened.locator("#toolbar").bounding_box()
    assert bar["y"] + bar["height"] - 1 <= top <= 900 - 40, (top, bar)
    assert "flash" in (step.get_attribute("class") or "")
    _clean(opened)
    close_page(opened)


# -- vision and cookbook runs ------------------------------------------------------------------


def test_vision_groups_show_a_thumbnail_their_place_and_a_map_with_coastlines(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["geo"])
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    heads = opened.locator(".group-head .prompt-start").all_inner_texts()
    assert len(set(heads)) == len(heads)  # each group says which it is, not one question
    assert opened.locator(".group-head img.thumb").count() == len(heads)
    opened.click(".group-head >> nth=0")
    size = opened.locator(".vision img").evaluate(
        "i => [i.naturalWidth, i.naturalHeight, i.clientWidth, i.clientHeight]"
    )
    assert size == [96, 64, 96, 64]  # its natural size, not stretched
    land = opened.locator(".vision svg.map path.land").get_attribute("d")
    assert land.count("L") > 20  # coastlines near the truth
    assert opened.locator(".chart[data-chart=signal]").count() == 1
    _clean(opened)
    close_page(opened)


def test_a_cookbook_import_reads_as_its_run(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["cookbook"])
    opened.click('details.step[data-step="0"] > summary')
    opened.wait_for_selector('details.step[data-step="0"][data-filled=yes]')
    preview = opened.locator('details.step[data-step="0"] .group-head .prompt-start').first
    assert preview.inner_text().startswith("What is 17 + 25?")  # the question, not the example
    assert "characters" in opened.locator('figure[data-panel="length"]').inner_text()
    # An eval logged at two steps is drawn as dots, not as a continuous line.
    name = "test/env/all/reward/total"
    panel = opened.locator(f'figure.panel[data-name="{name}"]').first
    panel.scroll_into_view_if_needed()
    chart = panel.locator(".chart")
    chart.locator("canvas").wait_for()
    assert chart.get_attribute("data-dots") == "yes"
    _clean(opened)
    close_page(opened)


def test_the_first_screen_answers_is_it_learning_and_is_it_healthy(browser, pages):  # noqa: F811
    opened = open_page(browser, pages["math"])
    ids = opened.locator(".overview .chart").evaluate_all("cs => cs.map(c => c.dataset.chart)")
    assert ids == ["reward", "length", "kl", "entropy", "dist", "signal"]
    for chart in ids:  # all of them on the first screen of a 1360 x 900 window
        _drawn(opened, chart)
        assert opened.locator(f".chart[data-chart={chart}]").bounding_box()["y"] < 900
    assert "optim/kl_sample_train_v1" in opened.locator('figure[data-panel="kl"]').inner_text()
    _clean(opened)
    close_page(opened)


def test_continuous_rewards_get_a_group_signal_that_means_something(pages):
    data = page_data(pages["geo"])
    signal = data["charts"]["signal"]
    assert signal["title"] == "Group signal (reward spread within groups)"
    (steps, spread), *_ = signal["series"].values()
    assert all(s > 0 for s in spread) and spread[0] > spread[-1]  # guesses tighten


def test_the_samples_table_follows_a_live_update(browser, tmp_path):  # noqa: F811
    from tviz import TvizLogger

    db = tmp_path / "live.db"

    def log(steps: range) -> None:
        with TvizLogger(db, "live", run_id="liverun", strict=True) as logger:
            for step in steps:
                logger.log_metrics({"optim/kl": 0.1 + step / 100}, step=step)
                logger.log_rollouts(
                    [{"prompt_text": f"p {step}", "trajectories": [{"reward": 1.0}] * 3}],
                    step=step,
                )

    log(range(3))
    build_site(db, tmp_path / "v1")
    opened = open_page(browser, next((tmp_path / "v1" / "runs").glob("live*.html")))
    opened.locator("#samples-table").scroll_into_view_if_needed()
    opened.wait_for_selector("#samples-table[data-rows='9']")
    log(range(3, 5))
    build_site(db, tmp_path / "v2")
    html = next((tmp_path / "v2" / "runs").glob("live*.html")).read_text("utf-8")
    updated = opened.evaluate(
        "html => window.tvizUpdate(new DOMParser().parseFromString(html, 'text/html'))", html
    )
    assert updated is True
    opened.wait_for_selector("#samples-table[data-rows='15']")
    _clean(opened)
    close_page(opened)
