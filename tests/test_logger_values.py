"""Values whose object graph loops or shares parts: cut in linear time, the rest kept."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tviz import TvizLogger
from tviz.values import jsonable

SHARED_CAP = 100_000  # tviz.values.SHARED_CAP


def _within(seconds: float, fn, *args):
    """fn(*args), failing (not hanging) if it takes longer than `seconds`."""
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True)
    start = time.perf_counter()
    worker.start()
    worker.join(seconds)
    assert box, f"{getattr(fn, '__name__', fn)} did not return within {seconds} s"
    return box[0], time.perf_counter() - start


@dataclasses.dataclass
class Node:
    name: str
    parent: Node | None = None
    children: list[Node] = dataclasses.field(default_factory=list)


def _config_row(db_path: Path) -> dict:
    conn = sqlite3.connect(db_path)
    try:
        (text,) = conn.execute("SELECT config FROM runs").fetchone()
    finally:
        conn.close()
    return json.loads(text)


def test_a_config_with_a_parent_pointer_is_written_with_the_cycle_cut(db_path: Path) -> None:
    root = Node("root")
    root.children = [Node("a", parent=root), Node("b", parent=root)]
    looped: dict = {"lr": 3e-4}
    looped["twice"] = [looped, looped]  # a dict that holds itself twice
    logger = TvizLogger(db_path, run_name="loops", config={"tree": root, "looped": looped})
    logger.log_metrics({"loss": 1.0}, step=0)
    ok, took = _within(20, logger.flush, 10.0)
    assert ok is True and took < 5
    logger.close()
    config = _config_row(db_path)
    tree = config["tree"]
    assert tree["name"] == "root" and tree["parent"] is None
    assert [c["name"] for c in tree["children"]] == ["a", "b"]
    assert tree["children"][0]["parent"] == "<cycle: Node>"
    assert config["looped"] == {"lr": 3e-4, "twice": ["<cycle: dict>", "<cycle: dict>"]}


def test_cycles_are_cut_in_linear_time() -> None:
    # Every node points back at every ancestor: a walk that only counts depth takes 2^depth.
    chain: list = []
    head = chain
    for _ in range(200):
        nxt: list = [chain]
        head.append(nxt)
        head.append(head)
        head = nxt
    result, took = _within(10, jsonable, chain)
    assert took < 2
    assert "<cycle: list>" in json.dumps(result)


def test_a_shared_sub_object_is_written_in_full() -> None:
    tokenizer = {"name": "llama3", "vocab_size": 128_256, "special": [1, 2, 3]}
    config = {"policy": {"tokenizer": tokenizer}, "reference": {"tokenizer": tokenizer}}
    assert jsonable(config) == {
        "policy": {"tokenizer": tokenizer},
        "reference": {"tokenizer": tokenizer},
    }
    shared = Node("shared")
    pair = [shared, shared]
    assert jsonable(pair) == [jsonable(Node("shared"))] * 2


FORTY_LEVELS = """
import json, sys, time
from tviz.values import json_text, jsonable
level = {"leaf": 1.0}
for _ in range(40):
    level = {"left": level, "right": level}  # each level holds the next one twice
start = time.perf_counter()
text = json_text(level)
took = time.perf_counter() - start
json.loads(text)
print(json.dumps({"took": took, "chars": len(text), "leaves": text.count('"leaf": 1.0'),
                  "cut": text.count("<shared, cut:"), "same": jsonable(level) == json.loads(text)}))
