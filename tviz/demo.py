"""A realistic simulated RL run: what `tviz demo` shows, and the data the tests and benchmarks use.

`simulate_run` logs a GRPO-style run through a TvizLogger as tinker-cookbook would: math word
problems, step-by-step answers that get right more often as training goes on, rewards with the
cookbook's formula (correct answer 1, wrong 0, bad format -0.1), token logprobs, the cookbook's
metric names (`env/all/reward/total`, `env/all/by_group/frac_mixed`, `optim/entropy`,
`time/total`, ...), some multi-turn calculator episodes, groups whose samples all got the same
reward, and now and then model text that tries to break out of a web page. With
`modality="vision"` it simulates a geo-guessing run instead: small generated PNG images, true and
predicted coordinates and the distance between them.

Everything comes from one `random.Random(seed)`: the same arguments give the same data.
"""

from __future__ import annotations

import math
import os
import random
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tviz.logger import TvizLogger

__all__ = ["DemoResult", "simulate_run", "write_demo_db", "write_png"]

DEMO_DB_NAME = "tviz-demo.db"

# Strings a model may well write that would break a page that does not escape its data.
HOSTILE = ("</script><script>alert(1)</script>", "<!--", "<img src=x onerror=alert(2)>")

_FORMAT = " Write your answer in \\boxed{} format."


@dataclass(frozen=True)
class _Problem:
    question: str
    answer: int
    working: list[str]  # the steps of a correct solution
    expression: str  # what a calculator call would compute


