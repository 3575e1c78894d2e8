"""The Tinker adapter: tinker-cookbook rollout objects -> rows a report can show.

The stand-ins below have exactly the attributes of tinker-cookbook 0.6 (`rl/types.py`,
`completers.py`) and tinker 0.38 (`ModelInput` and its chunk types), no more.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from tviz import TvizLogger
from tviz.adapters.tinker import (
    from_tinker_batch,
    from_tinker_trajectory,
    from_tinker_trajectory_group,
    model_input_text,
)
from tviz.store import Store

# -- stand-ins for tinker.types ---------------------------------------------------------------


@dataclass
class EncodedTextChunk:
    tokens: list[int]
    type: Literal["encoded_text"] = "encoded_text"

    @property
    def length(self) -> int:
        return len(self.tokens)


@dataclass
class ImageChunk:
    data: bytes
    format: Literal["png", "jpeg"]
    expected_tokens: int | None = None
    type: Literal["image"] = "image"

    @property
    def length(self) -> int:
        if self.expected_tokens is None:
            raise ValueError("ImageChunk expected_tokens needs to be set")
        return self.expected_tokens


@dataclass
class ImageAssetPointerChunk:
    format: Literal["png", "jpeg"]
    location: str
    expected_tokens: int | None = None
    type: Literal["image_asset_pointer"] = "image_asset_pointer"


@dataclass
class ModelInput:
    chunks: list[Any]

    @classmethod
    def from_ints(cls, tokens: list[int]) -> ModelInput:
        return cls(chunks=[EncodedTextChunk(tokens=tokens)])

    @property
    def length(self) -> int:
        return sum(chunk.length for chunk in self.chunks)


# -- stand-ins for tinker_cookbook.completers / rl.types ----------------------------------------


@dataclass
class TokensWithLogprobs:
    tokens: list[int]
    maybe_logprobs: list[float] | None
    stop_reason: str = "stop"
    sequence_id: str | None = None
    prompt_cache_hit_tokens: int = 0


@dataclass
class Transition:
    ob: ModelInput
    ac: TokensWithLogprobs
    reward: float
    episode_done: bool
    metrics: dict[str, float | int] = field(default_factory=dict)
    logs: dict[str, str | int | float] = field(default_factory=dict)


@dataclass(frozen=True)
class Trajectory:
    transitions: list[Transition]
    final_ob: ModelInput
    stop_reason: str | None = None


@dataclass(frozen=True)
class RolloutError:
    error_type: str
    error_message: str


@dataclass
class TrajectoryGroup:
    trajectories_G: list[Trajectory]
    final_rewards_G: list[float]
    metrics_G: list[dict[str, float | int]]
    rollout_errors: list[RolloutError] = field(default_factory=list)

    def get_total_rewards(self) -> list[float]:
        return [
            sum(t.reward for t in traj.transitions) + final
            for traj, final in zip(self.trajectories_G, self.final_rewards_G, strict=True)
        ]


class ByteTokenizer:
    """A byte-level tokenizer: token id = UTF-8 byte."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, tokens: list[int]) -> str:
        return bytes(tokens).decode("utf-8", "replace")


TOK = ByteTokenizer()


def text_ob(text: str) -> ModelInput:
    return ModelInput.from_ints(TOK.encode(text))


def action(text: str, logprobs: bool = True) -> TokensWithLogprobs:
    tokens = TOK.encode(text)
    return TokensWithLogprobs(tokens, [-0.5] * len(tokens) if logprobs else None)


def single_turn_group(answers: list[tuple[str, float]], logprobs: bool = True) -> TrajectoryGroup:
    prompt = text_ob("User: What is 6*7?\n\nAssistant:")
    trajs = [
        Trajectory(
            [Transition(prompt, action(text, logprobs), reward, True, {"correct": reward})],
            final_ob=ModelInput(chunks=[]),
        )
        for text, reward in answers
    ]
    return TrajectoryGroup(trajs, [0.0] * len(trajs), [{} for _ in trajs])


# -- tests -----------------------------------------------------------------------------------------


