"""A run's rollouts as per-step chunks: stats for the charts, compressed JSON for the page.

Each step is encoded once (gzip + base64, decoded by the page with DecompressionStream only
when the reader opens that step) and cached by the step's fingerprint from
`Store.rollout_index`, so re-rendering a run that gained a step encodes one step.
Past the page's size budget every step keeps a sample of its groups: the best, the worst,
then the mixed ones (those that carry a learning signal), then the rest.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tviz.render.embed import PrefixGzip, dumps
from tviz.render.table import PrefixDeflate, group_line
from tviz.store import Rollout, Trajectory
from tviz.store.prompts import prompt_key
from tviz.values import finite_number

# Trajectory extras key of the sampled tokens' texts (a list of strings, one per logprob): with
# it the logprob heatmap shows the tokens themselves.
TOKEN_TEXTS = "token_texts"
# Rollout extras that repeat the prompt shown above them (tinker-cookbook imports).
REDUNDANT_WITH_PROMPT = ("prompt_messages",)
# Images larger than this are not embedded (the page says so): one photo must not eat the budget.
MAX_IMAGE_BYTES = 2_000_000


@dataclass
class StepChunk:
    """One step's rollouts, ready to embed, with the numbers the charts need."""

    step: int
    fingerprint: tuple[int, int]
    stats: dict[str, Any]  # shown in the page's step list
    rewards: list[float]  # every finite trajectory reward, for the distribution chart
    lengths: list[int]  # output length per trajectory
    length_unit: str  # "tokens" or "chars"
    packed: PrefixGzip  # the groups in the order a sample keeps them (the page sorts them)
    table: PrefixDeflate  # the samples table's line of each group, in the same order
    geo: bool = False  # some group has a true location (the page then draws a map)

    @property
    def n_groups(self) -> int:
        return self.packed.items

    def cost(self, keep: int) -> int:
        """Bytes the first `keep` groups take in the page: their rollouts and table rows."""
        return self.size(keep) + self.table.size(keep)

    def encoded(self, keep: int) -> str:
        """The first `keep` groups by priority, gzip + base64."""
        return base64.b64encode(self.packed.gzip(keep)).decode("ascii")

    def size(self, keep: int) -> int:
        """Bytes of `encoded(keep)`."""
        return self.packed.b64_size(keep)


def encode_steps(
    rollouts: Iterable[Rollout], fingerprints: dict[int, tuple[int, int]], base_dir: Path | None
) -> dict[int, StepChunk]:
    """StepChunks for the steps these rollouts belong to."""
    by_step: dict[int, list[Rollout]] = {}
    for rollout in rollouts:
        by_step.setdefault(rollout.step, []).append(rollout)
    return {
        step: encode_step(step, groups, fingerprints.get(step, (0, 0)), base_dir)
        for step, groups in by_step.items()
    }


