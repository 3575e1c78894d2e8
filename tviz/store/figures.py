"""A step's rollout groups as figures, without their texts: what a page decides by.

A run of a million trajectories keeps a few thousand groups in its page, but its charts
(reward best / mean / worst, output length, the reward distribution, the group signal) count
every trajectory. So the build reads each step twice, differently: first every group's
figures (rewards, output lengths, whether it has a true location, an estimate of its size),
then the whole rows of the groups the page keeps (`groups`). Both are functions of a
connection the caller holds inside one snapshot (`Store.snapshot()`).

The writer stores each group's figures with it (`rollouts.figures`, schema v5), so the first
pass reads no trajectory at all. Groups written before, or by another program, are counted
from their rows in SQL that hands no text or token list to Python: a token list written as a
JSON array of numbers (what the logger writes, and tviz 0.2.x) is counted by its commas;
anything else (strings in the list, another type, text that is not UTF-8) is read as
`Store.load_run` reads it, so the figures are the same as the whole rows give. (A list that is
no JSON but looks like one of numbers, `[1,,2]`, is counted by its commas too.)
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


def _simple(column: str) -> str:
    """SQL: `column` is JSON text of a flat array without strings (counted by commas)."""
    return (
        f"(typeof({column}) = 'text' AND substr({column}, 1, 1) = '['"
        f" AND substr({column}, -1) = ']' AND instr({column}, '\"') = 0"
        f" AND instr({column}, '{{') = 0 AND instr(substr({column}, 2), '[') = 0)"
    )


def _count(column: str) -> str:
    """SQL: the number of items of a simple array in `column` (NULL: ask Python; 0: none)."""
    return (
        f"CASE WHEN {column} IS NULL THEN 0 WHEN {_simple(column)} THEN"
        f" CASE WHEN instr({column}, ',') > 0"
        f" THEN length({column}) - length(replace({column}, ',', '')) + 1"
        f" WHEN trim({column}, '[] ' || char(9, 10, 13)) = '' THEN 0 ELSE 1 END END"
    )


def _raw(column: str) -> str:
    """SQL: the column's value where SQL could not count it, else NULL."""
    return f"CASE WHEN {column} IS NOT NULL AND NOT {_simple(column)} THEN {column} END"


# Logprobs in a page are rounded to 3 decimals: about 0.6 of their stored JSON.
_FROM_ROWS = f"""
SELECT r.id, r.gt_lat, r.gt_lon, t.rollout_id, t.reward,
       CASE WHEN instr(t.extras, '"reward"') > 0 THEN t.extras END,
       {_count("t.output_tokens")}, {_raw("t.output_tokens")},
       {_count("t.logprobs")}, {_raw("t.logprobs")},
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
        for figures in _from_rows(conn.execute(query, (*ids, key))):
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


def _from_rows(rows: Iterable[tuple]) -> Iterator[GroupFigures]:
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
            current, rewards, lengths, tokens, size = rid, [], [], False, 40 + row[12]
            geo = finite_number(row[1]) is not None and finite_number(row[2]) is not None
        if row[3] is None:  # a group without trajectories
            continue
        rewards.append(_reward(row[4], row[5]))
        n = _items(row[6], row[7])
        if not n:
            n = _items(row[8], row[9])
        if n:
            tokens = True
            lengths.append(n)
        else:
            lengths.append(row[10] if row[10] is not None else _text_length(row[11]))
        size += row[13]
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


def _items(counted: int | None, raw: Any) -> int:
    """Items of a token list: counted in SQL, else read as `load_run` reads it (0: no list)."""
    if counted is not None:
        return counted
    value = _json(raw)
    return len(value) if isinstance(value, list) else 0


def _text_length(value: Any) -> int:
    """Characters of an output text held as a blob or a number (as the page shows it)."""
    if isinstance(value, bytes):
        return len(value.decode("utf-8", "replace"))
    if isinstance(value, (int, float)):
        return len(str(value))
    return 0