def test_single_turn_with_tokenizer_decodes_prompt_and_outputs(db_path: Path) -> None:
    group = single_turn_group([(" 42 \\boxed{42}", 1.0), (" 41 \\boxed{41}", 0.0)])
    rollouts = from_tinker_batch([group], tokenizer=TOK)

    (rollout,) = rollouts
    assert rollout["prompt_text"] == "User: What is 6*7?\n\nAssistant:"
    assert rollout["prompt_tokens"] == TOK.encode("User: What is 6*7?\n\nAssistant:")
    first, second = rollout["trajectories"]
    assert first["output_text"] == " 42 \\boxed{42}"
    assert first["reward"] == 1.0 and second["reward"] == 0.0
    assert first["logprobs"] == [-0.5] * len(first["output_tokens"])
    assert first["metrics"] == {"correct": 1.0}
    assert "turns" not in first  # one turn: nothing to split

    # What a report reads back.
    with TvizLogger(db_path, run_name="adapter", strict=True) as logger:
        logger.log_rollouts(rollouts, step=3)
    with Store(db_path) as store:
        data = store.load_run(store.list_runs()[0].id)
    (stored,) = data.rollouts
    assert stored.step == 3
    assert stored.prompt_text == "User: What is 6*7?\n\nAssistant:"
    assert [t.output_text for t in stored.trajectories] == [" 42 \\boxed{42}", " 41 \\boxed{41}"]
    assert stored.best_reward == 1.0 and stored.mean_reward == 0.5
    assert stored.trajectories[0].logprobs == [-0.5] * 14


def test_token_texts_on_request_give_each_tokens_own_text() -> None:
    group = single_turn_group([("Hi 42", 1.0)])
    (plain,) = from_tinker_batch([group], tokenizer=TOK)[0]["trajectories"]
    assert "token_texts" not in plain  # a decode per token costs: only when asked
    (traj,) = from_tinker_batch([group], tokenizer=TOK, token_texts=True)[0]["trajectories"]
    assert traj["token_texts"] == ["H", "i", " ", "4", "2"]
    assert len(traj["token_texts"]) == len(traj["logprobs"])


def test_without_tokenizer_or_logprobs_keeps_tokens_and_never_stringifies() -> None:
    group = single_turn_group([("yes", 1.0)], logprobs=False)
    (rollout,) = from_tinker_batch([group])
    assert rollout["prompt_text"] is None  # not "ModelInput(chunks=[...])"
    assert rollout["prompt_tokens"] == TOK.encode("User: What is 6*7?\n\nAssistant:")
    (traj,) = rollout["trajectories"]
    assert traj["output_text"] is None
    assert traj["output_tokens"] == TOK.encode("yes")
    assert traj["logprobs"] is None


def test_prompts_argument_overrides_the_decoded_observation() -> None:
    group = single_turn_group([("a", 0.0)])
    (rollout,) = from_tinker_batch([group], prompts=["the question"], tokenizer=TOK)
    assert rollout["prompt_text"] == "the question"


def test_image_chunks_become_placeholders() -> None:
    ob = ModelInput(
        chunks=[
            EncodedTextChunk(TOK.encode("Where is this? ")),
            ImageChunk(data=b"\x89PNG...", format="png"),  # no expected_tokens: .length raises
            EncodedTextChunk(TOK.encode(" and this ")),
            ImageAssetPointerChunk(format="jpeg", location="s3://bucket/paris.jpg"),
        ]
    )
    assert model_input_text(ob, TOK) == (
        "Where is this? [image] and this [image: s3://bucket/paris.jpg]"
    )
    traj = Trajectory([Transition(ob, action("Paris"), 1.0, True)], ModelInput(chunks=[]))
    group = TrajectoryGroup([traj], [0.0], [{}])
    rollout = from_tinker_trajectory_group(group, tokenizer=TOK)
    assert "[image]" in rollout["prompt_text"]
    assert rollout["prompt_tokens"] == TOK.encode("Where is this? ") + TOK.encode(" and this ")


