"""A stand-in for `tviz.render.SiteBuilder`, for the watch tests while (or where) the real
one is not available: same constructor and `build()`, tiny pages, atomic writes.

Run as a script it is `tviz` with the stand-in installed: `python tests/watch_fake_site.py
watch --db ... --out ...`.
"""

from __future__ import annotations

import html
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tviz.store import RunSummary, Store


@dataclass
class FakeReport:
    written: list[Path] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)


class FakeSiteBuilder:
    def __init__(self, db_path: Path, out_dir: Path, budget_bytes: int = 25_000_000) -> None:
        self.db_path = Path(db_path)
        self.out_dir = Path(out_dir)

    def build(self, run_ids: Sequence[str] | None = None, progress: Any = None) -> FakeReport:
        report = FakeReport()
        with Store(self.db_path) as store:
            runs = store.list_runs()
            report.runs = runs
            for run in runs:
                if run_ids is not None and run.id not in run_ids:
                    continue
                data = store.load_run(run.id)
                steps = sorted({s for series in data.metrics.values() for s in series.steps})
                rows = "".join(
                    f"<details id='step-{s}'><summary>step {s}</summary><p>{'x ' * 200}</p>"
                    "</details>"
                    for s in steps
                )
                body = (
                    f"<h1>{html.escape(run.name)}</h1><p id='count'>steps: {len(steps)}</p>"
                    f"<input id='slider' type='range' min='0' max='{max(len(steps) - 1, 0)}'"
                    f" value='{max(len(steps) - 1, 0)}'>"
                    f"{rows}<div style='height:3000px'></div>"
                )
                report.written.append(self._write(f"runs/{run.slug}.html", body))
        links = "".join(
            f"<li><a href='runs/{r.slug}.html'>{html.escape(r.name)}</a> {r.num_steps}</li>"
            for r in report.runs
        )
        report.written.append(self._write("index.html", f"<ul>{links}</ul>"))
        return report

    def _write(self, rel: str, body: str) -> Path:
        path = self.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        page = f"<!doctype html><html><head><meta charset=utf-8></head><body>{body}</body></html>"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, path)
        return path


if __name__ == "__main__":
    import tviz.render
    from tviz.cli import main

    tviz.render.SiteBuilder = FakeSiteBuilder  # type: ignore[attr-defined]
    sys.argv[0] = "tviz"
    main()
