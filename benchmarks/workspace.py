"""What the benchmarks share: the folder they work in, their database, a page measure."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def workspace(keep: Path | None, prefix: str) -> Iterator[Path]:
    """`keep` (made if need be, left in place), else a temporary folder removed afterwards."""
    work = keep or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def database(work: Path, make: Callable[[Path], object], what: str) -> Path:
    """`work/bench.db`, made by `make` unless it is there already (a kept workspace)."""
    db = work / "bench.db"
    if not db.exists():
        start = time.perf_counter()
        make(db)
        took = time.perf_counter() - start
        print(f"generated {what} in {took:.1f} s ({db.stat().st_size / 1e6:.0f} MB database)")
    return db


# Milliseconds from opening the first step of a run page to its groups on screen (NaN: no step).
EXPAND_STEP_JS = """() => new Promise(resolve => {
    const node = document.querySelector('details.step');
    if (!node) return resolve(NaN);
    const t0 = performance.now();
    node.open = true;
    const check = () => node.querySelector('.group')
        ? resolve(performance.now() - t0) : requestAnimationFrame(check);
    check();
})"""
