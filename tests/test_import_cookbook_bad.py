"""`tviz import` of cookbook run folders holding what no cookbook writes, but a disk may: JSON
nested thousands deep, chat messages stored as strings, odd `tool_calls` and `traj_idx`,
numbers too large for a double, step times of 1e308, FIFOs and folders named like its files.
Each is read past or skipped and said once per kind of problem, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import fixture_path
from test_cli_ls import _run as cli  # the real command in its own process, bounded in time

from tviz.adapters.cookbook import CookbookImportError, import_cookbook_run, run_id_for
from tviz.cli import main
from tviz.store import Store

DEEP = 5_000
MAX_TIME = 253_402_300_800.0  # the end of year 9999: what a page can show


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "gsm8k-run"
    shutil.copytree(fixture_path("cookbook-run"), dest)
    return dest


def import_ok(run_dir: Path, db: Path) -> list[str]:
    """Import through the real command; its warnings, checked to be one line per kind."""
    result = cli("import", str(run_dir), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(result.stderr.strip().splitlines()), result.stderr
    kinds = [w.split(":")[1] for w in warnings]
    assert len(kinds) == len(set(kinds)), warnings  # one line per kind of problem
    return warnings


def builds(db: Path, out: Path) -> None:
    result = CliRunner().invoke(main, ["build", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)


def summaries_of(run_dir: Path, iteration: int = 1) -> Path:
    return run_dir / f"iteration_{iteration:06d}" / "train_rollout_summaries.jsonl"


def logtree_of(run_dir: Path, iteration: int = 1) -> Path:
    return run_dir / f"iteration_{iteration:06d}" / "train_logtree.json"


def edit_records(run_dir: Path, change: Callable[[list[dict]], None], iteration: int = 1) -> None:
    path = summaries_of(run_dir, iteration)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    change(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def edit_conversations(run_dir: Path, change: Callable[[dict], None]) -> None:
    path = logtree_of(run_dir)
    tree = json.loads(path.read_text())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and data.get("type") == "conversation":
                change(data)
            for child in node.get("children") or ():
                walk(child)

    walk(tree["root"])
    path.write_text(json.dumps(tree))


# -- JSON nested deep -------------------------------------------------------------------------


def test_json_nested_deep_is_a_malformed_line(run_dir, db_path, tmp_path):
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write('{"step": 1, "deep": ' + "[" * DEEP + "]" * DEEP + "}\n")
        f.write('{"step": 2, "deep": ' + "[" * 500 + "]" * 500 + "}\n")  # readable, too deep
    with summaries_of(run_dir).open("a") as f:
        f.write('{"group_idx": 0, "traj_idx": 9, "steps": [], "tags": ' + "[" * DEEP + "]" * DEEP)
        f.write("}\n")
    warnings = import_ok(run_dir, db_path)
    assert warnings == ["warning: skipped 3 malformed JSON line(s)"]
    builds(db_path, tmp_path / "out")


@pytest.mark.parametrize("depth", [DEEP, 500])
def test_a_config_nested_deep_is_left_out(run_dir, db_path, depth):
    (run_dir / "config.json").write_text('{"a":' * depth + "1" + "}" * depth)
    warnings = import_ok(run_dir, db_path)
    assert len(warnings) == 1 and "config.json" in warnings[0]
    with Store(db_path) as store:
        assert store.list_runs()[0].num_steps == 7


@pytest.mark.parametrize("depth", [DEEP, 450])
def test_a_logtree_nested_deep_counts_as_one_bad_file(run_dir, db_path, depth):
    logtree_of(run_dir).write_text(
        '{"root":' + '{"tag": "div", "children": [' * depth + '"x"' + "]}" * depth + "}"
    )
    warnings = import_ok(run_dir, db_path)
    assert warnings == ["warning: skipped 1 malformed JSON line(s)"]
    with Store(db_path) as store:
        data = store.load_run(run_id_for(run_dir))
    assert 1 in {r.step for r in data.rollouts}  # the summaries' groups, without text


# -- chat messages and tool calls of odd shapes -----------------------------------------------


def _messages_as_strings(data: dict) -> None:
    data["messages"] = [
        m["content"] if isinstance(m.get("content"), str) else "[parts]" for m in data["messages"]
    ]


@pytest.mark.parametrize(
    "change",
    [
        _messages_as_strings,
        lambda data: data.update(messages="one string for the whole conversation"),
        lambda data: data.update(messages={"role": "user", "content": "a lone message"}),
        lambda data: data.update(messages=[None, 5, ["x"], {"role": ["odd"], "content": 3}]),
        lambda data: data.update(messages=7),
    ],
    ids=["strings", "one-string", "one-dict", "odd-items", "a-number"],
)
def test_messages_of_odd_shapes_are_read_as_text(run_dir, db_path, tmp_path, change):
    edit_conversations(run_dir, change)
    assert import_ok(run_dir, db_path) == []
    builds(db_path, tmp_path / "out")


def test_messages_stored_as_strings_keep_their_text(run_dir, db_path):
    edit_conversations(run_dir, _messages_as_strings)
    import_ok(run_dir, db_path)
    with Store(db_path) as store:
        data = store.load_run(run_id_for(run_dir))
    prompts = [r.prompt_text for r in data.rollouts if r.step == 1 and r.prompt_text]
    assert prompts and all(isinstance(p, str) and p for p in prompts)


ODD_CALLS = {
    "int": 5,
    "float": 2.5,
    "bool": True,
    "string": "get_weather",
    "one-dict": {"function": {"name": "f", "arguments": "{}"}},
    "null": None,
    "odd-list": [1, None, "x", {"function": 3}, {"function": {"name": ["f"], "arguments": {}}}],
}


@pytest.mark.parametrize("calls", list(ODD_CALLS.values()), ids=list(ODD_CALLS))
def test_tool_calls_of_odd_types(run_dir, db_path, tmp_path, calls):
    def change(data: dict) -> None:
        for message in data["messages"]:
            message["tool_calls"] = calls

    edit_conversations(run_dir, change)
    assert import_ok(run_dir, db_path) == []
    builds(db_path, tmp_path / "out")


# -- traj_idx and group_idx of odd types ------------------------------------------------------


def test_a_group_mixing_null_and_integer_traj_idx(run_dir, db_path):
    def change(records: list[dict]) -> None:
        records[0]["traj_idx"] = None
        records[2]["traj_idx"] = None

    edit_records(run_dir, change)
    assert import_ok(run_dir, db_path) == []
    with Store(db_path) as store:
        data = store.load_run(run_id_for(run_dir))
    (group,) = [r for r in data.rollouts if r.step == 1 and r.group_idx == 0]
    assert len(group.trajectories) == 4
    assert all(isinstance(t.idx, int) for t in group.trajectories)


@pytest.mark.parametrize(
    "value", [True, "3", [1], {"a": 1}, 1e300, 2.5, 10**30], ids=lambda v: type(v).__name__
)
def test_odd_traj_idx_skips_the_record_and_says_so(run_dir, db_path, value):
    edit_records(run_dir, lambda records: records[1].update(traj_idx=value))
    assert import_ok(run_dir, db_path) == ["warning: skipped 1 malformed JSON line(s)"]


@pytest.mark.parametrize("value", [10**30, True, "0", -1.5, None])
def test_odd_group_idx(run_dir, db_path, tmp_path, value):
    def change(records: list[dict]) -> None:
        for record in records:
            record["group_idx"] = value

    edit_records(run_dir, change)
    assert import_ok(run_dir, db_path) == []
    builds(db_path, tmp_path / "out")


# -- huge numbers -----------------------------------------------------------------------------


def test_numbers_too_large_for_a_double_or_a_step(run_dir, db_path, tmp_path):
    def change(records: list[dict]) -> None:
        records[0]["total_reward"] = 10**400
        records[0]["steps"][0]["ob_len"] = 1e308
        records[0]["steps"][0]["ac_len"] = 10**30
        records[1]["steps"][0]["reward"] = -(10**400)
        records[1]["final_reward"] = 10**400
        records[2]["sampling_client_step"] = 10**400

    edit_records(run_dir, change)
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "x": ' + "9" * 400 + ', "y": 1e308, "z": -1e308}\n')
        f.write('{"summary/huge": ' + "9" * 400 + "}\n")
    shutil.copytree(run_dir / "iteration_000001", run_dir / ("iteration_" + "9" * 25))
    warnings = import_ok(run_dir, db_path)
    assert len(warnings) == 1 and "iteration_" + "9" * 25 in warnings[0]
    builds(db_path, tmp_path / "out")
    with Store(db_path) as store:
        data = store.load_run(run_id_for(run_dir))
    (group,) = [r for r in data.rollouts if r.step == 1 and r.group_idx == 0]
    assert group.trajectories[0].reward == float("inf")


@pytest.mark.parametrize("seconds", [1e308, 1e20, 10**400, "NaN"])
def test_a_step_time_of_1e308_leaves_the_run_buildable(run_dir, db_path, tmp_path, seconds):
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row.get("step") in (2, 4):
            row["time/total"] = seconds
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text.replace('"NaN"', "NaN"))
    warnings = import_ok(run_dir, db_path)
    assert warnings == ["warning: ignored time/total values that are no step's duration: 2, 4"]
    with Store(db_path) as store:
        (run,) = store.list_runs()
    for when in (run.started_at, run.ended_at, run.last_data_at):
        assert when is not None and 0 <= when < MAX_TIME
    assert run.duration_s is not None and run.duration_s < 86_400
    builds(db_path, tmp_path / "out")


# -- what is not a regular file ---------------------------------------------------------------

NAMES = {
    "config": "config.json",
    "checkpoints": "checkpoints.jsonl",
    "summaries": "iteration_000001/train_rollout_summaries.jsonl",
    "logtree": "iteration_000001/train_logtree.json",
}


@pytest.mark.parametrize("kind", ["fifo", "folder"])
@pytest.mark.parametrize("name", list(NAMES.values()), ids=list(NAMES))
def test_a_fifo_or_folder_named_like_a_file_is_skipped(run_dir, db_path, tmp_path, name, kind):
    target = run_dir / name
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    warnings = import_ok(run_dir, db_path)
    assert len(warnings) == 1 and "not a regular file" in warnings[0]
    assert Path(name).name in warnings[0]
    builds(db_path, tmp_path / "out")


def test_fifos_everywhere_are_one_line(run_dir, db_path):
    for name in NAMES.values():
        (run_dir / name).unlink()
        os.mkfifo(run_dir / name)
    (logtree := logtree_of(run_dir, 2)).unlink()
    os.mkfifo(logtree)
    warnings = import_ok(run_dir, db_path)
    assert len(warnings) == 1 and "and 2 more" in warnings[0]


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_metrics_jsonl_that_is_not_a_file_is_a_one_line_error(run_dir, db_path, kind):
    target = run_dir / "metrics.jsonl"
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    result = cli("import", str(run_dir), "--db", str(db_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # The library call too, in a thread of its own: a read that blocks fails the test.
    raised: list[BaseException] = []

    def call() -> None:
        try:
            import_cookbook_run(run_dir, db_path)
        except BaseException as exc:  # noqa: BLE001
            raised.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "import_cookbook_run blocked on the FIFO"
    assert len(raised) == 1 and isinstance(raised[0], CookbookImportError)
    assert "not a regular file" in str(raised[0])


def test_an_unreadable_file_is_said_not_raised(run_dir, db_path, monkeypatch):
    """A file the system refuses (here: a summaries file the reader gets EACCES for)."""
    import tviz.adapters.cookbook.files as files

    real = files.read_regular

    def refusing(path: Path) -> bytes:
        if path.name == "train_rollout_summaries.jsonl" and path.parent.name.endswith("2"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(files, "read_regular", refusing)
    result = import_cookbook_run(run_dir, db_path)
    assert result.warnings == [
        "skipped files that could not be read:"
        " iteration_000002/train_rollout_summaries.jsonl (Permission denied)"
    ]
