"""The SQL that turns one log call into rows; run by the writer inside its transaction.

Besides tviz's own tables this fills the 0.2.x columns (`steps`, the rollout and trajectory
columns, their `extras` JSON), so that the 0.2.x dashboard can still read a new file.

`rank` is the process's rank when every rank of a distributed job logs into one run, else
None. Rank 0 (and None) writes the run's metrics; other ranks write theirs to `rank_metrics`
and `rank_summaries`, so that two ranks never overwrite each other's values (schema.V4_DDL).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from typing import Any

from tviz import __version__
from tviz.names import LEGACY_INDEX, LEGACY_INTEGER_COLUMNS
from tviz.records import ROLLOUT_KEYS, TRAJECTORY_KEYS
from tviz.values import (
    NONFINITE_TEXTS,
    clean_text,
    finite_number,
    json_text,
    jsonable,
    metric_cell,
    nonfinite_text,
    plain_scalar,
)

__all__ = [
    "end_run",
    "figures_json",
    "merge_config",
    "trajectory_chars",
    "upsert_run",
    "write_metrics",
    "write_rollouts",
]

# The rollout keys with a scalar column of their own (numpy scalars are read as Python ones).
_ROLLOUT_FIELDS = ("group_idx", "image_path", "gt_lat", "gt_lon", "city", "country")


def upsert_run(conn: sqlite3.Connection, run: Mapping[str, Any], *, reopen: bool = True) -> None:
    """The run's row; an existing one is reopened (running again: a resume) unless `reopen`
    is False (a rank other than 0, a forked child: they join the run, rank 0 says its status)."""
    reopening = " status = 'running', ended_at = NULL, ended_ts = NULL," if reopen else ""
    conn.execute(
        "INSERT INTO runs (id, name, type, modality, config, started_at, started_ts, last_ts,"
        " status, tviz_version, project, run_group)"
        " VALUES (?, ?, ?, ?, ?, datetime(?, 'unixepoch'), ?, ?, 'running', ?, ?, ?)"
        f" ON CONFLICT(id) DO UPDATE SET{reopening}"
        " last_ts = max(COALESCE(last_ts, 0), excluded.last_ts),"
        " project = COALESCE(excluded.project, project),"
        " run_group = COALESCE(excluded.run_group, run_group)",
        (
            run["id"],
            run["name"],
            run["type"],
            run["modality"],
            run.get("config"),
            run["started_ts"],
            run["started_ts"],
            run["started_ts"],
            __version__,
            run.get("project"),
            run.get("group"),
        ),
    )


def end_run(conn: sqlite3.Connection, run_id: str, status: str, ts: float) -> None:
    conn.execute(
        "UPDATE runs SET ended_at = datetime(?, 'unixepoch'), ended_ts = ?, status = ?"
        " WHERE id = ?",
        (ts, ts, status, run_id),
    )


def merge_config(
    conn: sqlite3.Connection, run_id: str, config: Any, *, keep_old: bool = False
) -> str | None:
    """Merge `config`'s keys over the run's config (under it with `keep_old`: a rank other
    than 0 adds keys, never changes rank 0's). Returns the new config's JSON."""
    data = jsonable(config)
    if not isinstance(data, dict):
        data = {"config": data} if data is not None else {}
    row = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
    old: dict[str, Any] = {}
    if row and row[0]:
        try:
            loaded = json.loads(row[0])
            old = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            pass
    text = json_text({**data, **old} if keep_old else {**old, **data})
    conn.execute("UPDATE runs SET config = ? WHERE id = ?", (text, run_id))
    return text


def write_metrics(
    conn: sqlite3.Connection,
    run_id: str,
    step: Any,
    metrics: dict,
    ts: float,
    rank: int | None = None,
) -> None:
    if step is None:
        if rank:
            conn.executemany(
                "INSERT OR REPLACE INTO rank_summaries (run_id, rank, name, value, text, ts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, rank, str(k), *metric_cell(v), ts) for k, v in metrics.items()],
            )
            return
        conn.executemany(
            "INSERT OR REPLACE INTO summaries (run_id, name, value, text, ts)"
            " VALUES (?, ?, ?, ?, ?)",
            [(run_id, str(k), *metric_cell(v), ts) for k, v in metrics.items()],
        )
        return
    step = int(plain_scalar(step))
    if rank:
        conn.executemany(
            "INSERT OR REPLACE INTO rank_metrics (run_id, rank, name, step, value, text, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(run_id, rank, str(k), step, *metric_cell(v), ts) for k, v in metrics.items()],
        )
        return
    # One pass: the metrics rows, the 0.2.x columns (merged into any row this step
    # already has) and the 0.2.x `extras` JSON for the other names (finite values only:
    # the 0.2.x dashboard parses it).
    rows = []
    legacy: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    extras: dict[str, Any] = {}
    for key, raw in metrics.items():
        key = str(key)
        value, text = metric_cell(raw)
        rows.append((run_id, key, step, value, text, ts))
        hit = LEGACY_INDEX.get(key)
        if hit is None:
            if value is not None:
                extras[key] = value
            elif text is not None and text not in NONFINITE_TEXTS:
                extras[key] = text
            continue
        column, order = hit
        if ranks.get(column, order + 1) > order:
            if value is not None and column in LEGACY_INTEGER_COLUMNS:
                value = int(value)
            legacy[column] = value
            ranks[column] = order
    conn.executemany(
        "INSERT OR REPLACE INTO metrics (run_id, name, step, value, text, ts)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    columns = list(legacy)
    names = ", ".join(["run_id", "step", "ts", "extras", *columns])
    marks = ", ".join("?" * (4 + len(columns)))
    updates = "".join(f", {c} = COALESCE(excluded.{c}, {c})" for c in columns)
    conn.execute(
        f"INSERT INTO steps ({names}) VALUES ({marks}) ON CONFLICT(run_id, step) DO UPDATE"
        f" SET ts = excluded.ts, extras = CASE WHEN extras IS NULL OR NOT json_valid(extras)"
        f" THEN excluded.extras WHEN excluded.extras IS NULL THEN extras"
        f" ELSE json_patch(extras, excluded.extras) END{updates}",
        (run_id, step, ts, json_text(extras) if extras else None, *legacy.values()),
    )


def write_rollouts(
    conn: sqlite3.Connection,
    run_id: str,
    step: int,
    rollouts: list,
    rank: int | None = None,
    replace_below: int | None = None,
) -> None:
    """Insert a step's groups. With `replace_below`, this rank's groups of the step with ids up
    to it (logged by an earlier session of the run) are deleted first."""
    if replace_below is not None:
        old = (
            "SELECT id FROM rollouts WHERE run_id = ? AND step = ? AND id <= ?"
            " AND COALESCE(rank, 0) = ?"
        )
        args = (run_id, step, replace_below, rank or 0)
        conn.execute(f"DELETE FROM trajectories WHERE rollout_id IN ({old})", args)
        conn.execute(f"DELETE FROM rollouts WHERE id IN ({old})", args)
    for group_idx, rollout in enumerate(rollouts):
        trajectories = rollout["trajectories"]
        rewards = [_reward(t) for t in trajectories]
        finite = [r for r in rewards if math.isfinite(r)]
        extras = {k: jsonable(v) for k, v in rollout.items() if k not in ROLLOUT_KEYS}
        rows, tokens = [], []
        for idx, (traj, reward) in enumerate(zip(trajectories, rewards, strict=True)):
            row, n_tokens = _trajectory_row(idx, traj, reward)
            rows.append(row)
            tokens.append(n_tokens)
        fields = {k: plain_scalar(rollout.get(k)) for k in _ROLLOUT_FIELDS}
        if fields["group_idx"] is None:
            fields["group_idx"] = group_idx
        cursor = conn.execute(
            "INSERT INTO rollouts (run_id, step, group_idx, image_path, gt_lat, gt_lon, city,"
            " country, prompt_text, prompt_tokens, mean_reward, best_reward, extras, eval_name,"
            " rank, figures) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                step,
                int(fields["group_idx"]),
                clean_text(fields["image_path"]),
                finite_number(fields["gt_lat"]),
                finite_number(fields["gt_lon"]),
                clean_text(fields["city"]),
                clean_text(fields["country"]),
                clean_text(rollout.get("prompt_text")),
                _list_field(rollout, "prompt_tokens", extras),
                sum(finite) / len(finite) if finite else None,
                max(finite) if finite else None,
                json_text(extras) if extras else None,
                clean_text(plain_scalar(rollout.get("eval_name"))) or None,
                rank,
                _figures(rollout, tokens, rewards, rows),
            ),
        )
        rollout_id = cursor.lastrowid
        conn.executemany(
            "INSERT INTO trajectories (rollout_id, trajectory_idx, reward, output_text,"
            " output_tokens, logprobs, pred_lat, pred_lon, distance_km, step_rewards, turns,"
            " extras) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(rollout_id, *row) for row in rows],
        )


def _figures(rollout: Mapping[str, Any], tokens: list[int], rewards: list, rows: list) -> str:
    """The group's figures (`rollouts.figures`, schema v5) as a reader would count them from
    its rows, in the order it reads the trajectories (by index, then as written): each reward
    (null: not finite), each output length (tokens where a token list or logprobs are logged,
    else characters), whether any length is in tokens, and about the characters its JSON takes
    in a page. A page's charts then count every trajectory without reading one."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], i))
    lengths: list[int] = []
    for i in order:
        lengths.append(tokens[i] or len(rows[i][2] or ""))
    chars = 40 + len(clean_text(rollout.get("prompt_text")) or "")
    for row in rows:  # text, logprobs, step rewards, turns, extras
        chars += trajectory_chars(row[2], row[4], row[8], row[9], row[10])
    return figures_json([rewards[i] for i in order], lengths, any(tokens), chars)


def trajectory_chars(text: str | None, logprobs: str | None, *others: str | None) -> int:
    """About the characters a trajectory takes in a page's JSON, from its text, its logprobs'
    JSON (rounded in a page: about 0.6 of it) and its other JSON columns."""
    size = 40 + len(text or "") + len(logprobs or "") * 3 // 5
    return size + sum(len(other or "") for other in others)


def figures_json(rewards: list[float], lengths: list[int], tokens: bool, chars: int) -> str:
    """`rollouts.figures` of a group: its trajectories' rewards and output lengths in reading
    order, whether lengths are tokens, and about the characters the group takes in a page."""
    finite = [r if math.isfinite(r) else None for r in rewards]
    figures = {"r": finite, "n": lengths, "t": tokens, "c": chars}
    return json.dumps(figures, separators=(",", ":"))


def _reward(traj: Mapping[str, Any]) -> float:
    value = plain_scalar(traj.get("reward"))
    if value is None:
        return 0.0  # 0.2.x default; the column is NOT NULL
    return float(value)


def _trajectory_row(idx: int, traj: dict, reward: float) -> tuple[tuple, int]:
    """A trajectories row but its rollout_id (not known until the group's row is written), and
    its output's tokens as a reader counts them: its token list's items, else its logprobs'."""
    extras = {k: jsonable(v) for k, v in traj.items() if k not in TRAJECTORY_KEYS}
    if not math.isfinite(reward):
        # The 0.2.x column is NOT NULL and NaN would bind as NULL: keep the truth in extras.
        extras["reward"] = nonfinite_text(reward)
        reward = 0.0 if math.isnan(reward) else reward
    index = plain_scalar(traj.get("trajectory_idx"))
    tokens, logprobs = _as_list(traj.get("output_tokens")), _as_list(traj.get("logprobs"))
    counted = (len(v) for v in (tokens, logprobs) if isinstance(v, (list, tuple)) and v)
    row = (
        int(index) if index is not None else idx,
        reward,
        clean_text(traj.get("output_text")),
        _list_column(tokens, "output_tokens", extras),
        _list_column(logprobs, "logprobs", extras),
        finite_number(traj.get("pred_lat")),
        finite_number(traj.get("pred_lon")),
        finite_number(traj.get("distance_km")),
        _list_field(traj, "step_rewards", extras),
        _list_field(traj, "turns", extras),
        json_text(extras) if extras else None,
    )
    return row, next(counted, 0)


def _list_field(fields: Mapping[str, Any], key: str, extras: dict[str, Any]) -> str | None:
    """A list column's JSON; a value that is no list goes to `extras` (readers expect lists).

    As in 0.2.x, an empty or missing list is stored as NULL.
    """
    return _list_column(_as_list(fields.get(key)), key, extras)


def _as_list(value: Any) -> Any:
    """A numpy array or tensor as a list (read once); anything else as it is."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _list_column(value: Any, key: str, extras: dict[str, Any]) -> str | None:
    """`_list_field` of a value already read (`_as_list`)."""
    if value is None or isinstance(value, (list, tuple)):
        return json_text(value) if value else None
    extras[key] = jsonable(value)
    return None


def forget_steps(
    conn: sqlite3.Connection, run_id: str, metric_steps: list[int], rollout_steps: list[int]
) -> None:
    """Delete the run's metric values at `metric_steps` (and the steps' 0.2.x rows) and every
    rollout group (training and eval) at `rollout_steps`: what an importer writes again."""
    for step in metric_steps:
        conn.execute("DELETE FROM metrics WHERE run_id = ? AND step = ?", (run_id, step))
        conn.execute("DELETE FROM steps WHERE run_id = ? AND step = ?", (run_id, step))
    groups = "SELECT id FROM rollouts WHERE run_id = ? AND step = ?"
    for step in rollout_steps:
        conn.execute(f"DELETE FROM trajectories WHERE rollout_id IN ({groups})", (run_id, step))
        conn.execute("DELETE FROM rollouts WHERE run_id = ? AND step = ?", (run_id, step))