"""


def test_sharing_forty_levels_deep_is_cut_at_the_size_cap() -> None:
    # 2^40 leaves when written out, 41 objects in memory. json.dumps of it never returns and
    # holds the GIL meanwhile: a subprocess, so that a hang fails the test.
    try:
        done = subprocess.run(
            [sys.executable, "-c", FORTY_LEVELS], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("json_text of a graph sharing references 40 levels deep did not return")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["took"] < 5 and stats["cut"] > 0 and stats["same"]
    # Written out up to the cap, not a short stub: the first full copies are all there.
    assert SHARED_CAP // 8 < stats["leaves"] < SHARED_CAP
    assert stats["chars"] < 60 * SHARED_CAP


def test_ordinary_values_are_unchanged() -> None:
    value = {
        "a": [1, 2.5, float("nan"), "x\ud800", None, True],
        "b": ({"c": (1, 2)},),
        "d": {1: "one"},
    }
    assert jsonable(value) == {
        "a": [1, 2.5, None, "x\ufffd", None, True],
        "b": [{"c": [1, 2]}],
        "d": {"1": "one"},
    }
    deep: Any = 0
    for _ in range(80):
        deep = [deep]
    text = json.dumps(jsonable(deep))
    assert text.count("[") == 65 and "<nested too deep: list>" in text


def test_a_cyclic_config_leaves_the_writer_free_for_the_loop(db_path: Path) -> None:
    # Today's bug: the writer walked this for ever, holding the GIL, and nothing else was
    # written. Now the config is written and the metrics logged after it follow at once.
    # (How much the writer costs the loop is a benchmark's business, not a timed test's.)
    root = Node("root")
    root.children = [Node(str(i), parent=root) for i in range(3)]
    for child in root.children:
        child.children = [Node("x", parent=child), root]  # back to the root too

    logger = TvizLogger(db_path, config=root)
    for step in range(100):
        logger.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    assert logger.flush(10)
    logger.close()
    assert _config_row(db_path)["children"][0]["children"][1] == "<cycle: Node>"
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (100,)
    conn.close()


# -- tinker-cookbook configs are chz classes ------------------------------------------------------


def _cookbook_classes():
    chz = pytest.importorskip("chz")

    @chz.chz
    class DatasetBuilder:
        """Like the cookbook's dataset builders: a chz class that is also callable."""

        batch_size: int = 64
        model_name_for_tokenizer: str = "meta-llama/Llama-3.1-8B"
        renderer_name: str = "llama3"
        group_size: int = 16

        def __call__(self) -> tuple[list, None]:
            return [], None

    @chz.chz
    class CookbookConfig:
        learning_rate: float = 4e-5
        model_name: str = "meta-llama/Llama-3.1-8B"
        lora_rank: int = 32
        log_path: str = "/tmp/runs/gsm8k"
        dataset_builder: DatasetBuilder = chz.field(default_factory=DatasetBuilder)
        eval_every: int = 20
        wandb_project: str | None = None
        stop_tokens: tuple[int, ...] = (128_001, 128_009)

    return chz, CookbookConfig, DatasetBuilder


def _cookbook_config_json(chz, config: Any) -> dict:
    """What tinker-cookbook writes to config.json: ml_log.dump_config, then json."""
    try:
        from tinker_cookbook.utils.ml_log import dump_config
    except ImportError:  # the same for these fields: chz.asdict, then JSON
        return json.loads(json.dumps(chz.asdict(config)))
    return json.loads(json.dumps(dump_config(config)))


def test_a_chz_config_is_stored_as_the_cookbooks_config_json(db_path: Path) -> None:
    chz, CookbookConfig, DatasetBuilder = _cookbook_classes()
    config = CookbookConfig(learning_rate=1e-4, dataset_builder=DatasetBuilder(batch_size=8))
    with TvizLogger(db_path, config=config) as logger:
        logger.log_metrics({"loss": 1.0}, step=0)
    stored = _config_row(db_path)
    assert stored == _cookbook_config_json(chz, config)
    assert stored["dataset_builder"] == {
        "batch_size": 8,
        "model_name_for_tokenizer": "meta-llama/Llama-3.1-8B",
        "renderer_name": "llama3",
        "group_size": 16,
    }
    assert stored["stop_tokens"] == [128_001, 128_009]
