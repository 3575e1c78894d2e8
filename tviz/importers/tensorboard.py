"""Import TensorBoard event files (OpenRLHF, verl's `tensorboard` logger, TRL, anything that writes
through a `SummaryWriter`): scalars as metrics by tag and step, text summaries as long texts.

Runs are what TensorBoard shows: every folder below the log folder that holds event files (a file
whose name contains "tfevents", TensorBoard's own rule) is one run, named by its path below the
log folder, its files read in name order. The records are read with TensorBoard's own loader and
its compatibility layers (`data_compat`, `dataclass_compat`: legacy `simple_value` scalars and
TF2 tensor summaries alike); `tensorboard` is an optional dependency, imported only here.

A record cut short (a writer still writing, or a truncated file) ends the reading of that file
and is reported; the events before it are imported. Importing again adds only what is new: a
scalar already stored at its step is not written again, a text already stored under its key
neither. Histograms, images, audio and the like are left out (and counted).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tviz import schema
from tviz.importers import common
from tviz.importers.common import ImportFailed, Outcome, RunImport

__all__ = ["EventRun", "event_dirs", "import_tensorboard", "is_event_file", "read_event_run"]

SOURCE = "tensorboard"
INSTALL_HINT = (
    'reading TensorBoard logs needs the tensorboard package: pip install "tviz[tensorboard]"'
)
# tensorboardX and torch.utils.tensorboard put this after the tag of `add_text`.
_TEXT_SUFFIX = "/text_summary"
# The bytes around a TFRecord's payload: length (8), its CRC (4), the payload's CRC (4).
_RECORD_OVERHEAD = 16


def is_event_file(name: str) -> bool:
    return "tfevents" in name


def event_dirs(root: Path) -> dict[Path, list[Path]]:
    """Every folder at or below `root` that holds event files -> its event files, in name order.

    Links to folders are not followed; only regular files are read (never a FIFO).
    """
    out: dict[Path, list[Path]] = {}
    for folder, subdirs, names in os.walk(root, onerror=None):
        subdirs.sort()
        files = [Path(folder, n) for n in sorted(names) if is_event_file(n)]
        files = [f for f in files if common.regular_file(f)]
        if files:
            out[Path(folder)] = files
    return out


def _tensorboard() -> SimpleNamespace:
    """TensorBoard's reader modules, or an ImportFailed that says how to install them."""
    try:
        from google.protobuf.message import DecodeError
        from tensorboard import data_compat, dataclass_compat
        from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
        from tensorboard.compat.proto import event_pb2
        from tensorboard.util import tensor_util
    except ImportError:
        raise ImportFailed(INSTALL_HINT) from None
    return SimpleNamespace(
        DecodeError=DecodeError,
        data_compat=data_compat,
        dataclass_compat=dataclass_compat,
        RawEventFileLoader=RawEventFileLoader,
        Event=event_pb2.Event,
        make_ndarray=tensor_util.make_ndarray,
    )


@dataclass
class EventRun:
    """What one run's event files hold."""

    scalars: dict[int, dict[str, float]] = field(default_factory=dict)  # step -> tag -> value
    times: dict[int, float] = field(default_factory=dict)  # step -> its latest wall time
    texts: dict[str, str] = field(default_factory=dict)  # "tag (step N)" -> text
    started_at: float | None = None
    events: int = 0
    left_out: Counter[str] = field(default_factory=Counter)  # plugin -> values not read
    cut: list[str] = field(default_factory=list)  # files whose end could not be read


def _text_of(array: Any) -> str:
    """A text summary's tensor (a string, or a list or table of strings) as one text."""

    def cell(value: Any) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    if array.ndim == 0:
        return cell(array.item())
    if array.ndim == 1:
        return "\n".join(cell(v) for v in array)
    return "\n".join(" | ".join(cell(v) for v in row.reshape(-1)) for row in array)


def _add_value(run: EventRun, tb: SimpleNamespace, step: int, value: Any, plugin: str) -> bool:
    """One summary value into `run`; False when it is of a kind tviz does not show."""
    if not value.HasField("tensor") or plugin not in ("scalars", "text"):
        return False
    try:
        array = tb.make_ndarray(value.tensor)
    except (ValueError, TypeError):  # a dtype or shape TensorBoard itself cannot read
        return False
    if plugin == "text":
        tag = value.tag.removesuffix(_TEXT_SUFFIX)
        run.texts[f"{tag} (step {step})"] = _text_of(array)
        return True
    if array.size != 1:
        return False
    run.scalars.setdefault(step, {})[value.tag] = float(array.reshape(-1)[0])
    return True


