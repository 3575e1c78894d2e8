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
from tviz.formats import fmt_duration, fmt_num, fmt_time
from tviz.names import DEFAULT_BUDGET_BYTES, DEFAULT_PORT
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


DBS_HELP = (
    "SQLite file, repeatable, or a quoted glob ('runs/node*.db'): read as one, a run found in"
    " several files merged (default: $TVIZ_DB_PATH or ~/.tviz/tviz.db)."
)
MANY_DBS_HELP = (
    "SQLite file, repeatable, or a quoted glob ('runs/node*.db'): one site over all of them, a"
    " run found in several files merged (default: $TVIZ_DB_PATH or ~/.tviz/tviz.db)."
)


def dbs_option(
    func: Callable[..., Any] | None = None, *, help_text: str = DBS_HELP
) -> Callable[..., Any]:
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        return click.option(
            "--db",
            "db_paths",
            multiple=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help=help_text,
        )(f)

    return wrap if func is None else wrap(func)


def resolve_dbs(db_paths: tuple[Path, ...]) -> list[Path]:
    """The files named (globs expanded; a missing file or an empty glob is an error), else the
    default database."""
    from tviz.store.many import expand_paths

    return expand_paths(db_paths) if db_paths else [resolve_db(None)]


def out_option(default: str, help_text: str) -> Callable[[Callable[..., Any]], Any]:
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help=help_text,
    )


def budget_option(help_text: str) -> Callable[[Callable[..., Any]], Any]:
    return click.option(
        "--budget-mb",
        type=click.FloatRange(min=1),
        default=DEFAULT_BUDGET_BYTES / 1e6,
        show_default=True,
        help=help_text,
    )


def group_by_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--group-by",
        default=None,
        metavar="CONFIG_KEY",
        help="Runs with the same value of this config key (dotted for nested keys) form a"
        " group, drawn as its mean with a min-max band (default: the logger's group).",
    )(func)


def resolve_db(db_path: Path | None) -> Path:
    return db_path if db_path is not None else schema.default_db_path()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tviz")
def main() -> None:
    """tviz: see your RL training runs."""


@main.command("ls")
@dbs_option(help_text=MANY_DBS_HELP)
@friendly_errors
def ls_command(db_paths: tuple[Path, ...]) -> None:
    """List the runs in a database, or in several as one table."""
    from tviz.store.many import StoreSet

    dbs = resolve_dbs(db_paths)
    if len(dbs) == 1:
        with Store(dbs[0], timeout=2.0) as store:
            runs, files = store.list_runs(), None
    else:
        with StoreSet(dbs) as stores:
            found = stores.runs_by_file()
        runs = [run for run, _ in found]
        files = [", ".join(p.name for p in paths) for _, paths in found]
    if not runs:
        click.echo(f"no runs in {', '.join(map(str, dbs))}")
        return
    click.echo(format_runs(runs, files=files))


