"""Tinker / tinker-cookbook rollouts -> the rollout dicts `TvizLogger.log_rollouts` takes.

The objects are those of tinker-cookbook 0.5 / 0.6 (`tinker_cookbook.rl.types`):

- `TrajectoryGroup`: `trajectories_G`, `final_rewards_G`, `metrics_G`, `get_total_rewards()`,
  optional `rollout_errors` (a list of `RolloutError(error_type, error_message)`).
- `Trajectory`: `transitions`, `final_ob`, optional `stop_reason`.
- `Transition`: `ob` (a `tinker.ModelInput`), `ac` (a `TokensWithLogprobs`), `reward`,
  `episode_done`, `metrics`, optional `logs`.
- `TokensWithLogprobs` (`tinker_cookbook.completers`): `tokens`, `maybe_logprobs`, optional
  `stop_reason`.
- `tinker.ModelInput`: `chunks`, each an `EncodedTextChunk` (`.tokens`), an `ImageChunk`,
  an `ImageAssetPointerChunk` (`.location`) or another kind (audio...).

Everything is read with `getattr`, so older and newer versions work as far as they can, and
nothing from tinker or tinker_cookbook is imported (that would pull in torch).

Text needs a tokenizer (anything with `decode(list[int]) -> str`, e.g. the one from
`tinker_cookbook.tokenizer_utils.get_tokenizer`); without one the token ids are kept and the
text fields are None. Images in an observation become a placeholder such as `[image]`.

The results are the records of `tviz.records`. A multi-turn episode keeps its turns, each a
`tviz.records.Turn`. A later turn's `observation_text` holds only what the environment added since
the previous turn when its observation extends the previous observation plus action (the usual
chat case), so a report can show the conversation turn by turn without repeating it. `ac_len`
splits the trajectory's concatenated `output_tokens` / `logprobs` back into turns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tviz.records import Rollout, Trajectory, Turn

__all__ = [
    "extract_prompt_text",
    "from_tinker_batch",
    "from_tinker_trajectory",
    "from_tinker_trajectory_group",
    "model_input_text",
]

# How a non-text chunk shows in a decoded prompt.
_PLACEHOLDERS = {"image": "[image]", "dmel": "[audio]"}

# One piece of an observation: a token id, or the placeholder string of a non-text chunk.
_Piece = int | str


class _TinkerTrajectory(Trajectory, total=False):
    """A trajectory with what Tinker adds; the writer keeps these keys in its `extras`."""

    metrics: dict[str, Any]  # the group's `metrics_G[i]` (and a one-turn episode's metrics)
    logs: dict[str, Any]  # a one-turn episode's transition logs
    final_reward: float  # the group-computed part of the reward, when not 0
    stop_reason: str


class _TinkerRollout(Rollout, total=False):
    """A group with what Tinker adds; the writer keeps `rollout_errors` in its `extras`."""

    # 0.2.x returned these; the writer recomputes them from the trajectories.
    mean_reward: float | None
    best_reward: float | None
    rollout_errors: list[dict[str, str]]


def _pieces(ob: Any) -> list[_Piece] | None:
    """An observation as a flat list of token ids and placeholders; None if it has no chunks."""
    chunks = getattr(ob, "chunks", None)
    if chunks is None:
        return None
    out: list[_Piece] = []
    for chunk in chunks:
        tokens = getattr(chunk, "tokens", None)
        if tokens is not None:
            out.extend(_ints(tokens))
            continue
        kind = str(getattr(chunk, "type", "") or type(chunk).__name__)
        location = getattr(chunk, "location", None)
        if location:  # an image asset pointer: its path or URL says which image
            out.append(f"[image: {location}]")
        else:
            fallback = "[image]" if "image" in kind.lower() else f"[{kind}]"
            out.append(_PLACEHOLDERS.get(kind, fallback))
    return out


def _ints(tokens: Any) -> list[int]:
    tolist = getattr(tokens, "tolist", None)  # numpy arrays and tensors
    if callable(tolist):
        tokens = tolist()
    return [int(t) for t in tokens]


def _decode(tokens: list[int], tokenizer: Any) -> str | None:
    if tokenizer is None:
        return None
    if not tokens:
        return ""
    try:
        text = tokenizer.decode(tokens)
    except Exception:  # a tokenizer that cannot decode these ids must not stop training
        return f"[{len(tokens)} tokens that the tokenizer could not decode]"
    return text if isinstance(text, str) else str(text)


def _pieces_text(pieces: Sequence[_Piece], tokenizer: Any) -> str | None:
    """Decode runs of token ids, keep placeholders; None when there are tokens but no tokenizer."""
    parts: list[str] = []
    run: list[int] = []
    for piece in pieces:
        if isinstance(piece, int):
            run.append(piece)
            continue
        if run:
            text = _decode(run, tokenizer)
            if text is None:
                return None
            parts.append(text)
            run = []
        parts.append(piece)
    if run:
        text = _decode(run, tokenizer)
        if text is None:
            return None
        parts.append(text)
    return "".join(parts)


def model_input_text(ob: Any, tokenizer: Any = None) -> str | None:
    """The text of a `tinker.ModelInput` (or a plain string); images become placeholders.

    None when the observation holds tokens and no tokenizer was given.
    """
    if ob is None:
        return None
    if isinstance(ob, str):
        return ob
    pieces = _pieces(ob)
    if pieces is None:
        if isinstance(ob, dict):  # 0.2.x accepted dicts with the text under one of these keys
            text = ob.get("text") or ob.get("prompt") or ob.get("content")
            return str(text) if text is not None else None
        return None  # never str(ob): a ModelInput's repr is not a prompt
    return _pieces_text(pieces, tokenizer)


def extract_prompt_text(ob: Any, tokenizer: Any = None) -> str | None:
    """tviz 0.2.x name for `model_input_text`."""
    return model_input_text(ob, tokenizer)


def _ob_len(ob: Any, pieces: list[_Piece] | None) -> int | None:
    try:
        length = getattr(ob, "length", None)
        if isinstance(length, int):
            return length
    except Exception:  # ImageChunk.length raises without expected_tokens
        pass
    return len(pieces) if pieces is not None else None


def _action(ac: Any) -> tuple[list[int], list[float] | None, Any]:
    """(tokens, logprobs or None, stop_reason or None) of a TokensWithLogprobs or a token list."""
    if isinstance(ac, (list, tuple)):
        return _ints(ac), None, None
    tokens = getattr(ac, "tokens", None)
    logprobs = getattr(ac, "maybe_logprobs", None)
    tolist = getattr(logprobs, "tolist", None)
    if callable(tolist):
        logprobs = tolist()
    return (
        _ints(tokens) if tokens is not None else [],
        [float(x) for x in logprobs] if logprobs is not None else None,
        getattr(ac, "stop_reason", None),
    )


def _as_float(value: Any, default: float = 0.0) -> float:
    """`value` as a float, NaN and infinities kept (a reward's truth); `default` if it is none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) and value else {}


def from_tinker_trajectory(
    traj: Any,
    trajectory_idx: int = 0,
    total_reward: float | None = None,
    tokenizer: Any = None,
    *,
    final_reward: float | None = None,
    metrics: dict[str, Any] | None = None,
    token_texts: bool = False,
) -> Trajectory:
    """One `Trajectory` -> a trajectory record for `log_rollouts`.

    Args:
        traj: the trajectory.
        trajectory_idx: its index in the group.
        total_reward: its return as `TrajectoryGroup.get_total_rewards()` gives it; default the
            sum of the step rewards plus `final_reward`.
        tokenizer: decodes the actions (and, for multi-turn episodes, the observations).
        final_reward: the group-computed part of the reward (`final_rewards_G[i]`).
        metrics: the trajectory's group-level metrics (`metrics_G[i]`).
        token_texts: also decode every output token on its own (needs `tokenizer`), so the
            report's logprob heatmap shows words, not cells. Costs a decode per token.
    """
    transitions = list(getattr(traj, "transitions", None) or ())
    output_tokens: list[int] = []
    logprobs: list[float | None] = []
    any_logprobs = False
    step_rewards: list[float] = []
    turns: list[Turn] = []
    texts: list[str | None] = []
    previous: list[_Piece] | None = None  # the last observation followed by the last action
    stop_reason: Any = None
    for turn_idx, transition in enumerate(transitions):
        tokens, turn_logprobs, stop_reason = _action(getattr(transition, "ac", None))
        output_tokens.extend(tokens)
        if turn_logprobs is not None:
            any_logprobs = True
            logprobs.extend(turn_logprobs[: len(tokens)])
            logprobs.extend([None] * (len(tokens) - len(turn_logprobs)))
        else:
            logprobs.extend([None] * len(tokens))
        reward = _as_float(getattr(transition, "reward", 0.0))
        step_rewards.append(reward)
        action_text = _decode(tokens, tokenizer)
        texts.append(action_text)
        if len(transitions) > 1:
            ob = getattr(transition, "ob", None)
            pieces = _pieces(ob)
            new = pieces
            if pieces is not None and previous is not None and pieces[: len(previous)] == previous:
                new = pieces[len(previous) :]
            turn: Turn = {
                "turn_idx": turn_idx,
                "observation_text": (
                    _pieces_text(new, tokenizer) if new is not None else model_input_text(ob)
                ),
                "action_text": action_text,
                "reward": reward,
                "episode_done": bool(getattr(transition, "episode_done", False)),
                "metrics": _dict(getattr(transition, "metrics", None)),
                "logs": _dict(getattr(transition, "logs", None)),
                "ob_len": _ob_len(ob, pieces),
                "ac_len": len(tokens),
            }
            if stop_reason is not None:
                turn["stop_reason"] = str(stop_reason)
            turns.append(turn)
            previous = [*pieces, *tokens] if pieces is not None else None

    final = _as_float(final_reward) if final_reward is not None else 0.0
    if total_reward is None:
        total_reward = sum(step_rewards) + final
    out: _TinkerTrajectory = {
        "trajectory_idx": trajectory_idx,
        "reward": float(total_reward),
        "output_text": None,
        "output_tokens": output_tokens or None,
        "logprobs": logprobs if any_logprobs and logprobs else None,
        "step_rewards": step_rewards or None,
    }
    if None not in texts and texts:
        # A multi-turn output reads as the actions in order; `turns` has them one by one.
        out["output_text"] = "\n\n".join(t for t in texts if t is not None)
    if turns:
        out["turns"] = turns
    if token_texts and tokenizer is not None and output_tokens:
        out["token_texts"] = _token_texts(output_tokens, tokenizer)
    # Extras (kept by the logger in the trajectory's `extras`).
    traj_metrics = dict(metrics or {})
    if len(transitions) == 1:  # one turn: its metrics and logs belong to the trajectory
        traj_metrics = {**_dict(getattr(transitions[0], "metrics", None)), **traj_metrics}
        logs = _dict(getattr(transitions[0], "logs", None))
        if logs:
            out["logs"] = logs
    if traj_metrics:
        out["metrics"] = traj_metrics
    if final_reward is not None and final != 0.0:
        out["final_reward"] = final
    reason = getattr(traj, "stop_reason", None) or stop_reason
    if reason is not None:
        out["stop_reason"] = str(reason)
    return out


def _total_rewards(group: Any, trajectories: list[Any]) -> list[float | None]:
    get = getattr(group, "get_total_rewards", None)
    if callable(get):
        try:
            totals = list(get())
            if len(totals) == len(trajectories):
                return [_as_float(t, math.nan) for t in totals]
        except Exception:  # mismatched lists in a hand-built group: fall back to summing
            pass
    return [None] * len(trajectories)


def _token_texts(tokens: list[int], tokenizer: Any) -> list[str] | None:
    """Each token decoded alone (one batch call where the tokenizer has one)."""
    try:
        batch = getattr(tokenizer, "batch_decode", None)
        if callable(batch):
            return [str(t) for t in batch([[t] for t in tokens])]
        return [str(tokenizer.decode([t])) for t in tokens]
    except Exception:  # no token texts is fine; a stopped training loop is not
        return None


def from_tinker_trajectory_group(
    group: Any,
    group_idx: int = 0,
    prompt_text: str | None = None,
    tokenizer: Any = None,
    *,
    token_texts: bool = False,
) -> Rollout:
    """One `TrajectoryGroup` (one prompt, G samples) -> a rollout record for `log_rollouts`.

    The prompt is the first observation of the first trajectory, decoded with `tokenizer`
    unless `prompt_text` is given. Rollout errors are kept in the rollout's extras.
    """
    trajectories = list(getattr(group, "trajectories_G", None) or ())
    finals = list(getattr(group, "final_rewards_G", None) or ())
    metrics_g = list(getattr(group, "metrics_G", None) or ())
    totals = _total_rewards(group, trajectories)
    out_trajs = [
        from_tinker_trajectory(
            traj,
            idx,
            total_reward=totals[idx],
            tokenizer=tokenizer,
            final_reward=finals[idx] if idx < len(finals) else None,
            metrics=metrics_g[idx] if idx < len(metrics_g) and metrics_g[idx] else None,
            token_texts=token_texts,
        )
        for idx, traj in enumerate(trajectories)
    ]

    first_ob = None
    for traj in trajectories:
        transitions = getattr(traj, "transitions", None)
        if transitions:
            first_ob = getattr(transitions[0], "ob", None)
            break
    prompt_tokens: list[int] | None = None
    if first_ob is not None:
        pieces = _pieces(first_ob)
        if pieces is not None:
            prompt_tokens = [p for p in pieces if isinstance(p, int)] or None
        if prompt_text is None:
            prompt_text = model_input_text(first_ob, tokenizer)

    rewards = [t["reward"] for t in out_trajs if math.isfinite(t["reward"])]
    rollout: _TinkerRollout = {
        "group_idx": group_idx,
        "prompt_text": prompt_text,
        "prompt_tokens": prompt_tokens,
        "trajectories": out_trajs,
        # 0.2.x returned these; the logger recomputes them from the trajectories.
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "best_reward": max(rewards) if rewards else None,
    }
    errors = getattr(group, "rollout_errors", None) or ()
    if errors:
        rollout["rollout_errors"] = [
            {
                "error_type": str(getattr(e, "error_type", type(e).__name__)),
                "error_message": str(getattr(e, "error_message", e)),
            }
            for e in errors
        ]
    return rollout


def from_tinker_batch(
    groups: Sequence[Any],
    prompts: Sequence[str | None] | None = None,
    tokenizer: Any = None,
    *,
    token_texts: bool = False,
) -> list[Rollout]:
    """A batch of `TrajectoryGroup`s -> the list `TvizLogger.log_rollouts(rollouts, step)` takes.

    Usage, in a training loop::

        from tviz import TvizLogger
        from tviz.adapters.tinker import from_tinker_batch

        logger = TvizLogger(run_name="math-rl")
        ...
        logger.log_rollouts(from_tinker_batch(trajectory_groups, tokenizer=tokenizer), step=i)

    Args:
        groups: the iteration's trajectory groups (None entries, i.e. groups the cookbook
            dropped, are skipped).
        prompts: optional prompt text per group, overriding the decoded observation.
        tokenizer: decodes prompts and outputs; without it only token ids are kept.
        token_texts: also keep each output token's own text (see `from_tinker_trajectory`).
    """
    out = []
    for idx, group in enumerate(groups):
        if group is None:
            continue
        prompt = prompts[idx] if prompts is not None and idx < len(prompts) else None
        out.append(
            from_tinker_trajectory_group(
                group, idx, prompt, tokenizer=tokenizer, token_texts=token_texts
            )
        )
    return out
