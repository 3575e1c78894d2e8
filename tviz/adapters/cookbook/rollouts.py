"""One iteration's train rollouts as `log_rollouts` dicts (`tviz.records`): the rollout
summaries' records, with the text of the groups the logtree shows matched onto them.

The dicts carry keys the contract does not declare (`CookbookRollout`, `CookbookTrajectory`):
the writer keeps them in the rows' `extras`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tviz.adapters.cookbook.files import is_whole_number, parse_int, parse_number, read_summaries
from tviz.adapters.cookbook.logtree import Block, LoggedGroup, conversation_text, read_logtree
from tviz.adapters.cookbook.result import Problems
from tviz.records import Rollout, Trajectory, Turn

__all__ = ["CookbookRollout", "CookbookTrajectory", "read_iteration_rollouts"]

_SOURCE = "tinker-cookbook"


class CookbookTrajectory(Trajectory, total=False):
    """A trajectory with the keys of the cookbook's records that the contract does not declare."""

    final_reward: float  # the group-level reward part, when not 0
    stop_reason: str  # from the last `stop/<reason>` metric set by a step
    ac_len: int | None  # a single-turn episode's tokens of the action
    logs: dict[str, Any]  # a single-turn episode's logs, logged table values and notes
    metrics: dict[str, Any]  # trajectory_metrics (and a single turn's env.step metrics)


class CookbookRollout(Rollout, total=False):
    """A group with the keys the contract does not declare."""

    source: str  # always "tinker-cookbook"
    tags: Any  # the records' `tags`, when set
    sampling_client_step: Any  # the policy version that sampled the group, when known
    text_logged: bool  # whether the logtree showed this group (so the text is there)
    prompt_messages: list[dict[str, Any]]  # the prompt as chat messages, when logged


# -- matching logged text to summary records ------------------------------------------------------


def _signature(turns: list[tuple[Any, Any, Any]]) -> tuple:
    return tuple((parse_int(ob), parse_int(ac), _rounded(parse_number(r))) for ob, ac, r in turns)


def _rounded(reward: float | None) -> float | None:
    return None if reward is None else round(reward, 3)


def match_logged_groups(
    by_group: dict[int, list[dict[str, Any]]], logged: list[LoggedGroup]
) -> dict[int, LoggedGroup]:
    """Which summary group each logged group is.

    The cookbook logs the first groups of the batch, but the summaries list groups in the order
    they finished. The per-turn (ob_len, ac_len, reward) of every trajectory identifies a group.
    """
    signatures = {
        g: tuple(
            _signature([(s.get("ob_len"), s.get("ac_len"), s.get("reward")) for s in r["steps"]])
            for r in records
        )
        for g, records in by_group.items()
    }
    matched: dict[int, LoggedGroup] = {}
    for group in logged:
        sig = tuple(
            _signature([(turn.ob_len, turn.ac_len, turn.reward) for turn in traj.turns])
            for traj in group.trajectories
        )
        for g, s in signatures.items():
            if g not in matched and s == sig:
                matched[g] = group
                break
    return matched


def assign_blocks(
    blocks: list[Block], slot_rewards: list[list[float | None]]
) -> dict[tuple[int, int], Block]:
    """Which logged env.step block is which (trajectory, turn).

    The env logs each step as it happens, so the blocks of a group come in completion order, not
    trajectory order. Match them greedily: a turn comes after the trajectory's previous turn,
    the block's logged reward must equal the turn's reward, and a later turn's prompt contains
    the previous turn's response. Among equal candidates the lowest trajectory index wins.
    """
    next_turn = [0] * len(slot_rewards)
    responses: dict[int, str | None] = {}
    out: dict[tuple[int, int], Block] = {}
    for block in blocks:
        best: tuple[float, int] | None = None
        prompt = conversation_text(block.prompt) if block.prompt else ""
        for t, rewards in enumerate(slot_rewards):
            turn = next_turn[t]
            if turn >= len(rewards):
                continue
            cost = 0.0
            if block.reward is not None and rewards[turn] is not None:
                cost += 0.0 if abs(block.reward - rewards[turn]) < 5e-4 else 100.0
            previous = responses.get(t)
            if turn > 0 and previous and previous not in prompt:
                cost += 10.0
            if best is None or cost < best[0]:
                best = (cost, t)
        if best is None:
            break
        t = best[1]
        out[(t, next_turn[t])] = block
        responses[t] = block.response_text
        next_turn[t] += 1
    return out


