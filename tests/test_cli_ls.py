"""`tviz ls`: a readable table, or one line of error and a non-zero exit."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tviz import TvizLogger
from tviz.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    """The real command, in its own process, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tviz.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_lists_runs_as_a_table(db_path: Path) -> None:
    with TvizLogger(db_path, run_name="grpo-math", strict=True) as logger:
        for step in range(3):
            logger.log_metrics({"env/all/reward/total": 0.1 * (step + 1)}, step=step)
        logger.log_rollouts([{"prompt_text": "p", "trajectories": [{"reward": 1}] * 4}], step=2)
    result = CliRunner().invoke(main, ["ls", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    header, row = result.output.strip().splitlines()
    assert header.split()[:4] == ["ID", "NAME", "STATUS", "STEPS"]
    fields = row.split()
    assert fields[:6] == [logger.run_id, "grpo-math", "finished", "3", "0.3", "0.3"]
    assert fields[6] == "4"


def test_reads_a_legacy_database(legacy_db: Path) -> None:
    result = CliRunner().invoke(main, ["ls", "--db", str(legacy_db)])
    assert result.exit_code == 0 and "legacy-text-1" in result.output


def test_uses_tviz_db_path(db_path: Path) -> None:
    with TvizLogger(db_path, run_name="from-env", strict=True):
        pass
    result = CliRunner().invoke(main, ["ls"], env={"TVIZ_DB_PATH": str(db_path)})
    assert result.exit_code == 0 and "from-env" in result.output


def test_missing_file(tmp_path: Path) -> None:
    _assert_one_line_error(_run("ls", "--db", str(tmp_path / "nope.db")), "no database at")
    assert not (tmp_path / "nope.db").exists()  # and it was not created


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    _assert_one_line_error(_run("ls", "--db", str(tmp_path / "empty.db")), "is empty")


def test_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_bytes(os.urandom(8192))
    _assert_one_line_error(_run("ls", "--db", str(tmp_path / "bad.db")), "not a readable SQLite")


def test_locked_file(db_path: Path) -> None:
    with TvizLogger(db_path, strict=True):
        pass
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        _assert_one_line_error(_run("ls", "--db", str(db_path)), "locked")
    finally:
        holder.execute("COMMIT")
        holder.close()


def test_control_characters_in_names_cannot_forge_rows(db_path: Path) -> None:
    with TvizLogger(db_path, run_name="evil\nfake-row  finished\x1b]0;pwned\x07", strict=True):
        pass
    result = CliRunner().invoke(main, ["ls", "--db", str(db_path)])
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and "\x1b" not in result.output and "\x07" not in result.output
    assert "evil?fake-row" in lines[1]


def test_newer_schema_and_foreign_files(db_path: Path, tmp_path: Path) -> None:
    with TvizLogger(db_path, strict=True):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    _assert_one_line_error(_run("ls", "--db", str(db_path)), "newer tviz")

    foreign = tmp_path / "app.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    _assert_one_line_error(_run("ls", "--db", str(foreign)), "no tviz runs")
