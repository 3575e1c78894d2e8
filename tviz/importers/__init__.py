"""`tviz import PATH`: tell apart what a trainer left on disk, and import it.

`detect(path)` says which format PATH is, from its names and its first lines only:

- a tinker-cookbook run folder: a folder with `metrics.jsonl` and `config.json` or
  `iteration_*/` (the cookbook importer, `tviz.adapters.cookbook`);
- a TensorBoard log folder: a folder with event files (`events.out.tfevents.*`) at any depth
  (`tviz.importers.tensorboard`);
- a folder with `metrics.jsonl` alone: a cookbook run folder just begun;
- verl's metrics file: a file whose first lines include `{"step": N, "data": {...}}`
  (`tviz.importers.verl`).

Anything else is an `ImportFailed` saying what was looked for. `import_path` imports PATH in the
format found, through a strict `TvizLogger`, and returns an `ImportReport` whose `lines` say
what it did.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tviz import schema
from tviz.importers.common import ImportFailed, Outcome, RunImport, regular_file
from tviz.importers.tensorboard import event_dirs, import_tensorboard
from tviz.importers.verl import ROLLOUT_FILE, import_verl, is_verl_line

__all__ = ["FORMATS", "ImportFailed", "ImportReport", "detect", "import_path"]

COOKBOOK, VERL, TENSORBOARD = "cookbook", "verl", "tensorboard"
FORMATS = (COOKBOOK, VERL, TENSORBOARD)
# What a verl metrics file is recognised by: a whole line among the first ones, in this many bytes.
_HEAD_BYTES = 1 << 20
_HEAD_LINES = 20


def _is_cookbook_folder(path: Path) -> bool:
    if not regular_file(path / "metrics.jsonl"):
        return False
    return (path / "config.json").exists() or any(path.glob("iteration_*"))


def _head_rows(path: Path) -> list[object]:
    """The JSON values of the first lines of a file (those that parse)."""
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    rows = []
    for line in head.split(b"\n")[:_HEAD_LINES]:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _detect_file(path: Path) -> str:
    if not regular_file(path):
        raise ImportFailed(f"{path} is not a regular file or folder")
    if "tfevents" in path.name:
        raise ImportFailed(f"{path} is a TensorBoard event file: import its folder {path.parent}")
    if path.stat().st_size == 0:
        raise ImportFailed(f"{path} is empty: nothing to import yet")
    rows = _head_rows(path)
    if any(is_verl_line(row) for row in rows):
        return VERL
    if any(isinstance(row, dict) and "step" in row for row in rows):
        raise ImportFailed(
            f"{path} looks like tinker-cookbook's metrics.jsonl: import its folder {path.parent}"
        )
    raise ImportFailed(
        f'{path}: not a format tviz imports: no verl metrics lines ({{"step": N, "data": {{...}}}})'
        " among its first lines (tviz also imports tinker-cookbook run folders and TensorBoard"
        " log folders)"
    )


def _detect_folder(path: Path) -> str:
    if _is_cookbook_folder(path):
        return COOKBOOK
    if event_dirs(path):
        return TENSORBOARD
    if regular_file(path / "metrics.jsonl"):
        return COOKBOOK
    if any(ROLLOUT_FILE.match(p.name) for p in path.iterdir()):
        raise ImportFailed(
            f"{path} looks like verl's rollout_data_dir: import verl's metrics file with"
            f" --rollouts {path}"
        )
    raise ImportFailed(
        f"{path}: not a format tviz imports: no metrics.jsonl (tinker-cookbook run folder), no"
        " events.out.tfevents.* at any depth (TensorBoard); verl's metrics file is a .jsonl file"
    )


def detect(path: str | os.PathLike[str]) -> str:
    """Which of FORMATS `path` is. Raises ImportFailed, saying why, when it is none of them."""
    target = Path(path).expanduser()
    try:
        if not target.exists():
            raise ImportFailed(f"no such file or folder: {target}")
        return _detect_folder(target) if target.is_dir() else _detect_file(target)
    except OSError as exc:
        raise ImportFailed(f"cannot read {exc.filename or target}: {exc.strerror or exc}") from None


@dataclass
class ImportReport:
    """What `import_path` did, for the command to say."""

    format: str  # one of FORMATS
    runs: list[RunImport]  # the runs it wrote into, or found up to date
    warnings: list[str]  # what it could not read, one line each
    lines: list[str]  # what it did, for a person: the first line says it all
    changed: bool  # it wrote something


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _summary(kind: str, path: Path, db: Path, outcome: Outcome) -> ImportReport:
    """One line saying what was imported (or that nothing was new), then how to see it."""
    runs = outcome.runs
    report = ImportReport(kind, runs, outcome.warnings, [], any(run.changed for run in runs))
    names = ", ".join(f'"{run.run_name}"' for run in runs)
    into = f"run {names}" if len(runs) == 1 else f"{len(runs)} runs ({names})"
    if not runs:
        report.lines.append(f"nothing to import in {path}: no scalars or text yet")
    elif not report.changed:
        verb = "is" if len(runs) == 1 else "are"
        report.lines.append(f"{into} ({db}) {verb} up to date: nothing new in {path}")
    if not report.changed:
        return report
    metrics = set().union(*(run.metrics for run in runs))
    parts = [_count(sum(r.steps for r in runs), "step"), _count(len(metrics), "metric")]
    groups = sum(r.groups for r in runs)
    if groups:
        parts.append(
            f"{_count(sum(r.samples for r in runs), 'sample')} in {_count(groups, 'group')}"
        )
    texts = sum(r.texts for r in runs)
    if texts:
        parts.append(_count(texts, "text"))
    what = "verl metrics" if kind == VERL else "TensorBoard events"
    report.lines.append(f"imported {what}: {', '.join(parts)} into {into} ({db})")
    report.lines.append(f"build the report: tviz build --db {db}")
    return report


def _import_cookbook(path: Path, db: Path, name: str | None) -> ImportReport:
    from tviz.adapters.cookbook import CookbookImportError, import_cookbook_run

    try:
        result = import_cookbook_run(path, db, name=name)
    except CookbookImportError as exc:
        raise ImportFailed(str(exc)) from None
    run = RunImport(result.run_id, result.run_name, db, steps=result.metric_steps_written)
    run.groups, run.samples = result.rollout_groups_written, result.trajectories_written
    what = f"{result.run_name} ({result.run_id}) in {db}"
    if not result.changed:
        lines = [f"{what} is up to date: nothing new in {path}"]
    else:
        lines = [
            f"imported {what}: {result.metric_steps_written} steps of metrics,"
            f" {result.rollout_groups_written} rollout groups ({result.trajectories_written}"
            f" trajectories) from {result.rollout_steps_written} iterations"
            + ("" if result.finished else "; the run is not finished, import again to update it"),
            f"build the report: tviz build --db {db}",
        ]
    return ImportReport(COOKBOOK, [run], list(result.warnings), lines, result.changed)


def import_path(
    path: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    rollouts: str | os.PathLike[str] | None = None,
) -> ImportReport:
    """Import PATH (a cookbook run folder, verl's metrics file, a TensorBoard log folder) into
    the database, or bring an earlier import of it up to date.

    Args:
        path: what to import; `detect` tells its format.
        db_path: the tviz database; default `$TVIZ_DB_PATH`, else `~/.tviz/tviz.db`.
        name: the run's name at its first import (a TensorBoard folder: the prefix of its runs).
        rollouts: verl's `trainer.rollout_data_dir` (verl only).

    Raises:
        ImportFailed: PATH is none of the formats or cannot be read, or the database cannot be
            read or written; the message is one line.
    """
    target = Path(path).expanduser()
    kind = detect(target)
    if rollouts is not None and kind != VERL:
        raise ImportFailed(f"--rollouts goes with verl's metrics file; {target} is {kind} data")
    db = Path(db_path).expanduser() if db_path is not None else schema.default_db_path()
    try:
        if kind == COOKBOOK:
            return _import_cookbook(target, db, name)
        if kind == VERL:
            outcome = import_verl(target, db, name=name, rollouts_dir=rollouts)
        else:
            outcome = import_tensorboard(target, db, name=name)
    except (sqlite3.Error, schema.SchemaError) as exc:
        raise ImportFailed(f"cannot write {db}: {exc}") from None
    except OSError as exc:
        raise ImportFailed(f"cannot read {exc.filename or target}: {exc.strerror or exc}") from None
    return _summary(kind, target, db, outcome)
