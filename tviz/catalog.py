"""One catalog of the metrics RL trainers log: which name plays which role, in what unit, and
which way is better.

Each trainer names its metrics its own way: tinker-cookbook logs the reward as
`env/all/reward/total`, Hugging Face TRL as `reward`, verl as `critic/score/mean`. A report asks
the catalog instead of knowing every name: `find("reward", run_metric_names)` gives the run's
metric that fills the *role* "reward", with its catalog entry (a human label, the unit, the
direction that is better, and the transform that turns the logged value into the role's value,
such as TRL's share of mixed groups: `1 - frac_reward_zero_std`).

The names themselves are data, in `tviz/catalog.toml`: adding a trainer (or a name) is adding
lines there. The blocks are tried in their order, a block's entries in theirs, and the first name
a run has wins. A
name two trainers share (`reward`, `entropy`) may stand in both blocks; `find` returns the first.
Kept free of imports beyond the standard library: the logger imports it (through `tviz.names`)
in the training process.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "ENTRIES",
    "OVERVIEW_ROLES",
    "ROLES",
    "TRAINERS",
    "Entry",
    "Trainer",
    "find",
    "names",
    "trainer_of",
]

# The direction in which a role's value is better.
HIGHER, LOWER, NEITHER = "higher", "lower", "none"

# Role -> what a person calls it.
ROLES: dict[str, str] = {
    "reward": "Reward",
    "reward_std": "Reward spread",
    "kl": "KL divergence",
    "entropy": "Entropy",
    "output_length": "Mean output length",
    "truncated": "Truncated outputs",
    "frac_mixed": "Mixed groups",
    "frac_all_good": "All-good groups",
    "frac_all_bad": "All-bad groups",
    "loss": "Loss",
    "learning_rate": "Learning rate",
    "grad_norm": "Gradient norm",
    "step_time": "Step time",
}

# How a logged value becomes the role's value, and how that reads (by name, so that an entry
# stays plain data).
TRANSFORMS: dict[str, tuple[Callable[[float], float], str]] = {
    "one_minus": (lambda value: 1.0 - value, "1 − {}"),
}


@dataclass(frozen=True)
class Entry:
    """One metric name of one trainer, and what it means."""

    name: str
    role: str  # a key of ROLES
    label: str  # what a person calls this metric
    unit: str = ""  # "tokens", "characters", "seconds", "fraction"; "" when it has none
    better: str = NEITHER  # HIGHER, LOWER or NEITHER, for the role's value (after `transform`)
    transform: str | None = None  # a key of TRANSFORMS; None: the logged value is the role's
    # Also matches any name ending in "/<name>" (the shortest such name first): tviz has always
    # found the GRPO group signal under whatever prefix a loop logged it.
    suffix: bool = False
    trainer: str = ""  # the key of the trainer whose block lists it

    def apply(self, values: Sequence[float]) -> list[float]:
        """The role's values from the logged ones (NaN and infinities stay what they are)."""
        if self.transform is None:
            return list(values)
        function = TRANSFORMS[self.transform][0]
        return [function(v) for v in values]

    def formula(self, name: str) -> str:
        """How the role's value comes from the logged metric `name`: "1 − name", or the name."""
        return TRANSFORMS[self.transform][1].format(name) if self.transform else name

    def matches(self, names: Sequence[str]) -> str | None:
        """The run's metric this entry names, if it has one (`names` sorted)."""
        if not self.suffix:
            return self.name if self.name in names else None
        tail = "/" + self.name
        found = [n for n in names if n == self.name or n.endswith(tail)]
        return min(found, key=len) if found else None


@dataclass(frozen=True)
class Trainer:
    key: str
    label: str
    # The roles the run page's overview charts from this trainer's logged metrics.
    overview: tuple[str, ...]
    entries: tuple[Entry, ...]


# The roles the run page's overview charts from a run's logged metrics: reward, output length,
# KL, entropy and the group signal (reward and length only where no rollouts give exact figures).
OVERVIEW_ROLES = (
    "reward",
    "output_length",
    "kl",
    "entropy",
    "frac_all_good",
    "frac_all_bad",
    "frac_mixed",
)


def _load(text: str) -> tuple[Trainer, ...]:
    """The trainers of `catalog.toml`, in its order (the order `find` tries them)."""
    trainers = []
    for block in tomllib.loads(text)["trainer"]:
        key = block["key"]
        entries = tuple(Entry(**metric, trainer=key) for metric in block["metrics"])
        overview = tuple(block.get("overview", OVERVIEW_ROLES))
        trainers.append(Trainer(key, block["label"], overview, entries))
    return tuple(trainers)


TRAINERS: tuple[Trainer, ...] = _load(
    (resources.files("tviz") / "catalog.toml").read_text(encoding="utf-8")
)
# Every entry, in the order `find` tries them.
ENTRIES: tuple[Entry, ...] = tuple(e for t in TRAINERS for e in t.entries)


def _own_names() -> dict[str, frozenset[str]]:
    """Per trainer, the names no other trainer lists: what tells a run's trainer."""
    listed = [{e.name for e in t.entries} for t in TRAINERS]
    return {
        t.key: frozenset(
            n for n in mine if not any(n in other for other in listed if other is not mine)
        )
        for t, mine in zip(TRAINERS, listed, strict=True)
    }


_OWN = _own_names()


def find(role: str, metric_names: Iterable[str]) -> tuple[str, Entry] | None:
    """The run's metric that fills `role`, with its entry: the first entry (in the catalog's
    order) that names one of `metric_names`. None if none does."""
    ordered = sorted(metric_names)
    for entry in ENTRIES:
        if entry.role == role:
            name = entry.matches(ordered)
            if name is not None:
                return name, entry
    return None


def trainer_of(metric_names: Iterable[str]) -> Trainer | None:
    """The trainer that logged these metrics: the one with the most names no other lists
    (the first declared on a tie); None if no name tells."""
    present = set(metric_names)
    best, most = None, 0
    for trainer in TRAINERS:
        count = len(_OWN[trainer.key] & present)
        if count > most:
            best, most = trainer, count
    return best


def names(role: str) -> tuple[str, ...]:
    """Every name the catalog has for `role`, in the order `find` tries them."""
    return tuple(dict.fromkeys(e.name for e in ENTRIES if e.role == role))
