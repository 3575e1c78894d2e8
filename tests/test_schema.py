"""The database contract: 0.2.x tables kept, versioned forward migrations, clear refusals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tviz import TvizLogger, schema
from tviz.render import SiteBuilder
from tviz.store import Store, StoreError

LEGACY_TABLES = {
    "runs": ["id", "name", "type", "modality", "config", "started_at", "ended_at"],
    "steps": [
        "id",
        "run_id",
        "step",
        "reward_mean",
        "reward_std",
        "loss",
        "kl_divergence",
        "entropy",
        "learning_rate",
        "ac_tokens_per_turn",
        "ob_tokens_per_turn",
        "total_ac_tokens",
        "total_turns",
        "sampling_time_mean",
        "time_total",
        "frac_mixed",
        "frac_all_good",
        "frac_all_bad",
        "extras",
        "created_at",
    ],
    "rollouts": [
        "id",
        "run_id",
        "step",
        "group_idx",
        "image_path",
        "gt_lat",
        "gt_lon",
        "city",
        "country",
        "prompt_text",
        "prompt_tokens",
        "mean_reward",
        "best_reward",
        "created_at",
    ],
    "trajectories": [
        "id",
        "rollout_id",
        "trajectory_idx",
        "reward",
        "output_text",
        "output_tokens",
        "logprobs",
        "pred_lat",
        "pred_lon",
        "distance_km",
        "step_rewards",
        "created_at",
    ],
}


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _dump(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1").fetchall()
            for table, cols in LEGACY_TABLES.items()
        }
    finally:
        conn.close()


def test_new_database_has_legacy_tables_first_and_current_version(db_path: Path) -> None:
    conn = schema.connect(db_path)
    for table, columns in LEGACY_TABLES.items():
        # The 0.2.x dashboard selects these by name: they must all be there, in order.
        assert _columns(conn, table)[: len(columns)] == columns
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_legacy_database_upgrades_in_place_without_losing_a_row(legacy_db: Path) -> None:
    before = _dump(legacy_db)
    assert sum(len(rows) for rows in before.values()) > 200  # 1 run, 12 steps, 48 + 192

    schema.connect(legacy_db).close()

    assert _dump(legacy_db) == before
    conn = sqlite3.connect(legacy_db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    # Legacy columns and extras became named metrics, one per (step, name).
    names = {r[0] for r in conn.execute("SELECT DISTINCT name FROM metrics")}
    assert {"reward_mean", "kl_divergence", "frac_mixed", "custom/score"} <= names
    assert (
        conn.execute("SELECT count(*) FROM metrics WHERE name = 'reward_mean'").fetchone()[0] == 12
    )
    status, started, last = conn.execute("SELECT status, started_ts, last_ts FROM runs").fetchone()
    assert status == "finished" and started is not None and last >= started


def test_migration_is_idempotent(legacy_db: Path) -> None:
    schema.connect(legacy_db).close()
    first = sqlite3.connect(legacy_db).execute("SELECT count(*) FROM metrics").fetchone()[0]
    schema.connect(legacy_db).close()
    schema.migrate(schema.connect(legacy_db))
    again = sqlite3.connect(legacy_db).execute("SELECT count(*) FROM metrics").fetchone()[0]
    assert first == again > 0


def test_legacy_database_is_read_through_the_store(legacy_db: Path) -> None:
    with Store(legacy_db) as store:
        (run,) = store.list_runs()
        data = store.load_run(run.id)
    assert (run.name, run.status, run.num_steps, run.last_step) == (
        "legacy-text-1",
        "finished",
        12,
        11,
    )
    assert run.num_trajectories == 192 and run.model == "meta-llama/Llama-3.2-1B"
    assert data.reward_series() is not None and len(data.reward_series().values) == 12
    assert len(data.rollouts) == 48 and all(len(r.trajectories) == 4 for r in data.rollouts)
    assert data.config["env_type"] == "gsm8k"


def test_read_only_store_reads_a_legacy_file_without_changing_it(legacy_db: Path) -> None:
    original = legacy_db.read_bytes()
    with Store(legacy_db, read_only=True) as store:
        (run,) = store.list_runs()
        assert run.num_trajectories == 192
        assert len(store.load_run(run.id).metrics["reward_mean"].values) == 12
    assert legacy_db.read_bytes() == original


def test_newer_schema_is_refused_with_a_clear_error(db_path: Path) -> None:
    schema.connect(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(schema.SchemaError, match="newer tviz"):
        schema.connect(db_path)
    with pytest.raises(StoreError, match="newer tviz"):
        Store(db_path)


def test_garbage_and_foreign_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(schema.SchemaError, match="not a readable SQLite database"):
        schema.connect(garbage)

    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(schema.SchemaError, match="no tviz runs"):
        schema.connect(foreign)
    # ... and nothing of ours was added to someone else's database.
    tables = {r[0] for r in sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}


def test_default_path_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TVIZ_DB_PATH", str(tmp_path / "x.db"))
    assert schema.default_db_path() == tmp_path / "x.db"
    monkeypatch.delenv("TVIZ_DB_PATH")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert schema.default_db_path() == tmp_path / ".tviz" / "tviz.db"


def test_steps_a_0_2_logger_writes_after_the_upgrade_are_still_read(legacy_db: Path) -> None:
    schema.connect(legacy_db).close()
    conn = sqlite3.connect(legacy_db)
    conn.execute(  # what tviz 0.2.x's log_metrics writes
        "INSERT INTO steps (run_id, step, reward_mean, kl_divergence, extras)"
        ' VALUES (\'abc73a7b\', 12, 0.95, 0.002, \'{"custom/score": 0.7, "note": "late"}\')'
    )
    conn.commit()
    with Store(legacy_db) as store:
        data = store.load_run("abc73a7b")
    assert data.metrics["reward_mean"].steps == list(range(13))
    assert data.metrics["reward_mean"].values[-1] == 0.95
    assert data.metrics["custom/score"].values[-1] == 0.7
    assert data.text_metrics["note"] == [(12, "late")]


def test_v2_file_gains_project_group_and_eval_columns_keeping_its_rows(db_path: Path) -> None:
    with TvizLogger(db_path=db_path, run_name="old", run_id="r2", strict=True) as logger:
        logger.log_rollouts([{"prompt_text": "q", "trajectories": [{"reward": 1.0}]}], step=0)
    conn = sqlite3.connect(db_path)  # make it a v2 file, as tviz 0.3.0 wrote it
    conn.execute("ALTER TABLE runs DROP COLUMN project")
    conn.execute("ALTER TABLE runs DROP COLUMN run_group")
    conn.execute("DROP INDEX idx_rollouts_training")  # schema 5's
    conn.execute("DROP INDEX idx_rollouts_evals")
    conn.execute("ALTER TABLE rollouts DROP COLUMN eval_name")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()

    with TvizLogger(db_path=db_path, run_id="r3", project="p", group="seeds", strict=True) as lg:
        lg.log_rollouts(
            [
                {"prompt_text": "train q", "trajectories": [{"reward": 0.0}]},
                {"prompt_text": "eval q", "eval_name": "test", "trajectories": [{"reward": 1.0}]},
            ],
            step=0,
        )
    conn = schema.connect(db_path)
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION
    runs = conn.execute("SELECT id, project, run_group FROM runs ORDER BY id").fetchall()
    assert runs == [("r2", None, None), ("r3", "p", "seeds")]
    rollouts = conn.execute(
        "SELECT run_id, prompt_text, eval_name FROM rollouts ORDER BY id"
    ).fetchall()
    assert rollouts == [("r2", "q", None), ("r3", "train q", None), ("r3", "eval q", "test")]
    # eval_name is a column, not an extra: nothing of it is left in extras.
    assert (
        conn.execute("SELECT count(*) FROM rollouts WHERE extras LIKE '%eval%'").fetchone()[0] == 0
    )
    conn.close()


def test_resuming_a_run_without_project_keeps_the_one_it_had(db_path: Path) -> None:
    TvizLogger(db_path=db_path, run_id="r", project="p", group="g", strict=True).close()
    TvizLogger(db_path=db_path, run_id="r", strict=True).close()
    conn = schema.connect(db_path)
    assert conn.execute("SELECT project, run_group FROM runs").fetchone() == ("p", "g")
    conn.close()


def test_v4_file_gains_group_figures_and_builds_as_before(db_path: Path, tmp_path: Path) -> None:
    """A file written before schema 5 has no stored figures: it gains the column (empty), and
    its groups are counted from their rows, to the same page a v5 file of the same rows gives.
    """
    with TvizLogger(db_path=db_path, run_name="old", run_id="r4", strict=True) as logger:
        for step in range(3):
            trajectories = [
                {"reward": float(i % 2), "output_text": "x" * i, "logprobs": [-0.5] * i}
                for i in range(1, 5)
            ]
            logger.log_rollouts([{"prompt_text": "q", "trajectories": trajectories}], step=step)
    new = SiteBuilder(db_path, tmp_path / "v5").build().written[0].read_bytes()
    conn = sqlite3.connect(db_path)
    conn.execute("DROP INDEX idx_rollouts_training")  # schema 5's
    conn.execute("DROP INDEX idx_rollouts_evals")
    conn.execute("ALTER TABLE rollouts DROP COLUMN figures")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    before = _dump(db_path)
    old = SiteBuilder(db_path, tmp_path / "v4").build().written[0].read_bytes()
    conn = schema.connect(db_path)
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION
    assert _dump(db_path) == before
    assert conn.execute("SELECT count(*) FROM rollouts WHERE figures IS NULL").fetchone() == (3,)
    conn.close()
    assert old == new


def _as_v3(db_path: Path) -> None:
    """Make a file as tviz 0.3 wrote it (schema 3): without the v4 tables and column."""
    conn = sqlite3.connect(db_path)
    for table in ("writers", "rank_metrics", "rank_summaries"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DROP INDEX idx_rollouts_training")  # schema 5's
    conn.execute("DROP INDEX idx_rollouts_evals")
    conn.execute("ALTER TABLE rollouts DROP COLUMN figures")
    conn.execute("ALTER TABLE rollouts DROP COLUMN rank")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()


def test_v3_file_gains_writers_and_rank_tables_keeping_its_rows(db_path: Path) -> None:
    with TvizLogger(db_path=db_path, run_name="old", run_id="r3", strict=True) as logger:
        logger.log_metrics({"loss": 1.0}, step=0)
        logger.log_rollouts([{"prompt_text": "q", "trajectories": [{"reward": 1.0}]}], step=0)
    _as_v3(db_path)
    before = _dump(db_path)

    conn = schema.connect(db_path)
    assert schema.schema_version(conn) == schema.SCHEMA_VERSION
    assert _dump(db_path) == before  # every 0.2.x table and row as it was
    assert _columns(conn, "rollouts")[-2:] == ["rank", "figures"]
    assert conn.execute("SELECT rank FROM rollouts").fetchall() == [(None,)]
    for table in ("writers", "rank_metrics", "rank_summaries"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    assert conn.execute("SELECT value FROM metrics WHERE run_id = 'r3'").fetchall() == [(1.0,)]
    conn.close()
    schema.migrate(schema.connect(db_path))  # idempotent
    # The upgraded file is written to as any other: resuming the run replaces step 0's group.
    with TvizLogger(db_path=db_path, run_id="r3", strict=True) as again:
        again.log_rollouts([{"prompt_text": "q2", "trajectories": [{"reward": 0.5}]}], step=0)
    rows = sqlite3.connect(db_path).execute("SELECT prompt_text, rank FROM rollouts").fetchall()
    assert rows == [("q2", None)]


def test_a_failed_v4_migration_changes_nothing(db_path: Path) -> None:
    TvizLogger(db_path=db_path, run_id="r", strict=True).close()
    _as_v3(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE VIEW writers AS SELECT id AS run_id FROM runs")  # in v4's way
    conn.commit()
    conn.close()
    with pytest.raises(schema.SchemaError):
        schema.connect(db_path)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert "rank" not in _columns(conn, "rollouts")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "rank_metrics" not in tables
    conn.close()
