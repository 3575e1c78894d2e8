"""Built pages in a real headless Chromium from file://: offline, clean, interactive, safe."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser is a fixture)
from render_data import (
    IMG,
    SCRIPT,
    TOKEN_TEXTS,
    page_json,
    prototype_metric_runs,
    quiet_run,
    sl_run,
    text_run,
    tokens_run,
    vision_run,
)

import tviz.render.rollouts as rollouts_module
from tviz import TvizLogger
from tviz.demo import write_demo_db, write_png
from tviz.render import build_site
from tviz.render.csp import allow_served_script
from tviz.render.index import INDEX_POINTS


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("site")
    db = tmp / "tviz.db"
    image = write_png(tmp / "photo.png", 4, 3, bytes([200, 120, 40] * 12))
    text_run(db)
    sl_run(db)
    vision_run(db, image)
    build_site(db, tmp / "out")
    return tmp / "out"


def _page(site: Path, prefix: str) -> Path:
    return next((site / "runs").glob(prefix + "*.html"))


def _assert_clean(opened) -> None:
    assert opened.requests == []
    assert opened.errors == []
    assert opened.dialogs == []  # no injected alert() ran
    external = opened.evaluate(
        """() => [...document.querySelectorAll('[src],[href]')]
            .map(e => e.getAttribute('src') || e.getAttribute('href'))
            .filter(u => /^(https?:)?\\/\\//.test(u))"""
    )
    assert external == []


def _wait_charts(opened, selector: str, count: int) -> None:
    opened.wait_for_function(
        f"() => document.querySelectorAll('{selector} .chart[data-drawn=yes] canvas').length"
        f" >= {count}",
        timeout=15_000,
    )


def test_run_page_draws_its_charts_offline(browser, site):  # noqa: F811
    opened = open_page(browser, _page(site, "evil"))
    _wait_charts(opened, ".overview", 4)  # reward, length, distribution, group signal
    assert opened.locator(".overview .panel").count() == 4
    # Every metric panel gets drawn (the ones below the fold while the browser is idle).
    panels = opened.locator(".metrics .chart").count()
    assert panels == 3  # env/all/reward/total, optim/kl, time/total
    # Metrics that never change are values, not flat lines.
    constants = opened.locator(".metrics .constant").all_inner_texts()
    assert [c.split("\n")[:2] for c in constants] == [
        ["env/all/by_group/frac_mixed", "0.75"],
        ["optim/lr", "4e-5"],
    ]
    _wait_charts(opened, ".metrics", panels)
    _assert_clean(opened)
    close_page(opened)


def test_hostile_text_shows_as_text_and_never_runs(browser, site):  # noqa: F811
    opened = open_page(browser, _page(site, "evil"))
    assert SCRIPT in opened.locator("h1.run-name").inner_text()
    opened.click("details.full-config > summary")
    assert SCRIPT + IMG in opened.locator(".full-config").inner_text()
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    opened.click(".group-head >> nth=0")
    prompt = opened.locator(".group-body pre.text").first.inner_text()
    assert SCRIPT in prompt
    opened.click(".traj-head >> nth=0")
    output = opened.locator(".traj-body pre.text").first.inner_text()
    for piece in (SCRIPT, IMG, "<!-- not a comment"):
        assert piece in output
    assert "\u2028" in opened.locator(".traj-body pre.text").first.text_content()
    assert opened.locator(".step-body img").count() == 0  # the <img> stayed text
    _assert_clean(opened)
    close_page(opened)


