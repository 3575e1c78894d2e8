"""TvizLogger: the training loop's side of tviz, and the only writer of the database.

The log calls only snapshot their arguments and put them on a queue; a background thread
(`tviz.writer`) turns them into rows and commits them in batches. So a log call costs
microseconds, and a slow, locked, full or vanished database costs the training loop a warning,
never an exception or a stall. `strict=True` writes synchronously and raises instead (for tests).

The API is that of tviz 0.2.x and of tinker-cookbook's `ml_log.Logger` (a subclass of it when
tinker-cookbook is installed, see `tviz.cookbook_api`), so a TvizLogger can be appended to a
cookbook `MultiplexLogger`.

Where it does nothing: with `TVIZ_MODE=disabled`, and on the ranks other than 0 of a
distributed job unless `all_ranks` (see `tviz.ranks`). Its methods then work and do nothing.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tviz import exits, ranks, schema
from tviz.backlog import estimate_rollouts, estimate_text
from tviz.cookbook_api import LoggerBase, register_when_imported, watch_url
from tviz.names import DEFAULT_PORT, run_page
from tviz.notices import TvizWarning
from tviz.notices import warn as _warn
from tviz.records import Rollout
from tviz.values import jsonable, plain_scalar
from tviz.writer import DEFAULT_QUEUE_BYTES, Writer

__all__ = ["TvizLogger", "TvizWarning"]


# Metric values `log_metrics` keeps as they are; any other is read now (see there).
_SIMPLE_TYPES = frozenset({float, int, str, bool, type(None)})
_UNKNOWN: Any = object()


class _Silent:
    """The writer of a logger that does nothing (TVIZ_MODE=disabled, a rank other than 0)."""

    def submit(self, op: tuple, nbytes: int = 0) -> None:
        pass

    def flush(self, timeout: float | None) -> bool:
        return True

    def stop(self, status: str | None = None, timeout: float = 30.0) -> None:
        pass


class TvizLogger(LoggerBase):
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
        all_ranks: under torchrun / accelerate (`RANK`, `WORLD_SIZE` set), every rank logs
            into one run (its id: `run_id`, else from the launcher's job id); default
            `$TVIZ_ALL_RANKS`, else only global rank 0 logs and the others do nothing.
        queue_mb: how much the log calls not yet written may hold in memory (default
            `$TVIZ_QUEUE_MB`, else 256). A call past it waits for the writer; if the database
            cannot take data, it is refused instead (with one warning).

    The log calls take an optional `timestamp` (Unix seconds, default now) for the same reason.
    `TVIZ_MODE=disabled` turns every logger into one that does nothing (no file is made).
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
        all_ranks: bool | None = None,
        queue_mb: float | None = None,
    ) -> None:
        self.db_path = Path(db_path).expanduser() if db_path else schema.default_db_path()
        rank, silent = None, ranks.disabled()
        launch = ranks.launch()
        if not silent and launch.distributed:
            if not ranks.all_ranks_wanted(all_ranks):
                silent = launch.rank != 0
            elif run_id is None and launch.job_id is None:
                _warn(
                    "all_ranks needs run_id= or a launcher's job id (TORCHELASTIC_RUN_ID,"
                    " SLURM_JOB_ID) for the ranks to find one run: only rank 0 logs"
                )
                silent = launch.rank != 0
            else:
                run_id = run_id or launch.run_id()
                rank = launch.rank
        self.run_id: str = str(run_id) if run_id else uuid.uuid4().hex[:8]
        self.run_name: str = str(run_name) if run_name else self.run_id
        self.modality = str(modality)
        self.run_type = str(getattr(run_type, "value", run_type))
        self.project = None if project is None else str(project)
        self.group = None if group is None else str(group)
        self.strict = strict
        self.rank = rank  # the rank this logger logs as when every rank logs, else None
        self._silent = silent
        self._closed = silent  # a silent logger takes every call as a closed one, quietly
        self._url: str | None = _UNKNOWN
        if silent:
            self._writer: Writer | _Silent = _Silent()
            return
        self._writer = Writer(
            self.db_path,
            self._run_row(started_at),
            strict=strict,
            warn=_warn,
            rank=rank,
            queue_bytes=_queue_bytes(queue_mb),
        )
        if not strict:
            exits.install_sigterm()
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

        A later call merges its keys over the earlier ones. The config is read now: changing
        it after the call changes nothing that was logged.
        """
        if self._closed:
            return self._after_close()
        try:
            config = jsonable(config)
        except Exception as exc:  # a config whose conversion fails must not stop training
            return self._bad_input(f"skipped a config it could not read ({exc!r})")
        self._writer.submit(("config", config), 4096)

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
        # The bytes it holds, estimated as backlog.estimate_metrics does (inline: a hot path).
        self._writer.submit(
            ("metrics", step, snapshot, timestamp or time.time()), 200 + 120 * len(snapshot)
        )

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
        self._writer.submit(("text", str(key), text, time.time()), estimate_text(text))

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
            nbytes = estimate_rollouts(snapshot)
        except Exception as exc:
            return self._bad_input(f"log_rollouts needs a list of rollout dicts ({exc})")
        self._writer.submit(("rollouts", step, snapshot, timestamp or time.time()), nbytes)

    def forget_steps(self, metric_steps: Iterable[int], rollout_steps: Iterable[int]) -> None:
        """Delete what the run holds at these steps: metric values at `metric_steps`, every
        rollout group at `rollout_steps`. For importers about to write those steps again (a
        resumed run rewrote them); a training loop re-logging a step needs none of this."""
        if self._closed:
            return self._after_close()
        op = (
            "forget",
            sorted({int(s) for s in metric_steps}),
            sorted({int(s) for s in rollout_steps}),
        )
        self._writer.submit(op, 64)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything logged so far is committed; False if that did not happen
        (the database cannot take data, or calls were refused since the last flush)."""
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

    def get_logger_url(self) -> str | None:
        """Where `tviz watch` serves this run's page, if it does: a watch of this database
        answers on the default port (asked once, briefly), else None."""
        if self._silent:
            return None
        if self._url is _UNKNOWN:
            self._url = watch_url(self.db_path, run_page(self.run_name, self.run_id), DEFAULT_PORT)
        return self._url

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

    def _bad_input(self, message: str) -> None:
        if self.strict:
            raise TypeError(message)
        _warn(message)

    def _after_close(self) -> None:
        if not self._silent:
            self._bad_input(f"{self!r} is closed; the value was not logged")


def _queue_bytes(queue_mb: float | None) -> int:
    if queue_mb is None:
        try:
            queue_mb = float(os.environ["TVIZ_QUEUE_MB"])
        except (KeyError, ValueError):
            return DEFAULT_QUEUE_BYTES
    return max(1, int(float(queue_mb) * 2**20))


register_when_imported(TvizLogger)
