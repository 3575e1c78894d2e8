"""One site over several databases (one per node): runs merged by id, conflicts reported."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from render_data import embedded_groups, page_data

from tviz import TvizLogger
from tviz.cli import main
from tviz.render import SiteBuilder


def node(path: Path, steps: list[int], run_id: str = "job1", loss: dict | None = None) -> Path:
    """One node's file: run `run_id` with a rollout and metrics at each of `steps`."""
    config = {"lr": 1e-5, path.stem: True}
    with TvizLogger(path, "multi", run_id=run_id, config=config, strict=True) as log:
        for s in steps:
            out = {"reward": 1.0, "output_text": f"out-{path.stem}-{s}"}
            log.log_rollouts([{"prompt_text": f"p {path.stem} {s}", "trajectories": [out]}], step=s)
            value = (loss or {}).get(s, float(s))
            log.log_metrics({"env/all/reward/total": s / 10, "loss": value}, step=s)
    return path


def build(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["build", *args])
    return result.exit_code, result.stdout, result.stderr


def test_one_run_in_two_files_combines_steps_and_rollouts(tmp_path: Path) -> None:
    a, b = node(tmp_path / "a.db", [0, 1, 2]), node(tmp_path / "b.db", [2, 3, 4])
    out = tmp_path / "site"
    code, stdout, stderr = build("--db", str(a), "--db", str(b), "--out", str(out))
    assert code == 0, stderr
    assert "conflict" not in stderr  # the same loss at step 2 in both files
    pages = list((out / "runs").glob("*.html"))
    assert len(pages) == 1
    data = page_data(pages[0])
    assert data["steps"] == [0, 1, 2, 3, 4]
    step2 = json.dumps(embedded_groups(pages[0], 2))
    assert "p a 2" in step2 and "p b 2" in step2
    assert "p b 4" in json.dumps(embedded_groups(pages[0], 4))
    assert 'id="data-notice"' not in pages[0].read_text("utf-8")


def test_conflict_is_reported_and_the_first_file_kept(tmp_path: Path) -> None:
    a = node(tmp_path / "a.db", [0, 1, 2])
    b = node(tmp_path / "b.db", [2, 3], loss={2: 99.0})
    out = tmp_path / "site"
    code, _, stderr = build("--db", str(a), "--db", str(b), "--out", str(out))
    assert code == 0, stderr
    lines = [line for line in stderr.splitlines() if "conflict" in line]
    assert len(lines) == 1
    assert "'loss'" in lines[0] and "step 2" in lines[0]
    assert "a.db" in lines[0] and "b.db" in lines[0] and "kept the value of a.db" in lines[0]
    page = next((out / "runs").glob("*.html")).read_text("utf-8")
    assert 'id="data-notice"' in page and "kept the value of a.db" in page
    report = SiteBuilder([a, b], tmp_path / "again").build()
    from tviz.store.many import StoreSet

    with StoreSet([a, b]) as stores:
        loss = stores.load_run("job1").metrics["loss"]
    assert dict(zip(loss.steps, loss.values, strict=True))[2] == 2.0
    assert list(report.conflicts) == ["job1"]


def test_two_runs_in_two_files_make_one_index(tmp_path: Path) -> None:
    a = node(tmp_path / "a.db", [0, 1], run_id="run-a")
    b = node(tmp_path / "b.db", [0, 1], run_id="run-b")
    out = tmp_path / "site"
    code, stdout, stderr = build("--db", str(a), "--db", str(b), "--out", str(out))
    assert code == 0, stderr
    assert "wrote 2 run pages" in stdout
    index = (out / "index.html").read_text("utf-8")
    assert "run-a" in index and "run-b" in index
    assert len(list((out / "runs").glob("*.html"))) == 2


def test_a_glob_is_expanded(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    node(runs / "node0.db", [0, 1], run_id="r0")
    node(runs / "node1.db", [0, 1], run_id="r1")
    out = tmp_path / "site"
    code, stdout, stderr = build("--db", str(runs / "node*.db"), "--out", str(out))
    assert code == 0, stderr
    assert "wrote 2 run pages" in stdout
    code, _, stderr = build("--db", str(runs / "nothing*.db"), "--out", str(out))
    assert code == 1 and len(stderr.strip().splitlines()) == 1 and "matches" in stderr


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    a = node(tmp_path / "a.db", [0])
    out = tmp_path / "site"
    code, _, stderr = build("--db", str(tmp_path / "gone.db"), "--db", str(a), "--out", str(out))
    assert code == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [f"Error: no database at {tmp_path / 'gone.db'}"]
    assert not out.exists()


def test_ls_over_two_files_names_the_file(tmp_path: Path) -> None:
    a = node(tmp_path / "a.db", [0, 1], run_id="run-a")
    b = node(tmp_path / "b.db", [0], run_id="run-b")
    node(tmp_path / "c.db", [5], run_id="run-a")
    result = CliRunner().invoke(
        main, ["ls", "--db", str(a), "--db", str(b), "--db", str(tmp_path / "c.db")]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[-1] == "FILE" and len(lines) == 3
    row_a = next(line for line in lines if line.startswith("run-a"))
    assert row_a.endswith("a.db, c.db") and row_a.split()[3] == "3"  # steps 0, 1 and 5
    assert next(line for line in lines if line.startswith("run-b")).endswith("b.db")