# -- building the dicts ---------------------------------------------------------------------------


def _turn_observation(block: Block | None, previous: Block | None) -> str | None:
    """A turn's observation: for a later turn only the messages added since the last one."""
    if block is None or not block.prompt:
        return None
    messages = block.prompt
    if previous is not None and previous.prompt is not None:
        seen = len(previous.prompt) + len(previous.response or ())
        if len(messages) > seen and messages[: len(previous.prompt)] == previous.prompt:
            messages = messages[seen:]
    return conversation_text(messages)


def _logs(step: dict[str, Any], block: Block | None) -> dict[str, Any]:
    """A step's logs, with what the env logged in tables for it."""
    return {**(step.get("logs") or {}), **(block.values if block else {})}


def _turns(t: int, steps: list[dict[str, Any]], blocks: dict[tuple[int, int], Block]) -> list[Turn]:
    turns: list[Turn] = []
    for k, step in enumerate(steps):
        block = blocks.get((t, k))
        turns.append(
            {
                "turn_idx": k,
                "observation_text": _turn_observation(block, blocks.get((t, k - 1))),
                "action_text": block.response_text if block else None,
                "reward": parse_number(step.get("reward")),
                "episode_done": bool(step.get("episode_done")),
                "metrics": step.get("metrics") or {},
                "logs": _logs(step, block),
                "ob_len": parse_int(step.get("ob_len")),
                "ac_len": parse_int(step.get("ac_len")),
            }
        )
    return turns


def _add_single_turn(traj: CookbookTrajectory, step: dict[str, Any], block: Block | None) -> None:
    """A one-step episode keeps its text, length and logs on the trajectory itself."""
    traj["output_text"] = block.response_text if block else None
    traj["ac_len"] = parse_int(step.get("ac_len"))
    logs = _logs(step, block)
    if block and block.texts:
        logs["notes"] = "\n".join(block.texts)
    if logs:
        traj["logs"] = logs


def _trajectory(
    t: int, record: dict[str, Any], blocks: dict[tuple[int, int], Block]
) -> CookbookTrajectory:
    """Trajectory `t` of a group from its summary record and the blocks matched to its turns."""
    steps = record["steps"]
    step_rewards = [parse_number(s.get("reward")) for s in steps] or None
    reward = parse_number(record.get("total_reward"))
    idx = record.get("traj_idx")
    traj: CookbookTrajectory = {
        "trajectory_idx": int(idx) if is_whole_number(idx) else t,
        "reward": sum(r for r in step_rewards or () if r is not None) if reward is None else reward,
        "output_text": None,
        "step_rewards": step_rewards,
    }
    final_reward = parse_number(record.get("final_reward"))
    if final_reward:
        traj["final_reward"] = final_reward
    metrics = dict(record.get("trajectory_metrics") or {})
    stop_reasons = [
        k.removeprefix("stop/")
        for s in steps
        for k, v in (s.get("metrics") or {}).items()
        if k.startswith("stop/") and v
    ]
    if stop_reasons:
        traj["stop_reason"] = stop_reasons[-1]
    if len(steps) == 1:
        _add_single_turn(traj, steps[0], blocks.get((t, 0)))
        metrics = {**(steps[0].get("metrics") or {}), **metrics}
    elif steps:
        turns = _turns(t, steps, blocks)
        traj["turns"] = turns
        texts = [turn["action_text"] for turn in turns]
        if all(text is not None for text in texts):
            traj["output_text"] = "\n\n".join(texts)
    if metrics:
        traj["metrics"] = metrics
    return traj


