"""The renderer's pure parts: JSON in <script>, compressed prefixes, downsampling, sampling,
tokens per day, token texts."""

from __future__ import annotations

import base64
import gzip
import json
import math

from tviz.render import charts
from tviz.render.downsample import minmax
from tviz.render.embed import PrefixGzip, script_json
from tviz.render.index import tokens_per_day
from tviz.render.rollouts import _trajectory_json
from tviz.store import Trajectory


def test_script_json_cannot_close_the_script_element_and_round_trips():
    value = {"t": "</script><!-- <img> & \u2028\u2029", "n": math.nan, "i": [math.inf, 1.5]}
    text = script_json(value)
    for bad in ("</", "<!--", "<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == {"t": value["t"], "n": None, "i": [None, 1.5]}


def test_script_json_survives_lone_surrogates():
    assert json.loads(script_json({"t": "bad \ud800 text"}))["t"].startswith("bad ")


def test_every_prefix_of_a_prefix_gzip_is_a_valid_gzip_of_that_prefix():
    items = [json.dumps({"g": i, "text": "word " * (i * 50)}) for i in range(6)]
    packed = PrefixGzip.pack(items)
    for keep in range(len(items) + 1):
        data = packed.gzip(keep)
        assert json.loads(gzip.decompress(data)) == [json.loads(x) for x in items[:keep]]
        assert packed.b64_size(keep) == len(base64.b64encode(data))
    assert PrefixGzip.pack(items).gzip(3) == packed.gzip(3)  # deterministic


def test_minmax_keeps_spikes_and_first_last_points():
    steps = list(range(20_000))
    values = [math.sin(i / 300) for i in steps]
    values[12_345] = 50.0
    values[777] = -50.0
    values[5000] = math.nan
    out = minmax(steps, values, 1000)
    assert out.reduced and len(out.steps) <= 1002
    assert out.steps[0] == 0 and out.steps[-1] == 19_999
    assert 12_345 in out.steps and 777 in out.steps
    assert max(v for v in out.values if v is not None) == 50.0
    assert None in out.values  # the NaN is drawn as a gap, not silently dropped
    assert out.steps == sorted(out.steps)
    assert minmax(steps, values, 1000) == out


def test_minmax_leaves_short_series_alone():
    out = minmax([1, 2, 3], [1.0, math.inf, 3.0])
    assert not out.reduced and out.steps == [1, 2, 3] and out.values == [1.0, None, 3.0]


# -- tokens per day --------------------------------------------------------------------------


def test_tokens_per_day_rows_fill_the_days_between_with_zeros():
    rows = tokens_per_day({"2026-11-25": 100, "2026-11-28": 7, "2026-11-26": 3})
    assert rows == [
        {"day": "2026-11-25", "tokens": 100},
        {"day": "2026-11-26", "tokens": 3},
        {"day": "2026-11-27", "tokens": 0},
        {"day": "2026-11-28", "tokens": 7},
    ]
    assert tokens_per_day({}) == []
    # Years apart: no thousand empty bars, just the days that had tokens.
    assert [r["day"] for r in tokens_per_day({"2020-01-01": 1, "2026-01-01": 2})] == [
        "2020-01-01",
        "2026-01-01",
    ]


def test_tokens_per_day_chart_is_one_bar_per_day_on_a_band_axis():
    spec = charts.tokens_per_day()
    x = spec["encoding"]["x"]
    assert x["type"] == "ordinal" and x["field"] == "day"  # a slot per day, never a time span
    assert "'%b %-d'" in x["axis"]["labelExpr"] and x["axis"]["labelOverlap"]
    assert "min(bandwidth('x'), 48)" in json.dumps(spec["mark"])  # 1 day is not a wall
    assert "%Y" in charts.tokens_per_day(with_year=True)["encoding"]["x"]["axis"]["labelExpr"]


# -- token texts -----------------------------------------------------------------------------


def test_token_texts_in_extras_become_the_heatmap_text():
    texts = ["Hello", " world", "</script>"]
    traj = Trajectory(
        idx=0,
        reward=1.0,
        output_tokens=[1, 2, 3],
        logprobs=[-0.1, -2.0, None],
        extras={"token_texts": texts, "stop_reason": "stop"},
    )
    out = _trajectory_json(traj)
    assert out["tt"] == texts and out["lp"] == [-0.1, -2.0, None]
    assert out["x"] == {"stop_reason": "stop"}  # not repeated in the extras table
    # A list that does not match the logprobs is left alone, as any other extra.
    wrong = Trajectory(idx=1, reward=0.0, logprobs=[-0.1], extras={"token_texts": ["a", "b"]})
    out = _trajectory_json(wrong)
    assert "tt" not in out and out["x"] == {"token_texts": ["a", "b"]}
    assert "tt" not in _trajectory_json(Trajectory(idx=2, reward=0.0, extras={"token_texts": []}))
