"""One smoothing rule: the page's (templates/run/smooth.js) and Python's (render/smoothing.py)
give the same numbers, so static figures match what the page draws."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from browser import browser  # noqa: F401  (a fixture)

from tviz.render.smoothing import default_smoothing, ema

SMOOTH_JS = Path(__file__).resolve().parents[1] / "tviz" / "templates" / "run" / "smooth.js"


def _series(seed: int, n: int) -> list[float | None]:
    rng = random.Random(seed)
    out: list[float | None] = []
    for i in range(n):
        if rng.random() < 0.05:
            out.append(None)  # a gap
        else:
            out.append(math.sin(i / 9) * 10 ** rng.randint(-6, 4) + rng.gauss(0, 0.3))
    return out


def test_python_ema_is_debiased_and_keeps_gaps():
    assert ema([1.0, None, 3.0], 0.0) == [1.0, None, 3.0]
    smoothed = ema([2.0, 2.0, None, 2.0], 0.9)
    assert smoothed[2] is None
    assert all(math.isclose(v, 2.0) for v in smoothed if v is not None)  # no pull to zero
    assert default_smoothing(30) == 0 and default_smoothing(99) == 0
    assert default_smoothing(300) == 0.9
    assert default_smoothing(100) == 0.7
    assert default_smoothing(100_000) == 0.95


def test_page_and_python_smooth_alike(browser):  # noqa: F811
    page = browser.new_page()
    page.goto("about:blank")
    cases = [(_series(seed, 500), w) for seed in range(4) for w in (0.0, 0.35, 0.6, 0.9, 0.99)]
    got = page.evaluate(
        "cases => { " + SMOOTH_JS.read_text("utf-8") + " return {"
        " smoothed: cases.map(c => ema(c[0], c[1])),"
        " defaults: [0, 50, 99, 100, 101, 137, 300, 999, 1000, 5000, 100000]"
        ".map(defaultSmoothing) }; }",
        json.loads(json.dumps(cases)),
    )
    page.close()
    for (values, weight), js in zip(cases, got["smoothed"], strict=True):
        assert js == ema(values, weight)  # bit for bit, gaps included
    steps = [0, 50, 99, 100, 101, 137, 300, 999, 1000, 5000, 100000]
    assert got["defaults"] == [default_smoothing(n) for n in steps]