def _read_file(path: Path, run: EventRun, tb: SimpleNamespace, metadata: dict) -> None:
    size = path.stat().st_size
    read = 0
    try:
        for record in tb.RawEventFileLoader(str(path)).Load():
            read += len(record) + _RECORD_OVERHEAD
            event = tb.data_compat.migrate_event(tb.Event.FromString(record))
            for migrated in tb.dataclass_compat.migrate_event(event, metadata):
                _add_event(run, tb, migrated, metadata)
    except tb.DecodeError:
        pass  # a record whose checksum holds but whose content is no event: stop there
    if read < size:
        run.cut.append(f"{path} (read {read:,} of {size:,} bytes)")


def _add_event(run: EventRun, tb: SimpleNamespace, event: Any, metadata: dict) -> None:
    run.events += 1
    wall = event.wall_time
    if math.isfinite(wall) and wall > 0:
        run.started_at = wall if run.started_at is None else min(run.started_at, wall)
    if event.WhichOneof("what") != "summary":
        return
    step = int(event.step)
    for value in event.summary.value:
        # The plugin of a tag is named by its first value; TF2 writers leave it out after that.
        first = metadata.get(value.tag)
        plugin = (first or value.metadata).plugin_data.plugin_name
        if _add_value(run, tb, step, value, plugin):
            if math.isfinite(wall) and wall > 0:
                run.times[step] = max(run.times.get(step, wall), wall)
        else:
            run.left_out[plugin or "other"] += 1


def read_event_run(files: list[Path]) -> EventRun:
    """One run's event files, in order: a later value of a tag at a step replaces an earlier."""
    tb = _tensorboard()
    run = EventRun()
    metadata: dict[str, Any] = {}  # tag -> its first SummaryMetadata, for the whole run
    for path in files:
        _read_file(path, run, tb, metadata)
    return run


# -- the import -----------------------------------------------------------------------------------


def _run_name(root: Path, folder: Path, name: str | None) -> str:
    rel = folder.relative_to(root).as_posix()
    if rel == ".":
        return name or root.resolve().name
    return f"{name}/{rel}" if name else rel


def _import_run(run: RunImport, events: EventRun) -> None:
    imported = common.stored_run(run.db_path, run.run_id)
    if imported is not None:
        run.run_name = imported.name
    steps = common.new_metric_steps(events.scalars, imported)
    old_keys = set()
    if imported and events.texts:
        old_keys = common.stored_text_keys(run.db_path, run.run_id)
    texts = {k: v for k, v in events.texts.items() if k not in old_keys}
    if not (steps or texts or imported is None):
        return  # opening a logger would touch the run's row: leave it as it is
    with common.run_logger(run, events.started_at) as logger:
        for step, values in steps.items():
            logger.log_metrics(values, step=step, timestamp=events.times.get(step))
            run.steps += 1
            run.metrics.update(values)
        for key, text in texts.items():
            logger.log_long_text(key, text)
            run.texts += 1


def import_tensorboard(
    log_dir: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
) -> Outcome:
    """Import (or bring up to date) every run of a TensorBoard log folder.

    Args:
        log_dir: the folder given to TensorBoard's `--logdir`.
        db_path: the tviz database; default `$TVIZ_DB_PATH`, else `~/.tviz/tviz.db`.
        name: at the first import, the name of the run in `log_dir` itself (default the
            folder's name) and the prefix of the runs below it (default none).

    Raises:
        ImportFailed: no event files, none with a readable event, no tensorboard package, or a
            database that cannot be read or written.
    """
    root = Path(log_dir).expanduser()
    folders = event_dirs(root)
    if not folders:
        raise ImportFailed(f"{root} holds no TensorBoard event files (events.out.tfevents.*)")
    db = Path(db_path).expanduser() if db_path is not None else schema.default_db_path()
    outcome = Outcome([])
    readable = 0
    for folder, files in folders.items():  # one run in memory at a time
        events = read_event_run(files)
        readable += bool(events.events)
        outcome.warnings += [
            f"{cut}: the rest is not a whole event (still being written, or truncated);"
            " the events before it were imported"
            for cut in events.cut
        ]
        left_out = ", ".join(f"{n} {kind}" for kind, n in sorted(events.left_out.items()))
        if left_out:
            outcome.warnings.append(f"{folder}: left out {left_out} value(s)")
        if not (events.scalars or events.texts):
            outcome.warnings.append(f"{folder}: no scalars or text to import")
            continue
        run = RunImport(common.stable_run_id(SOURCE, folder), _run_name(root, folder, name), db)
        _import_run(run, events)
        outcome.runs.append(run)
    if not readable:
        count = sum(len(f) for f in folders.values())
        raise ImportFailed(f"{root}: none of its {count} event file(s) holds a readable event")
    return outcome
