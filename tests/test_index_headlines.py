"""The index carries each run's headline series only (reward, KL, entropy, output length):
`Store.headline_series` reads them without the run's other metrics and gives exactly what
`load_run` gives, and the index's size does not grow with the runs' lengths."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

import pytest
from browser import browser, close_page, open_page  # noqa: F401  (browser is a fixture)
from compare_runs import COUNT_COLOR, rl_run
from render_data import SCRIPT, page_json, spoil, text_run

from tviz import TvizLogger, catalog, schema
from tviz.render import SiteBuilder, build_site, comparison
from tviz.render.index import INDEX_POINTS, index_entry, read_entry, thin
from tviz.store import RunNotFound, Series, Store
from tviz.store.many import StoreSet
from tviz.store.series import HEADLINE_ROLES

HEADLINE_NAMES = [
    "env/all/reward/total",
    "optim/kl_sample_train_v1",
    "optim/entropy",
    "env/all/ac_tokens_per_turn",
]
T0 = 1_795_564_800.0


def fast_runs(
    db: Path, run_ids: list[str], steps: int, names: list[str], spike: int | None = None
) -> None:
    """Runs of `steps` steps logging `names` at every step, written straight with sqlite3
    (the logger makes each run and its first step; a 20,000-step run takes a second). The
    reward is 100 at step `spike`."""
    for k, run_id in enumerate(run_ids):
        with TvizLogger(db, run_id, run_id=run_id, started_at=T0 + k, strict=True) as log:
            log.log_metrics({n: 0.0 for n in names}, step=0, timestamp=T0 + k)
    conn = sqlite3.connect(db)
    with conn:
        for k, run_id in enumerate(run_ids):
            rows, step_rows = [], []
            for s in range(1, steps):
                ts = T0 + k + s
                for i, name in enumerate(names):
                    value = math.sin(s / 97 + i + k) + (s % 7) / 100
                    if spike is not None and s == spike and name == names[0]:
                        value = 100.0
                    rows.append((run_id, name, s, value, ts))
                step_rows.append((run_id, s, ts, 100))
            conn.executemany(
                "INSERT INTO metrics (run_id, name, step, value, ts) VALUES (?, ?, ?, ?, ?)", rows
            )
            conn.executemany(
                "INSERT INTO steps (run_id, step, ts, total_ac_tokens) VALUES (?, ?, ?, ?)",
                step_rows,
            )
            conn.execute("UPDATE runs SET last_ts = ? WHERE id = ?", (T0 + k + steps, run_id))
    conn.close()


def same(a: Series, b: Series) -> bool:
    """Equal series, NaN equal to NaN."""
    return (
        a.name == b.name
        and a.steps == b.steps
        and len(a.values) == len(b.values)
        and all(
            x == y or (math.isnan(x) and math.isnan(y))
            for x, y in zip(a.values, b.values, strict=True)
        )
    )


def assert_as_load_run(store: Store | StoreSet, run_id: str) -> dict[str, str]:
    """`headline_series` is what `load_run(...).metrics` holds for each role; role -> name."""
    data = store.load_run(run_id, rollout_steps=(), evals=False)
    got = store.headline_series(run_id)
    for role in HEADLINE_ROLES:
        found = catalog.find(role, data.metrics)
        if found is None:
            assert role not in got, role
        else:
            assert same(got[role], data.metrics[found[0]]), (role, got[role], found[0])
    assert set(got) <= set(HEADLINE_ROLES)
    assert store.config(run_id) == data.config
    assert read_entry(store, data.summary) == index_entry(data)
    return {role: series.name for role, series in got.items()}


@pytest.fixture
def edge_db(db_path: Path) -> Path:
    """A run whose headline metrics hold all a file can: NaN and infinities, text, a name
    with text only, steps that are not whole numbers, empty cells, a blob name, a name that
    is not UTF-8, and steps a 0.2.x logger wrote without `metrics` rows."""
    with TvizLogger(db_path, "edge", run_id="edge", config={"lr": 0.1}, strict=True) as log:
        for step in range(10):
            special = {3: math.nan, 4: math.inf, 5: -math.inf}
            log.log_metrics(
                {
                    "env/all/reward/total": "high",  # text only: no reward metric
                    "reward": special.get(step, step / 10),
                    "optim/kl_sample_train_v1": 0.01 * step,
                    "optim/entropy": "n/a" if step == 2 else 1 - step / 10,
                    "env/all/ac_tokens_per_turn": special.get(step, 100 + step),
                    "other/x": step,
                },
                step=step,
            )
    huge = "1" + "0" * 400  # a JSON integer past a double's range: text
    spoil(
        db_path,
        "INSERT INTO metrics (run_id, name, step, value) VALUES ('edge', 'reward', 2.5, 9),"
        " ('edge', 'reward', 'abc', 9), ('edge', 'other/x', 7.5, 1)",
        # An empty cell does not count: the 0.2.x row of step 20 does.
        "INSERT INTO metrics (run_id, name, step) VALUES ('edge', 'optim/entropy', 20)",
        "INSERT INTO metrics (run_id, name, step, value) VALUES ('edge', 'optim/entropy', 40,"
        " X'00')",
        # The same name as a blob: `load_run` keeps the blob's series.
        "INSERT INTO metrics (run_id, name, step, value) VALUES"
        " ('edge', CAST('optim/kl_sample_train_v1' AS BLOB), 0, 7),"
        " ('edge', CAST('optim/kl_sample_train_v1' AS BLOB), 1, 8)",
        "INSERT INTO metrics (run_id, name, step, value) VALUES"
        " ('edge', CAST(X'ff6b6c' AS TEXT), 1, 1)",
        *(
            (
                "INSERT INTO steps (run_id, step, reward_mean, kl_divergence, entropy,"
                " ac_tokens_per_turn, extras) VALUES ('edge', ?, ?, 0.02, 0.3, 99, ?)",
                (step, 0.5 + step / 100, f'{{"env/all/ac_tokens_per_turn": 120, "r": {huge}}}'),
            )
            for step in (20, 30, 31)
        ),
    )
    return db_path


def test_headline_series_are_what_load_run_reads(edge_db):
    with Store(edge_db) as store:
        names = assert_as_load_run(store, "edge")
        series = store.headline_series("edge")
        with pytest.raises(RunNotFound):
            store.headline_series("missing")
        with pytest.raises(RunNotFound):
            store.config("missing")
    # The 0.2.x rows bring reward_mean, which the catalog prefers to `reward`.
    assert names == {
        "reward": "reward_mean",
        "kl": "optim/kl_sample_train_v1",
        "entropy": "optim/entropy",
        "output_length": "env/all/ac_tokens_per_turn",
    }
    assert series["reward"].steps == [20, 30, 31]
    assert series["kl"].steps == [0, 1] and series["kl"].values == [7, 8]  # the blob name's
    # Step 2 is text, step 20 an empty cell, step 40 a blob; the 0.2.x rows' `entropy` column
    # is a metric of its own (the catalog prefers optim/entropy).
    assert series["entropy"].steps == [0, 1, 3, 4, 5, 6, 7, 8, 9]
    length = series["output_length"]  # the 0.2.x rows' extras too
    assert length.steps == [*range(10), 20, 30, 31] and length.values[-3:] == [120] * 3
    assert math.isnan(length.values[3]) and length.values[4:6] == [math.inf, -math.inf]


def test_headline_series_of_plain_and_hostile_runs(db_path):
    text_run(db_path)
    rl_run(db_path, "rl", lr=1e-5, steps=5)
    with Store(db_path) as store:
        assert assert_as_load_run(store, "textrun") == {"reward": "env/all/reward/total"}
        names = assert_as_load_run(store, "rl")
    assert names == dict(zip(HEADLINE_ROLES, HEADLINE_NAMES, strict=True))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE metrics SET name = CAST(X'ff626164fe' AS TEXT) WHERE name = 'reward'",
        "UPDATE metrics SET value = NULL, text = CAST(X'ff626164fe' AS TEXT)"
        " WHERE name = 'reward' AND step = 1",
        "UPDATE metrics SET value = X'ff626164fe' WHERE name = 'optim/entropy' AND step = 1",
        "UPDATE metrics SET step = 'three' WHERE step = 1",
        "UPDATE steps SET step = 'three' WHERE step = 1",
        "UPDATE steps SET reward_mean = 'high'",
        "UPDATE steps SET extras = '" + '{"a":' * 5_000 + "1" + "}" * 5_000 + "'",
        "UPDATE metrics SET name = 'reward_mean' WHERE name = 'reward' AND step < 5",
        "DELETE FROM metrics WHERE step = 7",
        "DELETE FROM metrics WHERE name = 'env/all/reward/total'",
        "UPDATE metrics SET value = NULL, text = NULL WHERE name = 'optim/entropy'",
        "PRAGMA foreign_keys = OFF; UPDATE metrics SET run_id = CAST(X'ff626164fe' AS TEXT);"
        " UPDATE steps SET run_id = CAST(X'ff626164fe' AS TEXT);"
        " UPDATE runs SET id = CAST(X'ff626164fe' AS TEXT)",
    ],
)
def test_headline_series_stay_as_load_run_reads_a_spoiled_file(edge_db, statement):
    conn = sqlite3.connect(edge_db)
    conn.executescript(statement)
    conn.close()
    with Store(edge_db) as store:
        (run,) = store.list_runs()
        assert_as_load_run(store, run.id)


def test_headline_series_of_the_0_2_3_fixture(legacy_db):
    with Store(legacy_db) as store:
        (run,) = store.list_runs()
        names = assert_as_load_run(store, run.id)
    assert names == {
        "reward": "reward_mean",
        "kl": "kl_divergence",
        "entropy": "entropy",
        "output_length": "ac_tokens_per_turn",
    }
    # A 0.2.x logger writes on after the upgrade: its steps have no `metrics` rows.
    schema.connect(legacy_db).close()
    spoil(
        legacy_db,
        "INSERT INTO steps (run_id, step, reward_mean, kl_divergence, extras)"
        ' VALUES (\'abc73a7b\', 12, 0.95, 0.002, \'{"custom/score": 0.7, "optim/entropy": 0.9,'
        ' "note": "late"}\')',
    )
    with Store(legacy_db) as store:
        names = assert_as_load_run(store, run.id)
        series = store.headline_series(run.id)
    assert names["entropy"] == "optim/entropy"  # the catalog's first name for entropy
    assert series["entropy"].steps == [12] and series["entropy"].values == [0.9]
    assert series["reward"].steps == list(range(13)) and series["reward"].values[-1] == 0.95


def test_headline_series_of_a_run_in_two_files_merge_as_load_run(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    with TvizLogger(a, "r", run_id="r", config={"lr": 1, "a": 1}, strict=True) as log:
        for step in range(5):
            log.log_metrics({"reward": step, "optim/entropy": step, "x": 1}, step=step)
    with TvizLogger(b, "r", run_id="r", config={"lr": 2, "b": 2}, strict=True) as log:
        for step in range(3, 10):
            log.log_metrics(
                {"env/all/reward/total": -step, "reward": 10 * step, "optim/entropy": 10 * step},
                step=step,
            )
    with StoreSet([a, b]) as store:
        names = assert_as_load_run(store, "r")
        series = store.headline_series("r")
        assert store.config("r") == {"lr": 1, "a": 1, "b": 2}
    assert names == {"reward": "env/all/reward/total", "entropy": "optim/entropy"}
    assert series["reward"].values == [-s for s in range(3, 10)]
    # Steps 3 and 4 in both files: the first file's values are kept.
    assert series["entropy"].values == [0, 1, 2, 3, 4, 50, 60, 70, 80, 90]
    with StoreSet([b, a]) as store:
        assert store.headline_series("r")["entropy"].values[3:5] == [30, 40]


def _vm_work(store: Store, read) -> int:
    """How much SQLite works for `read()`: its virtual machine's steps, in hundreds."""
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0

    store.conn.set_progress_handler(tick, 100)
    try:
        read()
    finally:
        store.conn.set_progress_handler(None, 100)
    return ticks[0]