def test_rollout_browser_expand_heatmap_turns_search_and_filter(browser, site):  # noqa: F811
    opened = open_page(browser, _page(site, "evil"))
    steps = opened.locator("details.step")
    assert steps.count() == 6
    assert steps.first.get_attribute("data-step") == "5"  # newest first
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    assert opened.locator(".group").count() == 4
    assert opened.locator(".group[data-group='0'] .flat-badge").count() == 1  # no signal
    opened.click(".group[data-group='1'] .group-head")
    opened.click(".group[data-group='1'] .traj-head >> nth=0")
    body = opened.locator(".group[data-group='1'] .traj-body").first
    assert "turn answer 42" in body.inner_text()  # multi-turn episode, turn by turn
    assert body.locator(".turn").count() == 2
    assert "step 2:" in body.locator(".chips").inner_text()  # per-step rewards
    body.locator(".heat-toggle").click()
    assert body.locator(".heatmap .cell").count() == 8
    body.locator(".heat-toggle").click()
    assert body.locator(".heatmap").count() == 0
    opened.fill("#search", "answer 3.2.1")
    opened.wait_for_function(
        "() => document.querySelector('#search-status').textContent.includes('match')"
    )
    assert opened.locator("details.step").count() == 1
    assert opened.locator("details.step").get_attribute("data-step") == "3"
    opened.fill("#search", "")
    opened.fill("#reward-min", "2")  # no reward is that high
    opened.wait_for_function(
        "() => document.querySelector('#search-status').textContent.startsWith('0 groups')"
    )
    assert opened.locator("details.step").count() == 0
    _assert_clean(opened)
    close_page(opened)


def test_replay_slider_and_chart_click(browser, site):  # noqa: F811
    opened = open_page(browser, _page(site, "evil"))
    _wait_charts(opened, ".overview", 4)
    slider = opened.locator("#replay")
    assert slider.get_attribute("max") == "5"
    slider.fill("2")  # as the run stood at step 2
    assert opened.locator("#replay-value").inner_text() == "step 2"
    assert "step 2" in opened.locator(".replay-banner").inner_text()
    opened.wait_for_function("() => document.querySelectorAll('details.step').length === 3")
    rows = opened.evaluate(
        "() => Math.max(...PAGE_probe())".replace(
            "PAGE_probe()",
            "[...document.querySelectorAll('details.step')].map(d => +d.dataset.step)",
        )
    )
    assert rows == 2
    slider.fill("5")
    opened.wait_for_function("() => document.querySelectorAll('details.step').length === 6")
    assert opened.locator(".replay-banner").count() == 0
    # Smoothing and log scale redraw without errors.
    opened.locator("#smoothing").fill("0.6")
    opened.check("#logscale")
    _wait_charts(opened, ".overview", 4)
    # Clicking a point of the reward chart opens that step's rollouts.
    box = opened.locator(".chart[data-chart=reward] canvas").bounding_box()
    opened.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
    opened.wait_for_selector("details.step[open]", timeout=5_000)
    _assert_clean(opened)
    close_page(opened)


def test_metrics_only_page(browser, site):  # noqa: F811
    opened = open_page(browser, _page(site, "sft-run"))
    assert opened.locator("#rollouts").count() == 0
    assert opened.locator("#search").count() == 0
    _wait_charts(opened, ".metrics", 1)  # train/loss; train/lr never changes: a value
    assert opened.locator(".metrics .constant").count() == 1
    _assert_clean(opened)
    close_page(opened)


def test_vision_page_embeds_the_image(browser, site):  # noqa: F811
    opened = open_page(browser, _page(site, "geo"))
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    opened.click(".group-head >> nth=0")
    src = opened.locator(".vision img").get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    assert "Paris, France" in opened.locator(".vision").inner_text()
    opened.click(".traj-head >> nth=0")
    assert "distance 97 km" in opened.locator(".traj-body .geo").inner_text()
    # Every prediction on the map, coloured by reward, with a line to the truth.
    preds = opened.locator(".vision svg.map circle.pred")
    assert preds.count() == 2
    assert opened.locator(".vision svg.map circle.truth").count() == 1
    colors = {preds.nth(i).get_attribute("fill") for i in range(2)}
    assert len(colors) == 2  # reward 0.9 and 0.1 differ
    lines = opened.locator(".vision svg.map line[stroke^=hsl]")
    assert lines.count() == 2
    assert (
        "1,105 km"
        in preds.nth(0).locator("title").text_content()
        + preds.nth(1).locator("title").text_content()
    )
    # Predictions are apart on the map (zoomed to fit, not a world map where they'd touch).
    xs = [float(preds.nth(i).get_attribute("cx")) for i in range(2)]
    assert abs(xs[0] - xs[1]) > 40
    # The distance on each trajectory's row.
    distances = opened.locator(".traj-head .distance").all_inner_texts()
    assert distances == ["97 km", "1,105 km"]
    _assert_clean(opened)
    close_page(opened)


