from dataclasses import dataclass
from typing import Literal

import pytest

from tokbench.options import (
    OptionError,
    build_options,
    options_dict,
    parse_overrides,
    split_overrides,
    stable_hash,
)


@dataclass(frozen=True)
class A:
    n_q: int = 8
    bandwidth: float | None = None
    mode: Literal["first", "all"] = "first"
    streaming: bool = False
    layers: tuple[int, ...] = (6,)


@dataclass(frozen=True)
class B:
    asr_model: str = "large-v3"
    keep_audio: int = 0


def test_parse_overrides():
    assert parse_overrides(["a=1", "b = x=y", "a=2"]) == {"a": "2", "b": "x=y"}
    with pytest.raises(OptionError):
        parse_overrides(["novalue"])


def test_build_options_coerces_types():
    o = build_options(A, {"n_q": 8}, {"bandwidth": "6", "mode": "all", "streaming": "true",
                                      "layers": "6,9"})
    assert o == A(8, 6.0, "all", True, (6, 9))
    assert build_options(A, {}, {"bandwidth": "none"}).bandwidth is None
    with pytest.raises(OptionError, match="one of"):
        build_options(A, {}, {"mode": "some"})
    with pytest.raises(OptionError, match="true or false"):
        build_options(A, {}, {"streaming": "maybe"})
    assert options_dict(o) == {"n_q": 8, "bandwidth": 6.0, "mode": "all", "streaming": True,
                               "layers": [6, 9]}


def test_split_overrides_routes_keys():
    tok, task = split_overrides({"n_q": "4", "asr_model": "small"}, A, B)
    assert tok == {"n_q": "4"} and task == {"asr_model": "small"}
    with pytest.raises(OptionError, match="did you mean 'asr_model'"):
        split_overrides({"asr_modle": "small"}, A, B)


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


@dataclass(frozen=True)
class TokSeed:
    seed: int = 0
    n_q: int = 8


@dataclass(frozen=True)
class TaskSeed:
    seed: int = 0
    epochs: int = 1


def test_ambiguous_set_keys_are_an_error_and_prefixes_route():
    with pytest.raises(OptionError, match=r"ambiguous.*--set tokenizer.seed=3 or --set task.seed=3"):
        split_overrides({"seed": "3"}, TokSeed, TaskSeed)
    tok, task = split_overrides({"task.seed": "3", "tokenizer.seed": "1", "epochs": "2"},
                                TokSeed, TaskSeed)
    assert tok == {"seed": "1"} and task == {"seed": "3", "epochs": "2"}
    with pytest.raises(OptionError, match=r"the task has no option 'n_q'"):
        split_overrides({"task.n_q": "3"}, TokSeed, TaskSeed)
