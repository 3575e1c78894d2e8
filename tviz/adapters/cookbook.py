"""Import a tinker-cookbook run directory (what `tinker_cookbook.rl.train` writes) into tviz.

`tinker_cookbook.rl.train.main` builds its own loggers, so many users cannot put a TvizLogger in
the loop. This reads what the cookbook already writes:

- `config.json`: the run's config.
- `metrics.jsonl`: one JSON object per line, `{"step": N, ...}` or, for `log_summary`, without a
  step. A resumed run may repeat steps: the last value written wins.
- `iteration_NNNNNN/train_rollout_summaries.jsonl`: one record per trajectory (rewards, per-step
  stats, metrics and logs, no text), written when `rollout_json_export` is on.
- `iteration_NNNNNN/train_logtree.json`: the logtree of the first `num_groups_to_log` groups,
  with the conversations' text.
- `checkpoints.jsonl`: a `"final"` entry marks a finished run.

Importing is idempotent and incremental: the run id is derived from the directory's absolute
path, metric values already in the database are not written again, and iterations whose
rollouts are already there are skipped. So a directory still being written can be imported
again later to add what is new, and importing twice adds nothing.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tviz import schema
from tviz.logger import TvizLogger
from tviz.store import Store, StoreError

__all__ = [
    "CookbookImportError",
    "ImportResult",
    "import_cookbook_run",
    "read_iteration_rollouts",
    "read_metrics",
    "run_id_for",
]

_ITERATION_DIR = re.compile(r"^iteration_(\d+)$")


class CookbookImportError(Exception):
    """The directory cannot be imported; the message is one line for a person."""


@dataclass
class ImportResult:
    """What one import did."""

    run_id: str
    run_name: str
    db_path: Path
    metric_steps_written: int = 0  # steps that got new or changed values
    metric_values_written: int = 0
    rollout_steps_written: int = 0
    rollout_groups_written: int = 0
    trajectories_written: int = 0
    config_written: bool = False
    finished: bool = False  # the directory holds a finished run
    skipped_lines: int = 0  # malformed JSON lines left out
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.metric_values_written or self.rollout_groups_written or self.config_written
        )


@dataclass
class _Metrics:
    steps: dict[int, dict[str, Any]]  # step -> name -> value, last write wins
    summary: dict[str, Any]  # rows without a step
    skipped: int


def run_id_for(log_dir: str | os.PathLike[str]) -> str:
    """The run id an import of `log_dir` uses: stable for the directory, whatever its content."""
    resolved = str(Path(log_dir).expanduser().resolve())
    return "cookbook-" + hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:10]


def _jsonl(path: Path) -> tuple[list[Any], int]:
    """The parsed lines of a JSONL file and how many malformed lines were left out.

    A last line without its newline is a line still being written: left out, not counted.
    """
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1].strip() and not data.endswith(b"\n"):
        try:
            json.loads(lines[-1])
        except ValueError:
            lines = lines[:-1]
    out, skipped = [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            skipped += 1
    return out, skipped


def read_metrics(path: str | os.PathLike[str]) -> _Metrics:
    """metrics.jsonl -> per-step values (last write wins) and step-less summary values."""
    rows, skipped = _jsonl(Path(path))
    steps: dict[int, dict[str, Any]] = {}
    summary: dict[str, Any] = {}
    for row in rows:
        if not isinstance(row, dict):
            skipped += 1
            continue
        step = row.get("step")
        values = {str(k): v for k, v in row.items() if k != "step"}
        if step is None:
            summary.update(values)
        elif _is_step(step):
            steps.setdefault(int(step), {}).update(values)
        else:
            skipped += 1
    return _Metrics(steps, summary, skipped)


def _is_step(value: Any) -> bool:
    """A whole number SQLite can store (JSON allows 1e300, NaN and Infinity too)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
        and abs(value) < 2**63
    )


def _valid_record(record: Any) -> bool:
    """A train_rollout_summaries.jsonl record of the shape the importer reads."""
    if not isinstance(record, dict) or not isinstance(record.get("steps"), list):
        return False
    if not all(isinstance(step, dict) for step in record["steps"]):
        return False
    if record.get("traj_idx") is not None and not _is_step(record["traj_idx"]):
        return False
    dicts = [record.get("trajectory_metrics")]
    dicts += [step.get(key) for step in record["steps"] for key in ("metrics", "logs")]
    return all(d is None or isinstance(d, dict) for d in dicts)


