"""The database: DDL, schema version, forward migrations and the one way to connect.

Version 0 is the schema of tviz 0.2.x (four tables, `PRAGMA user_version` never set). Each
later version only adds tables and columns, so the 0.2.x dashboard can still read our files.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tviz import mounts
from tviz.names import LEGACY_COLUMNS
from tviz.notices import warn

SCHEMA_VERSION = 5
BUSY_TIMEOUT_S = 10.0


class SchemaError(Exception):
    """The file is not a tviz database this version can use."""


def default_db_path() -> Path:
    """`$TVIZ_DB_PATH` if set, else `~/.tviz/tviz.db`."""
    env = os.environ.get("TVIZ_DB_PATH")
    return Path(env).expanduser() if env else Path.home() / ".tviz" / "tviz.db"


# The 0.2.x tables, column for column (tviz 0.2.x added the two timing columns later).
LEGACY_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT DEFAULT 'rl',
    modality TEXT DEFAULT 'text',
    config TEXT,
    started_at TEXT DEFAULT CURRENT_TIMESTAMP,
    ended_at TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    reward_mean REAL,
    reward_std REAL,
    loss REAL,
    kl_divergence REAL,
    entropy REAL,
    learning_rate REAL,
    ac_tokens_per_turn REAL,
    ob_tokens_per_turn REAL,
    total_ac_tokens INTEGER,
    total_turns INTEGER,
    sampling_time_mean REAL,
    time_total REAL,
    frac_mixed REAL,
    frac_all_good REAL,
    frac_all_bad REAL,
    extras TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (run_id) REFERENCES runs(id),
    UNIQUE(run_id, step)
);
CREATE TABLE IF NOT EXISTS rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    group_idx INTEGER NOT NULL,
    image_path TEXT,
    gt_lat REAL,
    gt_lon REAL,
    city TEXT,
    country TEXT,
    prompt_text TEXT,
    prompt_tokens TEXT,
    mean_reward REAL,
    best_reward REAL,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (run_id) REFERENCES runs(id)
);
CREATE TABLE IF NOT EXISTS trajectories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id INTEGER NOT NULL,
    trajectory_idx INTEGER NOT NULL,
    reward REAL NOT NULL,
    output_text TEXT,
    output_tokens TEXT,
    logprobs TEXT,
    pred_lat REAL,
    pred_lon REAL,
    distance_km REAL,
    step_rewards TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (rollout_id) REFERENCES rollouts(id)
);
CREATE INDEX IF NOT EXISTS idx_steps_run_id ON steps(run_id);
CREATE INDEX IF NOT EXISTS idx_rollouts_run_id ON rollouts(run_id);
CREATE INDEX IF NOT EXISTS idx_rollouts_step ON rollouts(run_id, step);
CREATE INDEX IF NOT EXISTS idx_trajectories_rollout ON trajectories(rollout_id);
"""

# Columns 0.2.x files may lack: its own late additions, then ours (times are Unix seconds).
_ADDED_COLUMNS = {
    "steps": ["sampling_time_mean REAL", "time_total REAL", "ts REAL"],
    "runs": [
        "status TEXT",
        "started_ts REAL",
        "last_ts REAL",
        "ended_ts REAL",
        "tviz_version TEXT",
    ],
    "rollouts": ["extras TEXT"],
    "trajectories": ["turns TEXT", "extras TEXT"],
}

V1_DDL = """
-- Every metric under the name it was logged with. A finite number or bool is in `value`;
-- NaN and infinities have `value` NULL and `text` 'nan' / 'inf' / '-inf'; anything else
-- is kept as `text`.
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    text TEXT,
    ts REAL,
    PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;
-- Values logged without a step (tinker-cookbook's log_summary): the latest one wins.
CREATE TABLE IF NOT EXISTS summaries (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    text TEXT,
    ts REAL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
-- log_long_text(key, text)
CREATE TABLE IF NOT EXISTS texts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    text TEXT,
    ts REAL
);
CREATE INDEX IF NOT EXISTS idx_texts_run ON texts(run_id);
"""

