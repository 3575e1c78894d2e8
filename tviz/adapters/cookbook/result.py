"""What an import reports: its `ImportResult`, or a `CookbookImportError` for a folder it cannot
import, and the `Problems` it met on the way (said once per kind, never as a traceback)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CookbookImportError", "ImportResult", "NotRegularFile", "Problems"]


class CookbookImportError(Exception):
    """The directory cannot be imported; the message is one line for a person."""


class NotRegularFile(OSError):
    """A name the importer reads is not a regular file (a FIFO would block the read for
    ever; a device may never end)."""


class Problems:
    """What an import left out or could not use, by kind: `lines()` says each kind in one line
    with the first few things it concerns."""

    SHOWN = 3

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, kind: str, item: str) -> None:
        self.items.setdefault(kind, []).append(item)

    def unreadable(self, path: Path, exc: OSError) -> None:
        """A file that could not be read: not a regular file (a FIFO, which would block for
        ever, a device, a folder), or refused by the system."""
        shown = path.name
        if path.parent.name.startswith("iteration_"):
            shown = f"{path.parent.name}/{shown}"
        if isinstance(exc, NotRegularFile):
            self.add("skipped what is not a regular file (a FIFO, a device or a folder)", shown)
        else:
            self.add("skipped files that could not be read", f"{shown} ({exc.strerror or exc})")

    def lines(self) -> list[str]:
        out = []
        for kind, items in self.items.items():
            shown = ", ".join(items[: self.SHOWN])
            if len(items) > self.SHOWN:
                shown += f" and {len(items) - self.SHOWN:,} more"
            out.append(f"{kind}: {shown}")
        return out


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
    eval_groups_written: int = 0  # eval sets' groups (`eval_<name>_*` files)
    eval_trajectories_written: int = 0
    metric_steps_replaced: int = 0  # steps a resumed run wrote again
    rollout_steps_replaced: int = 0  # iterations whose files changed since they were imported
    config_written: bool = False
    finished: bool = False  # the directory holds a finished run
    skipped_lines: int = 0  # malformed JSON lines left out
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.metric_values_written
            or self.rollout_groups_written
            or self.eval_groups_written
            or self.config_written
            or self.metric_steps_replaced
            or self.rollout_steps_replaced
        )