def timeline(log_dir: Path, metrics: _Metrics) -> tuple[float | None, dict[int, float]]:
    """When the run started and when each step ended, as well as the files tell.

    The cookbook writes no wall-clock times: the start is config.json's modification time
    (written first), and each step ends `time/total` seconds after the one before it.
    """
    first = log_dir / "config.json"
    if not first.exists():
        first = log_dir / "metrics.jsonl"
    try:
        start = first.stat().st_mtime
    except OSError:
        return None, {}
    ends: dict[int, float] = {}
    clock = start
    for step in sorted(metrics.steps):
        seconds = metrics.steps[step].get("time/total")
        if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0:
            clock += seconds
        ends[step] = clock
    return start, ends


# -- logtree JSON ---------------------------------------------------------------------------------
# A logtree node is {"tag", "attrs", "children": [node | str], "data"?}; strings are HTML-escaped
# text, and formatters (conversations) put structured data in "data".


def _text(node: Any) -> str:
    if isinstance(node, str):
        return html.unescape(node)
    if not isinstance(node, dict):
        return ""
    return "".join(_text(c) for c in node.get("children") or ())


def _children(node: Any) -> list[Any]:
    return list(node.get("children") or ()) if isinstance(node, dict) else []


def _section(node: Any) -> tuple[str, list[Any]] | None:
    """(title, body nodes) of a logtree `scope_header` section, else None."""
    if not isinstance(node, dict) or node.get("tag") != "section":
        return None
    title, body = "", []
    for child in _children(node):
        if isinstance(child, dict) and re.fullmatch(r"h[1-6]", str(child.get("tag"))):
            title = _text(child).strip()
        elif isinstance(child, dict) and "lt-section-body" in str(
            (child.get("attrs") or {}).get("class", "")
        ):
            body.extend(_children(child))
        else:
            body.append(child)
    return title, body


