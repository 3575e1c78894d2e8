"""What an import reports: its `ImportResult`, or a `CookbookImportError` for a folder it cannot
import."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CookbookImportError", "ImportResult"]


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
