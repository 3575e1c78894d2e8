"""Where a logger runs: disabled by `TVIZ_MODE`, or one rank of a distributed job.

torchrun, accelerate, DeepSpeed's launcher and most others start one process per rank with
`RANK` (global), `LOCAL_RANK` and `WORLD_SIZE` set. By default only global rank 0 logs and the
other ranks' loggers do nothing. With `all_ranks` (`TvizLogger(all_ranks=True)` or
`TVIZ_ALL_RANKS=1`) every rank logs into one run: the run id is `run_id=` if given, else made
from the launcher's job id (`TORCHELASTIC_RUN_ID`, which torchrun and accelerate set, else
`SLURM_JOB_ID`), the same on every rank.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Launch", "all_ranks_wanted", "disabled", "launch"]

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Launch:
    rank: int | None  # global rank; None when not one of several ranks
    world_size: int
    job_id: str | None  # the launcher's id of the job, the same on every rank

    @property
    def distributed(self) -> bool:
        return self.rank is not None and self.world_size > 1

    def run_id(self) -> str | None:
        """A run id every rank of the job computes alike (8 hex digits, like a random one)."""
        if self.job_id is None:
            return None
        return hashlib.sha1(f"tviz-job:{self.job_id}".encode()).hexdigest()[:8]


def disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """`TVIZ_MODE=disabled` (or `off`): every logger is a no-op, no file is made."""
    return environ.get("TVIZ_MODE", "").strip().lower() in ("disabled", "off")


def all_ranks_wanted(option: bool | None, environ: Mapping[str, str] = os.environ) -> bool:
    if option is not None:
        return bool(option)
    return environ.get("TVIZ_ALL_RANKS", "").strip().lower() in _TRUE


def launch(environ: Mapping[str, str] = os.environ) -> Launch:
    rank = _int(environ.get("RANK"))
    world = _int(environ.get("WORLD_SIZE")) or 1
    job = None
    for key in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"):
        value = environ.get(key, "").strip()
        if value and value.lower() != "none":  # torchrun without --rdzv-id says "none"
            job = f"{key}={value}"
            if key == "SLURM_JOB_ID" and environ.get("SLURM_STEP_ID"):  # one srun of several
                job += f".{environ['SLURM_STEP_ID']}"
            break
    return Launch(
        rank=rank if rank is not None and rank >= 0 else None, world_size=world, job_id=job
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
