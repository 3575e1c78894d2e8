"""Reading a cookbook run folder: config.json, metrics.jsonl, checkpoints.jsonl, the
`iteration_NNNNNN/` folders and their rollout summaries, robust to lines still being written.

`read_run_folder` is the import's read step; the iterations' rollouts are read later, one
iteration at a time, by `rollouts.read_iteration_rollouts`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tviz.adapters.cookbook.result import CookbookImportError

__all__ = [
    "Metrics",
    "RunFolder",
    "is_finished",
    "is_whole_number",
    "iteration_dirs",
    "parse_int",
    "parse_number",
    "read_jsonl",
    "read_metrics",
    "read_run_folder",
    "read_summaries",
    "timeline",
]

_ITERATION_DIR = re.compile(r"^iteration_(\d+)$")


# -- values as the files write them ---------------------------------------------------------------


def parse_number(value: Any) -> float | None:
    """The number a JSON value or a logtree text holds (`3`, `"0.5"`, `"nan"`), else None."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_int(value: Any) -> int | None:
    """`parse_number` as a whole number (a fraction is cut off), None when absent or infinite."""
    number = parse_number(value)
    return int(number) if number is not None and math.isfinite(number) else None


def is_whole_number(value: Any) -> bool:
    """A whole number SQLite can store (JSON allows 1e300, NaN and Infinity too)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
        and abs(value) < 2**63
    )


# -- JSONL files ----------------------------------------------------------------------------------


def read_jsonl(path: Path) -> tuple[list[Any], int]:
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


@dataclass
class Metrics:
    steps: dict[int, dict[str, Any]]  # step -> name -> value, last write wins
    summary: dict[str, Any]  # rows without a step
    skipped: int


def read_metrics(path: str | os.PathLike[str]) -> Metrics:
    """metrics.jsonl -> per-step values (last write wins) and step-less summary values."""
    rows, skipped = read_jsonl(Path(path))
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
        elif is_whole_number(step):
            steps.setdefault(int(step), {}).update(values)
        else:
            skipped += 1
    return Metrics(steps, summary, skipped)


def _valid_record(record: Any) -> bool:
    """A train_rollout_summaries.jsonl record of the shape the importer reads."""
    if not isinstance(record, dict) or not isinstance(record.get("steps"), list):
        return False
    if not all(isinstance(step, dict) for step in record["steps"]):
        return False
    if record.get("traj_idx") is not None and not is_whole_number(record["traj_idx"]):
        return False
    dicts = [record.get("trajectory_metrics")]
    dicts += [step.get(key) for step in record["steps"] for key in ("metrics", "logs")]
    return all(d is None or isinstance(d, dict) for d in dicts)


def read_summaries(path: Path) -> tuple[dict[int, list[dict[str, Any]]], int]:
    """train_rollout_summaries.jsonl -> group index -> its trajectory records in `traj_idx`
    order, and the lines left out (malformed, or not of the shape read).

    A record without an integer `group_idx` goes to group -1.
    """
    records, skipped = read_jsonl(path)
    by_group: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        if not _valid_record(record):
            skipped += 1
            continue
        group = record.get("group_idx")
        by_group.setdefault(group if isinstance(group, int) else -1, []).append(record)
    in_order = {g: sorted(recs, key=lambda r: r.get("traj_idx", 0)) for g, recs in by_group.items()}
    return in_order, skipped


# -- the folder -----------------------------------------------------------------------------------


def iteration_dirs(log_dir: Path) -> list[tuple[int, Path]]:
    """(iteration number, folder) of every `iteration_NNNNNN/`, in order."""
    out = []
    for child in log_dir.iterdir():
        match = _ITERATION_DIR.match(child.name)
        if match and child.is_dir():
            out.append((int(match.group(1)), child))
    return sorted(out)


def is_finished(log_dir: Path) -> bool:
    """Whether checkpoints.jsonl has its `"final"` entry: the run is over."""
    path = log_dir / "checkpoints.jsonl"
    if not path.exists():
        return False
    rows, _ = read_jsonl(path)
    return any(isinstance(r, dict) and r.get("name") == "final" for r in rows)


def timeline(log_dir: Path, metrics: Metrics) -> tuple[float | None, dict[int, float]]:
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


@dataclass
class RunFolder:
    """What the import's read step takes from a run folder: all but the iterations' rollouts."""

    path: Path
    config: dict[str, Any] | None  # None: no config.json, or not valid JSON
    metrics: Metrics
    finished: bool
    warnings: list[str]


def read_run_folder(directory: Path) -> RunFolder:
    """Read config.json, metrics.jsonl and checkpoints.jsonl of a cookbook run folder.

    Raises:
        CookbookImportError: the directory is missing or holds no valid metrics.jsonl.
    """
    if not directory.exists():
        raise CookbookImportError(f"no such directory: {directory}")
    if not directory.is_dir():
        raise CookbookImportError(f"{directory} is not a directory")
    metrics_path = directory / "metrics.jsonl"
    if not metrics_path.exists():
        raise CookbookImportError(
            f"{directory} has no metrics.jsonl: not a tinker-cookbook run directory"
        )
    warnings: list[str] = []
    config: dict[str, Any] | None = None
    config_path = directory / "config.json"
    if config_path.exists():
        try:
            loaded = json.loads(config_path.read_bytes())
            config = loaded if isinstance(loaded, dict) else {"config": loaded}
        except ValueError:
            warnings.append("config.json is not valid JSON; left out")
    metrics = read_metrics(metrics_path)
    if metrics.skipped and not metrics.steps and not metrics.summary:
        raise CookbookImportError(
            f"{metrics_path} holds no valid JSON lines ({metrics.skipped} malformed)"
        )
    return RunFolder(directory, config, metrics, is_finished(directory), warnings)