def _problem(rng: random.Random, kind: int) -> _Problem:
    a, b, c = rng.randint(3, 60), rng.randint(2, 12), rng.randint(2, 30)
    if kind == 0:
        return _Problem(
            f"A train travels at {a} miles per hour for {b} hours. How many miles does it travel?",
            a * b,
            [f"Distance is speed times time: {a} * {b} = {a * b} miles."],
            f"{a}*{b}",
        )
    if kind == 1:
        b = min(b, a)
        return _Problem(
            f"Maria has {a} apples. She gives {b} to a friend and buys {c} more."
            " How many apples does she have now?",
            a - b + c,
            [f"After giving some away: {a} - {b} = {a - b}.", f"Then {a - b} + {c} = {a - b + c}."],
            f"{a}-{b}+{c}",
        )
    if kind == 2:
        return _Problem(
            f"A rectangle is {a} cm long and {b} cm wide. What is its area in square cm?",
            a * b,
            [f"Area is length times width: {a} * {b} = {a * b}."],
            f"{a}*{b}",
        )
    if kind == 3:
        return _Problem(
            f"What is {a} + {b} * {c}?",
            a + b * c,
            [f"Multiplication first: {b} * {c} = {b * c}.", f"Then {a} + {b * c} = {a + b * c}."],
            f"{a}+{b}*{c}",
        )
    if kind == 4:
        packs = -(-c * b // a) if a else 0
        return _Problem(
            f"Pencils come in packs of {a}. A class of {c} students needs {b} pencils each."
            " How many packs must the teacher buy?",
            packs,
            [
                f"Pencils needed: {c} * {b} = {c * b}.",
                f"Packs: {c * b} / {a} rounded up = {packs}.",
            ],
            f"ceil({c}*{b}/{a})",
        )
    # The page-breaking one: the prompt itself carries markup.
    return _Problem(
        f"A web page shows the text {HOSTILE[0]} to {a} visitors a day for {b} days."
        " How many times is it shown in total?",
        a * b,
        [f"The text itself does not matter: {a} * {b} = {a * b} views."],
        f"{a}*{b}",
    )


_KINDS = 6
_FILLER = (
    "Let me re-read the question to be sure I have the numbers right.",
    "I will double-check each step before answering.",
    "Let me verify by estimating: the result should be in a sensible range.",
    "Checking the arithmetic again gives the same value.",
)
_RAMBLE = "Hmm, wait, let me recount the numbers once more and reconsider the question. "


def _pieces(text: str) -> list[str]:
    """Text split into token-like pieces (a word with its leading space)."""
    out, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or (text[i] == " " and text[i - 1] != " "):
            out.append(text[start:i])
            start = i
    return out


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
    hostile: bool,
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
        if hostile:
            note = f"Note {HOSTILE[1]} the text {HOSTILE[0]} {HOSTILE[2]} is only a string."
            lines.insert(1, note)
        lines.append(f"So the answer is \\boxed{{{answer}}}.")
        text = " ".join(lines)
    pieces = _pieces(text)
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
    tokens = [zlib.crc32(p.encode("utf-8")) % 128_000 for p in pieces]
    reward = 0.1 * (float(formatted) - 1.0) + float(correct)
    return _Sample(text, pieces, tokens, logprobs, reward, correct, formatted, truncated)


def _skill(step: int, steps: int, difficulty: float) -> float:
    progress = step / max(1, steps - 1)
    return max(0.02, min(0.97, 0.12 + 0.78 * (1 - math.exp(-3.0 * progress)) - difficulty))


# -- images for the vision run -----------------------------------------------------------------


def write_png(path: str | os.PathLike[str], width: int, height: int, rgb: bytes) -> Path:
    """Write an 8-bit RGB PNG (stdlib only: zlib + struct)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    out = Path(path)
    out.write_bytes(png)
    return out


def _landscape(rng: random.Random, lat: float, width: int = 96, height: int = 64) -> bytes:
    """A sky, a horizon with buildings and ground: colours follow the latitude."""
    warmth = max(0.0, min(1.0, 1 - abs(lat) / 70))
    sky_top = (40 + int(60 * warmth), 90 + int(60 * warmth), 200)
    ground = (int(90 + 100 * warmth), int(120 + 40 * (1 - warmth)), int(60 + 30 * warmth))
    horizon = height // 2 + rng.randint(-6, 6)
    roofs = [horizon - rng.randint(0, 14) if rng.random() < 0.6 else horizon for _ in range(12)]
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            roof = roofs[x * len(roofs) // width]
            if y < roof:
                t = y / max(1, horizon)
                pixels += bytes(int(c + (230 - c) * t) for c in sky_top)
            elif y < horizon:
                pixels += bytes((120, 110, 105) if (x // 3 + y // 4) % 5 else (230, 210, 120))
            else:
                shade = rng.randint(-12, 12)
                pixels += bytes(max(0, min(255, c + shade)) for c in ground)
    return bytes(pixels)


_CITIES = (
    ("Paris", "France", 48.8566, 2.3522),
    ("Lisbon", "Portugal", 38.7223, -9.1393),
    ("Tokyo", "Japan", 35.6762, 139.6503),
    ("Nairobi", "Kenya", -1.2921, 36.8219),
    ("Buenos Aires", "Argentina", -34.6037, -58.3816),
    ("Reykjavik", "Iceland", 64.1466, -21.9426),
    ("Sydney", "Australia", -33.8688, 151.2093),
    ("Toronto", "Canada", 43.6532, -79.3832),
    ("Mumbai", "India", 19.0760, 72.8777),
    ("Cairo", "Egypt", 30.0444, 31.2357),
    ("Mexico City", "Mexico", 19.4326, -99.1332),
    ("Oslo", "Norway", 59.9139, 10.7522),
)


def _relative_to(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


# -- the run ------------------------------------------------------------------------------------


def _config(modality: str, steps: int, groups: int, samples: int, max_tokens: int, seed: int):
    return {
        "model_name": "Qwen/Qwen3-8B" if modality == "text" else "Qwen/Qwen3-VL-30B-A3B-Instruct",
        "recipe_name": "math_rl" if modality == "text" else "geo_guess_rl",
        "learning_rate": 4e-5,
        "lora_rank": 32,
        "loss_fn": "importance_sampling",
        "max_tokens": max_tokens,
        "temperature": 1.0,
        "num_substeps": 1,
        "kl_penalty_coef": 0.0,
        "dataset_builder": {
            "batch_size": groups,
            "group_size": samples,
            "renderer_name": "qwen3",
            "seed": seed,
        },
        "max_steps": steps,
        "simulated": True,
        "notes": f"a simulated run (tviz demo); model text may contain {HOSTILE[0]}",
    }


def simulate_run(
    logger: TvizLogger,
    *,
    steps: int = 30,
    groups: int = 8,
    samples: int = 8,
    output_tokens: int = 160,
    seed: int = 0,
    modality: str = "text",
    image_dir: str | os.PathLike[str] | None = None,
    eval_every: int = 5,
    start: float | None = None,
) -> float:
    """Log a simulated GRPO run into `logger`: config, per-step metrics and rollouts.

    Args:
        logger: where to log; the caller closes it.
        steps, groups, samples: training iterations, prompts per batch, samples per prompt.
        output_tokens: the most tokens an answer has (answers cut there are "truncated").
        seed: the same seed gives the same run.
        modality: "text" (math) or "vision" (geo-guessing; needs `image_dir`).
        image_dir: where the vision run writes its PNG images.
        eval_every: log `test/env/all/...` metrics every this many steps (0: never).
        start: if given, the run's simulated clock (Unix seconds) at step 0: each step is
            logged at the time it would have ended, so durations and tokens per day look real.

    Returns the simulated duration in seconds.
    """
    if modality == "vision" and image_dir is None:
        raise ValueError("a vision run needs image_dir for its images")
    rng = random.Random(seed)
    logger.log_hparams(_config(modality, steps, groups, samples, output_tokens, seed))
    lr = 4e-5
    cumulative_tokens = 0
    cumulative_cost = 0.0
    elapsed = 0.0
    for step in range(steps):
        if modality == "vision":
            rollouts, stats = _vision_step(
                rng, step, steps, groups, samples, Path(image_dir), logger.db_path.parent
            )
        else:
            rollouts, stats = _text_step(rng, step, steps, groups, samples, output_tokens)
        # Sampling ends, then the step's metrics after its training: the simulated clock.
        sample_clock = None if start is None else start + elapsed + 8.0

        skill = _skill(step, steps, 0.0)
        sampled = stats["ac_tokens"]
        cumulative_tokens += sampled
        step_cost = sampled * 2.4e-7 + stats["ob_tokens"] * 6e-8
        cumulative_cost += step_cost
        sampling_s = 8.0 + sampled / 900 + rng.random() * 3
        train_s = 4.0 + sampled / 2500 + rng.random()
        total_s = sampling_s + train_s + 0.4
        elapsed += total_s
        logger.log_rollouts(rollouts, step=step, timestamp=sample_clock)
        rewards = stats["rewards"]
        metrics: dict[str, Any] = {
            "progress/batch": step,
            "progress/done_frac": (step + 1) / steps,
            "optim/lr": lr,
            "env/all/reward/total": sum(rewards) / len(rewards),
            "env/all/turns_per_episode": stats["turns"] / len(rewards),
            "env/all/total_episodes": len(rewards),
            "env/all/total_turns": stats["turns"],
            "env/all/total_ac_tokens": sampled,
            "env/all/total_ob_tokens": stats["ob_tokens"],
            "env/all/ac_tokens_per_turn": sampled / max(1, stats["turns"]),
            "env/all/ob_tokens_per_turn": stats["ob_tokens"] / max(1, stats["turns"]),
            "env/all/by_group/frac_mixed": stats["mixed"] / groups,
            "env/all/by_group/frac_all_good": stats["all_good"] / groups,
            "env/all/by_group/frac_all_bad": stats["all_bad"] / groups,
            "optim/kl_sample_train_v1": abs(rng.gauss(2e-4, 1e-4)) * (1 + 2 * skill),
            "optim/kl_sample_train_v2": abs(rng.gauss(4e-4, 2e-4)) * (1 + 2 * skill),
            "optim/entropy": max(0.05, 0.85 - 0.55 * skill + rng.gauss(0, 0.03)),
            "tokens/sampled": sampled,
            "tokens/cumulative/sampled": cumulative_tokens,
            "cost/step_usd": step_cost,
            "cost/cumulative_usd": cumulative_cost,
            "time/sampling": sampling_s,
            "time/train_step": train_s,
            "time/policy_sample:mean": sampling_s / max(1, stats["turns"]) * groups,
            "time/total": total_s,
            "time/elapsed": elapsed,
        }
        for key in ("correct", "format", "distance_km"):
            if key in stats:
                metrics[f"env/all/{key}"] = stats[key]
        if eval_every and step % eval_every == 0:
            metrics["test/env/all/reward/total"] = min(1.0, max(-0.1, skill + rng.gauss(0, 0.05)))
            metrics["test/env/all/correct"] = min(1.0, max(0.0, skill + rng.gauss(0, 0.05)))
        logger.log_metrics(metrics, step=step, timestamp=None if start is None else start + elapsed)
    logger.log_summary({"cost/cumulative_usd": cumulative_cost})
    return elapsed


def _group_stats(stats: dict[str, Any], rewards: list[float]) -> None:
    if len(set(rewards)) > 1:
        stats["mixed"] += 1
    elif rewards[0] >= 0.5:
        stats["all_good"] += 1
    else:
        stats["all_bad"] += 1
    stats["rewards"].extend(rewards)


def _new_stats() -> dict[str, Any]:
    return {"rewards": [], "mixed": 0, "all_good": 0, "all_bad": 0, "turns": 0}


def _text_step(
    rng: random.Random, step: int, steps: int, groups: int, samples: int, max_tokens: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    stats = _new_stats()
    stats.update(ac_tokens=0, ob_tokens=0)
    correct = formatted = 0
    rollouts = []
    for g in range(groups):
        kind = (step * groups + g) % _KINDS
        problem = _problem(rng, kind)
        prompt = problem.question + _FORMAT
        # Some prompts are easy, some hard: the groups whose samples all agree come from those.
        difficulty = rng.choice((-0.5, -0.2, 0.0, 0.0, 0.1, 0.25, 0.7))
        skill = _skill(step, steps, difficulty)
        format_skill = _skill(step, steps, -0.3)
        multi_turn = g % 5 == 4
        prompt_len = len(_pieces(prompt)) + 12
        trajectories = []
        for i in range(samples):
            hostile = kind == _KINDS - 1 and i % 3 == 0
            if multi_turn:
                traj, n_tokens = _calculator_episode(rng, problem, skill, max_tokens, prompt)
                stats["turns"] += 2
                stats["ob_tokens"] += 2 * prompt_len + 8
            else:
                s = _sample(rng, problem, skill, format_skill, max_tokens, hostile)
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
                n_tokens = len(s.tokens)
                stats["turns"] += 1
                stats["ob_tokens"] += prompt_len
            traj["trajectory_idx"] = i
            stats["ac_tokens"] += n_tokens
            correct += traj["metrics"]["correct"]
            formatted += traj["metrics"]["format"]
            trajectories.append(traj)
        _group_stats(stats, [t["reward"] for t in trajectories])
        rollouts.append(
            {
                "group_idx": g,
                "prompt_text": prompt,
                "trajectories": trajectories,
                "reference_answer": str(problem.answer),
                "tags": ["gsm8k-like", "calculator" if multi_turn else "single-turn"],
            }
        )
    n = len(stats["rewards"])
    stats.update(correct=correct / n, format=formatted / n)
    return rollouts, stats


def _calculator_episode(
    rng: random.Random, problem: _Problem, skill: float, max_tokens: int, prompt: str
) -> tuple[dict[str, Any], int]:
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
    tokens, logprobs, turns = [], [], []
    sigma = 0.15 + 0.9 * (1 - skill)
    for k, (obs, act, r) in enumerate(((prompt, call, 0.0), (result, answer, reward))):
        pieces = _pieces(act)[:max_tokens]
        tokens += [zlib.crc32(p.encode("utf-8")) % 128_000 for p in pieces]
        logprobs += [round(-abs(rng.gauss(0.0, sigma)) * 0.7, 4) for _ in pieces]
        turns.append(
            {
                "turn_idx": k,
                "observation_text": obs,
                "action_text": "".join(pieces),
                "reward": r,
                "episode_done": k == 1,
                "metrics": {"tool_calls": 1.0} if k == 0 else {"correct": float(correct)},
                "logs": {"tool": "calculator", "result": str(value)} if k == 0 else {},
                "ob_len": len(_pieces(obs)) + 12,
                "ac_len": len(pieces),
            }
        )
    traj = {
        "reward": reward,
        "output_text": "\n\n".join(t["action_text"] for t in turns),
        "output_tokens": tokens,
        "logprobs": logprobs,
        "step_rewards": [0.0, reward],
        "turns": turns,
        "metrics": {"format": float(formatted), "correct": float(correct)},
        "stop_reason": "completed",
    }
    return traj, len(tokens)


def _vision_step(
    rng: random.Random,
    step: int,
    steps: int,
    groups: int,
    samples: int,
    image_dir: Path,
    db_dir: Path,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One step of the geo-guessing run. Image paths are stored relative to the database's
    folder when the images are inside it, so the folder can be moved or shared whole."""
    stats = _new_stats()
    stats.update(ac_tokens=0, ob_tokens=0)
    distances = []
    rollouts = []
    image_dir.mkdir(parents=True, exist_ok=True)
    for g in range(groups):
        city, country, lat, lon = _CITIES[(step * groups + g) % len(_CITIES)]
        path = image_dir / f"step{step:04d}-group{g:03d}.png"
        write_png(path, 96, 64, _landscape(rng, lat))
        skill = _skill(step, steps, rng.choice((0.0, 0.1, -0.1)))
        spread = 3000.0 * (1 - skill) + 40.0  # km: guesses tighten as the model learns
        trajectories = []
        for i in range(samples):
            d_lat = rng.gauss(0, spread / 111.0)
            d_lon = rng.gauss(0, spread / (111.0 * max(0.2, math.cos(math.radians(lat)))))
            p_lat = max(-89.0, min(89.0, lat + d_lat))
            p_lon = (lon + d_lon + 180.0) % 360.0 - 180.0
            distance = _haversine_km(lat, lon, p_lat, p_lon)
            reward = round(math.exp(-distance / 2000.0), 4)
            guess = min(_CITIES, key=lambda c: _haversine_km(c[2], c[3], p_lat, p_lon))
            text = (
                f"The light, the roofs and the vegetation suggest {guess[1]}."
                f" My guess: near {guess[0]}, at ({p_lat:.2f}, {p_lon:.2f})."
            )
            pieces = _pieces(text)
            trajectories.append(
                {
                    "trajectory_idx": i,
                    "reward": reward,
                    "output_text": text,
                    "output_tokens": [zlib.crc32(p.encode()) % 128_000 for p in pieces],
                    "logprobs": [round(-abs(rng.gauss(0, 0.8 - 0.5 * skill)), 4) for _ in pieces],
                    "token_texts": pieces,
                    "pred_lat": p_lat,
                    "pred_lon": p_lon,
                    "distance_km": distance,
                }
            )
            distances.append(distance)
            stats["ac_tokens"] += len(pieces)
            stats["ob_tokens"] += 300
            stats["turns"] += 1
        _group_stats(stats, [t["reward"] for t in trajectories])
        rollouts.append(
            {
                "group_idx": g,
                "prompt_text": "Where was this photo taken? Answer with latitude and longitude.",
                "image_path": _relative_to(path.resolve(), db_dir.resolve()),
                "gt_lat": lat,
                "gt_lon": lon,
                "city": city,
                "country": country,
                "trajectories": trajectories,
            }
        )
    stats["distance_km"] = sum(distances) / len(distances)
    return rollouts, stats


@dataclass(frozen=True)
class DemoResult:
    db_path: Path
    run_ids: list[str]
    image_dir: Path | None


def write_demo_db(
    db_path: str | os.PathLike[str],
    *,
    steps: int = 30,
    groups: int = 8,
    samples: int = 8,
    output_tokens: int = 160,
    seed: int = 0,
    vision: bool = True,
    overwrite: bool = False,
    start: float | None = None,
) -> DemoResult:
    """Write the demo runs into a new database file: a math GRPO run and, with `vision`, a
    geo-guessing run whose images go to `images/` next to the database.

    The runs' simulated clocks begin at `start` (default: early enough that both runs have
    ended by now). Raises FileExistsError if the file exists, unless `overwrite` (then it is
    replaced).
    """
    path = Path(db_path).expanduser()
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; the demo writes a new database")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ids = []
    # Fixed run ids: the same arguments give the same database content and report.
    # About 20 simulated seconds a step; 40 leaves room for both runs to end in the past.
    clock = time.time() - 40 * (steps + max(2, steps // 3)) if start is None else start
    with TvizLogger(path, "grpo-math-demo", run_id=f"demo-math-{seed}", started_at=clock) as logger:
        clock += simulate_run(
            logger,
            steps=steps,
            groups=groups,
            samples=samples,
            output_tokens=output_tokens,
            seed=seed,
            start=clock,
        )
        logger.close(timestamp=clock)
        run_ids.append(logger.run_id)
    image_dir = None
    if vision:
        image_dir = path.parent / "images"
        vision_id = f"demo-geo-{seed}"
        clock += 300  # the vision run starts five minutes later
        with TvizLogger(
            path, "geo-vision-demo", "vision", run_id=vision_id, started_at=clock
        ) as logger:
            clock += simulate_run(
                logger,
                steps=max(2, steps // 3),
                groups=max(1, min(groups, 6)),
                samples=max(2, min(samples, 6)),
                output_tokens=output_tokens,
                seed=seed + 1,
                modality="vision",
                image_dir=image_dir,
                start=clock,
            )
            logger.close(timestamp=clock)
            run_ids.append(logger.run_id)
    return DemoResult(path, run_ids, image_dir)


@dataclass(frozen=True)
class DemoSite:
    db_path: Path
    index: Path | None  # None when the report could not be built here
    pages: list[Path]


def build_demo(
    out_dir: str | os.PathLike[str],
    *,
    steps: int = 30,
    groups: int = 8,
    samples: int = 8,
    output_tokens: int = 160,
    seed: int = 0,
) -> DemoSite:
    """`tviz demo`: the demo database in `out_dir/tviz-demo.db`, its report in `out_dir`.

    Never writes the user's own database: a `$TVIZ_DB_PATH` or `~/.tviz/tviz.db` that happens
    to be the demo's file is refused.
    """
    from tviz import schema

    out = Path(out_dir).expanduser()
    db_path = out / DEMO_DB_NAME
    if db_path.resolve() == schema.default_db_path().resolve():
        raise FileExistsError(f"{db_path} is your tviz database; choose another --out folder")
    write_demo_db(
        db_path,
        steps=steps,
        groups=groups,
        samples=samples,
        output_tokens=output_tokens,
        seed=seed,
        overwrite=True,
    )
    try:
        from tviz.render import build_site
    except ImportError:  # the report builder is optional to the demo's data
        return DemoSite(db_path, None, [])
    report = build_site(db_path, out)
    return DemoSite(db_path, out / "index.html", list(report.written))
