"""tviz: see your RL training runs. Log to SQLite, build self-contained HTML reports."""

__version__ = "0.3.0"

from typing import Any  # noqa: E402

from tviz.current_run import Run, finish, init, log, log_rollouts  # noqa: E402
from tviz.logger import TvizLogger  # noqa: E402

__all__ = ["Run", "TvizLogger", "__version__", "finish", "init", "log", "log_rollouts", "run"]


def __getattr__(name: str) -> Any:
    # `tviz.run` is the current run (None between runs), read live as `wandb.run` is.
    if name == "run":
        from tviz import current_run

        return current_run.run
    raise AttributeError(f"module 'tviz' has no attribute {name!r}")
