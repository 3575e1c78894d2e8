"""The rollout files of an iteration folder: the training ones and each eval set's.

tinker-cookbook writes, in `iteration_NNNNNN/`, `train_rollout_summaries.jsonl` and
`train_logtree.json` for the training batch, and for each evaluator that samples rollouts
(`RLTestSetEvaluator`, labelled e.g. `test`) `eval_<label>_rollout_summaries.jsonl` and
`eval_<label>_logtree.json`, both of the same format. Each pair is one `Source`: its groups are
imported at the iteration's step, the eval ones with `eval_name` set to the label.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Source", "iteration_sources"]

_EVAL_FILE = re.compile(r"^eval_(.+)_(?:rollout_summaries\.jsonl|logtree\.json)$")


@dataclass(frozen=True)
class Source:
    """One iteration's rollouts of one kind: training (`eval_name` None) or an eval set's."""

    step: int
    directory: Path
    eval_name: str | None = None

    @property
    def base(self) -> str:
        """The files' name prefix, as the cookbook's `base_name`."""
        return "train" if self.eval_name is None else f"eval_{self.eval_name}"

    @property
    def summaries(self) -> Path:
        return self.directory / f"{self.base}_rollout_summaries.jsonl"

    @property
    def logtree(self) -> Path:
        return self.directory / f"{self.base}_logtree.json"

    @property
    def files(self) -> list[Path]:
        return [self.summaries, self.logtree]

    @property
    def key(self) -> tuple[int, str | None]:
        return (self.step, self.eval_name)


def iteration_sources(step: int, directory: Path) -> list[Source]:
    """The training source (when its files are there) and each eval set's, by name."""
    try:
        names = set(os.listdir(directory))
    except OSError:
        return []
    out = []
    if {"train_rollout_summaries.jsonl", "train_logtree.json"} & names:
        out.append(Source(step, directory))
    evals = {m.group(1) for name in names if (m := _EVAL_FILE.match(name))}
    out += [Source(step, directory, name) for name in sorted(evals)]
    return out
