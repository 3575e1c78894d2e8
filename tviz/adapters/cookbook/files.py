"""Reading a cookbook run folder: config.json, metrics.jsonl, checkpoints.jsonl, the
`iteration_NNNNNN/` folders and their rollout summaries, robust to lines still being written.

`read_run_folder` is the import's read step; the iterations' rollouts are read later, one
iteration at a time, by `rollouts.read_iteration_rollouts`.

Nothing in the folder is trusted: only regular files are read (a FIFO named `metrics.jsonl`
would block a read for ever), JSON nested too deep to handle is a malformed line, numbers too
large for a double or a step are not taken for numbers, and what is left out is said once per
kind (`Problems`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tviz.adapters.cookbook.result import CookbookImportError, NotRegularFile, Problems

__all__ = [
    "MAX_DEPTH",
    "MAX_STEP_SECONDS",
    "Metrics",
    "RunFolder",
    "is_finished",
    "is_whole_number",
    "iteration_dirs",
    "parse_int",
    "parse_number",
    "read_jsonl",
    "read_metrics",
    "read_regular",
    "read_run_folder",
    "Resumes",
    "read_resumes",
    "read_summaries",
    "timeline",
]

_ITERATION_DIR = re.compile(r"^iteration_(\d+)$")
# JSON nested deeper than this is not read: no cookbook file comes near it, and writing or
# showing such a value would take Python past its recursion limit.
MAX_DEPTH = 100
# A step's `time/total` longer than this is not a duration (1e308, a timestamp).
MAX_STEP_SECONDS = 366 * 86_400.0
_MAX_INT = 2**63  # SQLite's integers


# -- values as the files write them ---------------------------------------------------------------


def parse_number(value: Any) -> float | None:
    """The number a JSON value or a logtree text holds (`3`, `"0.5"`, `"nan"`), else None.
    An integer too large for a double is an infinity of its sign."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
    except OverflowError:  # JSON allows 400-digit integers
        return math.inf if value > 0 else -math.inf


def parse_int(value: Any) -> int | None:
    """`parse_number` as a whole number (a fraction is cut off), None when absent, infinite or
    too large for SQLite."""
    number = parse_number(value)
    if number is None or not math.isfinite(number) or abs(number) >= _MAX_INT:
        return None
    return int(number)


def is_whole_number(value: Any) -> bool:
    """A whole number SQLite can store (JSON allows 1e300, NaN and Infinity too)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
        and abs(value) < _MAX_INT
    )


def _nested_deeper(value: Any, limit: int) -> bool:
    """Whether lists and dicts in `value` nest deeper than `limit` levels (without recursion)."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return True


def loads(data: str | bytes) -> Any:
    """`json.loads`, with JSON nested deeper than MAX_DEPTH a ValueError like any other."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    # Only text with that many brackets can nest that deep: most lines skip the walk.
    brackets = data.count(b"[" if isinstance(data, bytes) else "[")
    brackets += data.count(b"{" if isinstance(data, bytes) else "{")
    if brackets > MAX_DEPTH and _nested_deeper(value, MAX_DEPTH):
        raise ValueError("JSON nested too deep")
    return value


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file (symlinks followed). Anything else raises NotRegularFile
    without blocking: opening a FIFO for reading waits for a writer, reading a device may
    never end."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
    with open(fd, "rb") as f:
        return f.read()


# -- JSONL files ----------------------------------------------------------------------------------


def read_jsonl(path: Path) -> tuple[list[Any], int]:
    """The parsed lines of a JSONL file and how many malformed lines were left out.

    A last line without its newline is a line still being written: left out, not counted.
    A line nested deeper than MAX_DEPTH counts as malformed. Raises OSError (NotRegularFile
    for a FIFO, a device or a folder) when the file cannot be read.
    """
    data = read_regular(path)
    lines = data.split(b"\n")
    if lines and lines[-1].strip() and not data.endswith(b"\n"):
        try:
            loads(lines[-1])
        except ValueError:
            lines = lines[:-1]
    out, skipped = [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(loads(line))
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
        by_group.setdefault(int(group) if is_whole_number(group) else -1, []).append(record)
    in_order = {g: sorted(recs, key=_traj_order) for g, recs in by_group.items()}
    return in_order, skipped


def _traj_order(record: dict[str, Any]) -> tuple[int, int]:
    """A record's place in its group: by `traj_idx` (0 when absent); those with a null one
    after the others, in the file's order."""
    idx = record.get("traj_idx", 0)
    return (0, int(idx)) if idx is not None else (1, 0)


# -- resumes ---------------------------------------------------------------------------------------

_PRE_RESUME = re.compile(r"^metrics\.jsonl\.pre_resume_(\d+)$")


