"""Every run gets a page of its own, named after its own id and name only: ids that sanitise
alike, ids of non-Latin letters, ids differing only in case (on a file system that ignores
case), names that run into ids. Runs whose ids are already safe keep the names they had."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tviz import TvizLogger
from tviz.cli import main
from tviz.names import run_page, run_slug
from tviz.render import SiteBuilder
from tviz.store import Store

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC

# (name, id) -> the page name these runs have always had: links people shared keep working.
KEPT = {
    ("grpo-math-demo", "demo-math-0"): "grpo-math-demo-demo-math-0",
    ("geo-vision-demo", "demo-geo-0"): "geo-vision-demo-demo-geo-0",
    ("cookbook-run", "cookbook-d99613fa3f"): "cookbook-run-cookbook-d99613fa3f",
    ("legacy-text-1", "abc73a7b"): "legacy-text-1-abc73a7b",
    ("evil </script><script>alert('script')</script> run", "textrun"): (
        "evil-script-script-alert-script-script-run-textrun"
    ),
    ("sft-run", "sftrun"): "sft-run-sftrun",
    (None, "a1b2c3d4"): "a1b2c3d4",
    ("", "run_1.v2"): "run_1.v2",
    ("same", "same"): "same",
    ("Math RL: Qwen3/8B", "0f3e9a12"): "Math-RL-Qwen3-8B-0f3e9a12",
}


@pytest.mark.parametrize(("name", "run_id"), list(KEPT), ids=[i for _, i in KEPT])
def test_safe_ids_keep_their_page_names(name, run_id):
    assert run_slug(name, run_id) == KEPT[(name, run_id)]
    assert run_page(name, run_id) == f"runs/{KEPT[(name, run_id)]}.html"


COLLIDING = [
    ("exp/1", "exp-1"),
    ("exp 1", "exp-1"),
    ("实验", "тест"),
    ("实验", "run"),
    ("Run", "run"),
    ("RUN", "Run"),
    ("", "run"),
    ("-x-", "x"),
    (".hidden", "hidden"),
]


@pytest.mark.parametrize(("a", "b"), COLLIDING)
@pytest.mark.parametrize("name", [None, "same-name"])
def test_ids_that_sanitise_alike_get_pages_of_their_own(a, b, name):
    first, second = run_slug(name, a), run_slug(name, b)
    assert first.casefold() != second.casefold()
    for slug in (first, second):
        assert slug and not slug.startswith((".", "-"))
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in slug)


def test_a_page_name_depends_on_its_own_run_only():
    # The same id and name give the same name, whatever else is in the database.
    assert run_slug("x", "exp/1") == run_slug("x", "exp/1")
    assert run_slug(None, "实验") == run_slug(None, "实验")
    assert run_slug(None, "实验") != run_slug(None, "实验2")


def test_long_ids_give_file_names_a_file_system_takes():
    for run_id in ("a" * 5_000, "é" * 300, "x/" * 400):
        page = run_page("n" * 300, run_id)
        # The builder writes `.<name>.<random>.tmp` next to it first: 14 bytes more.
        assert len(Path(page).name.encode()) + 14 <= 255
        assert run_slug(None, run_id + "b") != run_slug(None, run_id)


def _log(db: Path, run_id: str, name: str | None, offset: float) -> None:
    with TvizLogger(db, name or "", run_id=run_id, started_at=START + offset, strict=True) as log:
        log.log_metrics({"env/all/reward/total": offset}, step=0, timestamp=START + offset)


IDS = ["exp/1", "exp-1", "实验", "тест", "Run", "run", "RUN"]


def test_build_writes_one_page_per_run_even_where_case_is_ignored(db_path, tmp_path):
    for n, run_id in enumerate(IDS):
        _log(db_path, run_id, None, float(n))
    result = CliRunner().invoke(main, ["build", "--db", str(db_path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"wrote {len(IDS)} run pages" in result.output
    pages = sorted((tmp_path / "runs").glob("*.html"))
    assert len(pages) == len(IDS)
    assert len({p.name.casefold() for p in pages}) == len(IDS)  # as a Mac or Windows disk has it
    with Store(db_path) as store:
        runs = store.list_runs()
    assert sorted(r.id for r in runs) == sorted(IDS)
    for run in runs:  # each page holds its own run
        (page,) = [p for p in pages if f'"id":"{run.id}"' in p.read_text("utf-8")]
        assert f"runs/{page.name}" == run.page


def test_names_running_into_ids_still_get_pages_of_their_own(db_path, tmp_path):
    """`a` + `b-c` and `a-b` + `c` (both safe ids) would share `a-b-c`; so would `Exp` + `1`
    and `exp-1` where case is ignored. The run that started first keeps its page."""
    _log(db_path, "b-c", "a", 0)
    _log(db_path, "exp-1", None, 1)
    first = SiteBuilder(db_path, tmp_path).build()
    assert sorted(p.name for p in first.written) == ["a-b-c.html", "exp-1.html", "index.html"]
    _log(db_path, "c", "a-b", 2)
    _log(db_path, "1", "Exp", 3)
    second = SiteBuilder(db_path, tmp_path).build()
    names = sorted(p.name for p in (tmp_path / "runs").glob("*.html"))
    assert len(names) == 4 and len({n.casefold() for n in names}) == 4
    assert "a-b-c.html" in names and "exp-1.html" in names  # the first runs kept theirs
    assert len(second.written) == 5
    with Store(db_path) as store:
        for run in store.list_runs():
            pages = [p for p in names if f'"id":"{run.id}"' in (tmp_path / "runs" / p).read_text()]
            assert len(pages) == 1, run.id


def test_adding_runs_never_renames_a_page(db_path, tmp_path):
    _log(db_path, "exp/1", "exp", 0)
    SiteBuilder(db_path, tmp_path).build()
    before = sorted(p.name for p in (tmp_path / "runs").glob("*.html"))
    for n, run_id in enumerate(["exp-1", "exp_1", "exp:1", "EXP/1"], 1):
        _log(db_path, run_id, "exp", float(n))
    SiteBuilder(db_path, tmp_path).build()
    after = sorted(p.name for p in (tmp_path / "runs").glob("*.html"))
    assert set(before) <= set(after) and len(after) == 5
    index = (tmp_path / "index.html").read_text("utf-8")
    for name in after:
        assert f'href="runs/{name}"' in index
