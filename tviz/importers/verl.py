"""Import what verl's PPO/GRPO trainer writes: its file logger's metrics and its rollout dumps.

The formats, as verl 0.9.1 writes them:

- `trainer.logger=['console','file']`: `FileLogger` (verl/utils/tracking.py) opens
  `$VERL_FILE_LOGGER_PATH`, else `$VERL_FILE_LOGGER_ROOT/<project_name>/<experiment_name>.jsonl`
  (root "."), in mode "wb" (a restarted run starts the file anew), and each `log(data, step)`
  writes `orjson.dumps({"step": step, "data": data}, option=OPT_SERIALIZE_NUMPY) + b"\\n"`.
  orjson writes NaN and infinities as `null`: a null value is read as NaN (a gap).
- `trainer.rollout_data_dir=DIR`: `_write_generations` (verl/trainer/ppo/ray_trainer.py) writes
  `DIR/<global_steps>.jsonl`, one `json.dumps(entry, ensure_ascii=False, default=str)` line per
  sample with `input`, `output`, `gts`, `score`, `step` and every reward extra that has one value
  per sample. One background thread writes these files, in order, and the trainer logs a step's
  metrics after it has handed over the step's samples.

A step's samples with the same `input` are one group (GRPO samples `n` answers per prompt). Each
sample is a trajectory: `output` its text, `score` its reward, `gts` and the reward extras in its
extras. Importing is incremental like the cookbook importer's: the run id comes from the metrics
file's path, metric values already stored are not written again, and rollout files whose step is
stored are skipped.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tviz import schema
from tviz.adapters.cookbook.files import is_whole_number, parse_number, read_jsonl
from tviz.importers.common import (
    ImportFailed,
    Outcome,
    RunImport,
    new_metric_steps,
    regular_file,
    run_logger,
    stable_run_id,
    stored_run,
)
from tviz.logger import TvizLogger
from tviz.records import Rollout, Trajectory

__all__ = [
    "ROLLOUT_FILE",
    "SETTLED_S",
    "VerlMetrics",
    "import_verl",
    "is_verl_line",
    "read_rollout_file",
    "read_verl_metrics",
    "rollout_files",
]

SOURCE = "verl"
# A rollout file not changed for this long is complete even if its step's metrics never came.
SETTLED_S = 60.0
ROLLOUT_FILE = re.compile(r"^(\d+)\.jsonl$")
# The keys of a sample that become the group's prompt and the trajectory's own fields.
_SAMPLE_KEYS = frozenset({"input", "output", "score", "step", "gts"})
# A reward extra named like a trajectory field is kept under another name, never in its place.
_RESERVED = frozenset(Trajectory.__annotations__)


class VerlTrajectory(Trajectory, total=False):
    """A sample, with the keys the contract does not declare (kept in the row's extras)."""

    gts: Any  # the sample's `reward_model.ground_truth`
    # ... and each reward extra under its own name (`verl_<name>` for a contract key's name)


class VerlRollout(Rollout, total=False):
    source: str  # always "verl"


# -- the metrics file -----------------------------------------------------------------------------


def is_verl_line(row: Any) -> bool:
    """A parsed line of verl's file logger: `{"step": N, "data": {name: value}}`."""
    return isinstance(row, dict) and "step" in row and isinstance(row.get("data"), dict)


@dataclass
class VerlMetrics:
    steps: dict[int, dict[str, Any]]  # step -> name -> value, the last write wins
    skipped: int  # lines that are not `{"step": N, "data": {...}}` with a whole step
    left_out: int  # values that are neither numbers nor text (lists, objects)


def read_verl_metrics(path: Path) -> VerlMetrics:
    """verl's metrics JSONL -> values per step. A step logged twice (validation, then training)
    keeps both writes' values."""
    rows, skipped = read_jsonl(path)
    steps: dict[int, dict[str, Any]] = {}
    left_out = 0
    for row in rows:
        if not is_verl_line(row) or not is_whole_number(row["step"]):
            skipped += 1
            continue
        values = steps.setdefault(int(row["step"]), {})
        for name, value in row["data"].items():
            if value is None:
                values[str(name)] = math.nan  # orjson's NaN / Infinity
            elif isinstance(value, (bool, int, float, str)):
                values[str(name)] = value
            else:
                left_out += 1
    return VerlMetrics(steps, skipped, left_out)


def timeline(path: Path, steps: dict[int, dict[str, Any]]) -> tuple[float | None, dict[int, float]]:
    """When the run started and when each step ended, as well as the file tells.

    verl writes no wall-clock times: the file was last written when its last step ended, and
    each step took `timing_s/step` seconds; count back from there. Without those, no times.
    """
    durations = {s: parse_number(v.get("timing_s/step")) for s, v in steps.items()}
    if not any(d is not None and math.isfinite(d) and d > 0 for d in durations.values()):
        return None, {}
    clock = path.stat().st_mtime
    ends: dict[int, float] = {}
    for step in sorted(steps, reverse=True):
        ends[step] = clock
        seconds = durations[step]
        if seconds is not None and math.isfinite(seconds) and seconds > 0:
            clock -= seconds
    return clock, ends


# -- the rollout files ----------------------------------------------------------------------------


def rollout_files(directory: Path) -> list[tuple[int, Path]]:
    """(step, file) of every `<step>.jsonl` in verl's rollout_data_dir, in step order."""
    if not directory.exists():
        raise ImportFailed(f"no such rollouts directory: {directory}")
    if not directory.is_dir():
        raise ImportFailed(f"--rollouts {directory} is not a directory")
    out = []
    for child in directory.iterdir():
        match = ROLLOUT_FILE.match(child.name)
        if match and regular_file(child):
            out.append((int(match.group(1)), child))
    return sorted(out)


def is_settled(path: Path, step: int, last_metric_step: int | None, now: float) -> bool:
    """Whether verl is done writing a rollout file: its last line is whole, and the trainer has
    logged the step's metrics since, or the file has not changed for SETTLED_S (a run that
    stopped in between)."""
    stat = path.stat()
    if stat.st_size:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                return False
    elif now - stat.st_mtime < SETTLED_S:
        return False  # just opened
    return (last_metric_step is not None and last_metric_step >= step) or (
        now - stat.st_mtime >= SETTLED_S
    )


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _trajectory(row: dict[str, Any], idx: int) -> VerlTrajectory:
    score = parse_number(row.get("score"))
    traj: VerlTrajectory = {
        "trajectory_idx": idx,
        "reward": math.nan if score is None else score,
        "output_text": _text(row.get("output")),
        "gts": row.get("gts"),
    }
    for key, value in row.items():
        if key not in _SAMPLE_KEYS:
            name = f"verl_{key}" if key in _RESERVED else key
            traj[name] = value  # type: ignore[literal-required]
    return traj


def read_rollout_file(path: Path) -> tuple[list[Rollout], int, int]:
    """One `<step>.jsonl` as `log_rollouts` dicts (a group per distinct `input`, in the order
    they first appear), the samples read and the lines left out (malformed, or no `output`)."""
    rows, skipped = read_jsonl(path)
    groups: dict[str | None, list[Trajectory]] = {}
    samples = 0
    for row in rows:
        if not isinstance(row, dict) or "output" not in row:
            skipped += 1
            continue
        trajectories = groups.setdefault(_text(row.get("input")), [])
        trajectories.append(_trajectory(row, len(trajectories)))
        samples += 1
    rollouts: list[Rollout] = [
        VerlRollout(group_idx=i, prompt_text=prompt, trajectories=trajectories, source=SOURCE)
        for i, (prompt, trajectories) in enumerate(groups.items())
    ]
    return rollouts, samples, skipped


# -- the import -----------------------------------------------------------------------------------


def _write(
    logger: TvizLogger,
    steps: dict[int, dict[str, Any]],
    files: list[tuple[int, Path]],
    ends: dict[int, float],
    run: RunImport,
) -> int:
    """The new metric values and rollout files; returns the sample lines left out."""
    for step, values in steps.items():
        logger.log_metrics(values, step=step, timestamp=ends.get(step))
        run.steps += 1
        run.metrics.update(values)
    skipped = 0
    for step, path in files:  # one file at a time: never every sample in memory
        rollouts, samples, bad = read_rollout_file(path)
        skipped += bad
        if rollouts:
            logger.log_rollouts(rollouts, step=step, timestamp=ends.get(step))
            run.rollout_steps += 1
            run.groups += len(rollouts)
            run.samples += samples
    return skipped


def import_verl(
    metrics_path: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    rollouts_dir: str | os.PathLike[str] | None = None,
    now: float | None = None,
) -> Outcome:
    """Import (or bring up to date) a verl run: its metrics file and, if given, the rollout
    files of its `trainer.rollout_data_dir`.

    Args:
        metrics_path: what verl's file logger writes (`<experiment_name>.jsonl`).
        db_path: the tviz database; default `$TVIZ_DB_PATH`, else `~/.tviz/tviz.db`.
        name: the run's name at its first import; default the file's name without `.jsonl`
            (verl's experiment name).
        rollouts_dir: verl's `trainer.rollout_data_dir`, holding `<step>.jsonl`.
        now: the time a rollout file's age is measured at (tests).

    Raises:
        ImportFailed: the file holds no verl metrics, the rollouts directory is missing, or the
            database cannot be read or written.
    """
    path = Path(metrics_path).expanduser()
    if not regular_file(path):
        raise ImportFailed(f"{path} is not a regular file")
    metrics = read_verl_metrics(path)
    if not metrics.steps:
        raise ImportFailed(
            f'{path} holds no verl metrics lines ({{"step": N, "data": {{...}}}});'
            f" {metrics.skipped} malformed"
        )
    files = rollout_files(Path(rollouts_dir).expanduser()) if rollouts_dir is not None else []
    db = Path(db_path).expanduser() if db_path is not None else schema.default_db_path()
    run = RunImport(stable_run_id(SOURCE, path), name or path.stem, db)
    imported = stored_run(db, run.run_id)
    if imported is not None:
        run.run_name = imported.name
    steps = new_metric_steps(metrics.steps, imported)
    done = imported.rollout_steps if imported is not None else set()
    last_step = max(metrics.steps)
    clock = time.time() if now is None else now
    new = [(s, f) for s, f in files if s not in done]
    ready = [(s, f) for s, f in new if is_settled(f, s, last_step, clock)]
    outcome = Outcome([run])
    skipped = metrics.skipped
    if steps or ready:
        started_at, ends = timeline(path, metrics.steps)
        with run_logger(run, started_at) as logger:
            skipped += _write(logger, steps, ready, ends, run)
    if skipped:
        outcome.warnings.append(f"skipped {skipped} malformed JSON line(s)")
    if metrics.left_out:
        outcome.warnings.append(
            f"left out {metrics.left_out} metric value(s) that are neither numbers nor text"
        )
    waiting = [f.name for s, f in new if (s, f) not in ready]
    if waiting:
        outcome.warnings.append(
            f"rollout file(s) {', '.join(waiting)} still being written: import again to add them"
        )
    return outcome