@dataclass
class Resumes:
    """The folder's resumes: where each one started, and the steps only they still hold."""

    points: list[int] = field(default_factory=list)  # N of each metrics.jsonl.pre_resume_N
    earlier: dict[int, dict[str, Any]] = field(default_factory=dict)  # step -> its values

    @property
    def first(self) -> int | None:
        """The earliest step a resume started again from (None: the run never resumed)."""
        return min(self.points, default=None)


def read_resumes(
    directory: Path, current: dict[int, dict[str, Any]], problems: Problems | None = None
) -> Resumes:
    """The `metrics.jsonl.pre_resume_N` files of `directory`. Steps that `current` (the live
    metrics.jsonl) holds are not taken from them; other steps come from the newest file
    (by modification time) that holds them."""
    found = []
    for child in directory.iterdir():
        match = _PRE_RESUME.match(child.name)
        if match and child.is_file():
            try:
                found.append((child.stat().st_mtime_ns, int(match.group(1)), child))
            except OSError as exc:
                if problems is not None:
                    problems.unreadable(child, exc)
    out = Resumes()
    for _, point, path in sorted(found):  # oldest first: a newer file's rows win
        out.points.append(point)
        try:
            metrics = read_metrics(path)
        except OSError as exc:
            if problems is not None:
                problems.unreadable(path, exc)
            continue
        for step, values in metrics.steps.items():
            if step not in current:
                out.earlier[step] = values
    return out


# -- the folder -----------------------------------------------------------------------------------


def iteration_dirs(log_dir: Path, problems: Problems | None = None) -> list[tuple[int, Path]]:
    """(iteration number, folder) of every `iteration_NNNNNN/`, in order (those whose number
    no step can have are left out, and said in `problems`)."""
    out = []
    for child in log_dir.iterdir():
        match = _ITERATION_DIR.match(child.name)
        if match and child.is_dir():
            number = int(match.group(1))
            if number >= _MAX_INT:
                if problems is not None:
                    problems.add("skipped iteration folders numbered past any step", child.name)
                continue
            out.append((number, child))
    return sorted(out)


def is_finished(log_dir: Path, problems: Problems | None = None) -> bool:
    """Whether checkpoints.jsonl has its `"final"` entry: the run is over."""
    path = log_dir / "checkpoints.jsonl"
    if not path.exists():
        return False
    try:
        rows, _ = read_jsonl(path)
    except OSError as exc:
        if problems is not None:
            problems.unreadable(path, exc)
        return False
    return any(isinstance(r, dict) and r.get("name") == "final" for r in rows)


def timeline(
    log_dir: Path, metrics: Metrics, problems: Problems | None = None
) -> tuple[float | None, dict[int, float]]:
    """When the run started and when each step ended, as well as the files tell.

    The cookbook writes no wall-clock times: the start is config.json's modification time
    (written first), and each step ends `time/total` seconds after the one before it. A
    `time/total` that is no step's duration (over MAX_STEP_SECONDS, 1e308) is not added, and
    said in `problems`.
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
        value = metrics.steps[step].get("time/total")
        seconds = parse_number(value) if not isinstance(value, (bool, str)) else None
        if seconds is not None and 0 < seconds <= MAX_STEP_SECONDS:
            clock += seconds
        elif seconds is not None and not seconds <= 0 and problems is not None:  # 1e308, NaN
            problems.add("ignored time/total values that are no step's duration", str(step))
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
    problems: Problems = field(default_factory=Problems)  # what was left out, by kind
    resumes: Resumes = field(default_factory=lambda: Resumes())  # metrics.jsonl.pre_resume_N


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
    problems = Problems()
    config: dict[str, Any] | None = None
    config_path = directory / "config.json"
    if config_path.exists():
        try:
            loaded = loads(read_regular(config_path))
            config = loaded if isinstance(loaded, dict) else {"config": loaded}
        except ValueError:
            warnings.append("config.json is not valid JSON (or nested too deep); left out")
        except OSError as exc:
            problems.unreadable(config_path, exc)
    try:
        metrics = read_metrics(metrics_path)
    except NotRegularFile:
        raise CookbookImportError(
            f"{metrics_path} is not a regular file (a FIFO, a device or a folder)"
        ) from None
    if metrics.skipped and not metrics.steps and not metrics.summary:
        raise CookbookImportError(
            f"{metrics_path} holds no valid JSON lines ({metrics.skipped} malformed)"
        )
    finished = is_finished(directory, problems)
    resumes = read_resumes(directory, metrics.steps, problems)
    return RunFolder(directory, config, metrics, finished, warnings, problems, resumes)