def _rollout(
    group_idx: int, records: list[dict[str, Any]], logged: LoggedGroup | None
) -> CookbookRollout:
    """Rollout dict from per-trajectory records (summary format) plus the logged text, if any."""
    slot_rewards = [[parse_number(s.get("reward")) for s in r["steps"]] for r in records]
    blocks = assign_blocks(logged.blocks, slot_rewards) if logged else {}
    prompt_messages = next((b.prompt for b in blocks.values() if b.prompt), None)
    rollout: CookbookRollout = {
        "group_idx": group_idx,
        "prompt_text": conversation_text(prompt_messages) if prompt_messages else None,
        "trajectories": [_trajectory(t, record, blocks) for t, record in enumerate(records)],
        "source": _SOURCE,
    }
    first = records[0]
    if first.get("tags"):
        rollout["tags"] = first["tags"]
    if first.get("sampling_client_step") is not None:
        rollout["sampling_client_step"] = first["sampling_client_step"]
    rollout["text_logged"] = bool(blocks)
    if prompt_messages:
        rollout["prompt_messages"] = prompt_messages
    return rollout


def _records_from_logged(logged: LoggedGroup) -> list[dict[str, Any]]:
    """Summary-format trajectory records rebuilt from the logtree alone (no summaries file)."""
    records = []
    for idx, traj in enumerate(logged.trajectories):
        last = len(traj.turns) - 1
        records.append(
            {
                "traj_idx": idx,
                "total_reward": parse_number(traj.totals.get("total_return")),
                "final_reward": parse_number(traj.totals.get("final_group_reward")),
                "trajectory_metrics": {},
                "steps": [
                    {
                        "ob_len": turn.ob_len,
                        "ac_len": turn.ac_len,
                        "reward": turn.reward,
                        "episode_done": k == last,
                        "metrics": {name: parse_number(v) for name, v in turn.metrics.items()},
                        "logs": {"notes": "\n".join(turn.logs)} if turn.logs else {},
                    }
                    for k, turn in enumerate(traj.turns)
                ],
            }
        )
    return records


def read_iteration_rollouts(
    iteration_dir: str | os.PathLike[str], problems: Problems | None = None, base: str = "train"
) -> tuple[list[Rollout], int]:
    """One iteration's train rollouts as `log_rollouts` dicts, and the malformed lines skipped.

    Every group of train_rollout_summaries.jsonl becomes a rollout; the groups that the
    logtree shows get their prompt and response text. Without a summaries file (or with one
    that cannot be read, said in `problems`), the logtree's groups are used alone. `base`
    names other files of the same format: `eval_test` reads an eval set's rollouts.
    """
    directory = Path(iteration_dir)
    logged, skipped = read_logtree(directory / f"{base}_logtree.json", problems)
    summaries_path = directory / f"{base}_rollout_summaries.jsonl"
    summaries = None
    if summaries_path.exists():
        try:
            summaries = read_summaries(summaries_path)
        except OSError as exc:
            if problems is not None:
                problems.unreadable(summaries_path, exc)
    if summaries is None:
        from_logtree = [(i, g) for i, g in enumerate(logged) if g.trajectories]
        return [_rollout(i, _records_from_logged(g), g) for i, g in from_logtree], skipped
    by_group, bad = summaries
    matched = match_logged_groups(by_group, logged)
    rollouts: list[Rollout] = []
    for g in sorted(by_group):
        # Group -1 (records without an integer group_idx) sorts first: it becomes group 0.
        rollouts.append(_rollout(g if g >= 0 else len(rollouts), by_group[g], matched.get(g)))
    return rollouts, skipped + bad
