"""Names and defaults shared by the writer and the readers: metric aliases, legacy columns,
run pages, the server's port and the page budget.

Kept free of heavy imports: the logger imports it in the training process.
"""

from __future__ import annotations

import hashlib
import re

from tviz import catalog

# The prefixes tviz 0.2.x tried in front of a bare name, plus the one it missed
# (tinker-cookbook writes the GRPO group signal as `env/all/by_group/frac_mixed`).
_PREFIXES = ("", "env/all/", "optim/", "by_group/", "env/all/by_group/")


def _aliases(*names: str) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        for prefix in _PREFIXES:
            if prefix + name not in out:
                out.append(prefix + name)
    return tuple(out)


# Column of the 0.2.x `steps` table -> the metric names that fill it, first match wins.
# Every metric is also kept under its own name in `metrics`; these columns exist so that
# the 0.2.x dashboard can still read files written by us.
LEGACY_COLUMNS: dict[str, tuple[str, ...]] = {
    "reward_mean": _aliases("reward_mean", "reward", "reward/total"),
    "reward_std": _aliases("reward_std", "reward/std"),
    "loss": _aliases("loss", "train_mean_nll", "loss:sum"),
    "kl_divergence": _aliases(
        "kl_divergence", "kl", "kl_sample_train", "kl_sample_train_v1", "kl_sample_train_v2"
    ),
    "entropy": _aliases("entropy"),
    "learning_rate": _aliases("learning_rate", "lr"),
    "ac_tokens_per_turn": _aliases("ac_tokens_per_turn"),
    "ob_tokens_per_turn": _aliases("ob_tokens_per_turn"),
    "total_ac_tokens": _aliases("total_ac_tokens"),
    "total_turns": _aliases("total_turns"),
    "sampling_time_mean": ("time/sampling_time_mean", "sampling_time_mean", "time/sample"),
    "time_total": ("time/total", "time_total"),
    "frac_mixed": _aliases("frac_mixed"),
    "frac_all_good": _aliases("frac_all_good"),
    "frac_all_bad": _aliases("frac_all_bad"),
}

LEGACY_INTEGER_COLUMNS = frozenset({"total_ac_tokens", "total_turns"})

# metric name -> (legacy column, rank among that column's names): one lookup per metric.
LEGACY_INDEX: dict[str, tuple[str, int]] = {
    name: (column, rank)
    for column, names in LEGACY_COLUMNS.items()
    for rank, name in reversed(list(enumerate(names)))
}

# Which metric a chart of "the reward" should use, best first: the catalog's reward names.
REWARD_METRICS = catalog.names("reward")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_slug(name: str | None, run_id: str) -> str:
    """A file name for a run's page: safe whatever the name holds, and its own for every id.

    An id that is already a safe lowercase file name is used as it is, so pages keep the names
    they always had. Any other id (one the sanitising changes, one with capitals, one over 160
    characters) also gets a short hash of itself: `exp/1` and `exp-1`, two ids of non-Latin
    letters, `Run` and `run` (on a file system that ignores case) never share a page, and a
    page's name depends on its own run alone, so adding runs never renames it.
    """
    raw = str(run_id)
    safe_id = _UNSAFE.sub("-", raw).strip("-.")
    base = _UNSAFE.sub("-", str(name or "")).strip("-.")[:60].rstrip("-.")
    if not safe_id or safe_id != raw or raw != raw.lower() or len(safe_id) > 160:
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        short = safe_id[:160].rstrip("-.") or "run"
        if base == safe_id:
            base = ""
        safe_id = f"{short}-{digest}"
    if not base or base == safe_id:
        return safe_id
    return f"{base}-{safe_id}"


def run_page(name: str | None, run_id: str) -> str:
    """A run's page, relative to the site's folder (see `run_slug`)."""
    return f"runs/{run_slug(name, run_id)}.html"


# Where `tviz watch` serves by default (and so where a logger says its run can be seen).
DEFAULT_PORT = 3003
# The largest run page `tviz build` writes before it samples rollouts (bytes).
DEFAULT_BUDGET_BYTES = 25_000_000
