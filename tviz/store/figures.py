"""A step's rollout groups as figures, without their texts: what a page decides by.

A run of a million trajectories keeps a few thousand groups in its page, but its charts
(reward best / mean / worst, output length, the reward distribution, the group signal) count
every trajectory. So the build reads each step twice, differently: first every group's
figures (rewards, output lengths, whether it has a true location, an estimate of its size),
then the whole rows of the groups the page keeps (`groups`). Both are functions of a
connection the caller holds inside one snapshot (`Store.snapshot()`).

The writer stores each group's figures with it (`rollouts.figures`, schema 5), so the first
pass reads no trajectory at all. Groups written before, or by another program, are counted
from their rows in SQL that hands no text or token list to Python: SQLite's JSON functions
count a list's items; what they cannot read (NaN in a 0.2.x list, a blob) is read as
`Store.load_run` reads it, so the figures are the same as the whole rows give.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tviz.store.cells import _json, _json_dict
from tviz.store.data import _NONFINITE, Rollout
from tviz.store.prompts import prompt_key
from tviz.store.queries import _rollouts
from tviz.values import finite_number


@dataclass(frozen=True)
class GroupFigures:
    """One group's figures: enough to rank it, chart it and estimate its cost in a page."""

    key: Any  # what `groups` takes back: the rollout's id (a StoreSet adds the file's place)
    rewards: list[float]  # each trajectory's reward, in trajectory order (NaN / inf as logged)
    lengths: list[int]  # each trajectory's output length: tokens where counted, else characters
    tokens: bool  # some length above is a token count
    geo: bool  # the group has a true location (the page draws a map)
    size: int  # about the characters of its JSON in a page, before compression
    prompt: str | None = None  # its prompt's key (`prompts.prompt_key`), if it has a prompt
    mean: float | None = None  # its mean reward as stored (else its rows'), if finite


def _count(column: str) -> str:
    """SQL: the items of the JSON array in `column` (0: none, or no array; -1: ask Python)."""
    return (
        f"CASE WHEN {column} IS NULL THEN 0"
        f" WHEN json_valid({column}) THEN json_array_length({column}) ELSE -1 END"
    )


# Each trajectory's output length in tokens: its token list's items, else its logprobs' (each
# counted once: NULLIF/COALESCE evaluate an argument once); -1 where SQLite's JSON cannot tell
# (NaN in a 0.2.x list, a blob): Python reads those two columns as `load_run` does.
# Logprobs in a page are rounded to 3 decimals: about 0.6 of their stored JSON.
_FROM_ROWS = f"""
SELECT r.id, r.gt_lat, r.gt_lon, t.rollout_id, t.reward,
       CASE WHEN instr(t.extras, '"reward"') > 0 THEN t.extras END,
       COALESCE(NULLIF({_count("t.output_tokens")}, 0), {_count("t.logprobs")}), t.id,
       CASE typeof(t.output_text) WHEN 'text' THEN length(t.output_text) WHEN 'null' THEN 0 END,
       CASE WHEN typeof(t.output_text) NOT IN ('text', 'null') THEN t.output_text END,
       COALESCE(length(r.prompt_text), 0) + COALESCE(length(r.extras), 0),
       COALESCE(length(t.output_text), 0) + COALESCE(length(t.logprobs), 0) * 3 / 5
         + COALESCE(length(t.extras), 0) + COALESCE(length(t.step_rewards), 0)
         + COALESCE(length(t.turns), 0) + 40
FROM rollouts r LEFT JOIN trajectories t ON t.rollout_id = r.id
WHERE r.id IN ({{ids}}) AND +r.run_id = CAST(? AS TEXT)
ORDER BY r.group_idx, r.id, t.trajectory_idx, t.id
"""
_GROUPS = """
SELECT r.id, r.gt_lat, r.gt_lon, r.figures, r.prompt_text, r.image_path,
       COALESCE(r.mean_reward, (SELECT avg(t.reward) FROM trajectories t WHERE t.rollout_id = r.id))
FROM rollouts r
WHERE r.run_id = CAST(? AS TEXT) AND r.step = ? AND r.eval_name IS NULL
ORDER BY r.group_idx, r.id
"""


