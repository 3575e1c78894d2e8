"""Log a Hugging Face TRL `GRPOTrainer` run into tviz.

```python
from tviz.integrations.trl import TvizCallback

trainer = GRPOTrainer(model=..., reward_funcs=[...], args=GRPOConfig(..., log_completions=True))
trainer.add_callback(TvizCallback(trainer))  # ~/.tviz/tviz.db, $TVIZ_DB_PATH or db_path=
trainer.train()
```

Tested with TRL 1.16.0 (transformers 5.24, torch 2.13 on the CPU). On the main process only
(`state.is_world_process_zero`), the callback logs into one run:

- the config: the `GRPOConfig` as plain values (`args.to_dict()`), the model's name, the reward
  functions' names and TRL's version. The run's name is `run_name=`, else `args.run_name`.
- every metric TRL logs, under TRL's names (`reward`, `kl`, `entropy`, `completions/mean_length`,
  `frac_reward_zero_std`, `loss`...), at `state.global_step`; evaluation metrics (`eval_reward`)
  under `eval/` (`eval/reward`); the summary at the end of training (`train_runtime`,
  `train_loss`, `total_flos`...) as summary values, not as a step.
- with `log_completions=True` (in the `GRPOConfig`, or `TvizCallback(log_completions=True)`),
  every generation batch once, at the step that generated it: the `num_generations`
  completions of one prompt are a group; each trajectory has its completion, the reward of each
  reward function by name (`rewards`), the weighted total reward (`reward`) and its `advantage`.
  Chat prompts and completions are shown as text and kept as messages (`prompt_messages`,
  `completion_messages`).

Where the completions come from: `GRPOTrainer._generate_and_score_completions` keeps the last
generation batch in the private `trainer._logs` (deques the size of one batch: `prompt`,
`completion`, `rewards[name]`, `advantages`, `extra[column]`) and appends one value per batch to
`trainer._metrics["train"]["reward"]`. TRL reads `_logs` only when it logs (every
`logging_steps`), so the batches in between never reach its table; this callback looks after
every micro-step (`on_substep_end`, `on_step_end`) whether that reward list grew, and reads the
batch then, before an evaluation can replace it. A TRL version without these attributes gets one
warning and no completions; its metrics and config are still logged.

The trainer is never slowed or broken: log calls only queue (see `TvizLogger`), and every
callback method catches its own errors and warns once (`TvizWarning`). `on_train_end` closes
the run as finished; a crash leaves it to `TvizLogger`'s exit handling (marked crashed).
Values logged after training (`trainer.evaluate()`) reopen the same run.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any

from transformers import TrainerCallback

from tviz.adapters.cookbook.logtree import conversation_text
from tviz.logger import TvizLogger, TvizWarning
from tviz.records import TRAJECTORY_KEYS

__all__ = ["TESTED_TRL_VERSIONS", "TvizCallback"]

TESTED_TRL_VERSIONS = ("1.16.0",)

# The log at the end of training (Trainer._finalize_training) has `train_loss`; these of its
# keys are the run's summary. (Its other keys are TRL's metrics not logged yet: the last step's.)
_SUMMARY_PREFIXES = ("train_", "init_mem_")
_SUMMARY_KEYS = frozenset({"total_flos", "epoch"})
# What GRPOTrainer._logs must hold for completions to be read.
_BUFFERS = ("prompt", "completion", "rewards", "advantages")
# Keys a trajectory dict gets from this module; a TRL `log_extra` column with one of these names
# (or a contract key) is kept as "extra/<name>".
_OWN_KEYS = TRAJECTORY_KEYS | {"rewards", "advantage", "completion_messages"}


def _guarded(method: Callable[..., Any]) -> Callable[..., None]:
    """A callback method that never raises into the trainer: an error is one warning."""

    @functools.wraps(method)
    def wrapper(self: TvizCallback, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as exc:
            self._warn_once(
                method.__name__,
                f"{method.__name__} failed ({type(exc).__name__}: {exc}); training goes on",
            )

    return wrapper


class TvizCallback(TrainerCallback):
    """Log a TRL `GRPOTrainer`'s config, metrics and completions into a tviz database.

    Args:
        trainer: the trainer, to read its completions (without it: config and metrics only).
        db_path: the database; default `$TVIZ_DB_PATH`, else `~/.tviz/tviz.db`.
        run_name: the run's name; default `args.run_name`, else the run id.
        log_completions: log the completions; default the GRPOConfig's `log_completions`.
        **logger_kwargs: passed to `TvizLogger` (`run_id`, `project`, `group`, `config`...;
            a `config` is merged over the trainer's).

    `logger` is the run's `TvizLogger` while one is open (None before training and on the
    other processes), for anything else you want to log into the run.
    """

    def __init__(
        self,
        trainer: Any = None,
        *,
        db_path: Any = None,
        run_name: str | None = None,
        log_completions: bool | None = None,
        **logger_kwargs: Any,
    ) -> None:
        self.trainer = trainer
        self.logger: TvizLogger | None = None
        self._db_path = db_path
        self._run_name = run_name
        self._log_completions = log_completions
        self._user_config = logger_kwargs.pop("config", None)
        self._run_id: str | None = logger_kwargs.pop("run_id", None)
        self._logger_kwargs = logger_kwargs
        self._config_logged = False
        self._warned: set[str] = set()
        self._reads_completions = False
        # The list TRL appends one reward to per generation batch, and its length when last read.
        self._batches: tuple[list[float] | None, int] = (None, 0)
        # The step rollouts were last logged at, and how many groups it has.
        self._groups_at: tuple[int | None, int] = (None, 0)

    # -- the trainer's events ------------------------------------------------------------------

    @_guarded
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self._open(args, kwargs.get("model"))
        self._reads_completions = self._wants_completions(args) and self._buffers_readable()
        if self._reads_completions:
            reward_list = self._reward_list()
            self._batches = (reward_list, len(reward_list) if reward_list is not None else 0)

    @_guarded
    def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # A micro-step of gradient accumulation: the optimizer step under way is the next one.
        self._read_batch(state.global_step + 1)

    @_guarded
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._read_batch(state.global_step)

    @_guarded
    def on_log(
        self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        logger = self._open(args, kwargs.get("model"))
        metrics, summary = _split_logs(logs)
        if metrics:
            logger.log_metrics(metrics, step=state.global_step)
        if summary:
            logger.log_summary(summary)

    @_guarded
    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.logger is not None:
            self.logger.close("finished")
            self.logger = None

    # -- the run -------------------------------------------------------------------------------

    def _open(self, args: Any, model: Any) -> TvizLogger:
        """The run's logger: created on first use, the same run reopened after training."""
        if self.logger is None:
            name = self._run_name or getattr(args, "run_name", None) or None
            self.logger = TvizLogger(
                self._db_path, name, run_id=self._run_id, **self._logger_kwargs
            )
            self._run_id = self.logger.run_id
        if not self._config_logged:
            self._config_logged = True
            self.logger.log_hparams(self._config(args, model))
            if self._user_config is not None:
                self.logger.log_hparams(self._user_config)
        return self.logger

    def _config(self, args: Any, model: Any) -> dict[str, Any]:
        trainer = self.trainer
        model = model if model is not None else getattr(trainer, "model", None)
        config: dict[str, Any] = {"model_name": _model_name(model)}
        to_dict = getattr(args, "to_dict", None)
        config.update(to_dict() if callable(to_dict) else vars(args))
        names = getattr(trainer, "reward_func_names", None)
        if names is not None:
            config["reward_funcs"] = [str(n) for n in names]
        if trainer is not None:
            config["trainer"] = type(trainer).__name__
        config["trl_version"] = _trl_version()
        return config

    # -- completions ---------------------------------------------------------------------------

    def _wants_completions(self, args: Any) -> bool:
        wanted = self._log_completions
        if wanted is None:
            wanted = bool(getattr(args, "log_completions", False))
        if wanted and self.trainer is None:
            self._warn_once(
                "no-trainer", "completions are logged only with the trainer: TvizCallback(trainer)"
            )
            return False
        return wanted

    def _buffers_readable(self) -> bool:
        logs = getattr(self.trainer, "_logs", None)
        metrics = getattr(self.trainer, "_metrics", None)
        if (
            isinstance(logs, Mapping)
            and all(key in logs for key in _BUFFERS)
            and isinstance(metrics, Mapping)
            and isinstance(metrics.get("train"), Mapping)
        ):
            return True
        self._warn_once(
            "buffers",
            f"{type(self.trainer).__name__} (TRL {_trl_version()}) keeps no completions where "
            f"tviz reads them (GRPOTrainer._logs, as in TRL {', '.join(TESTED_TRL_VERSIONS)}): "
            "completions are not logged; metrics and config are",
        )
        return False

    def _reward_list(self) -> list[float] | None:
        # .get: reading must not add a key to TRL's defaultdict (it would log it as a metric).
        return self.trainer._metrics["train"].get("reward")

    def _read_batch(self, step: int) -> None:
        """Log the generation batch TRL made since the last look, if it made one."""
        if self.logger is None or not self._reads_completions:
            return
        reward_list = self._reward_list()
        last, seen = self._batches
        if reward_list is None or (reward_list is last and len(reward_list) <= seen):
            return
        new = len(reward_list) - (seen if reward_list is last else 0)
        self._batches = (reward_list, len(reward_list))
        if new > 1:
            self._warn_once(
                "skipped",
                f"TRL generated {new} batches between two steps; the last one is logged",
            )
        trainer = self.trainer
        names = [str(n) for n in trainer.reward_func_names]
        weights = getattr(trainer, "reward_weights", None)
        weights = weights.tolist() if hasattr(weights, "tolist") else list(weights or ())
        if len(weights) != len(names):
            weights = [1.0] * len(names)
        group_size = int(getattr(trainer, "num_generations", 0) or trainer.args.num_generations)
        rollouts = _batch_rollouts(trainer._logs, names, weights, group_size)
        at, before = self._groups_at
        first = before if at == step else 0
        for i, rollout in enumerate(rollouts):
            rollout["group_idx"] = first + i
        self._groups_at = (step, first + len(rollouts))
        if rollouts:
            self.logger.log_rollouts(rollouts, step=step)

    # -- warnings ------------------------------------------------------------------------------

    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        try:
            warnings.warn(f"tviz: {message}", TvizWarning, stacklevel=3)
        except Exception:  # warnings turned into errors (-W error) must not break training
            pass


