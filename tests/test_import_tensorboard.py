"""`tviz import` of TensorBoard event folders written by a real writer (tensorboardX)."""

from __future__ import annotations

import math
import sqlite3
import struct
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tviz.cli import main
from tviz.importers import ImportFailed, import_path
from tviz.importers.tensorboard import INSTALL_HINT, import_tensorboard
from tviz.store import Store

pytest.importorskip("tensorboard", reason="the TensorBoard reader: pip install 'tviz[tensorboard]'")
tensorboardX = pytest.importorskip("tensorboardX")


def write_steps(writer, steps: range, *, lr: float = 1e-6) -> None:
    for step in steps:
        writer.add_scalar("train/reward", 0.1 * step, step)
        writer.add_scalar("train/policy_loss", math.nan if step == 2 else 1.0 / (step + 1), step)
        writer.add_scalar("train/lr", lr, step)
    writer.flush()


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """Two runs as TensorBoard shows them: `ppo/` (OpenRLHF's names) and `eval/`."""
    root = tmp_path / "tb"
    with tensorboardX.SummaryWriter(str(root / "ppo")) as ppo:
        write_steps(ppo, range(0, 4))
        ppo.add_text("samples", "Q: 6 x 7?\nA: <b>42</b>", 3)
        ppo.add_histogram("logits", [0.1, 0.5, 0.9], 3)
    with tensorboardX.SummaryWriter(str(root / "eval")) as ev:
        for step in range(0, 4, 2):
            ev.add_scalar("eval/accuracy", 0.5 + 0.1 * step, step)
    return root


def runs_by_name(db: Path) -> dict:
    with Store(db) as store:
        return {r.name: store.load_run(r.id) for r in store.list_runs()}


def series(data, name: str) -> dict[int, float]:
    s = data.metrics[name]
    return dict(zip(s.steps, s.values, strict=True))


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("metrics", "texts")
        }
    finally:
        conn.close()


def test_each_event_folder_is_a_run_with_its_scalars_and_texts(logdir, db_path):
    result = CliRunner().invoke(main, ["import", str(logdir), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert (
        'imported TensorBoard events: 6 steps, 4 metrics, 1 text into 2 runs ("eval", "ppo")'
        in result.output
    )
    assert "warning: " in result.output and "left out 1 histograms value(s)" in result.output

    runs = runs_by_name(db_path)
    assert sorted(runs) == ["eval", "ppo"]
    ppo = runs["ppo"]
    reward = series(ppo, "train/reward")
    assert list(reward) == [0, 1, 2, 3]
    assert reward[3] == pytest.approx(0.3)  # TensorBoard keeps float32
    assert math.isnan(series(ppo, "train/policy_loss")[2])
    assert series(runs["eval"], "eval/accuracy") == pytest.approx({0: 0.5, 2: 0.7})
    (text,) = ppo.long_texts
    assert text.key == "samples (step 3)" and text.text == "Q: 6 x 7?\nA: <b>42</b>"
    assert ppo.summary.started_at is not None and ppo.summary.started_at > 1e9  # wall times


def record_ends(data: bytes) -> list[int]:
    """Where each TFRecord of an event file ends: length (8 bytes), CRC (4), payload, CRC (4)."""
    ends, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        offset += 16 + length
        ends.append(offset)
    return ends


def test_import_again_adds_only_the_new_events(tmp_path, db_path):
    """A run being written: its event file grows record by record between two imports."""
    with tensorboardX.SummaryWriter(str(tmp_path / "written")) as writer:
        write_steps(writer, range(0, 6))
        writer.add_text("samples", "step five", 5)
    (written,) = (tmp_path / "written").glob("events.out.tfevents.*")
    data = written.read_bytes()
    ends = record_ends(data)  # file_version, then one event per scalar: 3 a step, the text
    assert len(ends) == 1 + 3 * 6 + 1

    root = tmp_path / "live"
    (root / "run").mkdir(parents=True)
    live = root / "run" / written.name
    live.write_bytes(data[: ends[3 * 3] + 5])  # steps 0-2, and 5 bytes of the next record
    first = CliRunner().invoke(main, ["import", str(root), "--db", str(db_path)])
    assert first.exit_code == 0, first.output
    assert 'imported TensorBoard events: 3 steps, 3 metrics into run "run"' in first.output
    assert "the rest is not a whole event (still being written, or truncated)" in first.output

    live.write_bytes(data)  # the writer went on
    again = import_tensorboard(root, db_path)
    assert again.runs[0].steps == 3 and again.runs[0].texts == 1 and not again.warnings

    unchanged = counts(db_path)
    assert not import_tensorboard(root, db_path).runs[0].changed
    assert counts(db_path) == unchanged

    # A resumed run: a second event file in the folder rewrites step 5 and goes on.
    with tensorboardX.SummaryWriter(str(root / "run"), filename_suffix=".resumed") as resumed:
        write_steps(resumed, range(5, 7), lr=2e-6)
    assert import_tensorboard(root, db_path).runs[0].steps == 2
    (run,) = runs_by_name(db_path).values()
    assert series(run, "train/lr")[5] == pytest.approx(2e-6)
    assert series(run, "train/reward") == pytest.approx({s: 0.1 * s for s in range(7)})
    assert [t.key for t in run.long_texts] == ["samples (step 5)"]


def test_a_truncated_event_file_keeps_its_whole_events_and_says_so(logdir, db_path):
    (events,) = (logdir / "ppo").glob("events.out.tfevents.*")
    data = events.read_bytes()
    events.write_bytes(data[: len(data) - 30])  # the last record cut short
    result = CliRunner().invoke(main, ["import", str(logdir), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "the rest is not a whole event (still being written, or truncated)" in result.output
    assert "Traceback" not in result.output
    assert list(series(runs_by_name(db_path)["ppo"], "train/reward")) == [0, 1, 2, 3]


@pytest.mark.parametrize("case", ["garbage", "only-header-bytes", "a-single-event-file"])
def test_unreadable_event_files_are_one_line_and_a_nonzero_exit(case, tmp_path, db_path):
    root = tmp_path / "tb"
    root.mkdir()
    target = root
    if case == "garbage":
        (root / "events.out.tfevents.1.host").write_bytes(b"this is not a TFRecord at all\n" * 9)
    elif case == "only-header-bytes":
        (root / "events.out.tfevents.1.host").write_bytes(b"\x18\x00\x00")
    else:
        target = root / "events.out.tfevents.1.host"
        with tensorboardX.SummaryWriter(str(root)) as writer:
            writer.add_scalar("x", 1.0, 0)
        target = next(root.glob("events.out.tfevents.*"))
    result = CliRunner().invoke(main, ["import", str(target), "--db", str(db_path)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    with pytest.raises(ImportFailed):
        import_path(target, db_path)
    assert not db_path.exists()


def test_without_tensorboard_installed_one_line_says_what_to_install(logdir, db_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails
    result = CliRunner().invoke(main, ["import", str(logdir), "--db", str(db_path)])
    assert result.exit_code == 1
    assert result.output == f"Error: {INSTALL_HINT}\n"