def format_runs(
    runs: list[RunSummary], now: float | None = None, files: list[str] | None = None
) -> str:
    """A plain-text table of runs, one per line; `files`: a last column, the files of each."""
    now = time.time() if now is None else now
    header = ("ID", "NAME", "STATUS", "STEPS", "REWARD", "BEST", "TRAJ", "STARTED", "DURATION")
    header += ("FILE",) if files is not None else ()
    rows = [header]
    for k, run in enumerate(runs):
        status = "quiet" if run.is_quiet(now) else run.status
        name = _printable(run.name)
        rows.append(
            (
                _printable(run.id),
                name if len(name) <= 40 else name[:39] + "…",
                status,
                str(run.num_steps),
                fmt_num(run.latest_reward),
                fmt_num(run.best_reward),
                str(run.num_trajectories),
                fmt_time(run.started_at),
                fmt_duration(run.duration_s),
            )
            + ((_printable(files[k]),) if files is not None else ())
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _printable(text: str) -> str:
    """No control characters: a run name must not move the cursor or forge table rows."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


WATCH_DBS_HELP = (
    "SQLite file, repeatable, or a quoted glob ('nodes/*.db') expanded once at start (files"
    " made later are not watched): one site over all of them, a run found in several files"
    " merged. Default: $TVIZ_DB_PATH or ~/.tviz/tviz.db. One file is waited for if it does"
    " not exist yet; several must all exist."
)


@main.command("watch")
@dbs_option(help_text=WATCH_DBS_HELP)
@out_option("tviz-report", "Folder the pages are written to and served from.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on. Anything but loopback shows the pages to the network.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--open", "open_browser", is_flag=True, help="Open the report in a browser.")
@friendly_errors
def watch_command(
    db_paths: tuple[Path, ...], out_dir: Path, host: str, port: int, open_browser: bool
) -> None:
    """Build the report, serve it, and update the open pages as runs log new data.

    Several --db (or a glob): one site over all the files, rebuilt when any of them changes.
    """
    import glob

    from tviz.store.many import expand_paths
    from tviz.watch import WatchError, WatchOptions, watch

    if len(db_paths) <= 1 and not any(glob.has_magic(str(p)) for p in db_paths):
        # One file, as ever: it may not exist yet (watch waits for it).
        dbs: Path | list[Path] = resolve_db(db_paths[0] if db_paths else None)
    else:
        # Several: each must be there now (a missing one is likely a typo), globs expanded
        # once; a glob of one file is the one-file watch.
        found = expand_paths(db_paths)
        dbs = found if len(found) > 1 else found[0]
    options = WatchOptions(dbs, out_dir, host, port, open_browser)
    try:
        watch(options, log=click.echo)
    except WatchError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@db_option
@click.option("--name", default=None, help="Run name at first import (default: from PATH).")
@click.option(
    "--rollouts",
    type=click.Path(path_type=Path),
    default=None,
    help="verl's trainer.rollout_data_dir (<step>.jsonl files), with verl's metrics file.",
)
@friendly_errors
def import_command(
    path: Path, db_path: Path | None, name: str | None, rollouts: Path | None
) -> None:
    """Import a run from PATH; again to add what is new.

    PATH is a tinker-cookbook run folder (metrics.jsonl, iteration_*/), verl's metrics file
    (trainer.logger=['console','file']) or a TensorBoard log folder (events.out.tfevents.*).
    """
    from tviz.importers import ImportFailed, import_path

    try:
        report = import_path(path, resolve_db(db_path), name=name, rollouts=rollouts)
    except ImportFailed as exc:
        raise click.ClickException(str(exc)) from None
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for line in report.lines:
        click.echo(line)


@main.command("build")
@dbs_option(help_text=MANY_DBS_HELP)
@out_option("tviz-report", "Folder for index.html and runs/<slug>.html.")
@click.option(
    "--run", "runs", multiple=True, metavar="NAME_OR_ID", help="Only this run (repeatable)."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the result in a browser.")
@budget_option("Largest run page; past it, rollouts are sampled (the page says so).")
@group_by_option
@friendly_errors
def build_command(
    db_paths: tuple[Path, ...],
    out_dir: Path,
    runs: tuple[str, ...],
    open_browser: bool,
    budget_mb: float,
    group_by: str | None,
) -> None:
    """Write self-contained HTML reports: one page per run and an index."""
    import sys
    import webbrowser

    from tviz.render import SiteBuilder
    from tviz.store.many import StoreSet

    dbs = resolve_dbs(db_paths)
    # Fail on a bad file or run before writing anything.
    with Store(dbs[0], timeout=2.0) if len(dbs) == 1 else StoreSet(dbs) as store:
        run_ids = [store.find_run(name).id for name in runs] or None
    db = dbs[0] if len(dbs) == 1 else dbs  # one file: exactly the one-file builder
    budget = int(budget_mb * 1_000_000)
    builder = SiteBuilder(db, out_dir, budget_bytes=budget, group_by=group_by)
    if sys.stderr.isatty():  # a bar for a person at a terminal; scripts get one line
        start = time.monotonic()
        with click.progressbar(
            length=1,
            label="building",
            file=sys.stderr,
            show_pos=True,
            item_show_func=lambda rate: rate,
        ) as bar:

            def progress(done: int, total: int, run: RunSummary) -> None:
                bar.length = total
                rate = done / max(time.monotonic() - start, 1e-6)
                bar.update(done - bar.pos, f"{run.name or run.id}, {rate:,.0f} steps/s")

            report = builder.build(run_ids, progress=progress)
    else:
        report = builder.build(run_ids)
    for run_id, notice in report.notices.items():
        click.echo(f"note: run {run_id}: {notice}", err=True)
    for run_id, lines in report.conflicts.items():
        for line in lines:
            click.echo(f"warning: run {run_id}: {line}", err=True)
    index = out_dir / "index.html"
    click.echo(f"wrote {len(report.runs)} run pages and {index}")
    if open_browser:
        target = report.written[0] if len(report.runs) == 1 else index
        webbrowser.open(target.resolve().as_uri())


@main.command("demo")
@out_option("tviz-demo", "Folder for the demo database and its report (never your own database).")
@click.option("--steps", type=click.IntRange(1, 100_000), default=30, show_default=True)
@click.option("--groups", type=click.IntRange(1, 10_000), default=8, show_default=True)
@click.option("--samples", type=click.IntRange(1, 1_000), default=8, show_default=True)
@click.option("--open", "open_browser", is_flag=True, help="Open the report in a browser.")
@friendly_errors
def demo_command(out_dir: Path, steps: int, groups: int, samples: int, open_browser: bool) -> None:
    """Simulate a realistic RL run (no Tinker needed) and build its report."""
    import webbrowser

    from tviz.demo import build_demo

    site = build_demo(out_dir, steps=steps, groups=groups, samples=samples)
    click.echo(f"wrote the demo runs to {site.db_path}")
    click.echo(f"open {site.index.resolve().as_uri()}")
    if open_browser:
        webbrowser.open(site.index.resolve().as_uri())


@main.command("compare")
@click.argument("runs", nargs=-1, required=True, metavar="RUN [RUN ...]")
@dbs_option
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("tviz-compare.html"),
    show_default=True,
    help="The HTML file to write.",
)
@group_by_option
@budget_option("Largest page; past it, fewer samples are shown side by side (the page says so).")
@friendly_errors
def compare_command(
    runs: tuple[str, ...],
    db_paths: tuple[Path, ...],
    out_file: Path,
    group_by: str | None,
    budget_mb: float,
) -> None:
    """Compare runs in one self-contained HTML file: config diff, metrics, samples."""
    from tviz.render.compare import write_comparison

    dbs = resolve_dbs(db_paths)
    budget = int(budget_mb * 1_000_000)
    n, notice = write_comparison(
        runs, dbs, out_file, group_by=group_by, budget_bytes=budget, warn=_warning
    )
    if notice:
        click.echo(f"note: {notice}", err=True)
    click.echo(f"wrote {out_file} ({n} runs)")


@main.command("export")
@click.argument("runs", nargs=-1, metavar="[RUN ...]")
@dbs_option
@out_option("tviz-export", "Folder for summary.md, summary.json and the figures.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["svg", "png", "pdf"]),
    default="svg",
    show_default=True,
    help="The figures' format.",
)
@click.option(
    "--image-base-url",
    default=None,
    metavar="URL",
    help="Where the figures will be hosted: summary.md links them there instead of relatively.",
)
@group_by_option
@friendly_errors
def export_command(
    runs: tuple[str, ...],
    db_paths: tuple[Path, ...],
    out_dir: Path,
    fmt: str,
    image_base_url: str | None,
    group_by: str | None,
) -> None:
    """Write a Markdown and JSON summary and print-ready figures of runs (default: every run)."""
    from tviz.render import comparison
    from tviz.render.compare import conflict_lines
    from tviz.render.export import export

    dbs = resolve_dbs(db_paths)
    if not runs:
        runs = tuple(_all_runs(dbs))
    loaded = comparison.load(runs, dbs, group_by)
    for line in conflict_lines(loaded):
        _warning(line)
    written = export(loaded, out_dir, fmt, image_base_url)
    click.echo(f"wrote {len(written)} files to {out_dir}")


def _all_runs(dbs: list[Path]) -> list[str]:
    """Every run's id, oldest first (a run in several files once)."""
    from tviz.store.many import StoreSet

    with Store(dbs[0], timeout=2.0) if len(dbs) == 1 else StoreSet(dbs) as store:
        names = [r.id for r in reversed(store.list_runs())]
    if not names:
        raise click.ClickException("no runs to export")
    return names


def _warning(line: str) -> None:
    """A conflict of a run merged from several files, as `tviz build` says it."""
    click.echo(f"warning: {line}", err=True)


if __name__ == "__main__":
    main()
