"""The `tviz` command: thin click commands over the library.

Every expected failure (missing or unreadable database, unknown run, bad option) becomes one
line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tviz import __version__, schema
from tviz.store import RunSummary, Store, StoreError


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's expected errors into `Error: ...` and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (StoreError, schema.SchemaError, OSError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="SQLite file (default: $TVIZ_DB_PATH or ~/.tviz/tviz.db).",
    )(func)


def resolve_db(db_path: Path | None) -> Path:
    return db_path if db_path is not None else schema.default_db_path()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tviz")
def main() -> None:
    """tviz: see your RL training runs."""


@main.command("ls")
@db_option
@friendly_errors
def ls_command(db_path: Path | None) -> None:
    """List the runs in a database."""
    with Store(resolve_db(db_path), timeout=2.0) as store:
        runs = store.list_runs()
    if not runs:
        click.echo(f"no runs in {resolve_db(db_path)}")
        return
    click.echo(format_runs(runs))


def format_runs(runs: list[RunSummary], now: float | None = None) -> str:
    """A plain-text table of runs, one per line."""
    now = time.time() if now is None else now
    header = ("ID", "NAME", "STATUS", "STEPS", "REWARD", "BEST", "TRAJ", "STARTED", "DURATION")
    rows = [header]
    for run in runs:
        status = "quiet" if run.is_quiet(now) else run.status
        rows.append(
            (
                run.id,
                run.name if len(run.name) <= 40 else run.name[:39] + "…",
                status,
                str(run.num_steps),
                _num(run.latest_reward),
                _num(run.best_reward),
                str(run.num_trajectories),
                _when(run.started_at),
                _duration(run.duration_s),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


if __name__ == "__main__":
    main()