def test_an_index_entry_reads_none_of_the_runs_other_metrics(db_path):
    others = [f"other/metric_{i}" for i in range(40)]
    fast_runs(db_path, ["lean"], 3_000, HEADLINE_NAMES)
    fast_runs(db_path, ["wide"], 3_000, HEADLINE_NAMES + others)
    with Store(db_path) as store:
        runs = {r.id: r for r in store.list_runs()}
        lean = _vm_work(store, lambda: read_entry(store, runs["lean"]))
        wide = _vm_work(store, lambda: read_entry(store, runs["wide"]))
        whole = _vm_work(store, lambda: store.load_run("wide", rollout_steps=(), evals=False))
        assert read_entry(store, runs["wide"]).sources == dict(
            zip(HEADLINE_ROLES, HEADLINE_NAMES, strict=True)
        )
    # Forty more metrics of 3,000 steps cost the entry a seek each (its names), no more.
    assert wide < lean * 1.05 + 20, (lean, wide)
    assert whole > 8 * wide, (whole, wide)


def test_index_lines_keep_their_stated_number_of_points():
    steps = list(range(10_000))
    gappy = [math.nan if s % 2 else float(s % 13) for s in steps]  # a gap in every range
    for values in (gappy, [float(s) for s in steps]):
        ds = thin(steps, values)
        assert len(ds.steps) <= INDEX_POINTS and ds.steps[0] == 0 and ds.steps[-1] == 9_999
    assert max(v for v in thin(steps, gappy).values if v is not None) == 12.0


