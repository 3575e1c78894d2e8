"""What the importers share: their error, what one import wrote into one run, the run's id, what
the database holds already, and the strict `TvizLogger` every import writes through.

The diff against the database is the cookbook importer's (`tviz.adapters.cookbook.plan`): a
metric value already stored is not written again, a changed one is (a resumed run rewrote it).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tviz import schema
from tviz.adapters.cookbook.plan import Imported, new_metric_steps, read_imported
from tviz.logger import TvizLogger
from tviz.store import Store, StoreError

__all__ = [
    "ImportFailed",
    "Imported",
    "RunImport",
    "new_metric_steps",
    "regular_file",
    "run_logger",
    "stable_run_id",
    "stored_run",
    "stored_text_keys",
]


class ImportFailed(Exception):
    """PATH cannot be imported; the message is one line for a person."""


def stable_run_id(kind: str, path: Path) -> str:
    """The id of the run imported from `path`: stable for the path, whatever it holds."""
    resolved = str(path.expanduser().resolve())
    return f"{kind}-" + hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:10]


def regular_file(path: Path) -> bool:
    """A file that can be read to its end (not a FIFO, a socket or a device, which may block)."""
    try:
        return path.is_file()
    except OSError:
        return False


@dataclass
class RunImport:
    """What one import wrote into one run."""

    run_id: str
    run_name: str
    db_path: Path
    steps: int = 0  # steps that got new or changed metric values
    metrics: set[str] = field(default_factory=set)  # the names of the values written
    rollout_steps: int = 0
    groups: int = 0
    samples: int = 0
    texts: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.steps or self.groups or self.texts)


def stored_run(db_path: Path, run_id: str) -> Imported | None:
    """The run as the database holds it (None when neither is there)."""
    try:
        return read_imported(db_path, run_id)
    except StoreError as exc:
        raise ImportFailed(str(exc)) from None


def stored_text_keys(db_path: Path, run_id: str) -> set[str]:
    """The keys of the run's long texts in the database."""
    try:
        with Store(db_path) as store:
            return {t.key for t in store.load_run(run_id, rollout_steps=()).long_texts}
    except StoreError as exc:
        raise ImportFailed(str(exc)) from None


@contextmanager
def run_logger(result: RunImport, started_at: float | None) -> Iterator[TvizLogger]:
    """A strict logger of `result`'s run, closed with the run left open (a log folder has no end
    marker: a later import may add more). A database that cannot be written is an ImportFailed;
    what was written before is committed, so the next import resumes from there."""
    logger = None
    try:
        logger = TvizLogger(
            result.db_path,
            run_name=result.run_name,
            run_id=result.run_id,
            started_at=started_at,
            strict=True,
        )
        yield logger
    except (sqlite3.Error, schema.SchemaError) as exc:
        raise ImportFailed(f"cannot write {result.db_path}: {exc}") from None
    finally:
        if logger is not None:
            logger.close(None)


@dataclass
class Outcome:
    """What an import of a path did: the runs it wrote into, and what it could not read."""

    runs: list[RunImport]
    warnings: list[str] = field(default_factory=list)
