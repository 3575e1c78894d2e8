"""`tviz demo`: the demo runs written into a database file of their own, and their report."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from tviz import schema
from tviz.demo.run import simulate_run
from tviz.logger import TvizLogger

DEMO_DB_NAME = "tviz-demo.db"


@dataclass(frozen=True)
class DemoResult:
    db_path: Path
    run_ids: list[str]
    image_dir: Path | None


def write_demo_db(
    db_path: str | os.PathLike[str],
    *,
    steps: int = 30,
    groups: int = 8,
    samples: int = 8,
    output_tokens: int = 160,
    seed: int = 0,
    vision: bool = True,
    overwrite: bool = False,
    start: float | None = None,
) -> DemoResult:
    """Write the demo runs into a new database file: a math GRPO run and, with `vision`, a
    geo-guessing run whose images go to `images/` next to the database.

    The runs' simulated clocks begin at `start` (default: early enough that both runs have
    ended by now). Raises FileExistsError if the file exists, unless `overwrite` (then it is
    replaced).
    """
    path = Path(db_path).expanduser()
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; the demo writes a new database")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ids = []
    # Fixed run ids: the same arguments give the same database content and report.
    # About 20 simulated seconds a step; 40 leaves room for both runs to end in the past.
    clock = time.time() - 40 * (steps + max(2, steps // 3)) if start is None else start
    with TvizLogger(path, "grpo-math-demo", run_id=f"demo-math-{seed}", started_at=clock) as logger:
        clock += simulate_run(
            logger,
            steps=steps,
            groups=groups,
            samples=samples,
            output_tokens=output_tokens,
            seed=seed,
            start=clock,
        )
        logger.close(timestamp=clock)
        run_ids.append(logger.run_id)
    image_dir = None
    if vision:
        image_dir = path.parent / "images"
        vision_id = f"demo-geo-{seed}"
        clock += 300  # the vision run starts five minutes later
        with TvizLogger(
            path, "geo-vision-demo", "vision", run_id=vision_id, started_at=clock
        ) as logger:
            clock += simulate_run(
                logger,
                steps=max(2, steps // 3),
                groups=max(1, min(groups, 6)),
                samples=max(2, min(samples, 6)),
                output_tokens=output_tokens,
                seed=seed + 1,
                modality="vision",
                image_dir=image_dir,
                start=clock,
            )
            logger.close(timestamp=clock)
            run_ids.append(logger.run_id)
    return DemoResult(path, run_ids, image_dir)


@dataclass(frozen=True)
class DemoSite:
    db_path: Path
    index: Path
    pages: list[Path]


def build_demo(
    out_dir: str | os.PathLike[str],
    *,
    steps: int = 30,
    groups: int = 8,
    samples: int = 8,
    output_tokens: int = 160,
    seed: int = 0,
) -> DemoSite:
    """`tviz demo`: the demo database in `out_dir/tviz-demo.db`, its report in `out_dir`.

    Never writes the user's own database: a `$TVIZ_DB_PATH` or `~/.tviz/tviz.db` that happens
    to be the demo's file is refused.
    """
    # Imported here: the report builder loads altair, which writing the demo's data does not need.
    from tviz.render import build_site

    out = Path(out_dir).expanduser()
    db_path = out / DEMO_DB_NAME
    if db_path.resolve() == schema.default_db_path().resolve():
        raise FileExistsError(f"{db_path} is your tviz database; choose another --out folder")
    write_demo_db(
        db_path,
        steps=steps,
        groups=groups,
        samples=samples,
        output_tokens=output_tokens,
        seed=seed,
        overwrite=True,
    )
    report = build_site(db_path, out)
    return DemoSite(db_path, out / "index.html", list(report.written))
