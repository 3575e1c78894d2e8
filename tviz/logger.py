"""TvizLogger: the training loop's side of tviz, and the only writer of the database.

The log calls only snapshot their arguments and put them on a queue; a background thread
(`tviz.writer`) turns them into rows and commits them in batches. So a log call costs
microseconds, and a slow, locked, full or vanished database costs the training loop a warning,
never an exception or a stall. `strict=True` writes synchronously and raises instead (for tests).

The API is that of tviz 0.2.x and of tinker-cookbook's `ml_log.Logger`, so a TvizLogger can
be appended to a cookbook `MultiplexLogger`.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
import uuid
import warnings
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tviz import schema
from tviz.names import DEFAULT_PORT, run_page
from tviz.records import Rollout
from tviz.values import plain_scalar
from tviz.writer import Writer

__all__ = ["TvizLogger", "TvizWarning"]


class TvizWarning(UserWarning):
    """Something kept tviz from writing; the training loop goes on."""


# Metric values `log_metrics` keeps as they are; any other is read now (see there).
_SIMPLE_TYPES = frozenset({float, int, str, bool, type(None)})


class TvizLogger:
    """Log one training run into a tviz SQLite database.

    Args:
        db_path: the database file; default `$TVIZ_DB_PATH`, else `~/.tviz/tviz.db`.
        run_name: a readable name; default the run id.
        modality: "text" or "vision" (or another plugin's name).
        run_id: resume this run (its steps, rollouts and config are kept) or create it with
            this id; default a new random id.
        run_type: "rl" (default) or "sl" for supervised fine-tuning.
        config: logged as the run's config right away (same as `log_hparams`).
        started_at: the run's start as Unix seconds, default now (an importer of an old run).
        project: the project the run belongs to (kept on the run, shown on the index).
        group: the run's group, e.g. the seeds of one experiment, drawn together.
        strict: write synchronously and raise on any error, for tests.

    The log calls take an optional `timestamp` (Unix seconds, default now) for the same reason.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        run_name: str | None = None,
        modality: str = "text",
        *,
        run_id: str | None = None,
        run_type: str = "rl",
        config: Any = None,
        started_at: float | None = None,
        strict: bool = False,
        project: str | None = None,
        group: str | None = None,
    ) -> None:
        self.db_path = Path(db_path).expanduser() if db_path else schema.default_db_path()
        self.run_id: str = str(run_id) if run_id else uuid.uuid4().hex[:8]
        self.run_name: str = str(run_name) if run_name else self.run_id
        self.modality = str(modality)
        self.run_type = str(getattr(run_type, "value", run_type))
        self.project = None if project is None else str(project)
        self.group = None if group is None else str(group)
        self.strict = strict
        self._closed = False
        self._writer = Writer(self.db_path, self._run_row(started_at), strict=strict, warn=_warn)
        if not strict:
            _live_loggers.add(self)
        self._writer.submit(("run",))
        if config is not None:
            self.log_hparams(config)

    def _run_row(self, started_at: float | None) -> dict[str, Any]:
        return {
            "id": self.run_id,
            "name": self.run_name,
            "type": self.run_type,
            "modality": self.modality,
            "project": self.project,
            "group": self.group,
            "started_ts": time.time() if started_at is None else float(started_at),
        }

    # -- tinker-cookbook ml_log.Logger interface -------------------------------------------

    def log_hparams(self, config: Any) -> None:
        """Store the run's config (dataclasses, pydantic models, dicts, Paths, enums...).

        A later call merges its keys over the earlier ones.
        """
        self._submit(("config", config))

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, *, timestamp: float | None = None
    ) -> None:
        """Log scalar metrics for `step`; with no step they are kept as latest values."""
        if self._closed:
            return self._after_close()
        try:
            # Plain numbers are copied as they are; anything else (numpy scalars, 0-d tensors)
            # is read now, so a value the loop later changes in place is logged as it was.
            snapshot = {
                k: v if type(v) in _SIMPLE_TYPES else plain_scalar(v) for k, v in metrics.items()
            }
        except Exception as exc:
            return self._bad_input(f"log_metrics needs a mapping of name -> value ({exc})")
        self._submit(("metrics", step, snapshot, timestamp or time.time()))

    def log_summary(self, metrics: Mapping[str, Any]) -> None:
        """Record latest values outside the step history (tinker-cookbook)."""
        self.log_metrics(metrics, step=None)

    def log_metrics_event(
        self,
        metrics: Mapping[str, Any],
        step: int,
        step_metric: str,
        metric_axes: Mapping[str, str] | None = None,
    ) -> None:
        """tinker-cookbook's event API: metrics that refer to model step `step`."""
        self.log_metrics({**metrics, step_metric: step}, step=step)

    def enable_event_steps(self) -> None:
        """tinker-cookbook hook for concurrent producers; steps are explicit here already."""

    def log_long_text(self, key: str, text: str) -> None:
        if self._closed:
            return self._after_close()
        self._submit(("text", str(key), text, time.time()))

    def log_rollouts(
        self,
        rollouts: Iterable[Rollout],
        step: int,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Log a step's rollout groups: dicts with `prompt_text` and `trajectories`.

        `tviz.records.Rollout` lists the keys; any other is kept in the row's extras. The lists
        inside (tokens, logprobs) are read later by the writer thread: do not change them in
        place after the call.
        """
        if self._closed:
            return self._after_close()
        try:
            snapshot = [
                {**r, "trajectories": [dict(t) for t in r.get("trajectories") or ()]}
                for r in rollouts
            ]
        except Exception as exc:
            return self._bad_input(f"log_rollouts needs a list of rollout dicts ({exc})")
        self._submit(("rollouts", step, snapshot, timestamp or time.time()))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything logged so far is committed; False if that did not happen."""
        return self._writer.flush(timeout)

    def sync(self) -> None:
        """tinker-cookbook / 0.2.x name for flush()."""
        self.flush()

    def close(self, status: str | None = "finished", *, timestamp: float | None = None) -> None:
        """Mark the run ended with `status`, write everything and release the file.

        `status=None` releases the file but leaves the run open (an importer that will come
        back for more). Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if status is not None:
            self._writer.submit(("end", status, timestamp or time.time()))
        self._writer.stop()
        _live_loggers.discard(self)

    def get_logger_url(self) -> str | None:
        """Where `tviz watch` (default port) serves this run's page."""
        return f"http://127.0.0.1:{DEFAULT_PORT}/{run_page(self.run_name, self.run_id)}"

    @property
    def store(self) -> None:
        """tinker-cookbook's TrainingRunStore hook: tviz keeps no such store."""
        return None

    # -- conveniences -----------------------------------------------------------------------

    def __enter__(self) -> TvizLogger:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("finished" if exc_type is None else "crashed")

    def __repr__(self) -> str:
        return f"TvizLogger(run_id={self.run_id!r}, run_name={self.run_name!r}, db={self.db_path})"

    # -- internals --------------------------------------------------------------------------

    def _submit(self, op: tuple) -> None:
        self._writer.submit(op)

    def _bad_input(self, message: str) -> None:
        if self.strict:
            raise TypeError(message)
        _warn(message)

    def _after_close(self) -> None:
        self._bad_input(f"{self!r} is closed; the value was not logged")


def _warn(message: str) -> None:
    """A TvizWarning for the training loop, which it never breaks; the writer warns with it too."""
    try:
        warnings.warn(f"tviz: {message}", TvizWarning, stacklevel=3)
    except Exception:  # warnings turned into errors (-W error) must not break the loop
        pass


# -- interpreter exit ----------------------------------------------------------------------------

_live_loggers: weakref.WeakSet[TvizLogger] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Write what is queued. An uncaught exception marks the run crashed, else finished."""
    crashed = getattr(sys, "last_value", None) is not None or getattr(sys, "last_exc", None)
    for logger in list(_live_loggers):
        try:
            logger.close("crashed" if crashed else "finished")
        except Exception:
            pass
