"""Which of a cookbook folder's rollout files were written again since an import read them.

On resume from a checkpoint at step N, tinker-cookbook (`TrainingRunStore.truncate_metrics`)
copies metrics.jsonl unchanged to `metrics.jsonl.pre_resume_<N:06d>`, drops the rows with
`step >= N` from metrics.jsonl and runs the iterations from N again, overwriting their
`iteration_NNNNNN/` files. So:

- a step that metrics.jsonl holds at or after a resume point was written by the session after
  the resume: its row is the step's whole truth, and replaces what an earlier import stored;
- a step only a `pre_resume` file holds (the old session ran past the checkpoint, the new one
  has not got there yet, or never will) stays as the newest such file has it;
- an iteration's files are identified by `files_stamp`: their sizes and modification times,
  and a digest of their bytes. Files whose stamp changed since the import that stored them
  were written again (a resume, or a run still writing them) and are imported anew; files
  that are gone (folders pruned to save space) change nothing in the database.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["STAMP_KEY", "files_stamp", "same_files"]

# Rollout extras key of the stamp of the files the rollouts were read from.
STAMP_KEY = "cookbook_files"


def _stats(paths: list[Path]) -> list[list[Any]]:
    out = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append([path.name, st.st_size, st.st_mtime_ns])
    return out


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode("utf-8", "surrogatepass") + b"\0")
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            digest.update(b"\0unreadable")
    return digest.hexdigest()[:32]


def files_stamp(paths: list[Path]) -> dict[str, Any]:
    """What identifies the files rollouts are read from: each one's name, size and
    modification time, and a digest of their bytes (kept in the rollouts' extras)."""
    present = [p for p in paths if os.path.isfile(p)]
    return {"stat": _stats(present), "sha256": _digest(present)}


def same_files(paths: list[Path], stored: Any) -> bool:
    """Whether the files are those `stored` (a `files_stamp`) was made of: same sizes and
    times, or, when only their times changed (a copy), the same bytes."""
    if not isinstance(stored, dict):
        return False
    present = [p for p in paths if os.path.isfile(p)]
    if _stats(present) == stored.get("stat"):
        return True
    return _digest(present) == stored.get("sha256")