def test_index_page_sorts_and_overlays(browser, site):  # noqa: F811
    opened = open_page(browser, site / "index.html")
    assert opened.locator("table.runs tbody tr").count() == 3
    assert SCRIPT in opened.locator("table.runs").inner_text()
    opened.wait_for_selector("#overlay[data-drawn=yes] canvas")
    opened.click("th[data-key=steps]")
    first = opened.locator("table.runs tbody tr").first.get_attribute("data-id")
    assert first == "georun"  # 2 steps, fewest
    # The picker offers the headline roles the runs have, not every metric they logged.
    options = opened.locator("#metric option").evaluate_all(
        "os => os.map(o => [o.value, o.textContent])"
    )
    assert options == [["reward", "Reward"]]
    assert opened.locator("#overlay-status").inner_text() == (
        "2 of 3 ticked runs logged a metric for Reward: env/all/reward/total"
    )  # the SFT run logged train/loss only
    data = opened.evaluate("() => JSON.parse(document.getElementById('index-data').textContent)")
    assert data["metrics"] == {
        "textrun": {"reward": data["metrics"]["textrun"]["reward"]},
        "georun": {"reward": [[0, 1], [0.5, 0.5]]},
        "sftrun": {},
    }
    assert data["sources"]["textrun"] == {"reward": "env/all/reward/total"}
    html = (site / "index.html").read_text("utf-8")
    assert "train/loss" not in html and "optim/kl" not in html and "time/total" not in html
    rule = opened.locator("#index-rule")
    assert rule.is_visible()
    assert rule.inner_text().startswith(
        f"Each line: at most {INDEX_POINTS} points per run; every step range keeps its lowest"
        " and highest value."
    )
    assert "Other metrics: open a run, or tviz compare." in rule.inner_text()
    href = opened.locator("table.runs a").first.get_attribute("href")
    assert href.startswith("runs/") and href.endswith(".html")
    _assert_clean(opened)
    close_page(opened)


def test_token_texts_show_as_text_coloured_by_logprob(browser, site):  # noqa: F811
    opened = open_page(browser, _page(site, "evil"))
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    opened.click(".group[data-group='2'] .group-head")
    opened.click(".group[data-group='2'] .traj-head >> nth=0")
    body = opened.locator(".group[data-group='2'] .traj-body").first
    body.locator(".heat-toggle").click()
    tokens = body.locator(".token-text span")
    assert tokens.count() == 8
    assert [t.text_content() for t in tokens.all()] == TOKEN_TEXTS  # hostile ones as text
    assert tokens.nth(7).get_attribute("title") == "token 7: logprob -0.7 (p = 0.497)"
    assert tokens.nth(0).get_attribute("style") != tokens.nth(7).get_attribute("style")
    assert body.locator(".heatmap").count() == 0  # cells only when texts are unknown
    assert "token_texts" not in body.inner_text()  # not repeated in the extras table
    assert body.locator(".token-text img, .token-text script").count() == 0
    # The fallback: cells in rows, each with its logprob on hover, and a legend.
    opened.click(".group[data-group='3'] .group-head")
    opened.click(".group[data-group='3'] .traj-head >> nth=0")
    other = opened.locator(".group[data-group='3'] .traj-body").first
    other.locator(".heat-toggle").click()
    cells = other.locator(".heatmap .heat-row .cell")
    assert cells.count() == 8
    assert cells.nth(3).get_attribute("title") == "token 3: logprob -0.3 (p = 0.741)"
    assert "logprob" in other.locator(".heat-legend").inner_text()
    _assert_clean(opened)
    close_page(opened)


