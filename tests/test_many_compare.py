"""`tviz compare`, `tviz export` and the watch's compare endpoint over several databases (one
per node): a run logged from several files is merged exactly as `tviz build` merges it, and a
run is found by exact id in any file first, then by exact name, then by a unique id prefix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape
from render_data import page_json
from test_watch import Watching, serving, start_watch, wait_until

from tviz import TvizLogger
from tviz.cli import main
from tviz.render import comparison
from tviz.render.compare import command_line
from tviz.store import StoreError
from tviz.store.many import StoreSet

SAME = {"Sec-Fetch-Site": "same-origin"}


def node(
    path: Path,
    steps: list[int],
    run_id: str = "job1",
    loss: dict[int, float] | None = None,
    name: str = "multi",
    tokens: int = 100,
) -> Path:
    """One node's file: run `run_id` with metrics (sampled tokens too) and a rollout at each of
    `steps`, and a config key of its own."""
    config = {"lr": 1e-5, path.stem: True}
    with TvizLogger(path, name, run_id=run_id, config=config, strict=True) as log:
        for s in steps:
            out = {"reward": s / 10, "output_text": f"out-{path.stem}-{s}"}
            log.log_rollouts([{"prompt_text": f"p {path.stem} {s}", "trajectories": [out]}], s)
            value = (loss or {}).get(s, float(s))
            metrics = {"env/all/reward/total": s / 10, "loss": value}
            log.log_metrics({**metrics, "env/all/total_ac_tokens": tokens}, step=s)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def built_conflicts(a: Path, b: Path) -> list[str]:
    """What `tviz build` reads as the conflicts of job1 in a.db then b.db."""
    with StoreSet([a, b]) as stores:
        stores.load_run("job1")
        return stores.conflicts["job1"]


def chart(data: dict, metric: str) -> dict:
    return next(c for c in data["charts"] if c["metric"] == metric)


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, Path]:
    """`job1` logged from two nodes: steps 0-2 in a.db, 2-4 in b.db (loss at 2 differs)."""
    a = node(tmp_path / "a.db", [0, 1, 2])
    b = node(tmp_path / "nodes" / "b.db", [2, 3, 4], loss={2: 99.0}, tokens=50)
    return a, b


def test_a_split_run_is_merged_as_build_merges_it(split: tuple[Path, Path]) -> None:
    a, b = split
    c = comparison.load(["job1"], [a, b])
    [m] = c.runs
    with StoreSet([a, b]) as stores:
        built = stores.load_run("job1")
    assert m.data.metrics == built.metrics
    assert m.data.metrics["loss"].steps == [0, 1, 2, 3, 4]
    assert m.data.metrics["loss"].values[2] == 2.0  # the first file's value kept
    assert m.data.config == built.config and {"a", "b"} <= set(m.data.config)
    assert [r.prompt_text for r in m.data.rollouts] == [r.prompt_text for r in built.rollouts]
    assert {"p a 0", "p b 4"} <= {r.prompt_text for r in m.data.rollouts}
    assert m.data.summary == built.summary
    assert m.db == a and m.dbs == [a, b]
    # The loss and the sampled tokens at step 2 differ between the files: both said, as
    # `tviz build` says them; the token axis keeps the first file's count, as the metric.
    assert c.conflicts["job1"] == built_conflicts(a, b)
    tokens, loss = sorted(c.conflicts["job1"])
    assert "'loss'" in loss and "step 2" in loss and "kept the value of a.db" in loss
    assert "'env/all/total_ac_tokens'" in tokens and "100.0 in a.db and 50.0 in b.db" in tokens
    assert m.axes["tokens"] == [[0, 1, 2, 3, 4], [100, 200, 300, 350, 400]]
    assert "time" not in m.axes  # each file's clock starts at its own first metric
    assert command_line(c) == f"tviz compare job1 --db {a} --db {b}"
    assert comparison.slots(c)[0]["db"] == "a.db + b.db"


def test_compare_cli_draws_both_files_and_says_the_conflict(
    split: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = split
    out = tmp_path / "cmp.html"
    glob = str(b.parent / "*.db")
    code, stdout, stderr = run("compare", "job1", "--db", str(a), "--db", glob, "--out", str(out))
    assert code == 0, stderr
    assert "wrote" in stdout
    lines = [line for line in stderr.splitlines() if "conflict" in line]
    assert lines == [f"warning: run job1: {line}" for line in built_conflicts(a, b)]
    code, _, built = run("build", "--db", str(a), "--db", glob, "--out", str(tmp_path / "site"))
    assert code == 0 and [x for x in built.splitlines() if "conflict" in x] == lines
    data = page_json(out, "compare-data")
    steps, values = chart(data, "loss")["series"]["0"]
    assert steps == [0, 1, 2, 3, 4] and values[2] == 2.0
    [row] = page_json(out, "tviz-summary")  # type: ignore[misc]
    assert row["steps"] == 5 and row["last_step"] == 4
    # The page says the conflicts too, and that the run is read from both files.
    html = out.read_text("utf-8")
    notice = html.split('id="conflict-notice">', 1)[1].split("</p>", 1)[0]
    assert all(str(escape(line)) in notice for line in conflict_lines_of(a, b))
    assert f"{a.name} + {b.name}" in html


def conflict_lines_of(a: Path, b: Path) -> list[str]:
    return [f"run job1: {line}" for line in built_conflicts(a, b)]


def test_export_reads_a_split_run_whole(split: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = split
    out = tmp_path / "export"
    code, _, stderr = run("export", "job1", "--db", str(a), "--db", str(b), "--out", str(out))
    assert code == 0, stderr
    assert any("warning: run job1: conflict:" in line for line in stderr.splitlines())
    [row] = json.loads((out / "summary.json").read_text())["runs"]
    assert row["steps"] == 5 and row["last_step"] == 4
    assert row["headline"]["reward"]["points"] == 5
    # No run named: every run, once each, though it is in two files.
    code, _, stderr = run("export", "--db", str(a), "--db", str(b), "--out", str(tmp_path / "all"))
    assert code == 0, stderr
    runs = json.loads((tmp_path / "all" / "summary.json").read_text())["runs"]
    assert [r["id"] for r in runs] == ["job1"]


def test_an_exact_id_in_a_later_file_wins_over_a_name_or_prefix_in_an_earlier_one(
    tmp_path: Path,
) -> None:
    a = tmp_path / "a.db"
    node(a, [0], run_id="abc123", name="first")  # "abc" is the start of its id
    node(a, [0], run_id="zzz", name="abc")  # ... and this one's name
    node(a, [0], run_id="solo-1", name="solo-run")
    b = tmp_path / "b.db"
    node(b, [0, 1], run_id="abc", name="later")
    node(b, [0], run_id="q9", name="solo")  # an exact name, where a.db has a prefix
    for wanted, found in (("abc", "abc"), ("solo", "q9"), ("abc1", "abc123"), ("first", "abc123")):
        assert comparison.load([wanted], [a, b]).runs[0].data.summary.id == found, wanted
        with StoreSet([a, b]) as stores:  # what `tviz build --run` looks runs up with
            assert stores.find_run(wanted).id == found, wanted
    # An ambiguous prefix, across files, and an unknown run: one line each.
    for wanted, message in (("ab", "is the start of several run ids"), ("nope", "no run named")):
        with pytest.raises(StoreError, match=message):
            comparison.load([wanted], [a, b])
        code, _, stderr = run("compare", wanted, "--db", str(a), "--db", str(b))
        assert code == 1 and len(stderr.strip().splitlines()) == 1 and message in stderr


def test_several_db_errors_stay_one_line(split: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = split
    for command in ("compare", "export"):
        for wanted, message in (
            (str(tmp_path / "missing.db"), "no database at"),
            (str(tmp_path / "none" / "*.db"), "no database matches"),
        ):
            out = str(tmp_path / "out")
            code, _, stderr = run(command, "job1", "--db", str(a), "--db", wanted, "--out", out)
            assert code == 1, stderr
            lines = stderr.strip().splitlines()
            assert len(lines) == 1 and message in lines[0] and "Traceback" not in stderr


def test_one_file_is_read_as_before(split: tuple[Path, Path]) -> None:
    a, _ = split
    c = comparison.load(["job1"], [a])
    [m] = c.runs
    assert m.data.metrics["loss"].steps == [0, 1, 2]
    assert set(m.axes) == {"time", "tokens"} and c.conflicts == {}
    assert m.dbs == [a] and comparison.slots(c)[0]["db"] == "a.db"


@pytest.fixture
def watching(split: tuple[Path, Path], tmp_path: Path) -> Iterator[Watching]:
    a, b = split
    watching = serving(start_watch(a, tmp_path / "site", "--db", str(b)))
    wait_until(lambda: watching.said("built 1 run(s)"), "the first build", timeout=60)
    yield watching
    code, _, stderr = watching.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr


def test_the_watch_compare_endpoint_merges_a_split_run(watching: Watching, tmp_path: Path) -> None:
    resp = watching.request("/compare?run=job1", headers=SAME)
    assert resp.status == 303, resp.body
    page = watching.request(resp.headers["Location"], headers=SAME)
    assert page.status == 200
    copy = tmp_path / "served.html"
    copy.write_bytes(page.body)
    steps, values = chart(page_json(copy, "compare-data"), "loss")["series"]["0"]
    assert steps == [0, 1, 2, 3, 4] and values[2] == 2.0