def _index_data(out: Path) -> dict:
    return page_json(out / "index.html", "index-data")


def test_index_size_does_not_grow_with_the_runs_length(tmp_path):
    names = HEADLINE_NAMES + [f"extra/group{i % 5}/metric_{i}" for i in range(26)]
    short, long = tmp_path / "short.db", tmp_path / "long.db"
    fast_runs(short, ["run-a", "run-b"], 200, names, spike=123)
    fast_runs(long, ["run-a", "run-b"], 20_000, names, spike=12_345)
    started = time.perf_counter()
    SiteBuilder(long, tmp_path / "long").build(run_ids=[])  # the index only
    assert time.perf_counter() - started < 30
    SiteBuilder(short, tmp_path / "short").build(run_ids=[])
    sizes = [(tmp_path / site / "index.html").stat().st_size for site in ("short", "long")]
    # The same points, their steps written with two digits more (4 series x 150 points x 2
    # runs x 2 bytes) and the table's figures: a few kilobytes on about a megabyte.
    assert abs(sizes[1] - sizes[0]) < 6_000, sizes
    data = _index_data(tmp_path / "long")
    for run_id in ("run-a", "run-b"):
        series = data["metrics"][run_id]
        assert sorted(series) == sorted(HEADLINE_ROLES)
        for steps, values in series.values():
            assert len(steps) == len(values) <= INDEX_POINTS
            assert steps[0] == 0 and steps[-1] == 19_999  # first and last kept
        assert 100.0 in series["reward"][1]  # the spike survives the downsampling
        assert series["reward"][0][series["reward"][1].index(100.0)] == 12_345
    html = (tmp_path / "long" / "index.html").read_text("utf-8")
    assert "extra/group" not in html
    assert f"at most {INDEX_POINTS} points per run" in html


