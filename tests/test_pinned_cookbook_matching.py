"""`tviz import` gives each logtree group's text to the summary group it belongs to: matched by
its trajectories' (ob_len, ac_len, reward) per turn, not by position. The cookbook logs the
first groups of a batch but writes the summaries in the order the groups finished."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import fixture_path

from tviz.adapters.cookbook import import_cookbook_run
from tviz.store import Rollout, Store

SUMMARIES = "train_rollout_summaries.jsonl"
LOGTREE = "train_logtree.json"


def _groups(log_dir: Path, db: Path, step: int) -> dict[int, Rollout]:
    import_cookbook_run(log_dir, db, run_id="run")
    with Store(db) as store:
        return {r.group_idx: r for r in store.load_run("run").rollouts if r.step == step}


def _shown(rollout: Rollout) -> tuple:
    """What a reader sees of a group: its prompt and each trajectory's reward and text."""
    trajectories = sorted(rollout.trajectories, key=lambda t: t.idx)
    return rollout.prompt_text, [(t.reward, t.output_text) for t in trajectories]


def _records(path: Path) -> dict[int, list[dict]]:
    by_group: dict[int, list[dict]] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        by_group.setdefault(record["group_idx"], []).append(record)
    return by_group


def test_logged_text_goes_to_the_group_with_the_same_signature(tmp_path):
    fixture = fixture_path("cookbook-run")
    # As written by the cookbook: one logged group per iteration, summary group 0.
    truth_a = _groups(fixture, tmp_path / "truth.db", 1)
    truth_b = _groups(fixture, tmp_path / "truth.db", 2)
    assert truth_a[0].extras["text_logged"] and truth_b[0].extras["text_logged"]

    # Iteration 1 now logs two groups, A (its own) then B (iteration 2's), while the summaries
    # list B as group 0 and A as group 2, each group's lines in reverse trajectory order, after
    # a look-alike of A (group 1: the same token counts, other rewards). Pairing by position, or
    # by token counts alone, or by line order, gives some text to the wrong group.
    run = tmp_path / "run"
    shutil.copytree(fixture, run)
    it1, it2 = run / "iteration_000001", run / "iteration_000002"
    tree = json.loads((it1 / LOGTREE).read_text())
    tree_b = json.loads((it2 / LOGTREE).read_text())
    tree["root"]["children"] += [
        n for n in tree_b["root"]["children"] if isinstance(n, dict) and n["tag"] == "section"
    ]
    (it1 / LOGTREE).write_text(json.dumps(tree))
    a, b = _records(it1 / SUMMARIES)[0], _records(it2 / SUMMARIES)[0]
    look_alike = [
        {**r, "total_reward": 0.5, "steps": [{**s, "reward": 0.5} for s in r["steps"]]} for r in a
    ]
    relabelled = [(1, look_alike), (2, a[::-1]), (0, b[::-1])]
    lines = [json.dumps({**r, "group_idx": g}) for g, records in relabelled for r in records]
    (it1 / SUMMARIES).write_text("\n".join(lines) + "\n")

    got = _groups(run, tmp_path / "tviz.db", 1)
    assert sorted(got) == [0, 1, 2]
    assert _shown(got[2]) == _shown(truth_a[0])
    assert _shown(got[0]) == _shown(truth_b[0])
    assert "60 miles per hour" in got[2].prompt_text and "340" in got[0].prompt_text
    best_a = next(t for t in got[2].trajectories if t.reward == 1.0)
    assert "\\boxed{150}" in best_a.output_text
    # The look-alike was not logged: its own rewards, and no text borrowed from A.
    assert not got[1].extras["text_logged"]
    assert _shown(got[1]) == (None, [(0.5, None)] * len(a))
