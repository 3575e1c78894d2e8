"""The math run's groups: word problems, step-by-step answers, calculator episodes.

Answers get right more often as training goes on and are scored with tinker-cookbook's formula
(correct answer 1, wrong 0, bad format -0.1). One group in five is a two-turn calculator episode.
Tests can have some prompts and answers carry given text (`inject`): markup that tries to break
out of a web page, which the demo itself never shows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tviz.demo.policy import skill_at, token_ids, token_pieces
from tviz.records import Rollout, Trajectory, Turn

_FORMAT = " Write your answer in \\boxed{} format."
_KINDS = 6  # the problem kinds `_problem` knows
_FILLER = (
    "Let me re-read the question to be sure I have the numbers right.",
    "I will double-check each step before answering.",
    "Let me verify by estimating: the result should be in a sensible range.",
    "Checking the arithmetic again gives the same value.",
)
_RAMBLE = "Hmm, wait, let me recount the numbers once more and reconsider the question. "


class MathTrajectory(Trajectory, total=False):
    """An answer of the math run: the contract's keys and two it does not declare (the writer
    keeps them in the trajectory's `extras`)."""

    metrics: dict[str, float]  # "format" and "correct", each 0.0 or 1.0
    stop_reason: str  # "completed", or "max_tokens" for an answer cut at the token limit


class MathRollout(Rollout, total=False):
    """A group of the math run, with two keys the contract does not declare (kept in `extras`)."""

    reference_answer: str
    tags: list[str]


@dataclass(frozen=True)
class _Problem:
    question: str
    answer: int
    working: list[str]  # the steps of a correct solution
    expression: str  # what a calculator call would compute


# Problems whose answer is a * b: the question, the reason, the unit of the answer.
_PRODUCTS = {
    0: (
        "A train travels at {a} miles per hour for {b} hours. How many miles does it travel?",
        "Distance is speed times time",
        " miles",
    ),
    2: (
        "A rectangle is {a} cm long and {b} cm wide. What is its area in square cm?",
        "Area is length times width",
        "",
    ),
    5: (
        "A web page has {a} visitors a day. How many visitors does it have in {b} days?",
        "Visitors per day times days",
        "",
    ),
}