def test_step_summaries_line_up_in_columns(browser, legacy_db, tmp_path):  # noqa: F811
    build_site(legacy_db, tmp_path / "out")  # its steps' means are 0.25, 1, 0.938, ...
    opened = open_page(browser, next((tmp_path / "out" / "runs").glob("*.html")))
    assert opened.locator("details.step").count() == 12
    lefts = opened.evaluate(
        """() => [...document.querySelectorAll('details.step > summary')].map(s =>
            [...s.children].map(c => Math.round(c.getBoundingClientRect().left)))"""
    )
    assert all(row == lefts[0] for row in lefts), lefts
    assert len(lefts[0]) == 8  # title, groups, samples, best, mean, worst, no signal, kept
    _assert_clean(opened)
    close_page(opened)


def _bars_and_labels(opened) -> tuple[list[float], list[list[float]]]:
    opened.wait_for_selector("#tokens[data-drawn=yes] svg")
    widths = opened.evaluate(
        "() => [...document.querySelectorAll('#tokens .mark-rect path')]"
        ".map(p => p.getBoundingClientRect().width)"
    )
    labels = opened.evaluate(
        """() => [...document.querySelectorAll('#tokens .role-axis-label text')]
            .filter(t => t.getAttribute('opacity') !== '0' && /[A-Z]/.test(t.textContent))
            .map(t => {
                const r = t.getBoundingClientRect();
                return [t.textContent, r.left, r.right];
            })"""
    )
    return widths, labels


@pytest.mark.parametrize("days", [[0], [0, 1], list(range(45)) + list(range(60, 75))])
def test_index_tokens_per_day_is_a_bar_per_day(browser, tmp_path, days):  # noqa: F811
    db = tmp_path / "tokens.db"
    tokens_run(db, days)
    build_site(db, tmp_path / "out")
    opened = open_page(browser, tmp_path / "out" / "index.html")
    widths, labels = _bars_and_labels(opened)
    span = days[-1] - days[0] + 1
    assert len(widths) == span  # one slot per calendar day, empty ones included
    assert 0 < max(widths) <= 48.5  # one or two days do not fill the width
    texts = [t for t, _, _ in labels]
    assert texts[0] == "Nov 25" or texts[0].startswith("Nov 25,")
    assert len(texts) == len(set(texts))  # no "Nov 25, Nov 25, Nov 26"
    for (_, _, right), (_, left, _) in zip(labels, labels[1:], strict=False):
        assert right <= left  # and readable: no label over another
    if span > 30:
        assert 4 <= len(texts) < span  # thinned, not dropped
    _assert_clean(opened)
    close_page(opened)


# -- the legacy file, quiet runs, odd names and odd data -------------------------------------


def test_legacy_fixture_page_is_offline_clean_and_draws_every_chart(browser, legacy_db, tmp_path):  # noqa: F811
    build_site(legacy_db, tmp_path / "out")
    opened = open_page(browser, next((tmp_path / "out" / "runs").glob("*.html")))
    # reward, length, KL, entropy (its kl_divergence and entropy: the first screen answers "is
    # it healthy?"), distribution, group signal; then the ten metrics the 0.2.3 run logged,
    # nine drawn and one that never changes shown as its value
    _wait_charts(opened, ".overview", 6)
    assert opened.locator(".overview .chart").count() == 6
    assert opened.locator(".metrics .chart").count() == 9
    assert opened.locator(".metrics .constant").count() == 1
    _wait_charts(opened, ".metrics", 9)
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    opened.click(".group-head >> nth=0")
    opened.click(".traj-head >> nth=0")
    assert opened.locator(".traj-body").count() == 1
    _assert_clean(opened)
    close_page(opened)