def test_multi_turn_keeps_each_turn() -> None:
    system = "User: compute 23*17 with the calculator\n\nAssistant:"
    call = " <calc>23*17</calc>"
    tool = "\n\nTool: 391\n\nAssistant:"
    answer = " \\boxed{391}"
    ob1 = text_ob(system)
    ob2 = text_ob(system + call + tool)  # the chat so far, as the cookbook's envs build it
    traj = Trajectory(
        [
            Transition(ob1, action(call), 0.0, False, {"tool_calls": 1}, {"tool": "calc"}),
            Transition(ob2, action(answer, logprobs=False), 1.0, True, {"correct": 1.0}),
        ],
        final_ob=ModelInput(chunks=[]),
        stop_reason="completed",
    )
    group = TrajectoryGroup([traj], [0.5], [{"group_metric": 2.0}])

    (rollout,) = from_tinker_batch([group], tokenizer=TOK)
    (out,) = rollout["trajectories"]
    assert out["reward"] == 1.5  # step rewards plus the group's final reward
    assert out["step_rewards"] == [0.0, 1.0]
    assert out["final_reward"] == 0.5
    assert out["stop_reason"] == "completed"
    assert out["metrics"] == {"group_metric": 2.0}
    first, second = out["turns"]
    assert first["observation_text"] == system
    assert first["action_text"] == call
    assert first["metrics"] == {"tool_calls": 1} and first["logs"] == {"tool": "calc"}
    assert second["observation_text"] == tool  # only what the environment added
    assert second["action_text"] == answer
    assert second["reward"] == 1.0 and second["episode_done"] is True
    assert [first["ac_len"], second["ac_len"]] == [len(call), len(answer)]
    assert out["output_text"] == call + "\n\n" + answer
    # The second turn had no logprobs: the concatenation stays aligned with the tokens.
    assert len(out["logprobs"]) == len(out["output_tokens"])
    assert out["logprobs"][-1] is None and out["logprobs"][0] == -0.5


def test_multi_turn_round_trips_through_the_database(db_path: Path) -> None:
    ob1, ob2 = text_ob("Q1"), text_ob("Q1 A1 Q2")
    traj = Trajectory(
        [Transition(ob1, action(" A1"), 0.0, False), Transition(ob2, action(" A2"), 1.0, True)],
        ModelInput(chunks=[]),
    )
    rollouts = from_tinker_batch([TrajectoryGroup([traj], [0.0], [{}])], tokenizer=TOK)
    with TvizLogger(db_path, strict=True) as logger:
        logger.log_rollouts(rollouts, step=0)
    with Store(db_path) as store:
        data = store.load_run(store.list_runs()[0].id)
    turns = data.rollouts[0].trajectories[0].turns
    assert [t["observation_text"] for t in turns] == ["Q1", " Q2"]
    assert [t["action_text"] for t in turns] == [" A1", " A2"]


def test_rollout_errors_and_dropped_groups_are_kept_visible() -> None:
    group = single_turn_group([("ok", 1.0)])
    group.rollout_errors = [RolloutError("BadRequestError", "prompt too long")]
    rollouts = from_tinker_batch([None, group], tokenizer=TOK)
    (rollout,) = rollouts  # the cookbook's None (a dropped constant-reward group) is skipped
    assert rollout["group_idx"] == 1
    assert rollout["rollout_errors"] == [
        {"error_type": "BadRequestError", "error_message": "prompt too long"}
    ]
    # A group where every trajectory failed still becomes a (empty) rollout, never a crash.
    empty = TrajectoryGroup([], [], [], [RolloutError("TimeoutError", "took too long")])
    out = from_tinker_trajectory_group(empty, tokenizer=TOK)
    assert out["trajectories"] == [] and out["prompt_text"] is None


def test_a_failing_tokenizer_does_not_raise() -> None:
    class Broken:
        def decode(self, tokens: list[int]) -> str:
            raise KeyError(tokens[0])

    traj = Trajectory([Transition(text_ob("hi"), action("x"), 1.0, True)], ModelInput([]))
    out = from_tinker_trajectory(traj, tokenizer=Broken())
    assert out["output_text"] == "[1 tokens that the tokenizer could not decode]"
    assert out["reward"] == 1.0


@pytest.mark.skipif(
    importlib.util.find_spec("tinker_cookbook") is None,
    reason="tinker_cookbook is not installed (it pulls in torch); stand-ins cover the same API",
)
def test_against_the_real_tinker_cookbook_classes() -> None:  # pragma: no cover - optional
    import tinker
    from tinker_cookbook.completers import TokensWithLogprobs as RealTokens
    from tinker_cookbook.rl.types import Trajectory as RealTrajectory
    from tinker_cookbook.rl.types import TrajectoryGroup as RealGroup
    from tinker_cookbook.rl.types import Transition as RealTransition

    ob = tinker.ModelInput.from_ints(TOK.encode("Q?"))
    transition = RealTransition(ob, RealTokens(TOK.encode("A"), [-0.1]), 1.0, True, {"c": 1.0})
    group = RealGroup([RealTrajectory([transition], tinker.ModelInput.empty())], [0.0], [{}])
    (rollout,) = from_tinker_batch([group], tokenizer=TOK)
    assert rollout["prompt_text"] == "Q?"
    assert rollout["trajectories"][0]["output_text"] == "A"
    assert rollout["trajectories"][0]["logprobs"] == [-0.1]
