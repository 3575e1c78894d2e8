"""`import_cookbook_run`: read the folder, plan what is new, write it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tviz import schema
from tviz.adapters.cookbook.files import read_run_folder
from tviz.adapters.cookbook.plan import plan_import, read_imported
from tviz.adapters.cookbook.result import CookbookImportError, ImportResult
from tviz.adapters.cookbook.write import write_plan
from tviz.store import StoreError

__all__ = ["import_cookbook_run", "run_id_for"]


def run_id_for(log_dir: str | os.PathLike[str]) -> str:
    """The run id an import of `log_dir` uses: stable for the directory, whatever its content."""
    resolved = str(Path(log_dir).expanduser().resolve())
    return "cookbook-" + hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:10]


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
    folder = read_run_folder(directory)
    db = Path(db_path).expanduser() if db_path is not None else schema.default_db_path()
    rid = run_id or run_id_for(directory)
    result = ImportResult(rid, name or directory.resolve().name, db)
    result.warnings += folder.warnings
    result.skipped_lines += folder.metrics.skipped
    result.finished = folder.finished

    try:
        imported = read_imported(db, rid)
    except StoreError as exc:
        raise CookbookImportError(str(exc)) from None
    if imported is not None:
        result.run_name = imported.name
    plan = plan_import(folder, imported)
    if imported is not None and plan.empty:
        result.warnings += folder.problems.lines()
        return result  # opening a logger would touch the run's row: leave it as it is

    write_plan(plan, folder, result)
    if result.skipped_lines:
        result.warnings.append(f"skipped {result.skipped_lines} malformed JSON line(s)")
    result.warnings += folder.problems.lines()
    return result