def encode_step(
    step: int, rollouts: list[Rollout], fingerprint: tuple[int, int], base_dir: Path | None
) -> StepChunk:
    groups: list[str] = []
    lines: list[str] = []
    geo = False
    summaries: list[tuple[float, float, bool]] = []  # (mean, spread, uniform) per group
    rewards: list[float] = []
    lengths: list[int] = []
    token_lengths = False
    good = bad = mixed = 0
    for rollout in rollouts:
        finite = (finite_number(t.reward) for t in rollout.trajectories)
        group_rewards = [float(r) for r in finite if r is not None]
        rewards.extend(group_rewards)
        for traj in rollout.trajectories:
            n_tokens = _token_count(traj.output_tokens, traj.logprobs)
            if n_tokens is not None:
                token_lengths = True
                lengths.append(n_tokens)
            else:
                lengths.append(len(_text(traj.output_text) or ""))
        uniform = len(group_rewards) > 1 and len(set(group_rewards)) == 1
        if uniform:
            good, bad = (good + 1, bad) if group_rewards[0] > 0 else (good, bad + 1)
        elif len(group_rewards) > 1:
            mixed += 1
        mean = sum(group_rewards) / len(group_rewards) if group_rewards else math.nan
        # statistics.pstdev is exact (fractions) and 10x slower; a spread for ranking is enough
        spread = (
            math.sqrt(sum((r - mean) ** 2 for r in group_rewards) / len(group_rewards))
            if group_rewards
            else 0.0
        )
        summaries.append((mean, spread, uniform))
        group = _group_json(rollout, group_rewards, uniform, base_dir)
        geo = geo or "gt" in group
        groups.append(dumps(group))
        lines.append(group_line(step, group))
    order = _priority(summaries)
    spreads = [s[1] for s in summaries if not math.isnan(s[0])]
    n_groups = len(groups)
    stats = {
        "step": step,
        "groups": n_groups,
        "traj": sum(len(r.trajectories) for r in rollouts),
        "best": max(rewards) if rewards else None,
        "mean": sum(rewards) / len(rewards) if rewards else None,
        "worst": min(rewards) if rewards else None,
        "flat": sum(1 for s in summaries if s[2]),
        "good": good,
        "bad": bad,
        "mixed": mixed,
        # Mean of each group's reward spread (population std): the learning signal GRPO has,
        # for continuous rewards too.
        "spread": sum(spreads) / len(spreads) if spreads else None,
    }
    return StepChunk(
        step=step,
        fingerprint=fingerprint,
        stats=stats,
        rewards=rewards,
        lengths=lengths,
        length_unit="tokens" if token_lengths else "chars",
        packed=PrefixGzip.pack([groups[i] for i in order]),
        table=PrefixDeflate.pack([lines[i] for i in order]),
        geo=geo,
    )


def _priority(summaries: list[tuple[float, float, bool]]) -> list[int]:
    """Which groups a sample keeps first: best, worst, mixed (widest spread first), the rest."""
    if not summaries:
        return []
    scored = [i for i, s in enumerate(summaries) if not math.isnan(s[0])]
    order: list[int] = []
    if scored:
        order.append(max(scored, key=lambda i: (summaries[i][0], -i)))
        worst = min(scored, key=lambda i: (summaries[i][0], i))
        if worst not in order:
            order.append(worst)
    taken = set(order)
    mixed = sorted(
        (i for i, s in enumerate(summaries) if not s[2] and i not in taken),
        key=lambda i: (-summaries[i][1], i),
    )
    order += mixed
    taken.update(mixed)
    order += [i for i in range(len(summaries)) if i not in taken]
    return order


def _token_count(output_tokens: Any, logprobs: Any) -> int | None:
    if isinstance(output_tokens, list) and output_tokens:
        return len(output_tokens)
    if isinstance(logprobs, list) and logprobs:
        return len(logprobs)
    return None