def _problem(rng: random.Random, kind: int) -> _Problem:
    a, b, c = rng.randint(3, 60), rng.randint(2, 12), rng.randint(2, 30)
    if kind in _PRODUCTS:
        question, why, unit = _PRODUCTS[kind]
        working = [f"{why}: {a} * {b} = {a * b}{unit}."]
        return _Problem(question.format(a=a, b=b), a * b, working, f"{a}*{b}")
    if kind == 1:
        b = min(b, a)
        return _Problem(
            f"Maria has {a} apples. She gives {b} to a friend and buys {c} more."
            " How many apples does she have now?",
            a - b + c,
            [f"After giving some away: {a} - {b} = {a - b}.", f"Then {a - b} + {c} = {a - b + c}."],
            f"{a}-{b}+{c}",
        )
    if kind == 3:
        return _Problem(
            f"What is {a} + {b} * {c}?",
            a + b * c,
            [f"Multiplication first: {b} * {c} = {b * c}.", f"Then {a} + {b * c} = {a + b * c}."],
            f"{a}+{b}*{c}",
        )
    packs = -(-c * b // a) if a else 0  # kind 4
    return _Problem(
        f"Pencils come in packs of {a}. A class of {c} students needs {b} pencils each."
        " How many packs must the teacher buy?",
        packs,
        [f"Pencils needed: {c} * {b} = {c * b}.", f"Packs: {c * b} / {a} rounded up = {packs}."],
        f"ceil({c}*{b}/{a})",
    )


@dataclass
class _Sample:
    text: str
    pieces: list[str]  # the text of each token
    tokens: list[int]
    logprobs: list[float]
    reward: float
    correct: bool
    formatted: bool
    truncated: bool


def _sample(
    rng: random.Random,
    problem: _Problem,
    skill: float,
    format_skill: float,
    max_tokens: int,
    inject: tuple[str, ...] = (),
) -> _Sample:
    """One answer: right with probability `skill`; the format is learned early, whatever the
    problem's difficulty, so hard problems end up with groups that are all wrong."""
    formatted = rng.random() < 0.55 + 0.44 * format_skill
    correct = formatted and rng.random() < skill
    if not formatted:
        text = "Let me think step by step. " + _RAMBLE * (max_tokens // 12 + 1)
    else:
        answer = problem.answer if correct else problem.answer + rng.choice((-10, -2, -1, 1, 3))
        lines = ["Let me think step by step.", *problem.working]
        if not correct:
            lines[-1] = lines[-1].rsplit("=", 1)[0] + f"= {answer}."
        for _ in range(rng.randint(0, 2 + int(3 * (1 - skill)))):
            lines.insert(1 + rng.randrange(len(lines)), rng.choice(_FILLER))
        if inject:
            lines.insert(1, "Note: " + " ".join(inject) + " is only a string.")
        lines.append(f"So the answer is \\boxed{{{answer}}}.")
        text = " ".join(lines)
    pieces = token_pieces(text)
    truncated = len(pieces) > max_tokens
    pieces = pieces[:max_tokens]
    text = "".join(pieces)
    sigma = 0.15 + 0.9 * (1 - skill)
    logprobs = []
    for piece in pieces:
        lp = -abs(rng.gauss(0.0, sigma)) * (2.5 if any(ch.isdigit() for ch in piece) else 0.6)
        logprobs.append(round(max(lp, -12.0), 4))
    if formatted and not correct:  # the slip: one confident-looking wrong number
        digits = [i for i, p in enumerate(pieces) if any(ch.isdigit() for ch in p)]
        if digits:
            logprobs[digits[-1]] = round(-2.0 - 3.0 * rng.random(), 4)
    reward = 0.1 * (float(formatted) - 1.0) + float(correct)
    return _Sample(text, pieces, token_ids(pieces), logprobs, reward, correct, formatted, truncated)


def text_step(
    rng: random.Random,
    step: int,
    steps: int,
    groups: int,
    samples: int,
    max_tokens: int,
    inject: tuple[str, ...] = (),
) -> tuple[list[Rollout], dict[str, Any]]:
    """One step of the math run: its groups, and what they add up to (turns, action and
    observation tokens, the share of answers that are correct and well formatted). With
    `inject`, the last problem kind's prompts and some of their answers carry those strings."""
    stats: dict[str, Any] = {"turns": 0, "ac_tokens": 0, "ob_tokens": 0}
    correct = formatted = 0
    rollouts: list[Rollout] = []
    for g in range(groups):
        kind = (step * groups + g) % _KINDS
        problem = _problem(rng, kind)
        prompt = problem.question + _FORMAT
        if inject and kind == _KINDS - 1:
            prompt = f"The page shows the text {' '.join(inject)}. " + prompt
        # Some prompts are easy, some hard: the groups whose samples all agree come from those.
        difficulty = rng.choice((-0.5, -0.2, 0.0, 0.0, 0.1, 0.25, 0.7))
        skill = skill_at(step, steps, difficulty)
        format_skill = skill_at(step, steps, -0.3)
        multi_turn = g % 5 == 4
        prompt_len = len(token_pieces(prompt)) + 12
        trajectories: list[Trajectory] = []
        for i in range(samples):
            carry = inject if kind == _KINDS - 1 and i % 3 == 0 else ()
            traj: MathTrajectory
            if multi_turn:
                traj = _calculator_episode(rng, problem, skill, max_tokens, prompt)
                stats["turns"] += 2
                stats["ob_tokens"] += 2 * prompt_len + 8
            else:
                s = _sample(rng, problem, skill, format_skill, max_tokens, carry)
                traj = {
                    "reward": s.reward,
                    "output_text": s.text,
                    "output_tokens": s.tokens,
                    "logprobs": s.logprobs,
                    "token_texts": s.pieces,  # what a tokenizer's decode of each id gives
                    "step_rewards": [s.reward],
                    "metrics": {"format": float(s.formatted), "correct": float(s.correct)},
                    "stop_reason": "max_tokens" if s.truncated else "completed",
                }
                stats["turns"] += 1
                stats["ob_tokens"] += prompt_len
            traj["trajectory_idx"] = i
            stats["ac_tokens"] += len(traj["output_tokens"])
            correct += traj["metrics"]["correct"]
            formatted += traj["metrics"]["format"]
            trajectories.append(traj)
        group: MathRollout = {
            "group_idx": g,
            "prompt_text": prompt,
            "trajectories": trajectories,
            "reference_answer": str(problem.answer),
            "tags": ["gsm8k-like", "calculator" if multi_turn else "single-turn"],
        }
        rollouts.append(group)
    n = groups * samples
    stats.update(correct=correct / n, format=formatted / n)
    return rollouts, stats


def _calculator_episode(
    rng: random.Random, problem: _Problem, skill: float, max_tokens: int, prompt: str
) -> MathTrajectory:
    """Two turns: the model calls a calculator, reads the result, answers."""
    call = f"I will use the calculator. <tool_call>calculator({problem.expression!r})</tool_call>"
    ok = rng.random() < skill
    value = problem.answer if ok else problem.answer + rng.choice((-3, 1, 7))
    result = f"<tool_result>{value}</tool_result>"
    answer = (
        f"The calculator returned {value}, so the answer is \\boxed{{{value}}}."
        if rng.random() < 0.6 + 0.4 * skill
        else "The tool output looks odd; " + _RAMBLE * 3
    )
    formatted = "\\boxed" in answer
    correct = formatted and ok
    reward = 0.1 * (float(formatted) - 1.0) + float(correct)
    tokens: list[int] = []
    logprobs: list[float] = []
    actions: list[str] = []
    turns: list[Turn] = []
    sigma = 0.15 + 0.9 * (1 - skill)
    for k, (obs, act, r) in enumerate(((prompt, call, 0.0), (result, answer, reward))):
        pieces = token_pieces(act)[:max_tokens]
        tokens += token_ids(pieces)
        logprobs += [round(-abs(rng.gauss(0.0, sigma)) * 0.7, 4) for _ in pieces]
        actions.append("".join(pieces))
        turns.append(
            {
                "turn_idx": k,
                "observation_text": obs,
                "action_text": actions[-1],
                "reward": r,
                "episode_done": k == 1,
                "metrics": {"tool_calls": 1.0} if k == 0 else {"correct": float(correct)},
                "logs": {"tool": "calculator", "result": str(value)} if k == 0 else {},
                "ob_len": len(token_pieces(obs)) + 12,
                "ac_len": len(pieces),
            }
        )
    return {
        "reward": reward,
        "output_text": "\n\n".join(actions),
        "output_tokens": tokens,
        "logprobs": logprobs,
        "step_rewards": [0.0, reward],
        "turns": turns,
        "metrics": {"format": float(formatted), "correct": float(correct)},
        "stop_reason": "completed",
    }