def test_a_run_still_marked_running_but_long_silent_shows_as_quiet(browser, tmp_path):  # noqa: F811
    db = tmp_path / "tviz.db"
    quiet_run(db, last_data_ago_s=3 * 3600, run_id="oldrun")
    quiet_run(db, last_data_ago_s=0, run_id="liverun")
    build_site(db, tmp_path / "out")
    # The page decides with the reader's clock: the file itself still says "running".
    old = _page(tmp_path / "out", "open-oldrun")
    assert 'id="run-status" title="running">running<' in old.read_text("utf-8")
    opened = open_page(browser, old)
    assert opened.locator("#run-status").text_content() == "quiet"
    assert "status-quiet" in opened.locator("#run-status").get_attribute("class")
    detail = opened.locator("#status-detail").inner_text()
    assert detail.startswith("Still marked running, but no data has arrived for 3 h")
    assert "the training process may have stopped" in detail
    _assert_clean(opened)
    close_page(opened)
    opened = open_page(browser, _page(tmp_path / "out", "open-liverun"))
    assert opened.locator("#run-status").text_content() == "running"
    assert opened.locator("#status-detail").inner_text().startswith("Running: last data")
    close_page(opened)
    opened = open_page(browser, tmp_path / "out" / "index.html")
    pills = {
        row.get_attribute("data-id"): row.locator(".status").text_content()
        for row in opened.locator("table.runs tbody tr").all()
    }
    assert pills == {"oldrun": "quiet", "liverun": "running"}
    assert opened.locator("#total-running").inner_text() == "2"  # as the file was written
    _assert_clean(opened)
    close_page(opened)


