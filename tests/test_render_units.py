"""The renderer's pure parts: JSON in <script>, compressed prefixes, downsampling, sampling."""

from __future__ import annotations

import base64
import gzip
import json
import math

from tviz.render.downsample import minmax
from tviz.render.embed import PrefixGzip, script_json


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