def test_index_groups_are_drawn_from_the_headline_series(tmp_path):
    db = tmp_path / "tviz.db"
    for seed in range(2):
        rl_run(db, f"s{seed}", lr=1e-5, seed=seed, steps=6, group="seeds", rollouts=False)
    build_site(db, tmp_path / "out")
    data = _index_data(tmp_path / "out")
    assert sorted(data["groups"]["seeds"]["metrics"]) == sorted(HEADLINE_ROLES)
    assert data["roles"] == [[r, catalog.ROLES[r]] for r in HEADLINE_ROLES]
    assert "optim/lr" not in json.dumps(data)


def test_index_draws_its_first_chart(browser, tmp_path):  # noqa: F811
    db = tmp_path / "tviz.db"
    ids = [f"run-{k:02d}" for k in range(40)]
    fast_runs(db, ids, 2_000, HEADLINE_NAMES + ["train/loss", SCRIPT])
    SiteBuilder(db, tmp_path / "out").build(run_ids=[])
    opened = open_page(browser, tmp_path / "out" / "index.html", wait_ready=False)
    opened.wait_for_selector("#overlay[data-drawn=yes] canvas", timeout=15_000)
    drawn_at = opened.evaluate("() => performance.now()")
    assert drawn_at < 5_000  # 200 runs draw in about one second (see the index's numbers)
    assert opened.locator("#metric").input_value() == "reward"
    # The first ticked run (the newest, first in the table) is drawn in its colour.
    first = opened.locator("table.runs tbody tr").first.get_attribute("data-id")
    assert first == ids[-1]
    assert opened.evaluate(COUNT_COLOR, ["overlay", comparison.PALETTE[0]]) > 20
    assert opened.locator("#overlay-status").inner_text() == (
        "5 of 5 ticked runs logged a metric for Reward: env/all/reward/total"
    )
    assert opened.locator("#index-rule").is_visible()
    assert opened.requests == [] and opened.errors == [] and opened.dialogs == []
    close_page(opened)
