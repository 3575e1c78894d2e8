"""One bad row never breaks a database's reports: rows another program wrote into a real
database (out-of-range times, bytes that are not UTF-8, steps stored as text, JSON nested
thousands deep), and databases opened read-only. Every other run and page still builds, and
`tviz ls` lists every run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from render_data import embedded_groups, spoil

from tviz import TvizLogger
from tviz.cli import main
from tviz.formats import fmt_duration
from tviz.render import SiteBuilder
from tviz.store import Store
from tviz.watch.tracker import ChangeTracker

ROOT = Path(__file__).resolve().parents[1]
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC
YEAR_0 = -62_167_219_200.0  # 0000-01-01 00:00 UTC
DEEP = 5_000


def two_runs(db: Path) -> None:
    """A good run and a run to spoil, each with a config, metrics, rollouts and a long text."""
    for run_id in ("good", "bad"):
        config = {"model_name": "m", "nested": {"lr": 1e-4}}
        log = TvizLogger(
            db, f"{run_id}-run", run_id=run_id, config=config, started_at=START, strict=True
        )
        with log:
            for step in range(3):
                log.log_rollouts(
                    [
                        {
                            "prompt_text": f"prompt {step}",
                            "trajectories": [
                                {"reward": 1.0, "output_text": "yes", "logprobs": [-0.1, -0.2]},
                                {"reward": 0.0, "output_text": "no", "logprobs": [-0.3]},
                            ],
                        }
                    ],
                    step=step,
                    timestamp=START + 60 * step,
                )
                log.log_metrics(
                    {"env/all/reward/total": 0.5, "env/all/total_ac_tokens": 10},
                    step=step,
                    timestamp=START + 60 * step,
                )
            log.log_summary({"final": 1.0})
            log.log_long_text("notes", "a long text")


def build(db: Path, out: Path) -> str:
    result = CliRunner().invoke(main, ["build", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "wrote 2 run pages" in result.output, result.output
    return result.output


def page_of(out: Path, run_id: str) -> str:
    (page,) = (out / "runs").glob(f"*{run_id}*.html")
    return page.read_text("utf-8")


def fact(html: str, label: str) -> str:
    found = re.search(rf"<dt>{label}</dt><dd>(.*?)</dd>", html)
    assert found, label
    return found.group(1)


def ls_lines(db: Path) -> list[str]:
    result = CliRunner().invoke(main, ["ls", "--db", str(db)])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 3, result.output  # the header and both runs
    return lines


# -- 1. times out of range --------------------------------------------------------------------

BAD_TIMES = {
    "nanoseconds": 1.767e18,
    "1e20": 1e20,
    "inf": float("inf"),
    "year-0": YEAR_0,
    "text": "yesterday",
}


@pytest.mark.parametrize("column", ["started_ts", "last_ts", "ended_ts"])
@pytest.mark.parametrize("value", list(BAD_TIMES.values()), ids=list(BAD_TIMES))
def test_a_run_time_out_of_range_shows_as_unknown(db_path, tmp_path, column, value):
    two_runs(db_path)
    spoil(db_path, (f"UPDATE runs SET {column} = ? WHERE id = 'bad'", (value,)))
    build(db_path, tmp_path / "out")
    good, bad = page_of(tmp_path / "out", "good"), page_of(tmp_path / "out", "bad")
    assert fact(good, "started") == "2026-01-01 00:00 UTC"
    if column == "ended_ts":  # the duration then runs to the last data, as for an open run
        with Store(db_path) as store:
            (run,) = [r for r in store.list_runs() if r.id == "bad"]
        assert run.ended_at is None and run.duration_s == run.last_data_at - START
        assert fact(bad, "duration") == fmt_duration(run.duration_s)
    else:
        label = {"started_ts": "started", "last_ts": "last data"}[column]
        assert fact(bad, label) == "-"
    lines = ls_lines(db_path)
    assert any(line.startswith("bad") for line in lines)


@pytest.mark.parametrize("value", list(BAD_TIMES.values()), ids=list(BAD_TIMES))
def test_a_step_time_out_of_range_leaves_the_tokens_chart_to_the_others(db_path, tmp_path, value):
    two_runs(db_path)
    spoil(db_path, ("UPDATE steps SET ts = ? WHERE run_id = 'bad'", (value,)))
    with Store(db_path) as store:
        assert store.tokens_by_day() == {"2026-01-01": 30}  # the good run's three steps
    build(db_path, tmp_path / "out")


def test_watch_rebuilds_past_a_run_with_a_bad_time(db_path, tmp_path):
    two_runs(db_path)
    spoil(db_path, "UPDATE runs SET last_ts = 1e20, started_ts = 'soon' WHERE id = 'bad'")
    said: list[str] = []
    tracker = ChangeTracker(db_path, tmp_path / "out", SiteBuilder, said.append)
    try:
        tracker.update()
        with TvizLogger(db_path, run_id="good", strict=True) as log:
            log.log_metrics({"env/all/reward/total": 0.9}, step=3, timestamp=START + 240)
        tracker.update()
    finally:
        tracker.close()
    assert not [s for s in said if "failed" in s], said
    assert any("re-rendered good" in s for s in said), said
    assert len(list((tmp_path / "out" / "runs").glob("*.html"))) == 2


# -- 2. text another program wrote ------------------------------------------------------------

BAD_BYTES = b"\xffbad\xfe"
SHOWN = "\ufffdbad\ufffd"  # the same bytes decoded with replacement
NESTED_LIST = "[" * DEEP + "]" * DEEP
NESTED_DICT = '{"a":' * DEEP + "1" + "}" * DEEP

BAD_TEXT = {
    "output-text": "UPDATE trajectories SET output_text = CAST(X'ff626164fe' AS TEXT)"
    " WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = 'bad')",
    "output-blob": "UPDATE trajectories SET output_text = X'ff626164fe'"
    " WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = 'bad')",
    "prompt-text": "UPDATE rollouts SET prompt_text = CAST(X'ff626164fe' AS TEXT)"
    " WHERE run_id = 'bad'",
    "metric-name": "UPDATE metrics SET name = CAST(X'ff626164fe' AS TEXT)"
    " WHERE run_id = 'bad' AND name = 'env/all/reward/total'",
    "metric-text": "UPDATE metrics SET value = NULL, text = CAST(X'ff626164fe' AS TEXT)"
    " WHERE run_id = 'bad' AND name = 'env/all/reward/total' AND step = 1",
    "metric-blob": "UPDATE metrics SET value = X'ff626164fe'"
    " WHERE run_id = 'bad' AND name = 'env/all/reward/total' AND step = 1",
    "summary-name": "UPDATE summaries SET name = CAST(X'ff626164fe' AS TEXT), value = NULL,"
    " text = CAST(X'fe' AS TEXT) WHERE run_id = 'bad'",
    "long-text": "UPDATE texts SET key = CAST(X'ff' AS TEXT), text = X'ff626164fe'"
    " WHERE run_id = 'bad'",
    "run-name": "UPDATE runs SET name = CAST(X'ff626164fe' AS TEXT) WHERE id = 'bad'",
    "run-name-blob": "UPDATE runs SET name = X'ff626164fe' WHERE id = 'bad'",
    "run-fields-blob": "UPDATE runs SET status = X'ff', type = X'fe', modality = 5,"
    " tviz_version = X'ff' WHERE id = 'bad'",
    "config-text": "UPDATE runs SET config = CAST(X'7b226d6f64656c5f6e616d65223a22ff227d' AS TEXT)"
    " WHERE id = 'bad'",
    "config-blob": "UPDATE runs SET config = X'7b7d' WHERE id = 'bad'",
    "metric-step-text": "UPDATE metrics SET step = 'three' WHERE run_id = 'bad' AND step = 1",
    "rollout-step-text": "UPDATE rollouts SET step = 'three' WHERE run_id = 'bad' AND step = 1",
    "legacy-step-text": "UPDATE steps SET step = 'three' WHERE run_id = 'bad' AND step = 1",
    "reward-mean-text": "UPDATE steps SET reward_mean = 'high' WHERE run_id = 'bad'",
    "tokens-text": "UPDATE steps SET total_ac_tokens = 'lots' WHERE run_id = 'bad'",
    "tokens-huge": "UPDATE steps SET total_ac_tokens = 9223372036854775807 WHERE run_id = 'bad'",
    "deep-logprobs": f"UPDATE trajectories SET logprobs = '{NESTED_LIST}'"
    " WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = 'bad')",
    "deep-turns": f"UPDATE trajectories SET turns = '{NESTED_LIST}'"
    " WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = 'bad')",
    "deep-extras": f"UPDATE trajectories SET extras = '{NESTED_DICT}'"
    " WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = 'bad')",
    "deep-prompt-tokens": f"UPDATE rollouts SET prompt_tokens = '{NESTED_LIST}'"
    " WHERE run_id = 'bad'",
    "deep-config": f"UPDATE runs SET config = '{NESTED_DICT}' WHERE id = 'bad'",
    "deep-step-extras": f"UPDATE steps SET extras = '{NESTED_DICT}' WHERE run_id = 'bad'",
    "json-number": "UPDATE trajectories SET logprobs = 5, turns = 2.5, output_tokens = X'00'"
    " WHERE rollout_id IN (SELECT id FROM rollouts WHERE run_id = 'bad')",
}


@pytest.mark.parametrize("statement", list(BAD_TEXT.values()), ids=list(BAD_TEXT))
def test_a_bad_field_never_breaks_the_build_or_ls(db_path, tmp_path, statement):
    two_runs(db_path)
    spoil(db_path, statement)
    build(db_path, tmp_path / "out")
    good = page_of(tmp_path / "out", "good")
    assert "good-run" in good
    assert len(embedded_groups(next((tmp_path / "out").glob("runs/*good*.html")), 2)) == 1
    assert page_of(tmp_path / "out", "bad")
    index = (tmp_path / "out" / "index.html").read_text("utf-8")
    assert index.count('href="runs/') == 2  # both runs are linked
    ls_lines(db_path)


def _bad_page(tmp_path: Path) -> Path:
    return next((tmp_path / "out" / "runs").glob("*bad*.html"))


def test_bad_bytes_show_decoded_with_replacement(db_path, tmp_path):
    two_runs(db_path)
    names = ("output-text", "prompt-text", "metric-text", "run-name")
    spoil(db_path, *(BAD_TEXT[n] for n in names))
    build(db_path, tmp_path / "out")
    html = _bad_page(tmp_path).read_text("utf-8")
    assert f'<h1 class="run-name">{SHOWN}</h1>' in html
    group = embedded_groups(_bad_page(tmp_path), 2)[0]
    assert group["p"] == SHOWN and {t["o"] for t in group["t"]} == {SHOWN}
    assert SHOWN in html  # the text metric, shown under "Other values"
    lines = ls_lines(db_path)
    assert any(SHOWN in line for line in lines)
    with Store(db_path) as store:
        (bad,) = [r for r in store.list_runs() if r.id == "bad"]
        assert bad.name == SHOWN
        assert store.load_run("bad").text_metrics["env/all/reward/total"] == [(1, SHOWN)]


def test_a_run_id_with_bad_bytes_still_gets_its_data(db_path, tmp_path):
    two_runs(db_path)
    raw = "CAST(X'ff626164fe' AS TEXT)"
    spoil(
        db_path,
        "PRAGMA foreign_keys = OFF",
        *(
            f"UPDATE {table} SET run_id = {raw} WHERE run_id = 'bad'"
            for table in ("metrics", "steps", "rollouts", "summaries", "texts")
        ),
        f"UPDATE runs SET id = {raw} WHERE id = 'bad'",
    )
    with Store(db_path) as store:
        (bad,) = [r for r in store.list_runs() if r.id != "good"]
        assert bad.id == SHOWN and bad.num_steps == 3
        data = store.load_run(bad.id)
        assert len(data.rollouts) == 3 and data.metrics["env/all/reward/total"].steps == [0, 1, 2]
        assert set(store.rollout_index(bad.id)) == {0, 1, 2}
    build(db_path, tmp_path / "out")
    ls_lines(db_path)


def test_rows_whose_step_is_text_are_left_out_with_a_notice(db_path, tmp_path):
    two_runs(db_path)
    spoil(db_path, BAD_TEXT["metric-step-text"], BAD_TEXT["rollout-step-text"])
    output = build(db_path, tmp_path / "out")
    with Store(db_path) as store:
        data = store.load_run("bad")
    assert data.metrics["env/all/reward/total"].steps == [0, 2]
    assert sorted(r.step for r in data.rollouts) == [0, 2]
    assert data.notices and "not a whole number" in data.notices[0]
    html = _bad_page(tmp_path).read_text("utf-8")
    assert 'id="data-notice"' in html and "not a whole number" in html
    assert 'id="data-notice"' not in page_of(tmp_path / "out", "good")
    assert "note: run bad:" in output


def test_json_nested_deep_shows_as_a_note(db_path, tmp_path):
    two_runs(db_path)
    spoil(db_path, BAD_TEXT["deep-logprobs"], BAD_TEXT["deep-config"])
    build(db_path, tmp_path / "out")
    group = embedded_groups(_bad_page(tmp_path), 0)[0]
    assert all("nested too deep" in t["x"]["logprobs"] for t in group["t"])
    html = _bad_page(tmp_path).read_text("utf-8")
    assert "nested too deep" in html  # the config


@pytest.mark.parametrize("depth", [40, 200, 900])
def test_a_config_nested_deep_but_readable_is_cut_short(db_path, tmp_path, depth):
    two_runs(db_path)
    config = '{"a":' * depth + "1" + "}" * depth
    spoil(db_path, ("UPDATE runs SET config = ? WHERE id = 'bad'", (config,)))
    build(db_path, tmp_path / "out")
    assert "nested too deep" in _bad_page(tmp_path).read_text("utf-8")


def test_a_run_whose_page_cannot_be_built_leaves_the_others(db_path, tmp_path, monkeypatch):
    """Whatever else goes wrong with one run's data, the other pages and the index are built
    and the build says which page is missing."""
    import tviz.render.site as site

    two_runs(db_path)
    real = site.figure_step

    def broken(step, groups, *args, **kwargs):
        if any(g.key > 3 for g in groups):  # the bad run's (logged second)
            raise RuntimeError("boom")
        return real(step, groups, *args, **kwargs)

    monkeypatch.setattr(site, "figure_step", broken)
    report = SiteBuilder(db_path, tmp_path / "out").build()
    assert [r.id for r in report.runs] == ["good"]
    assert "page not built" in report.notices["bad"] and "boom" in report.notices["bad"]
    index = (tmp_path / "out" / "index.html").read_text("utf-8")
    assert index.count('href="runs/') == 1 and "bad-run" in index


# -- 5. read-only databases -------------------------------------------------------------------

ODD_FOLDERS = ["exp#1", "what?now", "100%41", "a b", "ünï"]


@pytest.mark.parametrize("folder", ODD_FOLDERS)
def test_read_only_open_reads_the_file_its_path_names(tmp_path, folder):
    """The read-only fallback builds a URI: '#', '?' and '%' in the path must not make it
    open (or create) another file."""
    (tmp_path / folder).mkdir()
    db = tmp_path / folder / "t.db"
    with TvizLogger(db, "the-right-one", strict=True):
        pass
    # The files a raw `file:{path}?mode=ro` would open instead.
    for decoy in (tmp_path / "exp", tmp_path / "what", tmp_path / "100A", tmp_path / "a b"):
        if not decoy.exists():
            with TvizLogger(decoy, "a-decoy", strict=True):
                pass
    before = sorted(p.name for p in tmp_path.iterdir())
    with Store(db, read_only=True) as store:
        assert [r.name for r in store.list_runs()] == ["the-right-one"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created


def _read_only_mount(source: Path, target: Path, *command: str) -> subprocess.CompletedProcess:
    """Run `command` where `target` is a read-only bind mount of `source`, in a mount namespace
    of its own (so nothing outlives the test). As root, chmod does not stop writes; a
    read-only mount does."""
    script = (
        'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" || exit 77\nshift 2; exec "$@"'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            *("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"),
            *(str(source), str(target), *command),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _can_mount(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    (tmp_path / "probe-src").mkdir()
    (tmp_path / "probe-dst").mkdir()
    probe = _read_only_mount(tmp_path / "probe-src", tmp_path / "probe-dst", "true")
    return probe.returncode == 0


@pytest.mark.parametrize("folder", ["plain", "exp#1", "what?now"])
def test_ls_and_build_open_a_database_on_a_read_only_mount(tmp_path, folder):
    if not _can_mount(tmp_path):
        pytest.skip("no read-only bind mount here (needs unshare and mount)")
    source, mounted = tmp_path / "src", tmp_path / "ro"
    (source / folder).mkdir(parents=True)
    (mounted).mkdir()
    two_runs(source / folder / "t.db")
    (source / folder / "t.db").chmod(0o444)
    (source / folder).chmod(0o555)
    db = mounted / folder / "t.db"
    cli = [sys.executable, "-m", "tviz.cli"]
    listed = _read_only_mount(source, mounted, *cli, "ls", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    assert "good-run" in listed.stdout and "bad-run" in listed.stdout
    out = tmp_path / "out"
    built = _read_only_mount(source, mounted, *cli, "build", "--db", str(db), "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert len(list((out / "runs").glob("*.html"))) == 2
    assert sorted(p.name for p in (source / folder).iterdir()) == ["t.db"]


def test_a_read_only_mount_with_unread_wal_data_says_so(tmp_path):
    """A WAL file that was never checkpointed cannot be read without a writable -shm: a clear
    error rather than a run list that is silently missing its newest data."""
    if not _can_mount(tmp_path):
        pytest.skip("no read-only bind mount here (needs unshare and mount)")
    source, mounted = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    mounted.mkdir()
    db = source / "t.db"
    log = TvizLogger(db, "open-run", strict=True)
    log.log_metrics({"x": 1.0}, step=0)
    log.flush()
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in source.iterdir():  # a copy taken while the writer still has the file open
        if f.name in ("t.db", "t.db-wal"):
            shutil.copy(f, copy / f.name)
    log.close()
    ls = (sys.executable, "-m", "tviz.cli", "ls", "--db", str(mounted / "t.db"))
    listed = _read_only_mount(copy, mounted, *ls)
    if listed.returncode == 0:  # this SQLite could read the WAL after all
        assert "open-run" in listed.stdout
    else:
        assert "Traceback" not in listed.stderr
        assert len(listed.stderr.strip().splitlines()) == 1 and "-wal" in listed.stderr


def test_build_json_in_page_data_stays_valid(db_path, tmp_path):
    """The index's embedded JSON holds the bad run without NaN, bytes or reprs."""
    two_runs(db_path)
    spoil(db_path, "UPDATE runs SET last_ts = 1e300, name = X'ff' WHERE id = 'bad'")
    build(db_path, tmp_path / "out")
    index = (tmp_path / "out" / "index.html").read_text("utf-8")
    data = json.loads(re.search(r'id="index-data">(.*?)</script>', index, re.S).group(1))
    (bad,) = [r for r in data["runs"] if r["id"] == "bad"]
    assert bad["lastData"] is None and bad["name"] == "\ufffd"


def test_threads_reading_while_a_run_is_spoiled(db_path, tmp_path):
    """A page read in one transaction: lenient decoding of one read does not leak into
    another store's reads (each Store has its own connection)."""
    two_runs(db_path)
    spoil(db_path, BAD_TEXT["output-text"])
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with Store(db_path) as store:
                for _ in range(5):
                    store.load_run("bad")
                    store.load_run("good")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