# Fill the new columns and the metrics table from what 0.2.x wrote (its times are UTC text).
_BACKFILL_V1 = """
UPDATE runs SET
    started_ts = COALESCE(started_ts, CAST(strftime('%s', started_at) AS REAL)),
    ended_ts = COALESCE(ended_ts, CAST(strftime('%s', ended_at) AS REAL)),
    status = COALESCE(status, CASE WHEN ended_at IS NULL THEN 'running' ELSE 'finished' END);
UPDATE steps SET ts = COALESCE(ts, CAST(strftime('%s', created_at) AS REAL));
UPDATE runs SET last_ts = COALESCE(last_ts, max(
    COALESCE((SELECT max(ts) FROM steps WHERE steps.run_id = runs.id), 0),
    COALESCE((SELECT max(CAST(strftime('%s', created_at) AS REAL)) FROM rollouts
              WHERE rollouts.run_id = runs.id), 0),
    COALESCE(ended_ts, 0), COALESCE(started_ts, 0)));
INSERT OR IGNORE INTO metrics (run_id, name, step, value, ts)
    SELECT steps.run_id, j.key, steps.step, j.value, steps.ts
    FROM steps, json_each(steps.extras) AS j
    WHERE steps.extras IS NOT NULL AND json_valid(steps.extras)
      AND j.type IN ('integer', 'real');
INSERT OR IGNORE INTO metrics (run_id, name, step, text, ts)
    SELECT steps.run_id, j.key, steps.step, CAST(j.value AS TEXT), steps.ts
    FROM steps, json_each(steps.extras) AS j
    WHERE steps.extras IS NOT NULL AND json_valid(steps.extras) AND j.type = 'text';
"""


def connect(
    path: str | Path,
    *,
    timeout: float = BUSY_TIMEOUT_S,
    create: bool = True,
    mount_table: str | None = None,
):
    """Open `path` with the pragmas every tviz connection uses, migrated to SCHEMA_VERSION.

    Autocommit mode: callers group writes with explicit BEGIN / COMMIT, and reads that must
    see one moment with BEGIN as well. Raises SchemaError for a file tviz cannot use.
    `mount_table` (text of `/proc/self/mounts`, the default) decides whether the file is on a
    network file system, where WAL is not safe.
    """
    path = Path(path)
    if not create and not path.exists():
        raise SchemaError(f"no database at {path}")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path), timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        _configure(conn, timeout, mounts.network_fs(path.absolute().parent, mount_table), path)
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise SchemaError(describe_error(path, exc)) from None
    except BaseException:
        conn.close()
        raise
    return conn


def describe_error(path: Path, exc: sqlite3.Error) -> str:
    """One line for a person about why `path` could not be used."""
    msg = str(exc)
    if "not a database" in msg or "malformed" in msg:
        return f"{path} is not a readable SQLite database ({msg})"
    if "locked" in msg or "busy" in msg:
        return f"{path} is locked by another process ({msg})"
    if "readonly" in msg or "read-only" in msg:
        return f"{path} is read-only and needs an upgrade to tviz schema {SCHEMA_VERSION}"
    return f"{path}: {msg}"


def _configure(conn: sqlite3.Connection, timeout: float, network: str | None, path: Path) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    fresh = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    if fresh:
        # Must precede the first table; large text rows then take about a third less room.
        conn.execute("PRAGMA page_size = 8192")
    wanted = "delete" if network else "wal"
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode.lower() != wanted:
        try:
            mode = conn.execute(f"PRAGMA journal_mode = {wanted}").fetchone()[0]
        except sqlite3.OperationalError:
            pass  # e.g. a read-only file: it can still be read in its own journal mode
    if network:
        _say_once(
            path,
            f"{path} is on {network}, a network file system, where SQLite's WAL mode is not "
            f"safe: using journal_mode={mode.upper()} (commits cost more; readers on other "
            "machines see them)",
        )
        # A rollback journal needs FULL to survive a crash of the machine that writes.
        conn.execute("PRAGMA synchronous = FULL")
    else:
        # WAL + NORMAL: commits survive a killed process (not a power cut) at a fraction of
        # the cost.
        conn.execute("PRAGMA synchronous = NORMAL")
    # Savepoints and sorts keep their scratch pages in memory, not in temporary files.
    conn.execute("PRAGMA temp_store = MEMORY")


_said: set[str] = set()