def _round(values: list[Any] | None, digits: int = 3) -> list[Any] | None:
    """Logprobs to 3 decimals: a third of their JSON size, and all a heatmap can show."""
    if not values:
        return None
    try:
        return [round(v, digits) for v in values]  # NaN stays NaN: dumps() makes it null
    except TypeError:  # a None (or a stray string, or a bool) in the list
        return [
            round(v, digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
            for v in values
        ]


def _group_json(
    rollout: Rollout, rewards: list[float], uniform: bool, base_dir: Path | None
) -> dict[str, Any]:
    trajectories = sorted(
        rollout.trajectories,
        key=lambda t: (
            -t.reward if finite_number(t.reward) is not None else math.inf,
            _sort_key(t.idx),
        ),
    )
    prompt = _text(rollout.prompt_text)
    group: dict[str, Any] = {
        "g": rollout.group_idx,
        "p": prompt or "",
        "ph": prompt_key(prompt, _text(rollout.image_path)) if prompt else "",
        "best": max(rewards) if rewards else None,
        "mean": sum(rewards) / len(rewards) if rewards else None,
        "flat": uniform,
        "t": [_trajectory_json(t) for t in trajectories],
    }
    if rollout.image_path:
        group["imgPath"] = _text(rollout.image_path) or repr(rollout.image_path)
        group["img"], note = _image_uri(rollout.image_path, base_dir)
        if note:
            group["imgNote"] = note
    gt = finite_number(rollout.gt_lat), finite_number(rollout.gt_lon)
    if gt[0] is not None and gt[1] is not None:
        group["gt"] = list(gt)
    place = ", ".join(p for p in (_text(rollout.city), _text(rollout.country)) if p)
    if place:
        group["place"] = place
    question = _question(rollout.extras)
    if question and question != prompt:
        group["q"] = question
    extras = _shown_extras(rollout.extras, prompt)
    if extras:
        group["x"] = extras
    return group


def _question(extras: Any) -> str | None:
    """The last user message of a chat prompt (tinker-cookbook's `prompt_messages`): the
    question itself, where the prompt's text starts with few-shot examples."""
    messages = extras.get("prompt_messages") if isinstance(extras, dict) else None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = " ".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
            return content.strip() or None if isinstance(content, str) else None
    return None


def _shown_extras(extras: Any, prompt: str | None) -> dict[str, Any]:
    """A group's extras minus what the page already shows elsewhere.

    tinker-cookbook imports keep the prompt as chat messages (`prompt_messages`) beside the
    `prompt_text` made from them, and `text_logged` says whether that text was found: with a
    prompt shown, both would repeat it. Without one, they are all the reader has.
    """
    if not isinstance(extras, dict):  # the store gives dicts; anything else shows as text
        return {"extras": extras} if extras not in (None, "") else {}
    if not prompt:
        return extras
    return {
        k: v
        for k, v in extras.items()
        if k not in REDUNDANT_WITH_PROMPT and not (k == "text_logged" and v is True)
    }


def _trajectory_json(traj: Trajectory) -> dict[str, Any]:
    """One trajectory for the page. Lists and numbers are used only if they are what they
    should be: a legacy or foreign file may hold anything there, which is then shown as text
    in the extras table instead of breaking the build or the page."""
    extras = dict(traj.extras) if isinstance(traj.extras, dict) else {"extras": traj.extras}
    odd: dict[str, Any] = {}
    out: dict[str, Any] = {
        "i": traj.idx if isinstance(traj.idx, int) else _text(traj.idx),
        "r": finite_number(traj.reward),
        "o": _text(traj.output_text) or "",
    }
    fields = {
        "output_tokens": traj.output_tokens,
        "logprobs": traj.logprobs,
        "step_rewards": traj.step_rewards,
        "turns": traj.turns,
    }
    for name, value in fields.items():
        if value is not None and not isinstance(value, list):
            odd[name] = value
            fields[name] = None
    if traj.output_text is not None and not isinstance(traj.output_text, str):
        odd["output_text"] = _text(traj.output_text, lossy=True)
    n_tokens = _token_count(fields["output_tokens"], fields["logprobs"])
    if n_tokens is not None:
        out["nt"] = n_tokens
    logprobs = fields["logprobs"]
    if logprobs:
        out["lp"] = _round(logprobs)
        texts = _token_texts(extras.get(TOKEN_TEXTS), len(logprobs))
        if texts is not None:  # shown as the heatmap's text, not again in the extras table
            out["tt"] = texts
            extras.pop(TOKEN_TEXTS)
    if fields["step_rewards"]:
        out["sr"] = _round(fields["step_rewards"], 4)
    if fields["turns"]:
        out["turns"] = fields["turns"]
    pred = finite_number(traj.pred_lat), finite_number(traj.pred_lon)
    if pred[0] is not None and pred[1] is not None:
        out["pred"] = list(pred)
    distance = finite_number(traj.distance_km)
    if distance is not None:
        out["d"] = distance
    extras.update(odd)
    if extras:
        out["x"] = extras
    return out


def _text(value: Any, *, lossy: bool = False) -> str | None:
    """Text as text; bytes (a blob in a text column) decoded; anything else None, or with
    `lossy` its JSON-ish repr."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value) if lossy or isinstance(value, (int, float)) else None


def _sort_key(idx: Any) -> tuple[int, Any]:
    return (0, idx) if isinstance(idx, int) else (1, str(idx))


def _token_texts(value: Any, n: int) -> list[str] | None:
    """The decoded text of each sampled token, if the trajectory's extras hold a usable list."""
    if isinstance(value, list) and len(value) == n and all(isinstance(t, str) for t in value):
        return value
    return None


def _image_uri(image_path: Any, base_dir: Path | None) -> tuple[str | None, str | None]:
    """A data URI for a readable image file inside the database's folder, else (None, why not).

    Only the database's folder tree is read: a relative path is taken from that folder (never
    from the current directory, so the page does not depend on where the build ran), and an
    absolute one, a `..` escape or a symlink must land inside it. A database shared by someone
    else must not make the build embed pictures from the builder's own disk. URLs are never
    fetched: a page loads nothing. Any failure gives no image and a short note, never a
    failed build.
    """
    try:
        return _read_image(image_path, base_dir)
    except Exception:  # noqa: BLE001  (a name the OS cannot take, a file that vanished, ...)
        return None, "image could not be read"


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _read_image(image_path: Any, base_dir: Path | None) -> tuple[str | None, str | None]:
    if not isinstance(image_path, str) or not image_path.strip():
        return None, "image path is not a file name"
    if _URL.match(image_path) and not Path(image_path).is_absolute():
        return None, "image not embedded: a URL (pages never fetch anything)"
    if image_path.startswith("~"):
        return None, "image not embedded: only files in the database's folder are embedded"
    if base_dir is None:
        return None, "image not embedded: the database's folder is unknown"
    root = base_dir.resolve()
    candidate = (root / image_path).resolve()  # an absolute image_path replaces root
    if not candidate.is_relative_to(root):
        return None, "image not embedded: only files in the database's folder are embedded"
    if not candidate.is_file():
        return None, "image file not found next to the database"
    size = candidate.stat().st_size
    if size > MAX_IMAGE_BYTES:
        return None, f"image not embedded: {size / 1e6:.1f} MB is over the limit"
    mime = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
    if not mime.startswith("image/"):
        return None, "not an image file"
    data = base64.b64encode(candidate.read_bytes()).decode("ascii")
    return f"data:{mime};base64,{data}", None


def plan_sample(
    chunks: list[StepChunk], available: int, key: Callable[[StepChunk], int] | None = None
) -> dict[int, int]:
    """Groups to keep per step so the chunks and their table rows fit in `available` bytes.

    The same number of groups for every step (the largest that fits); if even one group a
    step is too much, the oldest steps lose their rollouts. `key` names a chunk in the plan
    (default its step; eval chunks, several a step, use their place).
    """
    name = key or (lambda c: c.step)
    if sum(c.cost(c.n_groups) for c in chunks) <= available:
        return {name(c): c.n_groups for c in chunks}
    lo, hi = 0, max((c.n_groups for c in chunks), default=0)
    while lo < hi:  # the largest k whose total fits
        mid = (lo + hi + 1) // 2
        if sum(c.cost(mid) for c in chunks) <= available:
            lo = mid
        else:
            hi = mid - 1
    if lo >= 1:
        return {name(c): min(lo, c.n_groups) for c in chunks}
    plan = {name(c): 0 for c in chunks}
    left = available
    for chunk in sorted(chunks, key=lambda c: -name(c)):  # newest steps first
        cost = chunk.cost(1)
        if cost > left:
            break
        plan[name(chunk)] = 1
        left -= cost
    return plan