def step_figures(conn: sqlite3.Connection, key: str | bytes, step: int) -> list[GroupFigures]:
    """The figures of the run's training groups at `step`, in the page's group order: as the
    writer stored them (`rollouts.figures`), else counted from the group's rows."""
    out: dict[int, GroupFigures | None] = {}
    history: dict[int, tuple[str | None, float | None]] = {}
    for rid, gt_lat, gt_lon, stored, text, image, mean in conn.execute(_GROUPS, (key, step)):
        geo = finite_number(gt_lat) is not None and finite_number(gt_lon) is not None
        prompt = None
        if isinstance(text, str) and text:
            prompt = prompt_key(text, image if isinstance(image, str) else None)
        history[rid] = (prompt, float(mean) if finite_number(mean) is not None else None)
        out[rid] = _stored(rid, geo, stored)
    missing = [rid for rid, figures in out.items() if figures is None]
    for start in range(0, len(missing), 500):  # well under SQLite's bound variables
        ids = missing[start : start + 500]
        query = _FROM_ROWS.replace("{ids}", ", ".join("?" * len(ids)))
        for figures in _from_rows(conn, conn.execute(query, (*ids, key))):
            out[figures.key] = figures
    return [
        dataclasses.replace(f, prompt=history[rid][0], mean=history[rid][1])
        for rid, f in out.items()
        if f is not None
    ]


def _stored(rid: int, geo: bool, stored: Any) -> GroupFigures | None:
    """A group's figures as the writer stored them; None if it did not (or they are odd)."""
    if stored is None:
        return None
    figures = _json(stored)
    if not isinstance(figures, dict):
        return None
    rewards, lengths = figures.get("r"), figures.get("n")
    chars = figures.get("c")
    if not (isinstance(rewards, list) and isinstance(lengths, list)):
        return None
    if len(rewards) != len(lengths) or not isinstance(chars, int):
        return None
    if not all(type(n) is int for n in lengths):
        return None
    return GroupFigures(rid, rewards, lengths, figures.get("t") is True, geo, chars)


def _from_rows(conn: sqlite3.Connection, rows: Iterable[tuple]) -> Iterator[GroupFigures]:
    """Groups' figures from `_FROM_ROWS`'s rows (a group's rows one after another)."""
    current: int | None = None
    rewards: list[float] = []
    lengths: list[int] = []
    tokens = geo = False
    size = 0
    for row in rows:
        rid = row[0]
        if rid != current:
            if current is not None:
                yield GroupFigures(current, rewards, lengths, tokens, geo, size)
            current, rewards, lengths, tokens, size = rid, [], [], False, 40 + row[10]
            geo = finite_number(row[1]) is not None and finite_number(row[2]) is not None
        if row[3] is None:  # a group without trajectories
            continue
        rewards.append(_reward(row[4], row[5]))
        n = row[6] if row[6] != -1 else _token_count(conn, row[7])
        if n:
            tokens = True
            lengths.append(n)
        else:
            lengths.append(row[8] if row[8] is not None else _text_length(row[9]))
        size += row[11]
    if current is not None:
        yield GroupFigures(current, rewards, lengths, tokens, geo, size)


def groups(conn: sqlite3.Connection, key: str | bytes, ids: Sequence[int]) -> list[Rollout]:
    """The training groups with these rollout ids, whole, in the order given."""
    found: dict[int, Rollout] = {}
    for start in range(0, len(ids), 500):  # SQLite's bound variables: keep well under its limit
        for rollout in _rollouts(conn, key, ids=list(ids[start : start + 500])):
            found[rollout.id] = rollout
    return [found[i] for i in ids if i in found]


def _reward(reward: Any, extras: Any) -> Any:
    """A trajectory's reward as `Store.load_run` gives it (a non-finite one kept in extras)."""
    if extras is not None:
        true_reward = _json_dict(extras, "extras").get("reward")
        if isinstance(true_reward, str) and true_reward in _NONFINITE:
            return _NONFINITE[true_reward]
    return reward


def _token_count(conn: sqlite3.Connection, trajectory_id: int) -> int:
    """A trajectory's tokens from its rows, read as `load_run` reads them (0: no list)."""
    row = conn.execute(
        "SELECT output_tokens, logprobs FROM trajectories WHERE id = ?", (trajectory_id,)
    ).fetchone()
    for raw in row or ():
        value = _json(raw)
        if isinstance(value, list) and value:
            return len(value)
    return 0


def _text_length(value: Any) -> int:
    """Characters of an output text held as a blob or a number (as the page shows it)."""
    if isinstance(value, bytes):
        return len(value.decode("utf-8", "replace"))
    if isinstance(value, (int, float)):
        return len(str(value))
    return 0
