"""The import's write step: an `ImportPlan` written through a strict `TvizLogger`.

The writes go through the logger, as a training loop's would, so an imported run is stored
exactly like a logged one. What the plan replaces is deleted first (`replace`).
"""

from __future__ import annotations

from tviz.adapters.cookbook.files import Metrics, RunFolder, timeline
from tviz.adapters.cookbook.plan import ImportPlan
from tviz.adapters.cookbook.result import ImportResult, Problems
from tviz.adapters.cookbook.rollouts import read_iteration_rollouts
from tviz.adapters.cookbook.sources import Source
from tviz.adapters.cookbook.stamps import STAMP_KEY, files_stamp
from tviz.logger import TvizLogger
from tviz.records import Rollout

__all__ = ["write_plan"]


def _write_metrics(
    logger: TvizLogger, plan: ImportPlan, step_ends: dict[int, float], result: ImportResult
) -> None:
    """The config, the metric values and the summary the plan holds."""
    if plan.config is not None:
        logger.log_hparams(plan.config)
        result.config_written = True
    for step, values in plan.metric_steps.items():
        logger.log_metrics(values, step=step, timestamp=step_ends.get(step))
        result.metric_steps_written += 1
        result.metric_values_written += len(values)
    if plan.summary:
        logger.log_summary(plan.summary)
        result.metric_values_written += len(plan.summary)


def _read_source(source: Source, result: ImportResult, problems: Problems) -> list[Rollout]:
    """A source's groups, each stamped with its files (and its eval set's name)."""
    stamp = files_stamp(source.files)
    rollouts, skipped = read_iteration_rollouts(source.directory, problems, source.base)
    result.skipped_lines += skipped
    for rollout in rollouts:
        rollout[STAMP_KEY] = stamp  # type: ignore[literal-required]
        if source.eval_name is not None:
            rollout["eval_name"] = source.eval_name
    return rollouts


def _write_rollouts(
    logger: TvizLogger,
    plan: ImportPlan,
    step_ends: dict[int, float],
    result: ImportResult,
    problems: Problems,
) -> None:
    """The planned iterations' rollouts, read one iteration at a time (never all in memory).
    Every source of an iteration is logged in this one session: the writer replaces a step's
    groups from earlier sessions when the step is logged again."""
    for step, sources in plan.iterations.items():
        for source in sources:
            rollouts = _read_source(source, result, problems)
            if not rollouts:
                continue
            logger.log_rollouts(rollouts, step=step, timestamp=step_ends.get(step))
            trajectories = sum(len(r["trajectories"]) for r in rollouts)
            if source.eval_name is None:
                result.rollout_steps_written += 1
                result.rollout_groups_written += len(rollouts)
                result.trajectories_written += trajectories
            else:
                result.eval_groups_written += len(rollouts)
                result.eval_trajectories_written += trajectories


def write_plan(plan: ImportPlan, folder: RunFolder, result: ImportResult) -> None:
    """Write `plan` into `result.db_path` as run `result.run_id`, counting it in `result`.

    Steps are stamped with the times `timeline` derives from the folder (the steps only a
    pre_resume file holds included); the run is closed as finished when the folder's run is.
    """
    result.metric_steps_replaced = len(plan.replace_metric_steps)
    result.rollout_steps_replaced = len(plan.replace_rollout_steps)
    every = Metrics({**folder.resumes.earlier, **folder.metrics.steps}, {}, 0)
    started_at, step_ends = timeline(folder.path, every, folder.problems)
    run = {"run_name": result.run_name, "run_id": result.run_id, "started_at": started_at}
    logger = TvizLogger(result.db_path, **run, strict=True)
    try:
        # The steps a resumed run wrote again: written anew right below (an import that stops
        # in between leaves them missing, and the next import writes them).
        logger.forget_steps(plan.replace_metric_steps, plan.replace_rollout_steps)
        _write_metrics(logger, plan, step_ends, result)
        _write_rollouts(logger, plan, step_ends, result, folder.problems)
    finally:
        # What was written is committed (strict): a failed import is resumed by the next one.
        # Still being written: leave the run open, to be completed by a later import.
        last = max(step_ends.values(), default=None)
        logger.close("finished" if result.finished else None, timestamp=last)
