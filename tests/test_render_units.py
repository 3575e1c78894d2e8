"""The renderer's pure parts: JSON in <script>, compressed prefixes, downsampling, sampling,
tokens per day, token texts, image paths, odd data, long-text budget, the CSP."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
import random
import re
from pathlib import Path

import pytest
from markupsafe import escape

from tviz.demo import write_png
from tviz.render import charts
from tviz.render.csp import (
    HASHES_MARKER,
    allow_served_script,
    script_hash,
    with_script_hashes,
)
from tviz.render.downsample import minmax
from tviz.render.embed import PrefixGzip, script_json
from tviz.render.group_json import _image_uri, _trajectory_json
from tviz.render.group_json import group_json as _group_json
from tviz.render.index import tokens_per_day
from tviz.render.pages import _cut_to, fair_caps
from tviz.render.rollouts import encode_step
from tviz.store import Rollout, Trajectory


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


def test_minmax_keeps_each_buckets_first_lowest_and_highest_point():
    """The rule, checked point by point on series with ties (0.0 and -0.0, repeated values)
    and ints, at several widths."""
    rng = random.Random(5)
    for _ in range(300):
        n, most = rng.randint(1, 2_500), rng.choice([10, 64, 1000])
        pool = [0.0, -0.0, 1.0, 2, -3]
        values = [rng.choice(pool) if rng.random() < 0.5 else rng.gauss(0, 1) for _ in range(n)]
        buckets = max(1, (most - 2) // 2)
        keep = {0, n - 1}
        for b in range(buckets):
            part = range(b * n // buckets, (b + 1) * n // buckets)
            if part and n > most:
                keep.add(min(part, key=lambda i: (values[i], i)))
                keep.add(min(part, key=lambda i: (-values[i], i)))
        want = sorted(keep) if n > most else list(range(n))
        out = minmax(list(range(n)), values, most)
        assert out.steps == want
        assert [repr(v) for v in out.values] == [repr(values[i]) for i in want]


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


# -- odd data from the database --------------------------------------------------------------


def _png(path: Path, color: int) -> Path:
    return write_png(path, 2, 2, bytes([color, 0, 0] * 4))


@pytest.mark.parametrize(
    "image_path",
    [
        "~nosuchuser/a.png",  # expanduser() raises RuntimeError for an unknown user
        "~/a.png",
        "a\x00b.png",  # no OS takes this name
        "http://example.com/a.png",
        "https://example.com/a.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "x" * 5000 + ".png",  # too long a name
        b"\x89PNG bytes",  # a blob in the column
        42,
        "",
    ],
)
def test_an_unusable_image_path_gives_no_image_and_never_fails(tmp_path, image_path):
    uri, note = _image_uri(image_path, tmp_path)
    assert uri is None and note


def test_images_are_read_only_from_the_database_folder(tmp_path, monkeypatch):
    db_dir, elsewhere = tmp_path / "db", tmp_path / "elsewhere"
    (db_dir / "images").mkdir(parents=True)
    (elsewhere / "images").mkdir(parents=True)
    mine = _png(db_dir / "images" / "a.png", 10)
    _png(elsewhere / "images" / "a.png", 250)  # the same relative name in the current folder
    secret = _png(tmp_path / "secret.png", 99)
    expected = "data:image/png;base64," + base64.b64encode(mine.read_bytes()).decode()
    monkeypatch.chdir(elsewhere)
    assert _image_uri("images/a.png", db_dir) == (expected, None)  # never the cwd's file
    assert _image_uri(str(mine), db_dir) == (expected, None)  # absolute, inside: fine
    assert _image_uri("images/../images/a.png", db_dir) == (expected, None)
    for outside in (str(secret), "../secret.png", "images/../../secret.png"):
        uri, note = _image_uri(outside, db_dir)
        assert uri is None and "database's folder" in note, outside
    (db_dir / "images" / "link.png").symlink_to(secret)  # a link out of the folder
    assert _image_uri("images/link.png", db_dir)[0] is None
    assert _image_uri("images/missing.png", db_dir) == (
        None,
        "image file not found next to the database",
    )


def test_malformed_trajectory_fields_show_as_extras_instead_of_failing():
    traj = Trajectory(
        idx=0,
        reward="high",  # type: ignore[arg-type]
        output_text=b"bytes out",  # type: ignore[arg-type]
        output_tokens=5,  # type: ignore[arg-type]
        logprobs={"a": 1},  # type: ignore[arg-type]
        step_rewards="0.5",  # type: ignore[arg-type]
        turns="one turn",  # type: ignore[arg-type]
        pred_lat="north",  # type: ignore[arg-type]
        pred_lon=2.0,
        distance_km=math.inf,
        extras={"token_texts": ["a"], "note": "kept"},
    )
    out = _trajectory_json(traj)
    assert out["r"] is None and out["o"] == "bytes out"
    for key in ("lp", "tt", "sr", "turns", "nt", "pred", "d"):
        assert key not in out
    assert out["x"] == {
        "token_texts": ["a"],
        "note": "kept",
        "output_tokens": 5,
        "logprobs": {"a": 1},
        "step_rewards": "0.5",
        "turns": "one turn",
        "output_text": "bytes out",
    }
    rollout = Rollout(
        id=1,
        step=0,
        group_idx=0,
        prompt_text=None,
        trajectories=[traj, Trajectory(idx=1, reward=1.0, logprobs=[-0.1, "x", True])],
        image_path="~nosuchuser/a.png",
        gt_lat="48.8",  # type: ignore[arg-type]
        gt_lon=2.3,
    )
    chunk = encode_step(0, [rollout], (1, 1), None)
    group = json.loads(gzip.decompress(chunk.packed.gzip(1)))[0]
    assert group["imgNote"] and group["img"] is None and "gt" not in group
    assert chunk.stats["best"] == 1.0 and list(chunk.rewards) == [1.0]
    assert group["t"][0]["lp"] == [-0.1, None, None]


def test_extras_that_repeat_the_prompt_are_left_out():
    messages = [{"role": "user", "content": "What is 6 x 7?"}]
    extras = {"prompt_messages": messages, "text_logged": True, "env": "math"}
    traj = Trajectory(idx=0, reward=1.0, output_text="42")
    shown = Rollout(1, 0, 0, "What is 6 x 7?", [traj], extras=extras)
    assert _group_json(shown, [1.0], False, None)["x"] == {"env": "math"}
    # Without a prompt text the messages are all the reader has: kept, as is text_logged.
    bare = Rollout(2, 0, 1, None, [traj], extras=extras)
    assert _group_json(bare, [1.0], False, None)["x"] == extras
    not_found = Rollout(3, 0, 2, "p", [traj], extras={"text_logged": False})
    assert _group_json(not_found, [1.0], False, None)["x"] == {"text_logged": False}


# -- size budget for long texts --------------------------------------------------------------


def test_fair_caps_keep_small_texts_whole_and_share_the_rest():
    assert fair_caps([10, 20], 30) is None
    assert fair_caps([10, 1000, 1000], 410) == [10, 200, 200]
    assert fair_caps([5, 5], 0) == [0, 0]
    assert fair_caps([], 0) is None


def test_cut_to_respects_the_escaped_size():
    text = "<&>" * 100 + "é" * 100
    for size in (0, 1, 4, 5, 299, 1000, 2000):
        cut = _cut_to(text, size)
        assert text.startswith(cut)
        assert len(str(escape(cut)).encode()) <= size
        longer = text[: len(cut) + 1]
        assert longer == cut or len(str(escape(longer)).encode()) > size


# -- content security policy -----------------------------------------------------------------


def test_script_hashes_cover_exactly_the_executable_inline_scripts():
    html = (
        '<meta http-equiv="Content-Security-Policy" content="script-src '
        f"{HASHES_MARKER}; style-src 'none'\">"
        '<script>one()</script><script type="application/json">{}</script>'
        "<script>two()\r\n</script><script>one()</script>"
    )
    out = with_script_hashes(html)
    assert HASHES_MARKER not in out
    expected = [script_hash("one()"), script_hash("two()\n")]  # CR LF as the parser sees it
    assert f"script-src {' '.join(expected)};" in out
    assert (
        script_hash("one()")
        == "'sha256-" + base64.b64encode(hashlib.sha256(b"one()").digest()).decode() + "'"
    )


def test_allow_served_script_lets_one_script_and_the_server_in():
    page = (
        b'<html><head><meta http-equiv="Content-Security-Policy" content="default-src '
        b"'none'; script-src 'sha256-abc'; style-src 'unsafe-inline'\"></head>"
        b"<body></body></html>"
    )
    tag = b'<script data-tviz-watch="1">reload()</script>'
    served = allow_served_script(page, tag)
    policy = re.search(rb'content="([^"]*)"', served).group(1).decode()
    assert f"script-src {script_hash('reload()')} 'sha256-abc';" in policy
    assert policy.endswith("; connect-src 'self'") and "unsafe" not in policy.replace(
        "style-src 'unsafe-inline'", ""
    )
    assert served.endswith(b"<body></body></html>")
    assert allow_served_script(b"<p>no policy</p>", tag) == b"<p>no policy</p>"
