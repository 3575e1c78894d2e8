"""What the read side returns: plain dataclasses of runs, metric series and rollouts.

What they hold is what they say: a time is None or Unix seconds a page can show, text is `str`
(bad bytes decoded with U+FFFD), a step is an int. They are the read side's own, apart from
the write contract in `tviz/records.py`: what a page needs from the rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from tviz.names import REWARD_METRICS, run_page, run_slug

# A run with no end and no data for this long is shown as quiet rather than running.
QUIET_AFTER_S = 300.0

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# Unix seconds a page can show: from 1970 to the end of year 9999. Anything else in a time
# column (nanoseconds, 1e20, infinity, a year-0 date, text) is not a time: shown as unknown.
MAX_TIME = 253_402_300_800.0
# Config levels shown; deeper ones become a short note (no real config comes near it, and the
# page draws the config as a nested tree).
MAX_CONFIG_DEPTH = 32


class StoreError(Exception):
    """The database cannot be read; the message is one line for a person."""


class RunNotFound(StoreError):
    """`load_run` was asked for a run the file does not hold (any more)."""


@dataclass(frozen=True)
class RunSummary:
    id: str
    name: str
    type: str
    modality: str
    status: str  # "running", "finished" or "crashed", as the writer left it
    started_at: float | None  # Unix seconds
    ended_at: float | None
    last_data_at: float | None
    num_steps: int
    last_step: int | None
    latest_reward: float | None
    best_reward: float | None
    num_rollouts: int
    num_trajectories: int
    num_tokens: int  # sampled (action) tokens, summed over steps
    model: str | None
    tviz_version: str | None
    project: str | None = None  # runs.project, as the logger was given it
    group: str | None = None  # runs.run_group: runs of one experiment (seeds) drawn together

    @property
    def slug(self) -> str:
        return run_slug(self.name, self.id)

    @property
    def page(self) -> str:
        """The run's page, relative to the site's folder (and so to the index)."""
        return run_page(self.name, self.id)

    @property
    def duration_s(self) -> float | None:
        end = self.ended_at or self.last_data_at
        if self.started_at is None or end is None:
            return None
        return max(0.0, end - self.started_at)

    def is_quiet(self, now: float | None = None) -> bool:
        """Still marked running, but nothing arrived for QUIET_AFTER_S."""
        if self.status != "running" or self.last_data_at is None:
            return False
        return (now if now is not None else time.time()) - self.last_data_at > QUIET_AFTER_S


@dataclass(frozen=True)
class Series:
    """One metric over steps. Non-finite values are kept as float nan / inf."""

    name: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class Trajectory:
    idx: int
    reward: float
    output_text: str | None = None
    output_tokens: list[int] | None = None
    logprobs: list[float | None] | None = None
    step_rewards: list[float] | None = None
    turns: list[dict[str, Any]] | None = None
    pred_lat: float | None = None
    pred_lon: float | None = None
    distance_km: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rollout:
    """One prompt's group of sampled trajectories at one step."""

    id: int
    step: int
    group_idx: int
    prompt_text: str | None
    trajectories: list[Trajectory]
    mean_reward: float | None = None
    best_reward: float | None = None
    image_path: str | None = None
    gt_lat: float | None = None
    gt_lon: float | None = None
    city: str | None = None
    country: str | None = None
    prompt_tokens: list[int] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    eval_name: str | None = None  # the eval set's name; None for a training group


@dataclass(frozen=True)
class LongText:
    key: str
    text: str
    ts: float | None


@dataclass(frozen=True)
class RunData:
    """Everything about one run, read at one moment."""

    summary: RunSummary
    config: dict[str, Any]
    metrics: dict[str, Series]  # numeric metrics by the name they were logged with
    text_metrics: dict[str, list[tuple[int, str]]]  # non-numeric ones: (step, text)
    summaries: dict[str, float | str | None]  # values logged without a step
    rollouts: list[Rollout]  # training groups, ordered by step, then group
    long_texts: list[LongText]
    schema_version: int
    db_name: str
    # What of the run the file holds in a form no page can show, one sentence each: rows
    # whose step is not a whole number, left out.
    notices: list[str] = field(default_factory=list)
    # Eval groups (`eval_name` set), by eval set, step, then group: never in `rollouts`, nor
    # in any training figure (counts, steps, charts, the samples table).
    eval_rollouts: list[Rollout] = field(default_factory=list)

    def reward_series(self) -> Series | None:
        """The run's main reward metric, by the names tinker-cookbook and 0.2.x use."""
        for name in REWARD_METRICS:
            if name in self.metrics:
                return self.metrics[name]
        return None


def find_run_in(runs: list[RunSummary], name_or_id: str, where: str) -> RunSummary:
    """A run by exact id, else by exact name (the newest of that name: `runs` are newest
    first), else by a prefix of its id that only it has. `where` names the files in the
    message when nothing matches. Over the runs of every file at once, a name or prefix in one
    file never wins over an exact id in another."""
    if not name_or_id:
        raise StoreError("an empty run name or id matches nothing")
    for pick in (
        [r for r in runs if r.id == name_or_id],
        [r for r in runs if r.name == name_or_id],
    ):
        if pick:
            return pick[0]
    prefixed = [r for r in runs if r.id.startswith(name_or_id)]
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        ids = ", ".join(r.id for r in prefixed[:5])
        raise StoreError(f"{name_or_id!r} is the start of several run ids ({ids}): say more")
    raise StoreError(f"no run named or with id {name_or_id!r} in {where}")
