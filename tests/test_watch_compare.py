"""`tviz watch`'s compare endpoint: `GET /compare?run=ID&run=ID` builds the comparison of the
runs ticked on the index and redirects to it. A real `tviz watch` on 127.0.0.1 over a real
database of three runs (TvizLogger(strict=True)), and the index in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser is a fixture)
from compare_runs import rl_run
from test_watch import VIEWPORT, Watching, serving, start_watch, wait_until

from tviz.render import SiteBuilder
from tviz.watch.compare import MAX_RUNS, page_name

SAME = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watching]:
    folder = tmp_path_factory.mktemp("watch-compare")
    db = folder / "runs.db"
    rl_run(db, "run-a", lr=1e-5, steps=6, skill=0.3)
    rl_run(db, "run-b", lr=3e-5, steps=6, seed=1, skill=0.9)
    rl_run(db, "run-c", lr=3e-5, steps=6, skill=0.6, rollouts=False)
    watching = serving(start_watch(db, folder / "site"))
    wait_until(lambda: watching.said("built"), "the first build", timeout=60)
    yield watching
    code, _, stderr = watching.stop()
    assert code == 0
    assert "Traceback" not in stderr, stderr


def built(watching: Watching) -> set[str]:
    return {p.name for p in (watching.out_dir / "compare").glob("*")}


def test_endpoint_builds_and_redirects_to_the_comparison(live: Watching) -> None:
    resp = live.request("/compare?run=run-b&run=run-a", headers=SAME)
    assert resp.status == 303, resp.body
    location = resp.headers["Location"]
    assert location == "/" + page_name(["run-a", "run-b"])
    assert re.fullmatch(r"/compare/[0-9a-f]{16}\.html", location)
    # The same set of runs in another order is the same page.
    again = live.request("/compare?run=run-a&run=run-b&run=run-a", headers=SAME)
    assert again.status == 303 and again.headers["Location"] == location
    page = live.request(location, headers=SAME)
    assert page.status == 200
    text = page.body.decode()
    assert "<h1>Compare 2 runs</h1>" in text
    chips = re.findall(r'class="run-chip" data-run="\d">.*?\((run-[a-z])', text)
    assert sorted(chips) == ["run-a", "run-b"]
    assert 'data-tviz-watch="1"' in text  # served like the other pages, reload script added
    # Written atomically beside the other pages; no temp file left.
    assert built(live) == {location.rsplit("/", 1)[1]}
    # HEAD never builds.
    head = live.request("/compare?run=run-a&run=run-c", method="HEAD", headers=SAME)
    assert head.status == 405 and page_name(["run-a", "run-c"])[8:] not in built(live)


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("run=run-a&run=nope", 404, "no run with id 'nope'"),
        ("run=run-a&run=run", 404, "no run with id 'run'"),  # a prefix is not an id
        ("", 400, "name runs to compare"),
        ("run=%ff", 400, "bad query"),
        ("&".join(f"run=r{i}" for i in range(MAX_RUNS + 1)), 400, f"at most {MAX_RUNS} runs"),
    ],
)
def test_bad_requests_are_one_line_and_build_nothing(
    live: Watching, query: str, status: int, message: str
) -> None:
    before = built(live)
    resp = live.request(f"/compare?{query}", headers=SAME)
    assert resp.status == status
    body = resp.body.decode()
    assert body.startswith(message) and body.count("\n") == 1 and "Traceback" not in body
    assert built(live) == before


def test_cross_site_request_builds_nothing(live: Watching) -> None:
    url = "/compare?run=run-b&run=run-c"
    name = page_name(["run-b", "run-c"]).split("/")[1]
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {}):
        resp = live.request(url, headers=headers)
        assert resp.status == 403, headers
        assert name not in built(live)
    foreign = live.request(url, host="evil.example:80", headers=SAME)
    assert foreign.status == 403 and name not in built(live)
    # The same request from the server's own page builds it.
    assert live.request(url, headers=SAME).status == 303
    assert name in built(live)


def test_index_served_by_watch_links_the_ticked_runs(
    live: Watching,
    browser: Any,  # noqa: F811  (the fixture of tests/browser.py)
) -> None:
    opened = open_page(browser, live.url, viewport=VIEWPORT)
    page = opened.page
    try:
        link = page.locator("#open-compare")
        link.wait_for(state="visible", timeout=15_000)  # three runs ticked
        page.uncheck('.pick[value="run-b"]')
        href = link.get_attribute("href")
        assert href is not None and href.startswith("/compare?")
        assert sorted(re.findall(r"run=([^&]+)", href)) == ["run-a", "run-c"]
        page.uncheck('.pick[value="run-c"]')
        assert link.is_hidden()  # one run: nothing to compare
        page.check('.pick[value="run-c"]')
        with page.context.expect_page() as new:
            link.click()
        compared = new.value
        compared.wait_for_selector("body[data-ready=yes]", timeout=30_000)
        assert compared.url == live.url.rstrip("/") + "/" + page_name(["run-a", "run-c"])
        chips = compared.locator(".run-chip").all_inner_texts()
        assert len(chips) == 2 and any("run-a" in c for c in chips)
        assert any("run-c" in c for c in chips)
        assert opened.errors == []
    finally:
        close_page(opened)


def test_index_from_file_shows_the_command_and_no_link(
    live: Watching,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = Path(live.proc.args[live.proc.args.index("--db") + 1])
    SiteBuilder(db, tmp_path / "site").build()
    opened = open_page(browser, tmp_path / "site" / "index.html", viewport=VIEWPORT)
    try:
        page = opened.page
        assert page.locator("#open-compare").count() == 1
        assert page.locator("#open-compare").is_hidden()
        assert page.locator("#compare-command").inner_text().startswith("tviz compare ")
        page.uncheck('.pick[value="run-c"]')
        assert page.locator("#open-compare").is_hidden()
        assert page.evaluate("() => window.tvizWatch") is None
        assert opened.errors == [] and opened.requests == []
    finally:
        close_page(opened)
