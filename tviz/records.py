"""The written contract of what a way in hands the writer: a rollout, its trajectories, their turns.

Every way in (the Tinker adapter, the tinker-cookbook importer, the demo, a user's own loop)
builds these plain dicts and passes a list of rollouts to `TvizLogger.log_rollouts(rollouts,
step)`. The dicts are TypedDicts, so they cost nothing at run time and a type checker can hold an
adapter to the contract. Every key is optional except `Rollout.trajectories`.

A key that is not declared here is still kept: the writer stores it in the row's `extras` JSON
(as 0.2.x did), and the report shows it as data of the group or trajectory. Lists may be Python
lists, tuples or anything with `.tolist()` (numpy arrays, tensors); numbers may be Python or numpy
scalars or 0-d tensors. Text is untrusted: the writer stores it as given (lone surrogates
replaced), the report escapes it.

The read side does not use these: `tviz.store` returns its own dataclasses (`RolloutRow`,
`TrajectoryRow`, ...), documented there, which are what a page needs from the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

__all__ = ["ROLLOUT_KEYS", "TRAJECTORY_KEYS", "Rollout", "Trajectory", "Turn"]


class Turn(TypedDict, total=False):
    """One exchange of a multi-turn episode: what the environment showed, what the model did."""

    turn_idx: int
    # What the environment added since the previous turn (the whole prompt for the first turn).
    observation_text: str | None
    action_text: str | None
    reward: float | None
    episode_done: bool
    metrics: dict[str, Any]
    logs: dict[str, Any]
    ob_len: int | None  # tokens of the observation
    # Tokens of the action: splits the trajectory's `output_tokens` / `logprobs` into turns.
    ac_len: int | None
    stop_reason: str | None


class Trajectory(TypedDict, total=False):
    """One sampled answer (or episode) of a group."""

    trajectory_idx: int  # default: its position in the group
    reward: float  # the total reward; NaN and infinities are kept (0.0 when missing, as 0.2.x)
    output_text: str | None
    output_tokens: list[int] | None  # sampled token ids, every turn's concatenated
    # One per output token; None for a token sampled without one. (A Sequence, so that a
    # list[float] fits too; likewise step_rewards.)
    logprobs: Sequence[float | None] | None
    token_texts: list[str] | None  # optional: each output token's text, for the logprob heatmap
    step_rewards: Sequence[float | None] | None  # per turn, for multi-turn episodes
    turns: list[Turn]
    # Vision (geolocation) runs: the model's guess and its distance from the truth.
    pred_lat: float | None
    pred_lon: float | None
    distance_km: float | None


class Rollout(TypedDict, total=False):
    """A group: the trajectories sampled for one prompt at one step (GRPO's unit)."""

    trajectories: list[Trajectory]  # required
    group_idx: int  # default: its position in the list passed to log_rollouts
    prompt_text: str | None
    prompt_tokens: list[int] | None
    # Vision runs: an image file (inside the database's folder, to be embedded in pages) and
    # its true place.
    image_path: str | None
    gt_lat: float | None
    gt_lon: float | None
    city: str | None
    country: str | None
    # None for training rollouts; the name of the eval set ("test", ...) for eval rollouts,
    # which reports keep apart from training ones.
    eval_name: str | None


# The keys the writer puts in columns of their own (0.2.x's tables); any other key of a rollout
# or trajectory goes to the row's `extras`. `mean_reward` and `best_reward` are not taken from the
# caller: the writer computes them from the trajectories' rewards.
ROLLOUT_KEYS = frozenset((*Rollout.__annotations__, "mean_reward", "best_reward"))
# `token_texts` has no column: it lives in `extras`, where the report reads it.
TRAJECTORY_KEYS = frozenset(k for k in Trajectory.__annotations__ if k != "token_texts")