def _table(node: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []

    def walk(n: Any) -> None:
        if not isinstance(n, dict):
            return
        if n.get("tag") == "tr":
            rows.append([_text(c).strip() for c in _children(n) if isinstance(c, dict)])
            return
        for c in _children(n):
            walk(c)

    walk(node)
    return rows


@dataclass
class _Content:
    """What a run of logtree nodes holds, flattened."""

    conversations: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    tables: dict[str, dict[str, str]] = field(default_factory=dict)  # caption -> key -> value
    texts: list[str] = field(default_factory=list)

    def table_values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for values in self.tables.values():
            out.update(values)
        return out


def _collect(nodes: list[Any], content: _Content, title: str = "") -> None:
    caption = ""
    for node in nodes:
        if isinstance(node, str):
            continue
        section = _section(node)
        if section is not None:
            _collect(section[1], content, section[0])
            continue
        data = node.get("data")
        if isinstance(data, dict) and data.get("type") == "conversation":
            content.conversations.append((title, list(data.get("messages") or ())))
            continue
        tag = node.get("tag")
        cls = str((node.get("attrs") or {}).get("class", ""))
        if "lt-table-caption" in cls:
            caption = _text(node).strip()
        elif tag == "table":
            rows = _table(node)
            if rows and len(rows[0]) == 2:
                content.tables[caption or title] = {r[0]: r[1] for r in rows[1:] if len(r) == 2}
            caption = ""
        elif tag == "details":
            parts = [c for c in _children(node) if isinstance(c, dict)]
            summary = next((_text(c) for c in parts if c.get("tag") == "summary"), "")
            body = "".join(_text(c) for c in parts if c.get("tag") != "summary")
            content.texts.append(f"{summary}: {body}" if summary else body)
        elif tag in ("p", "pre", "div") and not any(isinstance(c, dict) for c in _children(node)):
            text = _text(node).strip()
            if text:
                content.texts.append(text)
        else:
            _collect(_children(node), content, title)


def _content_text(content: Any) -> str:
    """A message's content (a string or a list of parts) as text."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else str(content)
    parts = []
    for part in content:
        if not isinstance(part, dict):
            parts.append(str(part))
        elif part.get("type") == "text":
            parts.append(str(part.get("text", "")))
        elif part.get("type") == "thinking":
            parts.append(f"<think>{part.get('thinking', '')}</think>")
        elif part.get("type") == "image":
            parts.append("[image]")
        else:
            parts.append(f"[{part.get('type', 'part')}]")
    return "".join(parts)


def _message_text(message: dict[str, Any]) -> str:
    text = _content_text(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function", call) if isinstance(call, dict) else {}
        name = function.get("name", "tool") if isinstance(function, dict) else "tool"
        args = function.get("arguments", "") if isinstance(function, dict) else ""
        text += f"\n[tool call] {name}({args})"
    return text


def conversation_text(messages: list[dict[str, Any]]) -> str:
    """A conversation as readable text: one `role: content` block per message."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return _message_text(messages[0])
    return "\n\n".join(f"{m.get('role', '?')}: {_message_text(m)}" for m in messages)


@dataclass
class _Block:
    """What the environment logged for one `env.step` call (one turn of one trajectory)."""

    prompt: list[dict[str, Any]] | None
    response: list[dict[str, Any]] | None
    values: dict[str, str]  # the tables' key -> value (reference answer, reward parts...)
    texts: list[str]

    @property
    def reward(self) -> float | None:
        for key in ("reward", "total_reward", "step_reward"):
            if key in self.values:
                try:
                    return float(self.values[key])
                except ValueError:
                    pass
        return None

    @property
    def response_text(self) -> str | None:
        if not self.response:
            return None
        return "\n\n".join(_message_text(m) for m in self.response)


@dataclass
class _LoggedTurn:
    ob_len: int | None
    ac_len: int | None
    reward: float | None
    metrics: dict[str, str]
    logs: list[str]


@dataclass
class _LoggedGroup:
    blocks: list[_Block]
    trajectories: list[tuple[list[_LoggedTurn], dict[str, str]]]  # turns, episode totals


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value


def _int(text: Any) -> int | None:
    value = _number(text)
    return int(value) if value is not None and math.isfinite(value) else None


def _block(sections: list[tuple[str, list[Any]]]) -> _Block:
    content = _Content()
    for title, body in sections:
        _collect(body, content, title)
    convos = content.conversations
    prompt = next((m for t, m in convos if t == "Prompt"), convos[0][1] if convos else None)
    response = next((m for t, m in convos if t == "Policy Response"), None)
    if response is None and len(convos) > 1:
        response = convos[-1][1]
    return _Block(prompt, response, content.table_values(), content.texts)


def _trajectory_details(body: list[Any]) -> list[tuple[list[_LoggedTurn], dict[str, str]]]:
    out = []
    for node in body:
        section = _section(node)
        if section is None or not re.fullmatch(r"Trajectory \d+ Episode", section[0]):
            continue
        turns: list[_LoggedTurn] = []
        totals: dict[str, str] = {}
        for inner in _walk_sections(section[1]):
            title, inner_body = inner
            if re.fullmatch(r"Turn \d+", title):
                content = _Content()
                _collect(inner_body, content, title)
                stats = content.tables.get("Step stats", {})
                turns.append(
                    _LoggedTurn(
                        ob_len=_int(stats.get("ob_len")),
                        ac_len=_int(stats.get("ac_len")),
                        reward=_number(stats.get("step_reward")),
                        metrics=content.tables.get("Metrics emitted by env.step", {}),
                        logs=content.texts,
                    )
                )
            elif title == "Episode Details":
                content = _Content()
                _collect([n for n in inner_body if _section(n) is None], content, title)
                totals = content.tables.get("Episode totals", {})
        out.append((turns, totals))
    return out


def _walk_sections(nodes: list[Any]) -> Iterator[tuple[str, list[Any]]]:
    """Every section under `nodes`, outermost first; a Turn's own subsections are not entered."""
    for node in nodes:
        section = _section(node)
        if section is None:
            continue
        yield section
        if not re.fullmatch(r"Turn \d+", section[0]):
            yield from _walk_sections(section[1])


def _logged_groups(tree: dict[str, Any]) -> list[_LoggedGroup]:
    """The "Group Rollout" sections of a train_logtree.json, in order."""
    groups: list[_LoggedGroup] = []

    def visit(nodes: list[Any]) -> None:
        for node in nodes:
            section = _section(node)
            if section is None:
                if isinstance(node, dict):
                    visit(_children(node))
                continue
            title, body = section
            if title != "Group Rollout":
                visit(body)
                continue
            blocks: list[_Block] = []
            current: list[tuple[str, list[Any]]] = []
            details: list[tuple[list[_LoggedTurn], dict[str, str]]] = []
            for child in body:
                sub = _section(child)
                if sub is None:
                    continue
                if sub[0] == "Trajectory Details":
                    details = _trajectory_details(sub[1])
                    continue
                # The env logs a fixed set of sections per step: a repeated title starts the next.
                if any(t == sub[0] for t, _ in current):
                    blocks.append(_block(current))
                    current = []
                current.append(sub)
            if current:
                blocks.append(_block(current))
            groups.append(_LoggedGroup(blocks, details))

    visit([tree.get("root")] if isinstance(tree, dict) else [])
    return groups


# -- rollouts of one iteration --------------------------------------------------------------------


def _signature(turns: list[tuple[Any, Any, Any]]) -> tuple:
    return tuple(
        (_int(ob), _int(ac), None if _number(r) is None else round(float(r), 3))
        for ob, ac, r in turns
    )


def _assign(blocks: list[_Block], slot_rewards: list[list[float | None]]) -> dict[tuple, _Block]:
    """Which logged env.step block is which (trajectory, turn).

    The env logs each step as it happens, so the blocks of a group come in completion order, not
    trajectory order. Match them greedily: a turn comes after the trajectory's previous turn,
    the block's logged reward must equal the turn's reward, and a later turn's prompt contains
    the previous turn's response. Among equal candidates the lowest trajectory index wins.
    """
    next_turn = [0] * len(slot_rewards)
    responses: dict[int, str | None] = {}
    out: dict[tuple, _Block] = {}
    for block in blocks:
        best: tuple[float, int] | None = None
        prompt = conversation_text(block.prompt) if block.prompt else ""
        for t, rewards in enumerate(slot_rewards):
            turn = next_turn[t]
            if turn >= len(rewards):
                continue
            cost = 0.0
            if block.reward is not None and rewards[turn] is not None:
                cost += 0.0 if abs(block.reward - rewards[turn]) < 5e-4 else 100.0
            previous = responses.get(t)
            if turn > 0 and previous and previous not in prompt:
                cost += 10.0
            if best is None or cost < best[0]:
                best = (cost, t)
        if best is None:
            break
        t = best[1]
        out[(t, next_turn[t])] = block
        responses[t] = block.response_text
        next_turn[t] += 1
    return out


def _turn_observation(block: _Block | None, previous: _Block | None) -> str | None:
    """A turn's observation: for a later turn only the messages added since the last one."""
    if block is None or not block.prompt:
        return None
    messages = block.prompt
    if previous is not None and previous.prompt is not None:
        seen = len(previous.prompt) + len(previous.response or ())
        if len(messages) > seen and messages[: len(previous.prompt)] == previous.prompt:
            messages = messages[seen:]
    return conversation_text(messages)


def _rollout(
    group_idx: int,
    trajectories: list[dict[str, Any]],
    logged: _LoggedGroup | None,
    extras: dict[str, Any],
) -> dict[str, Any]:
    """Rollout dict from per-trajectory records (summary format) plus the logged text, if any."""
    slot_rewards = [[_number(s.get("reward")) for s in t["steps"]] for t in trajectories]
    blocks = _assign(logged.blocks, slot_rewards) if logged else {}
    prompt_messages = next((b.prompt for b in blocks.values() if b.prompt), None)
    out_trajs = []
    for t, record in enumerate(trajectories):
        steps = record["steps"]
        traj: dict[str, Any] = {
            "trajectory_idx": record.get("traj_idx", t),
            "reward": _number(record.get("total_reward")),
            "output_text": None,
            "step_rewards": [_number(s.get("reward")) for s in steps] or None,
        }
        if traj["reward"] is None:
            traj["reward"] = sum(r for r in traj["step_rewards"] or () if r is not None)
        final_reward = _number(record.get("final_reward"))
        if final_reward:
            traj["final_reward"] = final_reward
        metrics = dict(record.get("trajectory_metrics") or {})
        stop_reasons = [
            k.removeprefix("stop/")
            for s in steps
            for k, v in (s.get("metrics") or {}).items()
            if k.startswith("stop/") and v
        ]
        if stop_reasons:
            traj["stop_reason"] = stop_reasons[-1]
        if len(steps) == 1:
            step, block = steps[0], blocks.get((t, 0))
            traj["output_text"] = block.response_text if block else None
            traj["ac_len"] = _int(step.get("ac_len"))
            metrics = {**(step.get("metrics") or {}), **metrics}
            logs = {**(step.get("logs") or {}), **(block.values if block else {})}
            if block and block.texts:
                logs["notes"] = "\n".join(block.texts)
            if logs:
                traj["logs"] = logs
        elif steps:
            turns = []
            for k, step in enumerate(steps):
                block = blocks.get((t, k))
                logs = {**(step.get("logs") or {}), **(block.values if block else {})}
                turns.append(
                    {
                        "turn_idx": k,
                        "observation_text": _turn_observation(block, blocks.get((t, k - 1))),
                        "action_text": block.response_text if block else None,
                        "reward": _number(step.get("reward")),
                        "episode_done": bool(step.get("episode_done")),
                        "metrics": step.get("metrics") or {},
                        "logs": logs,
                        "ob_len": _int(step.get("ob_len")),
                        "ac_len": _int(step.get("ac_len")),
                    }
                )
            traj["turns"] = turns
            texts = [turn["action_text"] for turn in turns]
            if all(text is not None for text in texts):
                traj["output_text"] = "\n\n".join(texts)
        if metrics:
            traj["metrics"] = metrics
        out_trajs.append(traj)
    rollout: dict[str, Any] = {
        "group_idx": group_idx,
        "prompt_text": conversation_text(prompt_messages) if prompt_messages else None,
        "trajectories": out_trajs,
        **extras,
        "text_logged": bool(blocks),
    }
    if prompt_messages:
        rollout["prompt_messages"] = prompt_messages
    return rollout


def _records_from_logged(logged: _LoggedGroup) -> list[dict[str, Any]]:
    """Summary-format trajectory records rebuilt from the logtree alone (no summaries file)."""
    records = []
    for idx, (turns, totals) in enumerate(logged.trajectories):
        records.append(
            {
                "traj_idx": idx,
                "total_reward": _number(totals.get("total_return")),
                "final_reward": _number(totals.get("final_group_reward")),
                "trajectory_metrics": {},
                "steps": [
                    {
                        "ob_len": turn.ob_len,
                        "ac_len": turn.ac_len,
                        "reward": turn.reward,
                        "episode_done": k == len(turns) - 1,
                        "metrics": {
                            k2: v for k2, v in ((k2, _number(v)) for k2, v in turn.metrics.items())
                        },
                        "logs": {"notes": "\n".join(turn.logs)} if turn.logs else {},
                    }
                    for k, turn in enumerate(turns)
                ],
            }
        )
    return records


def read_iteration_rollouts(iteration_dir: str | os.PathLike[str]) -> tuple[list[dict], int]:
    """One iteration's train rollouts as `log_rollouts` dicts, and the malformed lines skipped.

    Every group of train_rollout_summaries.jsonl becomes a rollout; the groups that the
    logtree shows get their prompt and response text. Without a summaries file, the logtree's
    groups are used alone.
    """
    directory = Path(iteration_dir)
    summaries_path = directory / "train_rollout_summaries.jsonl"
    logtree_path = directory / "train_logtree.json"
    skipped = 0
    logged: list[_LoggedGroup] = []
    if logtree_path.exists():
        try:
            tree = json.loads(logtree_path.read_bytes())
            logged = _logged_groups(tree)
        except (ValueError, AttributeError, TypeError):
            skipped += 1
    if not summaries_path.exists():
        return [
            _rollout(i, _records_from_logged(g), g, {"source": "tinker-cookbook"})
            for i, g in enumerate(logged)
            if g.trajectories
        ], skipped

    records, bad = _jsonl(summaries_path)
    skipped += bad
    by_group: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        if not _valid_record(record):
            skipped += 1
            continue
        group = record.get("group_idx")
        by_group.setdefault(group if isinstance(group, int) else -1, []).append(record)

    # Which summary group each logged group is: the cookbook logs the first groups of the batch,
    # but the summaries list groups in the order they finished. The per-turn
    # (ob_len, ac_len, reward) of every trajectory identifies a group.
    signatures = {
        g: tuple(
            _signature([(s.get("ob_len"), s.get("ac_len"), s.get("reward")) for s in r["steps"]])
            for r in sorted(recs, key=lambda r: r.get("traj_idx", 0))
        )
        for g, recs in by_group.items()
    }
    matched: dict[int, _LoggedGroup] = {}
    for g_logged in logged:
        sig = tuple(
            _signature([(t.ob_len, t.ac_len, t.reward) for t in turns])
            for turns, _ in g_logged.trajectories
        )
        for g, s in signatures.items():
            if g not in matched and s == sig:
                matched[g] = g_logged
                break

    rollouts = []
    for g in sorted(by_group):
        recs = sorted(by_group[g], key=lambda r: r.get("traj_idx", 0))
        first = recs[0]
        extras = {"source": "tinker-cookbook"}
        if first.get("tags"):
            extras["tags"] = first["tags"]
        if first.get("sampling_client_step") is not None:
            extras["sampling_client_step"] = first["sampling_client_step"]
        rollouts.append(_rollout(g if g >= 0 else len(rollouts), recs, matched.get(g), extras))
    return rollouts, skipped


# -- the import -----------------------------------------------------------------------------------


def _iterations(log_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for child in log_dir.iterdir():
        match = _ITERATION_DIR.match(child.name)
        if match and child.is_dir():
            out.append((int(match.group(1)), child))
    return sorted(out)


def _iteration_done(path: Path, is_last: bool, exports: bool) -> bool:
    """Whether an iteration's rollouts are complete enough to import (they are never redone)."""
    if (path / "train_rollout_summaries.jsonl").exists():
        return True
    if not (path / "train_logtree.json").exists():
        return False
    # The cookbook writes the logtree, then the summaries: wait for them unless it never will.
    return not exports or not is_last


def _finished(log_dir: Path) -> bool:
    path = log_dir / "checkpoints.jsonl"
    if not path.exists():
        return False
    rows, _ = _jsonl(path)
    return any(isinstance(r, dict) and r.get("name") == "final" for r in rows)


def _same(new: Any, old: Any) -> bool:
    if new is None:
        return True  # nothing to store
    if isinstance(new, (bool, int, float)):
        if not isinstance(old, float):
            return False
        try:
            new = float(new)
        except OverflowError:
            return False
        return (math.isnan(new) and math.isnan(old)) or new == old
    return old is not None and not isinstance(old, float)


def _existing(db_path: Path, run_id: str) -> tuple[Any, set[int], str | None] | None:
    """(run data, steps with rollouts, status) of the run already imported, or None."""
    if not db_path.exists() or db_path.stat().st_size == 0:
        return None
    with Store(db_path) as store:
        if not any(r.id == run_id for r in store.list_runs()):
            return None
        data = store.load_run(run_id, rollout_steps=())
        steps = set(store.rollout_index(run_id))
    return data, steps, data.summary.status


def import_cookbook_run(
    log_dir: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    run_id: str | None = None,
) -> ImportResult:
    """Import (or bring up to date) the run written by tinker-cookbook in `log_dir`.

    Args:
        log_dir: the cookbook's `log_path`, holding metrics.jsonl.
        db_path: the tviz database; default `$TVIZ_DB_PATH`, else `~/.tviz/tviz.db`.
        name: the run's name at its first import; default the directory's name.
        run_id: default `run_id_for(log_dir)`.

    Raises:
        CookbookImportError: the directory is missing or holds no metrics.jsonl.
    """
    directory = Path(log_dir).expanduser()
    if not directory.exists():
        raise CookbookImportError(f"no such directory: {directory}")
    if not directory.is_dir():
        raise CookbookImportError(f"{directory} is not a directory")
    metrics_path = directory / "metrics.jsonl"
    if not metrics_path.exists():
        raise CookbookImportError(
            f"{directory} has no metrics.jsonl: not a tinker-cookbook run directory"
        )
    db = Path(db_path).expanduser() if db_path is not None else schema.default_db_path()
    rid = run_id or run_id_for(directory)
    result = ImportResult(rid, name or directory.resolve().name, db)

    config: dict[str, Any] | None = None
    config_path = directory / "config.json"
    if config_path.exists():
        try:
            loaded = json.loads(config_path.read_bytes())
            config = loaded if isinstance(loaded, dict) else {"config": loaded}
        except ValueError:
            result.warnings.append("config.json is not valid JSON; left out")
    metrics = read_metrics(metrics_path)
    result.skipped_lines += metrics.skipped
    if metrics.skipped and not metrics.steps and not metrics.summary:
        raise CookbookImportError(
            f"{metrics_path} holds no valid JSON lines ({metrics.skipped} malformed)"
        )
    result.finished = _finished(directory)

    try:
        existing = _existing(db, rid)
    except StoreError as exc:
        raise CookbookImportError(str(exc)) from None
    old_numeric: dict[str, dict[int, float]] = {}
    old_text: dict[str, set[int]] = {}
    old_summary: dict[str, Any] = {}
    old_config: dict[str, Any] = {}
    rollout_steps: set[int] = set()
    status = None
    if existing is not None:
        data, rollout_steps, status = existing
        old_numeric = {
            n: dict(zip(s.steps, s.values, strict=True)) for n, s in data.metrics.items()
        }
        old_text = {n: {step for step, _ in rows} for n, rows in data.text_metrics.items()}
        old_summary = dict(data.summaries)
        old_config = data.config
        result.run_name = data.summary.name

    # What is new: metric values that differ from the database's, iterations not yet there.
    new_steps: dict[int, dict[str, Any]] = {}
    for step, values in sorted(metrics.steps.items()):
        changed = {}
        for k, v in values.items():
            old = old_numeric.get(k, {}).get(step)
            if old is None and step in old_text.get(k, ()):
                old = ""
            if not _same(v, old):
                changed[k] = v
        if changed:
            new_steps[step] = changed
    new_summary = {k: v for k, v in metrics.summary.items() if not _same(v, old_summary.get(k))}
    config_changed = config is not None and any(
        k not in old_config or old_config[k] != v for k, v in config.items()
    )
    exports = bool((config or {}).get("rollout_json_export", True))
    iterations = _iterations(directory)
    todo = [
        (i, path)
        for n, (i, path) in enumerate(iterations)
        if i not in rollout_steps and _iteration_done(path, n == len(iterations) - 1, exports)
    ]
    mark_finished = result.finished and status != "finished"
    nothing_new = not (new_steps or new_summary or config_changed or todo or mark_finished)
    if existing is not None and nothing_new:
        return result  # opening a logger would touch the run's row: leave it as it is

    started_at, step_ends = timeline(directory, metrics)
    logger = TvizLogger(
        db, run_name=result.run_name, run_id=rid, started_at=started_at, strict=True
    )
    try:
        if config is not None and config_changed:
            logger.log_hparams(config)
            result.config_written = True
        for step, values in new_steps.items():
            logger.log_metrics(values, step=step, timestamp=step_ends.get(step))
            result.metric_steps_written += 1
            result.metric_values_written += len(values)
        if new_summary:
            logger.log_summary(new_summary)
            result.metric_values_written += len(new_summary)
        for step, path in todo:
            rollouts, skipped = read_iteration_rollouts(path)
            result.skipped_lines += skipped
            if not rollouts:
                continue
            logger.log_rollouts(rollouts, step=step, timestamp=step_ends.get(step))
            result.rollout_steps_written += 1
            result.rollout_groups_written += len(rollouts)
            result.trajectories_written += sum(len(r["trajectories"]) for r in rollouts)
    finally:
        # What was written is committed (strict): a failed import is resumed by the next one.
        # Still being written: leave the run open, to be completed by a later import.
        last = max(step_ends.values(), default=None)
        logger.close("finished" if result.finished else None, timestamp=last)
    if result.skipped_lines:
        result.warnings.append(f"skipped {result.skipped_lines} malformed JSON line(s)")
    return result