def test_index_overlay_with_ids_and_names_like_object_prototype_keys(browser, tmp_path):  # noqa: F811
    db = tmp_path / "tviz.db"
    prototype_metric_runs(db)  # metrics named constructor, toString, __proto__, loss
    ids = ["constructor", "__proto__", "toString", SCRIPT]
    for i, run_id in enumerate(ids):
        with TvizLogger(db, f"proto-id-{i}", run_id=run_id, strict=True) as log:
            for step in range(4):
                metrics = {"env/all/reward/total": step * (i + 1) / 10, "constructor": step}
                if i % 2:
                    metrics["optim/entropy"] = 1.0 - step / 10
                log.log_metrics({**metrics, "__proto__": 1.0, SCRIPT: 2.0}, step=step)
    build_site(db, tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text("utf-8")
    assert "<script>alert" not in html
    data = page_json(tmp_path / "out" / "index.html", "index-data")
    # Only headline roles are keys of a run's series: no metric name from the file is.
    assert {k: sorted(v) for k, v in data["metrics"].items()} == {
        "constructor": ["reward"],
        "__proto__": ["entropy", "reward"],
        "toString": ["reward"],
        SCRIPT: ["entropy", "reward"],
        "protorun": [],
        "plainrun": [],
    }
    opened = open_page(browser, tmp_path / "out" / "index.html")
    opened.wait_for_selector("#overlay[data-drawn=yes] canvas")
    opened.evaluate("() => document.querySelectorAll('.pick').forEach(c => { c.checked = true; })")
    shown = (("entropy", 2, "optim/entropy"), ("reward", 4, "env/all/reward/total"))
    for role, used, source in shown:
        opened.select_option("#metric", role)
        opened.wait_for_function(
            "m => document.querySelector('#overlay-status').textContent.startsWith(m)",
            arg=f"{used} of 6 ticked runs logged a metric for ",
        )
        assert opened.locator("#overlay-status").inner_text().endswith(": " + source)
    # The tooltip names the run's own metric (as text: vega-tooltip escapes it).
    opened.wait_for_selector("#overlay[data-drawn=yes] canvas")
    box = opened.locator("#overlay canvas").bounding_box()
    for x in (0.2, 0.5, 0.8, 0.95):
        opened.mouse.move(box["x"] + box["width"] * x, box["y"] + box["height"] * 0.5)
        tip = opened.locator("#vg-tooltip-element")
        if tip.count() and tip.is_visible():
            break
    assert "env/all/reward/total" in tip.inner_text() and "metric" in tip.inner_text()
    _assert_clean(opened)
    close_page(opened)
    opened = open_page(browser, _page(tmp_path / "out", "proto-names"))
    _wait_charts(opened, ".metrics", 2)  # constructor, toString; __proto__ and loss: values
    assert opened.locator(".metrics .constant").count() == 2
    _assert_clean(opened)
    close_page(opened)


def test_malformed_fields_show_as_text_and_never_break_the_page(
    browser,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """The build checks every field's type; the page must still cope if data gets past it
    (an older builder, a hand-edited page), so feed it what a legacy file may hold."""
    real = rollouts_module.group_json

    def odd(rollout, *args):
        group = real(rollout, *args)
        if group["g"] == 1:
            group["x"] = "extras as a string"
            group["gt"] = {"lat": 1}
            for traj in group["t"]:
                traj.update(
                    lp={"0": -0.1},
                    turns="a turn as text",
                    sr=7,
                    tt="tokens",
                    x=["a", "list"],
                    pred="here",
                    d="far",
                    o=12345,
                )
            group["t"].append("a trajectory that is only text")
        elif group["g"] == 2:
            group["t"] = {"constructor": "not a list"}
            group["x"] = {"__proto__": {"polluted": True}, "constructor": "c"}
        return group

    monkeypatch.setattr(rollouts_module, "group_json", odd)
    db = tmp_path / "tviz.db"
    text_run(db, steps=1)
    build_site(db, tmp_path / "out")
    opened = open_page(browser, _page(tmp_path / "out", "evil"))
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    opened.click(".group[data-group='1'] .group-head")
    group = opened.locator(".group[data-group='1']")
    assert "extras as a string" in group.locator(".group-body > table.kv").inner_text()
    heads = group.locator(".traj-head")
    assert heads.count() == 5
    for i in range(5):
        heads.nth(i).click()
    body = group.locator(".traj-body").first
    text = body.inner_text()
    assert "a turn as text" in text and '{"0":-0.1}' in text and "12345" in text
    assert body.locator(".heat-toggle").count() == 0
    assert "a trajectory that is only text" in group.inner_text()
    opened.click(".group[data-group='2'] .group-head")
    other = opened.locator(".group[data-group='2'] .group-body").inner_text()
    assert "not a list" in other and "polluted" in other
    assert opened.evaluate("() => ({}).polluted") is None
    _assert_clean(opened)
    close_page(opened)


# -- content security policy -----------------------------------------------------------------


def test_csp_runs_the_pages_own_scripts_only(browser, site, tmp_path):  # noqa: F811
    page = _page(site, "evil")
    assert page.read_text("utf-8").count("<script>") == 2  # the bundle and the page's code
    opened = open_page(browser, page)
    meta = opened.locator('meta[http-equiv="Content-Security-Policy"]')
    script_src = next(
        d for d in meta.get_attribute("content").split(";") if d.strip().startswith("script-src")
    )
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    # Every chart draws and reacts (tooltips, zoom, the signals Vega evaluates) without eval.
    _wait_charts(opened, "", 7)
    box = opened.locator(".chart[data-chart=reward] canvas").bounding_box()
    opened.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    opened.wait_for_selector("#chart-tip:not([hidden])", timeout=5_000)
    opened.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    opened.mouse.down()
    opened.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5, steps=5)
    opened.mouse.up()
    opened.wait_for_selector("#zoom-status:not([hidden])")
    opened.dblclick(".chart[data-chart=reward] canvas")
    _assert_clean(opened)
    close_page(opened)
    # A script that is not the page's own does not run...
    tag = b"<script>document.documentElement.dataset.injected = 'ran';</script>"
    raw = page.read_bytes()
    cut = raw.rindex(b"</body>")
    injected = tmp_path / "injected.html"
    injected.write_bytes(raw[:cut] + tag + raw[cut:])
    opened = open_page(browser, injected)
    assert opened.evaluate("() => document.documentElement.dataset.injected") is None
    assert any("Content Security Policy" in e for e in opened.errors)
    close_page(opened)
    # ...unless allowed by its hash, which is what `tviz watch` does for its reload script.
    served = tmp_path / "served.html"
    served.write_bytes(allow_served_script(raw[:cut] + tag + raw[cut:], tag))
    opened = open_page(browser, served)
    assert opened.evaluate("() => document.documentElement.dataset.injected") == "ran"
    _wait_charts(opened, ".overview", 4)
    _assert_clean(opened)
    close_page(opened)


def test_demo_vision_page_shows_its_images(browser, tmp_path):  # noqa: F811
    result = write_demo_db(tmp_path / "demo" / "tviz.db", steps=6, groups=2, samples=2)
    build_site(result.db_path, tmp_path / "out")
    opened = open_page(browser, _page(tmp_path / "out", "geo-vision-demo"))
    opened.click("details.step >> nth=0 >> summary")
    opened.wait_for_selector("details.step[data-filled=yes]")
    opened.click(".group-head >> nth=0")
    src = opened.locator(".vision img").get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    assert opened.locator(".vision img").evaluate("img => img.naturalWidth") == 96
    _assert_clean(opened)
    close_page(opened)


# -- in-place updates (the hook `tviz watch` calls; see tviz/templates/reload.js) ------------


def _log(db: Path, steps: range, metrics: tuple[str, ...] = ("optim/kl",), run_id="liverun"):
    from tviz import TvizLogger

    with TvizLogger(db, "live", run_id=run_id, strict=True) as log:
        for step in steps:
            log.log_metrics({name: 0.1 + step / 100 for name in metrics}, step=step)
            log.log_rollouts(
                [
                    {
                        "prompt_text": f"prompt {step}.{g}",
                        "trajectories": [
                            {"reward": (step + g + k) % 3 / 2, "output_text": f"out {step}.{g}.{k}"}
                            for k in range(3)
                        ],
                    }
                    for g in range(2)
                ],
                step=step,
            )


def _update(opened, html: str):
    """What the watch script does with a rebuilt page: parse it and hand it to the hook."""
    return opened.evaluate(
        "html => window.tvizUpdate(new DOMParser().parseFromString(html, 'text/html'))", html
    )


def test_run_page_updates_in_place_from_a_newer_build(browser, tmp_path):  # noqa: F811
    db = tmp_path / "tviz.db"
    _log(db, range(4))
    build_site(db, tmp_path / "v1")
    opened = open_page(browser, _page(tmp_path / "v1", "live"))
    _wait_charts(opened, ".overview", 3)
    _wait_charts(opened, ".metrics", 1)
    opened.click('details.step[data-step="1"] > summary')
    opened.click('details.step[data-step="1"] .group[data-group="1"] .group-head')
    opened.click('details.step[data-step="1"] .group[data-group="1"] .traj-head >> nth=0')
    opened.evaluate(
        """() => { window.__noReload = true;
          document.querySelectorAll('.chart canvas').forEach(c => { c.__same = true; }); }"""
    )
    _log(db, range(4, 6))
    build_site(db, tmp_path / "v2")
    assert _update(opened, _page(tmp_path / "v2", "live").read_text("utf-8")) is True
    fact = opened.evaluate(
        """() => [...document.querySelectorAll('.facts .fact')]
            .find(f => f.querySelector('dt').textContent === 'last step')
            .querySelector('dd').textContent"""
    )
    assert fact == "5"
    opened.wait_for_function(
        """() => [...document.querySelectorAll('.chart[data-drawn=yes]')]
            .every(c => c.dataset.lastStep === '5')""",
        timeout=10_000,
    )
    same = "() => [...document.querySelectorAll('.chart canvas')].every(c => c.__same)"
    assert opened.evaluate(same)
    assert opened.evaluate("() => window.__noReload") is True
    steps = opened.locator("details.step").evaluate_all("ds => ds.map(d => +d.dataset.step)")
    assert steps == [5, 4, 3, 2, 1, 0]
    assert opened.locator('details.step[data-step="1"]').evaluate("d => d.open")
    expanded = opened.locator('details.step[data-step="1"] [aria-expanded=true]')
    assert expanded.count() == 2  # the group and its trajectory
    assert opened.locator("#replay").evaluate("s => [s.value, s.max]") == ["5", "5"]
    # A newer step opens and fills from its new compressed chunk.
    opened.click('details.step[data-step="5"] > summary')
    opened.wait_for_selector('details.step[data-step="5"][data-filled=yes]')
    assert "prompt 5.1" in opened.locator('details.step[data-step="5"]').inner_text()
    # Replaying an older step: the slider stays on it as more steps arrive.
    opened.locator("#replay").fill("2")
    _log(db, range(6, 7))
    build_site(db, tmp_path / "v3")
    assert _update(opened, _page(tmp_path / "v3", "live").read_text("utf-8")) is True
    assert opened.locator("#replay").evaluate("s => [s.value, s.max]") == ["2", "6"]
    assert "step 2 of 6" in opened.locator(".replay-banner").inner_text()
    assert opened.locator('details.step[data-step="6"]').count() == 0
    # A new metric means a new panel: the page says it cannot update in place (a reload).
    _log(db, range(7, 8), metrics=("optim/kl", "optim/new_metric"))
    build_site(db, tmp_path / "v4")
    assert _update(opened, _page(tmp_path / "v4", "live").read_text("utf-8")) is False
    _assert_clean(opened)
    close_page(opened)


def test_index_updates_in_place_keeping_sort_and_ticks(browser, tmp_path):  # noqa: F811
    db = tmp_path / "tviz.db"
    reward = ("env/all/reward/total",)  # a headline metric: the index overlays it
    _log(db, range(3), reward, run_id="run-a")
    _log(db, range(5), reward, run_id="run-b")
    build_site(db, tmp_path / "v1")
    opened = open_page(browser, tmp_path / "v1" / "index.html")
    opened.wait_for_selector("#overlay[data-drawn=yes] canvas")
    opened.click("th[data-key=steps]")  # ascending: run-a (3) first
    opened.uncheck('.pick[value="run-b"]')
    opened.evaluate("() => { window.__noReload = true; }")
    _log(db, range(3, 9), reward, run_id="run-a")  # run-a now has the most steps
    _log(db, range(2), reward, run_id="run-c")
    build_site(db, tmp_path / "v2")
    assert _update(opened, (tmp_path / "v2" / "index.html").read_text("utf-8")) is True
    ids = opened.locator("table.runs tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert ids == ["run-c", "run-b", "run-a"]  # still sorted by steps, ascending
    assert opened.locator('.pick[value="run-b"]').is_checked() is False
    assert opened.locator('.pick[value="run-a"]').is_checked() is True
    assert opened.locator("dl.totals dd").first.text_content() == "3"  # runs
    opened.wait_for_function(
        "() => document.querySelector('#overlay-status').textContent.startsWith('2 of 2')"
    )
    opened.check('.pick[value="run-b"]')  # the new rows' boxes still redraw the overlay
    opened.wait_for_function(
        "() => document.querySelector('#overlay-status').textContent.startsWith('3 of 3')"
    )
    assert opened.evaluate("() => window.__noReload") is True
    _assert_clean(opened)
    close_page(opened)