def _say_once(path: Path, message: str) -> None:
    key = str(path.absolute())
    if key not in _said:
        _said.add(key)
        warn(message)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def migrate(conn: sqlite3.Connection) -> int:
    """Bring `conn`'s file forward to SCHEMA_VERSION, in one transaction; returns the version.

    Idempotent, and safe when several processes open the same file at once: the version is
    read again under the write lock.
    """
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"database schema {version} was written by a newer tviz "
            f"(this tviz reads up to {SCHEMA_VERSION}): upgrade tviz"
        )
    if version == SCHEMA_VERSION:
        return version
    tables = _tables(conn)
    if tables and "runs" not in tables and not tables <= {"sqlite_sequence"}:
        raise SchemaError("this SQLite file holds other tables and no tviz runs")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)
        if version < 1:
            _to_v1(conn)
        if version < 2:
            _to_v2(conn)
        if version < 3:
            _to_v3(conn)
        if version < 4:
            _to_v4(conn)
        if version < 5:
            _to_v5(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def _to_v1(conn: sqlite3.Connection) -> None:
    _executescript(conn, LEGACY_DDL)
    _add_columns(conn, _ADDED_COLUMNS)
    _executescript(conn, V1_DDL)
    _executescript(conn, _BACKFILL_V1)
    # The 0.2.x columns keep no original name: their metrics take the column's name.
    for column in LEGACY_COLUMNS:
        conn.execute(
            f"INSERT OR IGNORE INTO metrics (run_id, name, step, value, ts) "
            f"SELECT run_id, '{column}', step, {column}, ts FROM steps WHERE {column} IS NOT NULL"
        )


def _to_v2(conn: sqlite3.Connection) -> None:
    # A counter every write transaction of a run bumps: `tviz watch` sees any change by it,
    # even one whose timestamps are not newer than the run's last data.
    _add_columns(conn, {"runs": ["revision INTEGER NOT NULL DEFAULT 0"]})


def _to_v3(conn: sqlite3.Connection) -> None:
    # A run's project and group (seeds of one experiment are drawn together), and eval
    # rollouts kept apart from training ones: NULL for training, else the eval set's name.
    _add_columns(
        conn,
        {"runs": ["project TEXT", "run_group TEXT"], "rollouts": ["eval_name TEXT"]},
    )


V4_DDL = """
-- The processes writing a run now, one row each while it writes (heartbeat_ts: its last
-- transaction, at least every 30 s). A process that resumes a run after its writer ended
-- replaces the rollouts of the steps it logs again; one that joins a live writer of the same
-- rank (another rank, a forked child, a second process) never deletes anything.
CREATE TABLE IF NOT EXISTS writers (
    writer_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    rank INTEGER,
    started_ts REAL,
    heartbeat_ts REAL
);
CREATE INDEX IF NOT EXISTS idx_writers_run ON writers(run_id);
-- When every rank of a distributed job logs into one run (TvizLogger(all_ranks=True)), rank 0's
-- metrics are in `metrics` and `summaries` (the run's series), the other ranks' here: two
-- ranks logging one name at one step never overwrite each other.
CREATE TABLE IF NOT EXISTS rank_metrics (
    run_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    text TEXT,
    ts REAL,
    PRIMARY KEY (run_id, rank, name, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rank_summaries (
    run_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    text TEXT,
    ts REAL,
    PRIMARY KEY (run_id, rank, name)
) WITHOUT ROWID;
"""


def _to_v4(conn: sqlite3.Connection) -> None:
    # Live writers of a run, ranks' metrics kept apart, and the rank that logged each rollout
    # group (NULL: a process that is not one of several ranks).
    _executescript(conn, V4_DDL)
    _add_columns(conn, {"rollouts": ["rank INTEGER"]})


def _to_v5(conn: sqlite3.Connection) -> None:
    # Each rollout group's figures as the writer counted them (JSON: every reward, output
    # length, whether lengths are tokens, its size in a page; tviz/rows.py `_figures`), so a
    # build charts every trajectory without reading one. NULL for groups written before (or
    # by another program): those are counted from their trajectories' rows.
    _add_columns(conn, {"rollouts": ["figures TEXT"]})
    # A run's training groups by step, and its eval groups, each without visiting the other
    # kind: what a rebuild of a long run asks for every time (`Store.rollout_index`).
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_rollouts_training ON rollouts(run_id, step, id)"
        " WHERE eval_name IS NULL"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_rollouts_evals ON rollouts(run_id, eval_name, step)"
        " WHERE eval_name IS NOT NULL"
    )


def _add_columns(conn: sqlite3.Connection, columns: dict[str, list[str]]) -> None:
    """ALTER TABLE ... ADD COLUMN for each column the table does not have yet (idempotent)."""
    for table, wanted in columns.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        for column in wanted:
            if column.split()[0] not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def _executescript(conn: sqlite3.Connection, script: str) -> None:
    # sqlite3's executescript() commits first; run statement by statement inside our txn.
    for statement in script.split(";\n"):
        lines = [ln for ln in statement.splitlines() if not ln.strip().startswith("--")]
        sql = "\n".join(lines).strip()
        if sql:
            conn.execute(sql)
