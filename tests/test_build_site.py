"""`tviz build` and SiteBuilder on real SQLite files: files, determinism, budget, caches, CLI."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from render_data import (
    HOSTILE_NAME,
    SCRIPT,
    embedded_groups,
    sl_run,
    text_run,
    tokens_run,
    vision_run,
)

import tviz.render.site as site_module
from tviz import TvizLogger
from tviz.cli import main
from tviz.demo import write_png
from tviz.render import SiteBuilder, build_site, write_atomic
from tviz.render.csp import script_hash
from tviz.render.rollouts import StepChunk
from tviz.store import Store, StoreError


@pytest.fixture
def text_db(db_path: Path) -> Path:
    text_run(db_path)
    sl_run(db_path)
    return db_path


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_build_writes_index_and_one_self_contained_page_per_run(text_db, tmp_path):
    report = build_site(text_db, tmp_path / "out")
    assert sorted(p.name for p in report.written) == sorted(
        [
            "index.html",
            "sft-run-sftrun.html",
            "evil-script-script-alert-script-script-run-textrun.html",
        ]
    )
    assert {r.id for r in report.runs} == {"textrun", "sftrun"}
    for path in report.written:
        html = path.read_text("utf-8")
        assert "vegaEmbed" in html
        # Nothing fetched from anywhere: no src/href pointing at the network.
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_untrusted_text_never_reaches_the_html_unescaped(text_db, tmp_path):
    build_site(text_db, tmp_path / "out")
    page = next((tmp_path / "out" / "runs").glob("evil-*.html")).read_text("utf-8")
    # The only <script> tags are ours; the run name, config and metric text appear escaped.
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(&#39;script&#39;)" in page  # name, config
    assert "\\u003cscript\\u003ealert('script')" in page  # in the page's JSON
    index = (tmp_path / "out" / "index.html").read_text("utf-8")
    assert "<img src=x" not in index and "<script>alert" not in index
    assert HOSTILE_NAME not in index


def test_same_database_gives_byte_identical_files(text_db, tmp_path):
    build_site(text_db, tmp_path / "a")
    os.utime(text_db)  # a newer file time must not matter either
    SiteBuilder(text_db, tmp_path / "b").build()
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_metrics_only_run_has_no_rollout_widgets(text_db, tmp_path):
    build_site(text_db, tmp_path / "out", run_ids=["sftrun"])
    page = (tmp_path / "out" / "runs" / "sft-run-sftrun.html").read_text("utf-8")
    assert 'id="rollouts"' not in page and 'id="search"' not in page
    assert "train/loss" in page


def test_budget_samples_groups_and_says_what_was_left_out(tmp_path):
    db = tmp_path / "big.db"
    text_run(db, steps=12, groups=24, samples=4)
    full = SiteBuilder(db, tmp_path / "full").build()
    assert full.notices == {}
    full_page = next((tmp_path / "full" / "runs").glob("*.html"))
    assert "budget-notice" not in full_page.read_text("utf-8")
    budget = full_page.stat().st_size - 3_000
    small = SiteBuilder(db, tmp_path / "small", budget_bytes=budget).build()
    page = next((tmp_path / "small" / "runs").glob("*.html"))
    assert page.stat().st_size <= budget
    notice = small.notices["textrun"]
    assert "left out" in notice and "of 288 rollout groups" in notice
    assert 'id="budget-notice"' in page.read_text("utf-8")


def test_rebuild_after_a_new_step_reads_and_encodes_only_that_step(text_db, tmp_path, monkeypatch):
    builder = SiteBuilder(text_db, tmp_path / "out")
    builder.build(run_ids=["textrun"])
    figured: list[int] = []
    encoded: list[int] = []
    real_figure, real_encode = site_module.figure_step, StepChunk.encode

    def figure(step, *args, **kwargs):
        figured.append(step)
        return real_figure(step, *args, **kwargs)

    def encode(chunk, rollouts, *args, **kwargs):
        encoded.append(chunk.step)
        return real_encode(chunk, rollouts, *args, **kwargs)

    monkeypatch.setattr(site_module, "figure_step", figure)
    monkeypatch.setattr(StepChunk, "encode", encode)
    with TvizLogger(text_db, run_id="textrun", strict=True) as log:
        log.log_rollouts(
            [{"prompt_text": "new", "trajectories": [{"reward": 1.0, "output_text": "x"}]}],
            step=6,
        )
    report = builder.build(run_ids=["textrun"])
    assert figured == [6] and encoded == [6]
    assert [p.name for p in report.written][-1] == "index.html"
    # The incremental page is exactly the page a fresh build makes.
    fresh = SiteBuilder(text_db, tmp_path / "fresh").build(run_ids=["textrun"])
    assert report.written[0].read_bytes() == fresh.written[0].read_bytes()


def test_unknown_run_raises_before_writing(text_db, tmp_path):
    with pytest.raises(StoreError):
        build_site(text_db, tmp_path / "out", run_ids=["no-such-run"])
    assert not (tmp_path / "out").exists()


def test_legacy_database_builds(legacy_db, tmp_path):
    report = build_site(legacy_db, tmp_path / "out")
    assert [r.name for r in report.runs] == ["legacy-text-1"]
    html = report.written[0].read_text("utf-8")
    assert "chunk-11" in html and "meta-llama/Llama-3.2-1B" in html


def test_index_tokens_per_day_counts_each_step_on_its_own_day(tmp_path):
    db = tmp_path / "tokens.db"
    # Days 0, 1 and 3: a run spread evenly over its time would also put tokens on day 2.
    expected = tokens_run(db, [0, 1, 3])
    with Store(db) as store:
        assert store.tokens_by_day() == expected
    build_site(db, tmp_path / "out")
    index = (tmp_path / "out" / "index.html").read_text("utf-8")
    data = json.loads(re.search(r'id="index-data">(.*?)</script>', index, re.S).group(1))
    per_day = {row["day"]: row["tokens"] for row in data["tokensPerDay"]}
    assert per_day == {**expected, "2026-11-27": 0}
    assert list(per_day) == sorted(per_day)
    assert data["specs"]["tokens"]["encoding"]["x"]["type"] == "ordinal"
    assert "each step was logged" in index


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "page.html"
    write_atomic(target, "old")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(site_module.os, "replace", broken)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


# -- the command -----------------------------------------------------------------------------


def test_cli_build_writes_the_site(text_db, tmp_path):
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["build", "--db", str(text_db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 run pages" in result.output
    assert (out / "index.html").exists()


def test_cli_build_one_run_by_name(text_db, tmp_path):
    out = tmp_path / "site"
    result = CliRunner().invoke(
        main, ["build", "--db", str(text_db), "--out", str(out), "--run", "sft-run"]
    )
    assert result.exit_code == 0, result.output
    assert [p.name for p in (out / "runs").iterdir()] == ["sft-run-sftrun.html"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "{tmp}/missing.db"], "no database at"),
        (["--db", "{db}", "--run", "nope"], "no run named or with id 'nope'"),
        (["--db", "{tmp}/notadb.db"], "not a readable SQLite database"),
    ],
)
def test_cli_build_errors_are_one_line(text_db, tmp_path, args, message):
    (tmp_path / "notadb.db").write_bytes(b"this is not sqlite at all" * 100)
    args = [a.format(tmp=tmp_path, db=text_db) for a in args]
    result = CliRunner().invoke(main, ["build", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_script_payload_is_not_in_any_script_element(text_db, tmp_path):
    build_site(text_db, tmp_path / "out")
    page = next((tmp_path / "out" / "runs").glob("evil-*.html")).read_text("utf-8")
    # Split the page at our own script tags: between them there must be no `</script` but
    # the closing one, so no data can end a script element early.
    for block in re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S):
        assert SCRIPT not in block


# -- images: only from the database's folder, the same from any working directory ----------


def test_same_database_built_from_two_working_directories_is_byte_identical(tmp_path, monkeypatch):
    db_dir = tmp_path / "db"
    (db_dir / "images").mkdir(parents=True)
    write_png(db_dir / "images" / "a.png", 2, 2, bytes([10, 20, 30] * 4))
    db = db_dir / "tviz.db"
    vision_run(db, Path("images/a.png"))  # relative to the database's folder
    other = tmp_path / "other"
    (other / "images").mkdir(parents=True)  # a different picture under the same name
    write_png(other / "images" / "a.png", 2, 2, bytes([250, 0, 0] * 4))
    monkeypatch.chdir(db_dir)
    build_site("tviz.db", tmp_path / "a")
    monkeypatch.chdir(other)
    build_site(db, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    page = next((tmp_path / "a" / "runs").glob("geo-*.html"))
    (group,) = embedded_groups(page, 0)
    assert group["img"] == "data:image/png;base64," + base64.b64encode(
        (db_dir / "images" / "a.png").read_bytes()
    ).decode("ascii")


def test_an_image_outside_the_database_folder_is_not_embedded(tmp_path):
    (tmp_path / "private").mkdir()
    secret = write_png(tmp_path / "private" / "me.png", 2, 2, bytes([1, 2, 3] * 4))
    db = tmp_path / "shared" / "tviz.db"
    db.parent.mkdir()
    vision_run(db, secret)
    build_site(db, tmp_path / "out")
    page = next((tmp_path / "out" / "runs").glob("geo-*.html"))
    (group,) = embedded_groups(page, 0)
    assert group["img"] is None and "database's folder" in group["imgNote"]
    assert base64.b64encode(secret.read_bytes()).decode("ascii") not in page.read_text()


def test_odd_image_paths_and_malformed_fields_never_fail_the_build(tmp_path):
    db = tmp_path / "tviz.db"
    vision_run(db, Path("~nosuchuser/a.png"))
    text_run(db, steps=1, groups=2, samples=2)
    conn = sqlite3.connect(db)
    with conn:  # what a 0.2.x file written by someone else may hold
        conn.execute(
            "UPDATE trajectories SET logprobs = '5', turns = '\"a turn\"', output_tokens ="
            " '{\"a\": 1}', step_rewards = 'null', reward = 'high', output_text = x'ff00'"
        )
        conn.execute("UPDATE rollouts SET image_path = 'http://example.com/a.png' WHERE id = 1")
        conn.execute("UPDATE rollouts SET image_path = x'00ff', prompt_text = 7 WHERE id = 2")
        conn.execute("UPDATE rollouts SET extras = '[1, 2]', gt_lat = 'north' WHERE id = 3")
    conn.close()
    report = build_site(db, tmp_path / "out")
    assert len(report.written) == 3
    page = next((tmp_path / "out" / "runs").glob("evil-*.html"))
    groups = embedded_groups(page, 0)
    assert groups[0]["t"][0]["x"]["logprobs"] == 5
    assert groups[0]["t"][0]["x"]["turns"] == "a turn"


# -- size budget -----------------------------------------------------------------------------


def test_budget_counts_long_texts_and_cuts_them_with_a_note(tmp_path):
    db = tmp_path / "texts.db"
    text_run(db, steps=4, groups=6, samples=4)
    with TvizLogger(db, run_id="textrun", strict=True) as log:
        for i in range(30):
            log.log_long_text(f"sample-{i:02d}", f"<text {i}> " + "x" * 200_000)
    SiteBuilder(db, tmp_path / "full").build(run_ids=["textrun"])
    full = next((tmp_path / "full" / "runs").glob("*.html"))
    assert full.stat().st_size > 6_000_000 and 'class="left-out"' not in full.read_text()
    budget = 2_000_000
    report = SiteBuilder(db, tmp_path / "small", budget_bytes=budget).build(run_ids=["textrun"])
    page = next((tmp_path / "small" / "runs").glob("*.html"))
    html = page.read_text("utf-8")
    assert page.stat().st_size <= budget
    assert html.count('class="left-out"') == 30
    assert re.search(r"… [0-9,]+ KB left out to keep this page within its size budget", html)
    assert 'id="texts-notice"' in html and "30 of 30 long texts are cut short" in html
    assert "&lt;text 7&gt; xxx" in html  # each keeps its start, escaped
    assert "long texts are cut short" in report.notices["textrun"]
    # The rollouts are not starved by the texts: they keep at least half the room.
    assert html.count('type="application/gzip-base64"') == 4


def test_budget_too_small_for_a_group_a_step_drops_the_oldest_steps(tmp_path):
    db = tmp_path / "big.db"
    text_run(db, steps=12, groups=24, samples=4)
    SiteBuilder(db, tmp_path / "none", budget_bytes=1).build()
    bare = next((tmp_path / "none" / "runs").glob("*.html"))
    assert 'type="application/gzip-base64"' not in bare.read_text("utf-8")
    # Room for the page and a few one-group steps, not for one group of every step.
    budget = bare.stat().st_size + 4_096 + 2_500
    report = SiteBuilder(db, tmp_path / "small", budget_bytes=budget).build()
    page = next((tmp_path / "small" / "runs").glob("*.html"))
    html = page.read_text("utf-8")
    assert page.stat().st_size <= budget
    kept = sorted(int(s) for s in re.findall(r'id="chunk-(\d+)"', html))
    assert kept and len(kept) < 12 and kept == list(range(12 - len(kept), 12))  # newest kept
    for step in kept:
        assert len(embedded_groups(page, step)) == 1
    first_kept = kept[0]
    notice = report.notices["textrun"]
    assert notice.startswith(
        f"To keep this page within its size budget, {len(kept)} of 288 rollout groups are"
        f" included ({288 - len(kept)} left out)"
    )
    assert notice.endswith(
        f"Steps 0–{first_kept - 1} ({first_kept} steps) have no rollouts in this page."
    )
    assert notice in html.replace("&amp;", "&")


# -- the index links only pages that exist ----------------------------------------------------


def test_index_links_only_runs_whose_page_was_built(text_db, tmp_path):
    out = tmp_path / "out"
    build_site(text_db, out, run_ids=["sftrun"])
    index = (out / "index.html").read_text("utf-8")
    rows = dict(re.findall(r'<tr data-id="(\w+)">(.*?)</tr>', index, re.S))
    assert 'href="runs/sft-run-sftrun.html"' in rows["sftrun"]
    assert "href=" not in rows["textrun"] and "not built" in rows["textrun"]
    assert "not built" not in rows["sftrun"]
    again = build_site(text_db, tmp_path / "again", run_ids=["sftrun"])
    assert again.written[-1].read_bytes() == (out / "index.html").read_bytes()
    build_site(text_db, out)  # now every page exists
    index = (out / "index.html").read_text("utf-8")
    assert "not built" not in index and index.count('href="runs/') == 2


# -- content security policy -----------------------------------------------------------------


def test_pages_allow_only_their_own_scripts_by_hash(text_db, tmp_path):
    build_site(text_db, tmp_path / "out")
    for path in [tmp_path / "out" / "index.html", *(tmp_path / "out" / "runs").glob("*.html")]:
        html = path.read_text("utf-8")
        policy = re.search(
            r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html
        ).group(1)
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
        assert len(scripts) == 2  # the Vega bundle and the page's own code
        assert directives["script-src"].split() == [script_hash(s) for s in scripts]
        for gone in ("'unsafe-inline'", "'unsafe-eval'", "'self'"):
            assert gone not in directives["script-src"]
        assert "'self'" not in policy and "connect-src" not in directives
        assert directives["default-src"] == "'none'"
        for name in ("object-src", "base-uri", "form-action"):
            assert directives[name] == "'none'"


def test_a_rebuild_reads_again_only_the_rows_of_runs_that_changed(text_db, tmp_path, monkeypatch):
    """Watch's rebuild after one run logged: that run's row is read again, the others' kept,
    and the index is the one a fresh build writes."""
    builder = SiteBuilder(text_db, tmp_path / "out")
    builder.build()
    read: list[str] = []
    listed: list[int] = []
    real_summary, real_list = Store.run_summary, Store.list_runs
    monkeypatch.setattr(
        Store, "run_summary", lambda self, run_id: read.append(run_id) or real_summary(self, run_id)
    )
    monkeypatch.setattr(Store, "list_runs", lambda self: listed.append(1) or real_list(self))
    with TvizLogger(text_db, run_id="textrun", strict=True) as log:
        log.log_metrics({"train/loss": 0.01}, step=50)
    report = builder.build(run_ids=["textrun"])
    assert read == ["textrun"] and not listed
    fresh = SiteBuilder(text_db, tmp_path / "fresh").build()
    index = [p for p in report.written if p.name == "index.html"][0]
    fresh_index = [p for p in fresh.written if p.name == "index.html"][0]
    assert index.read_bytes() == fresh_index.read_bytes()


def test_progress_counts_steps_within_a_run(db_path, tmp_path):
    """A build reports its progress in steps, while a long run is built and after each page:
    what the bar's rate and time left are made from."""
    with TvizLogger(db_path, "long", run_id="long", strict=True) as log:
        for step in range(120):
            log.log_rollouts(
                [{"prompt_text": "q", "trajectories": [{"reward": 1.0, "output_text": "a"}]}],
                step=step,
            )
    with TvizLogger(db_path, "short", run_id="short", strict=True) as log:
        log.log_metrics({"loss": 1.0}, step=0)
    calls: list[tuple[int, int, str]] = []
    SiteBuilder(db_path, tmp_path / "out").build(
        progress=lambda done, total, run: calls.append((done, total, run.id))
    )
    assert all(total == 121 for _, total, _ in calls)
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and done[-1] == 121
    long = [d for d, _, run in calls if run == "long"]
    assert len(long) >= 3 and long[0] < 120  # ticks inside the long run, not only at its end


def test_a_build_of_many_runs_keeps_few_runs_metrics(db_path, tmp_path):
    """A builder keeps the metrics of the last runs it built (for watch's next rebuild), not of
    every run: a build of hundreds of runs must not hold all their values at once."""
    import tviz.render.site as site

    for i in range(site.KEEP_METRICS + 3):
        with TvizLogger(db_path, f"r{i}", run_id=f"r{i}", strict=True) as log:
            log.log_metrics({"loss": float(i)}, step=0)
    builder = SiteBuilder(db_path, tmp_path / "out")
    builder.build()
    assert len(builder._metrics) == site.KEEP_METRICS
    builder.build(run_ids=["r0"])  # a run built again comes back into the kept ones
    assert "r0" in builder._metrics and len(builder._metrics) == site.KEEP_METRICS
