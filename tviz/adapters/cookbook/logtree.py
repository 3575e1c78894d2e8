"""Parsing a `train_logtree.json` into what each logged group shows: the conversations, tables
and texts of every `env.step` call, and the per-turn stats of its "Trajectory Details".

A logtree node is {"tag", "attrs", "children": [node | str], "data"?}; strings are HTML-escaped
text, and formatters (conversations) put structured data in "data". `scope_header` sections are
`<section>` nodes with a heading and an `lt-section-body`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tviz.adapters.cookbook.files import loads, parse_int, parse_number, read_regular
from tviz.adapters.cookbook.result import Problems

__all__ = [
    "Block",
    "LoggedGroup",
    "LoggedTrajectory",
    "LoggedTurn",
    "conversation_text",
    "logged_groups",
    "read_logtree",
]

_HEADING = re.compile(r"h[1-6]")
_TURN = re.compile(r"Turn \d+")
_EPISODE = re.compile(r"Trajectory \d+ Episode")


# -- nodes ----------------------------------------------------------------------------------------


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
        if isinstance(child, dict) and _HEADING.fullmatch(str(child.get("tag"))):
            title = _text(child).strip()
        elif isinstance(child, dict) and "lt-section-body" in str(
            (child.get("attrs") or {}).get("class", "")
        ):
            body.extend(_children(child))
        else:
            body.append(child)
    return title, body


def _walk_sections(nodes: list[Any]) -> Iterator[tuple[str, list[Any]]]:
    """Every section under `nodes`, outermost first; a Turn's own subsections are not entered."""
    for node in nodes:
        section = _section(node)
        if section is None:
            continue
        yield section
        if not _TURN.fullmatch(section[0]):
            yield from _walk_sections(section[1])


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
            content.conversations.append((title, _messages(data.get("messages"))))
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


# -- conversations --------------------------------------------------------------------------------


def _messages(value: Any) -> list[dict[str, Any]]:
    """A conversation's messages as dicts: one stored as a plain string is its content, a
    single message stands for a list of one, anything else is no message."""
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        return []
    return [m if isinstance(m, dict) else {"content": m} for m in value if m is not None]


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
    calls = message.get("tool_calls")
    calls = [calls] if isinstance(calls, dict) else calls if isinstance(calls, list) else []
    for call in calls:
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


# -- what a group logged --------------------------------------------------------------------------


@dataclass
class Block:
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
class LoggedTurn:
    """A turn's "Step stats" and env.step metrics and texts, from "Trajectory Details"."""

    ob_len: int | None
    ac_len: int | None
    reward: float | None
    metrics: dict[str, str]
    logs: list[str]


@dataclass
class LoggedTrajectory:
    turns: list[LoggedTurn]
    totals: dict[str, str]  # the "Episode totals" table (total_return, final_group_reward...)


@dataclass
class LoggedGroup:
    blocks: list[Block]  # in the order the env logged them (completion order)
    trajectories: list[LoggedTrajectory]


def _block(sections: list[tuple[str, list[Any]]]) -> Block:
    content = _Content()
    for title, body in sections:
        _collect(body, content, title)
    convos = content.conversations
    prompt = next((m for t, m in convos if t == "Prompt"), convos[0][1] if convos else None)
    response = next((m for t, m in convos if t == "Policy Response"), None)
    if response is None and len(convos) > 1:
        response = convos[-1][1]
    return Block(prompt, response, content.table_values(), content.texts)


def _logged_turn(title: str, body: list[Any]) -> LoggedTurn:
    content = _Content()
    _collect(body, content, title)
    stats = content.tables.get("Step stats", {})
    return LoggedTurn(
        ob_len=parse_int(stats.get("ob_len")),
        ac_len=parse_int(stats.get("ac_len")),
        reward=parse_number(stats.get("step_reward")),
        metrics=content.tables.get("Metrics emitted by env.step", {}),
        logs=content.texts,
    )


def _trajectory_details(body: list[Any]) -> list[LoggedTrajectory]:
    out = []
    for node in body:
        section = _section(node)
        if section is None or not _EPISODE.fullmatch(section[0]):
            continue
        turns: list[LoggedTurn] = []
        totals: dict[str, str] = {}
        for title, inner_body in _walk_sections(section[1]):
            if _TURN.fullmatch(title):
                turns.append(_logged_turn(title, inner_body))
            elif title == "Episode Details":
                content = _Content()
                _collect([n for n in inner_body if _section(n) is None], content, title)
                totals = content.tables.get("Episode totals", {})
        out.append(LoggedTrajectory(turns, totals))
    return out


def _group(body: list[Any]) -> LoggedGroup:
    """A "Group Rollout" section: its env.step blocks and its "Trajectory Details"."""
    blocks: list[Block] = []
    current: list[tuple[str, list[Any]]] = []
    details: list[LoggedTrajectory] = []
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
    return LoggedGroup(blocks, details)


def logged_groups(tree: dict[str, Any]) -> list[LoggedGroup]:
    """The "Group Rollout" sections of a train_logtree.json, in order."""
    groups: list[LoggedGroup] = []

    def visit(nodes: list[Any]) -> None:
        for node in nodes:
            section = _section(node)
            if section is None:
                if isinstance(node, dict):
                    visit(_children(node))
            elif section[0] == "Group Rollout":
                groups.append(_group(section[1]))
            else:
                visit(section[1])

    visit([tree.get("root")] if isinstance(tree, dict) else [])
    return groups


def read_logtree(path: Path, problems: Problems | None = None) -> tuple[list[LoggedGroup], int]:
    """The logged groups of a train_logtree.json, and 1 if the file could not be read as one.

    A missing file logs no group; one that is not JSON, nested too deep, or not a logtree's
    shape, counts as one line left out; one that is not a regular file or cannot be read is
    said in `problems`.
    """
    if not path.exists():
        return [], 0
    try:
        data = read_regular(path)
    except OSError as exc:
        if problems is not None:
            problems.unreadable(path, exc)
        return [], 0
    try:
        return logged_groups(loads(data)), 0
    except (ValueError, AttributeError, TypeError, RecursionError):
        return [], 1