def _split_logs(logs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trainer log as (metrics of the step, summary values)."""
    final = "train_loss" in logs
    metrics: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for key, value in logs.items():
        if value is None:  # TRL's mean of a metric with no finite value
            continue
        key = str(key)
        if final and (key.startswith(_SUMMARY_PREFIXES) or key in _SUMMARY_KEYS):
            summary[key] = value
        elif key.startswith("eval_"):
            metrics["eval/" + key.removeprefix("eval_")] = value
        else:
            metrics[key] = value
    return metrics, summary


def _batch_rollouts(
    logs: Mapping[str, Any], names: list[str], weights: list[float], group_size: int
) -> list[dict[str, Any]]:
    """GRPOTrainer's generation batch (`trainer._logs`) as rollout groups.

    TRL lays a batch out prompt by prompt, `group_size` completions each (its advantages are
    computed over `rewards.view(-1, num_generations)`), so consecutive rows are a group.
    """
    prompts = list(logs["prompt"])
    n = len(prompts)
    completions = _column(logs["completion"], n)
    advantages = _column(logs["advantages"], n)
    rewards = {name: _column(logs["rewards"].get(name, ()), n) for name in names}
    extra = {str(k): _column(v, n) for k, v in (logs.get("extra") or {}).items()}
    size = max(1, group_size)
    rollouts: list[dict[str, Any]] = []
    for start in range(0, n, size):
        prompt = prompts[start]
        rollout: dict[str, Any] = {"prompt_text": _text(prompt), "trajectories": []}
        if _is_messages(prompt):  # kept in the group's extras; the page shows the text
            rollout["prompt_messages"] = [dict(m) for m in prompt]
        for i in range(start, min(start + size, n)):
            by_func = {name: _number(rewards[name][i]) for name in names}
            trajectory: dict[str, Any] = {
                "reward": _total(by_func.values(), weights),
                "output_text": _text(completions[i], answer=True),
                "rewards": by_func,
                "advantage": _number(advantages[i]),
            }
            if _is_messages(completions[i]):
                trajectory["completion_messages"] = [dict(m) for m in completions[i]]
            for column, values in extra.items():
                trajectory[f"extra/{column}" if column in _OWN_KEYS else column] = values[i]
            rollout["trajectories"].append(trajectory)
        rollouts.append(rollout)
    return rollouts


def _column(values: Iterable[Any], n: int) -> list[Any]:
    """A buffer as n values, aligned on the newest (a short one padded with None in front)."""
    items = list(values)[-n:] if n else []
    return [None] * (n - len(items)) + items


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _total(rewards: Iterable[float], weights: list[float]) -> float:
    """TRL's total reward: the weighted sum of the functions' rewards, NaN ones left out (NaN
    when every function returned None)."""
    parts = [w * r for r, w in zip(rewards, weights, strict=True) if not math.isnan(r)]
    return math.fsum(parts) if parts else math.nan


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, Mapping) and "role" in m for m in value)
    )


def _text(value: Any, *, answer: bool = False) -> str:
    """A prompt or completion as text: chat messages as `role: content` blocks, except that an
    answer that is one assistant message is just its content."""
    if isinstance(value, str):
        return value
    if not _is_messages(value):
        return "" if value is None else str(value)
    only = value[0]
    plain = isinstance(only.get("content"), str) and not only.get("tool_calls")
    if answer and len(value) == 1 and only.get("role") == "assistant" and plain:
        return only["content"]
    return conversation_text([dict(m) for m in value])


def _model_name(model: Any) -> str | None:
    for source in (model, getattr(model, "config", None)):
        name = getattr(source, "name_or_path", None) or getattr(source, "_name_or_path", None)
        if isinstance(name, str) and name:
            return name
    return type(model).__name__ if model is not None else None


def _trl_version() -> str | None:
    try:
        return metadata.version("trl")
    except metadata.PackageNotFoundError:
        return None
