"""The queries behind `Store`: runs, metric series, summaries and rollouts, each read from a
connection the caller holds inside one transaction.
"""

from __future__ import annotations

import sqlite3

from tviz.store.cells import _CELL, _NUMBER, _cell, _count, _json, _json_dict, _number, _text, _time
from tviz.store.data import _NONFINITE, Rollout, RunSummary, Trajectory


def _summaries(
    conn: sqlite3.Connection, key: str | bytes | None
) -> tuple[list[RunSummary], dict[str, bytes]]:
    """The runs (all, or the one whose id is `key`), and the stored bytes of ids that are not
    UTF-8."""
    where = "AND runs.id = CAST(? AS TEXT)" if key is not None else ""
    params = (key,) if key is not None else ()
    # Text sorts above numbers: a range keeps it out of max(step) and keeps the index's
    # shortcut for max(), which a typeof() test would lose.
    below = "step <= 9223372036854775807"
    reward = _NUMBER.format("reward_mean")
    tokens = f"CASE WHEN {_NUMBER.format('total_ac_tokens')} THEN total_ac_tokens END"
    rows = conn.execute(
        f"""
        SELECT CAST(runs.id AS TEXT), CAST(runs.name AS TEXT), CAST(runs.type AS TEXT),
               CAST(runs.modality AS TEXT), CAST(runs.status AS TEXT), runs.started_ts,
               runs.ended_ts, runs.last_ts, CAST(runs.config AS TEXT),
               CAST(runs.tviz_version AS TEXT),
               (SELECT count(*) FROM (SELECT DISTINCT step FROM metrics WHERE run_id = runs.id
                 UNION SELECT step FROM steps WHERE run_id = runs.id
                 UNION SELECT DISTINCT step FROM rollouts WHERE run_id = runs.id
                 AND eval_name IS NULL)
                 WHERE typeof(step) = 'integer'),
               (SELECT max(s) FROM (SELECT max(step) AS s FROM metrics WHERE run_id = runs.id
                 AND {below} UNION ALL SELECT max(step) FROM steps WHERE run_id = runs.id
                 AND {below} UNION ALL SELECT max(step) FROM rollouts WHERE run_id = runs.id
                 AND {below} AND eval_name IS NULL)),
               (SELECT reward_mean FROM steps WHERE run_id = runs.id
                 AND {reward} ORDER BY step DESC LIMIT 1),
               (SELECT max(CASE WHEN {reward} THEN reward_mean END) FROM steps
                 WHERE run_id = runs.id),
               (SELECT count(*) FROM rollouts WHERE run_id = runs.id AND eval_name IS NULL),
               (SELECT count(*) FROM trajectories JOIN rollouts ON rollouts.id = rollout_id
                 WHERE rollouts.run_id = runs.id AND rollouts.eval_name IS NULL),
               (SELECT total({tokens}) FROM steps WHERE run_id = runs.id),
               CAST(runs.id AS BLOB), CAST(runs.project AS TEXT), CAST(runs.run_group AS TEXT)
        FROM runs WHERE runs.id IS NOT NULL {where}
        ORDER BY COALESCE(runs.started_ts, 0) DESC, runs.id
        """,
        params,
    ).fetchall()
    out = []
    raw_ids: dict[str, bytes] = {}
    for row in rows:
        run_id = row[0]
        if "\ufffd" in run_id:
            raw_ids[run_id] = row[17]
        config = _json_dict(row[8])
        model = config.get("model_name") or config.get("base_model") or config.get("model")
        out.append(
            RunSummary(
                id=run_id,
                name=row[1] if row[1] is not None else "",
                type=row[2] or "rl",
                modality=row[3] or "text",
                status=row[4] or ("finished" if _time(row[6]) else "running"),
                started_at=_time(row[5]),
                ended_at=_time(row[6]),
                last_data_at=_time(row[7]),
                num_steps=row[10] or 0,
                last_step=row[11] if isinstance(row[11], int) else None,
                latest_reward=_number(row[12]),
                best_reward=_number(row[13]),
                num_rollouts=row[14],
                num_trajectories=row[15],
                num_tokens=_count(row[16]),
                model=_text(model) if model is not None else None,
                tviz_version=row[9],
                project=row[18],
                group=row[19],
            )
        )
    return out, raw_ids


