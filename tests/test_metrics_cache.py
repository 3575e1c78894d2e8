"""Reading a run's metrics again reads what changed only, and always gives what a fresh read
gives: steps appended, a value rewritten, steps forgotten, new names, text values."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tviz import TvizLogger
from tviz.store import Store
from tviz.store.metrics import MetricsCache


def _log(db: Path, steps: range, **extra: float | str) -> None:
    with TvizLogger(db, "m", run_id="m", strict=True) as log:
        for step in steps:
            log.log_metrics({"loss": 1.0 / (step + 1), "lr": 1e-4, **extra}, step=step)


def _read(db: Path, cache: MetricsCache | None, statements: list[str] | None = None):
    with Store(db) as store:
        if statements is not None:
            store.conn.set_trace_callback(statements.append)
        data = store.load_run("m", metrics=cache)
    return data.metrics, data.text_metrics


def _tail_reads(statements: list[str]) -> tuple[int, int]:
    """(names read from a step on, names read whole) by these statements."""
    reads = [s for s in statements if "SELECT step, value, text FROM metrics" in s]
    tails = sum(1 for s in reads if "step >" in s)
    return tails, len(reads) - tails


@pytest.mark.parametrize(
    "change",
    ["append", "rewrite", "forget", "new-name", "text", "nothing", "nan"],
)
def test_a_second_read_equals_a_fresh_read(db_path: Path, change: str) -> None:
    _log(db_path, range(50))
    cache = MetricsCache()
    _read(db_path, cache)
    conn = sqlite3.connect(db_path)
    if change == "append":
        _log(db_path, range(50, 60))
    elif change == "rewrite":  # an old value changed, the row count and last step unchanged
        conn.execute("UPDATE metrics SET value = value + 0.5 WHERE name = 'loss' AND step = 7")
    elif change == "forget":
        conn.execute("DELETE FROM metrics WHERE step >= 45")
    elif change == "new-name":
        _log(db_path, range(50, 52), grad_norm=3.0)
    elif change == "text":
        _log(db_path, range(50, 52), note="hello")
    elif change == "nan":
        _log(db_path, range(50, 52), score=float("nan"))
    conn.commit()
    conn.close()
    statements: list[str] = []
    again = _read(db_path, cache, statements)
    assert again == _read(db_path, None)
    tails, whole = _tail_reads(statements)
    if change == "nothing":
        assert (tails, whole) == (0, 0)
    elif change == "append":
        assert (tails, whole) == (2, 0)  # loss and lr, from step 50 on
    elif change == "rewrite":
        assert whole >= 1  # loss changed under its last step: read whole


def test_a_value_rewritten_inside_the_appended_steps_is_seen(db_path: Path) -> None:
    """A tail that does not add up (an old row changed while new ones came) reads the name
    whole: the values are never a mix of two moments."""
    _log(db_path, range(20))
    cache = MetricsCache()
    _read(db_path, cache)
    _log(db_path, range(20, 25))
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE metrics SET value = 9.0 WHERE name = 'lr' AND step = 3")
    conn.commit()
    conn.close()
    statements: list[str] = []
    assert _read(db_path, cache, statements) == _read(db_path, None)
    assert _read(db_path, None)[0]["lr"].values[3] == 9.0
    assert _tail_reads(statements) == (2, 1)  # both tried from step 20; lr then whole
