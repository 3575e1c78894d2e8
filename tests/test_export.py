"""`tviz export`: summary.md / summary.json and figures in each format, deterministic."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from compare_runs import HOSTILE, rl_run
from markdown_it import MarkdownIt

from tviz.cli import main
from tviz.render import build_site
from tviz.store import Store

FIGURES = ["reward", "kl", "entropy", "output-length"]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exp") / "tviz.db"
    rl_run(path, "run-a", lr=1e-5, skill=0.3, steps=120)
    rl_run(path, "run-b", lr=3e-5, seed=1, skill=0.9, steps=120, extra_config={"tag": HOSTILE})
    return path


def _export(db: Path, out: Path, fmt: str, *extra: str) -> Path:
    args = ["export", "run-a", "run-b", "--db", str(db), "--out", str(out), "--format", fmt]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_each_format_is_written_and_deterministic(db, tmp_path, fmt):
    one = _export(db, tmp_path / "one", fmt)
    two = _export(db, tmp_path / "two", fmt)
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted([*(f"{f}.{fmt}" for f in FIGURES), "summary.json", "summary.md"])
    for name in names:  # byte-identical from the same database
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    for figure in FIGURES:
        data = (one / f"{figure}.{fmt}").read_bytes()
        if fmt == "svg":
            root = ET.fromstring(data)
            assert root.tag.endswith("svg")
            assert b"DejaVu Sans" in data  # the shipped font, not whatever the machine has
        elif fmt == "png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert data.startswith(b"%PDF")
            assert b"DejaVuSans" in data


def test_summary_md_renders_table_and_images(db, tmp_path):
    out = _export(db, tmp_path / "md", "svg")
    text = (out / "summary.md").read_text()
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("<table>") == 2  # results, config that differs
    assert "<td>finished</td>" in html
    for figure in FIGURES:
        assert f'<img src="{figure}.svg"' in html
    assert "<script" not in html and "&lt;/script&gt;" in html  # run text stays text
    based = _export(db, tmp_path / "based", "png", "--image-base-url", "https://x.test/fig/")
    html = MarkdownIt("commonmark").enable("table").render((based / "summary.md").read_text())
    assert '<img src="https://x.test/fig/reward.png"' in html
    pdf = _export(db, tmp_path / "pdf", "pdf")
    assert "(reward.pdf)" in (pdf / "summary.md").read_text()


def test_summary_json_matches_the_run_page(db, tmp_path):
    out = _export(db, tmp_path / "js", "svg")
    data = json.loads((out / "summary.json").read_text())
    runs = {r["id"]: r for r in data["runs"]}
    a, b = runs["run-a"], runs["run-b"]
    assert a["headline"]["reward"]["metric"] == "env/all/reward/total"
    assert b["headline"]["reward"]["final"] > a["headline"]["reward"]["final"]
    assert a["headline"]["kl"]["best"] == min_kl(db, "run-a")  # KL: lower is better
    assert a["headline"]["entropy"]["best"] is None  # the catalog gives no direction
    assert a["project"] == "math-rl" and data["figures"][0] == "reward.svg"
    site = tmp_path / "site"
    build_site(db, site)
    page = next((site / "runs").glob("run-a*.html")).read_text()
    start = page.index('<script type="application/json" id="tviz-summary">')
    block = page[page.index(">", start) + 1 : page.index("</script>", start)]
    assert json.loads(block) == a


def min_kl(db: Path, run_id: str) -> float:
    with Store(db) as store:
        return min(store.load_run(run_id).metrics["optim/kl_sample_train_v1"].values)
