"""One catalog of the metrics RL trainers log: which name plays which role, in what unit, and
which way is better.

Each trainer names its metrics its own way: tinker-cookbook logs the reward as
`env/all/reward/total`, Hugging Face TRL as `reward`, verl as `critic/score/mean`. A report asks
the catalog instead of knowing every name: `find("reward", run_metric_names)` gives the run's
metric that fills the *role* "reward", with its catalog entry (a human label, the unit, the
direction that is better, and the transform that turns the logged value into the role's value,
such as TRL's share of mixed groups: `1 - frac_reward_zero_std`).

Adding a trainer (or a name) is adding entries to its block below: the blocks are tried in the
order of `TRAINERS`, a block's entries in their order, and the first name a run has wins. A
name two trainers share (`reward`, `entropy`) may stand in both blocks; `find` returns the first.
Kept free of imports beyond the standard library: the logger imports it (through `tviz.names`)
in the training process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

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


def _trainer(key: str, label: str, overview: tuple[str, ...], *entries: Entry) -> Trainer:
    return Trainer(key, label, overview, tuple(replace(e, trainer=key) for e in entries))


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

TINKER = _trainer(
    "tinker-cookbook",
    "tinker-cookbook",
    OVERVIEW_ROLES,
    Entry("env/all/reward/total", "reward", "Reward", better=HIGHER),
    Entry("optim/kl_sample_train_v1", "kl", "KL sampler → learner", better=LOWER),
    Entry("optim/kl_sample_train_v2", "kl", "KL sampler → learner (v2)", better=LOWER),
    Entry("optim/entropy", "entropy", "Entropy"),
    Entry("env/all/ac_tokens_per_turn", "output_length", "Output tokens per turn", "tokens"),
    Entry("env/all/by_group/frac_mixed", "frac_mixed", "Mixed groups", "fraction", HIGHER),
    Entry("env/all/by_group/frac_all_good", "frac_all_good", "All-good groups", "fraction"),
    Entry("env/all/by_group/frac_all_bad", "frac_all_bad", "All-bad groups", "fraction", LOWER),
    Entry("optim/lr", "learning_rate", "Learning rate"),
    Entry("time/total", "step_time", "Step time", "seconds", LOWER),
)

# The columns of tviz 0.2.x's `steps` table (a migrated file's metrics carry these names), and
# the names 0.2.x read as the reward.
TVIZ_02 = _trainer(
    "tviz-0.2",
    "tviz 0.2.x",
    OVERVIEW_ROLES,
    Entry("reward/total", "reward", "Reward", better=HIGHER),
    Entry("reward_mean", "reward", "Reward", better=HIGHER),
    Entry("reward", "reward", "Reward", better=HIGHER),
    Entry("env/all/reward", "reward", "Reward", better=HIGHER),
    Entry("reward_std", "reward_std", "Reward spread (std)"),
    Entry("kl_divergence", "kl", "KL divergence"),
    Entry("entropy", "entropy", "Entropy"),
    Entry("ac_tokens_per_turn", "output_length", "Output tokens per turn", "tokens"),
    Entry("frac_mixed", "frac_mixed", "Mixed groups", "fraction", HIGHER, suffix=True),
    Entry("frac_all_good", "frac_all_good", "All-good groups", "fraction", suffix=True),
    Entry("frac_all_bad", "frac_all_bad", "All-bad groups", "fraction", LOWER, suffix=True),
    Entry("loss", "loss", "Loss"),
    Entry("learning_rate", "learning_rate", "Learning rate"),
    Entry("time_total", "step_time", "Step time", "seconds", LOWER),
)

# Hugging Face TRL's GRPOTrainer (and its RLOO/DAPO-style siblings), as TRL 1.x logs them.
TRL = _trainer(
    "trl",
    "Hugging Face TRL",
    OVERVIEW_ROLES,
    Entry("reward", "reward", "Reward", better=HIGHER),
    Entry("reward_std", "reward_std", "Reward spread (std)"),
    Entry("kl", "kl", "KL to the reference model"),
    Entry("entropy", "entropy", "Entropy"),
    Entry("completions/mean_length", "output_length", "Mean output length", "tokens"),
    Entry("completions/clipped_ratio", "truncated", "Truncated outputs", "fraction", LOWER),
    # The share of groups whose rewards are all equal: no signal. Mixed groups are the rest.
    Entry("frac_reward_zero_std", "frac_mixed", "Mixed groups", "fraction", HIGHER, "one_minus"),
    Entry("loss", "loss", "Loss"),
    Entry("learning_rate", "learning_rate", "Learning rate"),
    Entry("grad_norm", "grad_norm", "Gradient norm"),
    Entry("step_time", "step_time", "Step time", "seconds", LOWER),
)

# verl's PPO/GRPO trainer (verl/trainer/ppo/metric_utils.py and its actors).
VERL = _trainer(
    "verl",
    "verl",
    OVERVIEW_ROLES,
    Entry("critic/score/mean", "reward", "Reward (score)", better=HIGHER),
    Entry("critic/rewards/mean", "reward", "Reward (with KL penalty)", better=HIGHER),
    Entry("actor/ppo_kl", "kl", "KL old → new policy", better=LOWER),
    Entry("actor/kl_loss", "kl", "KL to the reference model"),
    Entry("actor/entropy", "entropy", "Entropy"),
    Entry("response_length/mean", "output_length", "Mean output length", "tokens"),
    Entry("response_length/clip_ratio", "truncated", "Truncated outputs", "fraction", LOWER),
    Entry("actor/pg_loss", "loss", "Policy loss"),
    Entry("actor/lr", "learning_rate", "Learning rate"),
    Entry("actor/grad_norm", "grad_norm", "Gradient norm"),
    Entry("timing_s/step", "step_time", "Step time", "seconds", LOWER),
)

TRAINERS: tuple[Trainer, ...] = (TINKER, TVIZ_02, TRL, VERL)
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
