"""`tviz.init / log / log_rollouts / finish`: the wandb- and trackio-style way to log.

Code written for `wandb.init(...)`, `wandb.log({...})`, `wandb.finish()` (or trackio's) ports by
changing the import. The module's current run is the one piece of global state in tviz, as in
wandb: `init` starts it, `finish` ends it, and `tviz.run` is it (None between runs).

Steps count up by themselves: each `log` call without `step=` logs at the next step (0, 1, 2...);
`log(..., step=N)` logs at N and the count goes on from N + 1. `log_rollouts` without `step=`
logs at the step the next `log` call will use: log a step's rollouts before its metrics (or pass
`step=` to both) and they land on the same step.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from tviz.logger import TvizLogger
from tviz.records import Rollout

__all__ = ["Run", "finish", "init", "log", "log_rollouts"]


class Run:
    """A run started by `tviz.init`; its methods are those of the module-level functions."""

    def __init__(self, logger: TvizLogger, config: dict[str, Any]) -> None:
        self.logger = logger
        self.config = config
        self.step = 0  # the step the next log() without `step=` uses

    @property
    def id(self) -> str:
        return self.logger.run_id

    @property
    def name(self) -> str:
        return self.logger.run_name

    @property
    def project(self) -> str | None:
        return self.logger.project

    @property
    def group(self) -> str | None:
        return self.logger.group

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log a dict of metrics at `step`, default the next step."""
        if step is None:
            step = self.step
        self.logger.log_metrics(data, step=step)
        try:
            self.step = max(self.step, int(step) + 1)
        except (TypeError, ValueError, OverflowError):
            pass  # not a step: the logger has warned and skipped the call; training goes on

    def log_rollouts(self, rollouts: Iterable[Rollout], step: int | None = None) -> None:
        """Log groups of trajectories (see `tviz.records`) at `step`, default the next step."""
        self.logger.log_rollouts(rollouts, step=self.step if step is None else step)

    def finish(self, status: str = "finished") -> None:
        """End this run; if it is the current one, there is no current run any more."""
        global run
        if run is self:
            run = None
        self.logger.close(status)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish("crashed" if exc_type is not None else "finished")

    def __repr__(self) -> str:
        return f"<tviz run {self.name!r} ({self.id})>"


# The current run: module state, as wandb.run.
run: Run | None = None


def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | Any = None,
    group: str | None = None,
    *,
    id: str | None = None,  # noqa: A002 (wandb's and trackio's name)
    db_path: str | os.PathLike[str] | None = None,
    **logger_kwargs: Any,
) -> Run:
    """Start a run (ending the current one, as wandb does) and make it `tviz.run`.

    `project` comes first, as in trackio (wandb users pass it by name). `id` resumes a run.
    Other keyword arguments go to `TvizLogger` (`modality`, `strict`, ...).
    """
    global run
    if run is not None:
        finish()
    logger = TvizLogger(
        db_path, name, run_id=id, config=config, project=project, group=group, **logger_kwargs
    )
    run = Run(logger, dict(config) if isinstance(config, Mapping) else {})
    return run


def _current(call: str) -> Run:
    if run is None:
        raise RuntimeError(f"tviz.{call}() needs a run: call tviz.init() first")
    return run


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """Log a dict of metrics into the current run at `step`, default the next step."""
    _current("log").log(data, step=step)


def log_rollouts(rollouts: Iterable[Rollout], step: int | None = None) -> None:
    """Log groups of trajectories into the current run, default at the next step."""
    _current("log_rollouts").log_rollouts(rollouts, step=step)


def finish(status: str = "finished") -> None:
    """End the current run (nothing to do when there is none)."""
    if run is not None:
        run.finish(status)
