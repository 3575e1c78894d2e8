"""One group of rollouts as the page holds it: JSON with the prompt, each trajectory's text,
rounded logprobs and extras, and its image embedded when it is a file beside the database.

Lists and numbers are used only if they are what they should be: a legacy or foreign file may
hold anything there, which is then shown as text in the extras table instead of breaking the
build or the page.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import re
from pathlib import Path
from typing import Any

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


def token_count(output_tokens: Any, logprobs: Any) -> int | None:
    """Output tokens of a trajectory: its token list's length, else its logprobs'."""
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


def group_json(
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
    n_tokens = token_count(fields["output_tokens"], fields["logprobs"])
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