def _summary_values(conn: sqlite3.Connection, key: str | bytes) -> dict[str, float | str | None]:
    rows = conn.execute(
        f"SELECT CAST(name AS TEXT), {_CELL} FROM summaries WHERE run_id = CAST(? AS TEXT)"
        " ORDER BY name",
        (key,),
    )
    return {name: _cell(value, text) for name, value, text in rows}


def _left_out(conn: sqlite3.Connection, key: str | bytes, metric_values: int) -> list[str]:
    """A sentence on the rows of the run that no page can place: those whose step is not a
    whole number (another program wrote them); `metric_values` of them were metrics."""
    rows, groups = conn.execute(  # index-only scans: a millisecond for 20,000 groups
        "SELECT (SELECT count(*) FROM steps WHERE run_id = CAST(?1 AS TEXT)"
        "        AND typeof(step) != 'integer'),"
        "       (SELECT count(*) FROM rollouts WHERE run_id = CAST(?1 AS TEXT)"
        "        AND typeof(step) != 'integer')",
        (key,),
    ).fetchone()
    counts = zip(
        (metric_values, rows, groups), ("metric values", "step rows", "rollout groups"), strict=True
    )
    what = [f"{n:,} {noun}" for n, noun in counts if n]
    if not what:
        return []
    return [
        f"Left out of this page: {', '.join(what)} whose step is not a whole number"
        " (the database holds them as another program wrote them)."
    ]


def _rollouts(
    conn: sqlite3.Connection,
    key: str | bytes,
    steps: list[int] | None = None,
    evals: bool = False,
    ids: list[int] | None = None,
) -> list[Rollout]:
    """The training groups (of `steps`, None: all; or those with these rollout `ids`), or with
    `evals` every eval group."""
    kind = " AND r.eval_name IS NOT NULL" if evals else " AND r.eval_name IS NULL"
    step_filter, params = kind + " AND typeof(r.step) = 'integer'", [key]
    if steps is not None or ids is not None:
        wanted = steps if ids is None else ids
        if not wanted:
            return []
        column = "r.step" if ids is None else "r.id"
        step_filter = f"{kind} AND {column} IN ({', '.join('?' * len(wanted))})"
        params += wanted
    # By ids, the rows are found by their ids: `+` keeps SQLite from reading every group of
    # the run through the run's index instead.
    run = "r.run_id" if ids is None else "+r.run_id"
    trajectories: dict[int, list[Trajectory]] = {}
    rows = conn.execute(
        f"""
        SELECT t.rollout_id, t.trajectory_idx, t.reward, t.output_text, t.output_tokens,
               t.logprobs, t.step_rewards, t.turns, t.pred_lat, t.pred_lon, t.distance_km,
               t.extras
        FROM trajectories t JOIN rollouts r ON r.id = t.rollout_id
        WHERE {run} = CAST(? AS TEXT){step_filter}
        ORDER BY t.rollout_id, t.trajectory_idx, t.id
        """,
        params,
    )
    for row in rows:
        extras = _json_dict(row[11], "extras")
        reward = row[2]
        true_reward = extras.pop("reward", None)
        if true_reward in _NONFINITE:
            reward = _NONFINITE[true_reward]
        trajectories.setdefault(row[0], []).append(
            Trajectory(
                idx=row[1],
                reward=reward,
                output_text=row[3],
                output_tokens=_json(row[4]),
                logprobs=_json(row[5]),
                step_rewards=_json(row[6]),
                turns=_json(row[7]),
                pred_lat=row[8],
                pred_lon=row[9],
                distance_km=row[10],
                extras=extras,
            )
        )
    rows = conn.execute(
        f"""
        SELECT id, step, group_idx, prompt_text, mean_reward, best_reward, image_path,
               gt_lat, gt_lon, city, country, prompt_tokens, extras, CAST(eval_name AS TEXT)
        FROM rollouts r WHERE {run} = CAST(? AS TEXT){step_filter}
        ORDER BY {"eval_name, " if evals else ""}step, group_idx, id
        """,
        params,
    )
    return [
        Rollout(
            id=row[0],
            step=row[1],
            group_idx=row[2],
            prompt_text=row[3],
            trajectories=trajectories.get(row[0], []),
            mean_reward=row[4],
            best_reward=row[5],
            image_path=row[6],
            gt_lat=row[7],
            gt_lon=row[8],
            city=row[9],
            country=row[10],
            prompt_tokens=_json(row[11]),
            extras=_json_dict(row[12], "extras"),
            eval_name=row[13],
        )
        for row in rows
    ]
