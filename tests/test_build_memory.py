"""A build's memory does not grow with the run's trajectories: a run whose rows take several
times the memory a build may use builds within it, under a real limit on the process's data
(RLIMIT_DATA: RLIMIT_AS would also count the address space vl-convert's V8 reserves)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from benches import benchmark_module

# What the build process may use: the interpreter, altair and vl-convert's V8 take ~800 MB of
# it (a tiny run needs that much too), which leaves little for the run itself.
LIMIT = 1_000_000_000
STEPS, GROUPS, SAMPLES = 40, 64, 8
TVIZ = "import sys; from tviz.cli import main; sys.argv[0] = 'tviz'; main()"


def _limited(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    return apply


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,480 trajectories of 4 KB of text and 1,000 tokens and logprobs each: 0.4 GB of rows,
    which the build before this change needed 2.1 GB of memory to read."""
    db = tmp_path_factory.mktemp("memory") / "big.db"
    with benchmark_module("generate") as generate:
        generate.rl_run(
            db, steps=STEPS, groups=GROUPS, samples=SAMPLES, tokens=1000, text_bytes=4000
        )
    return db


def test_a_big_run_builds_within_a_data_limit(big_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", TVIZ, "build", "--db", str(big_run), "--out", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=_limited(LIMIT),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    page = next((out / "runs").glob("*.html")).read_text("utf-8")
    groups = STEPS * GROUPS
    assert f"of {groups:,} rollout groups are included" in done.stdout + done.stderr
    # The charts and the step list still count every trajectory, not the kept sample.
    steps = json.loads(page.split('id="rollout-data">', 1)[1].split("</script>", 1)[0])["steps"]
    assert len(steps) == STEPS
    assert sum(s["traj"] for s in steps) == groups * SAMPLES
    assert all(s["groups"] == GROUPS and 1 <= s["kept"] < GROUPS for s in steps)


def test_reading_every_trajectory_does_not_fit_that_limit(big_run: Path) -> None:
    """The limit means something: the whole run, read at once as the build before this change
    read it, does not fit in it."""
    code = (
        "import sys\nfrom tviz.store import Store\n"
        "try:\n    Store(sys.argv[1]).load_run('rl')\nexcept MemoryError:\n    sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(big_run)],
        capture_output=True,
        text=True,
        preexec_fn=_limited(LIMIT),
        timeout=600,
    )
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
