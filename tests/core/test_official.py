"""core.official: unwrapping official checkpoints, rule-based renaming, converter lookup and strict loading."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import Tensor, nn

from core.official import (
    load_official_state_dict,
    official_converter,
    rename_keys,
    unwrap_state_dict,
)


class Toy(nn.Module):
    """A model whose official counterpart names its one linear layer `fc` and keeps an index buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 2))


class ToyVariant(Toy):
    """A subclass: finds `Toy`'s converter through the MRO."""


RULES = ((r"fc\.(?P<p>weight|bias)", r"body.0.\g<p>"),)


@official_converter(Toy)
def convert_toy(official: dict[str, Tensor], model: Toy) -> dict[str, Tensor]:
    return rename_keys(official, RULES, model, drop=(r"relative_index",))


def official_state() -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "fc.weight": torch.randn(2, 3, generator=generator),
        "fc.bias": torch.randn(2, generator=generator),
        "relative_index": torch.arange(4),
    }


def same(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    """The same keys holding the very same tensors."""
    return list(a) == list(b) and all(a[k] is b[k] for k in a)


def test_unwrap_returns_a_flat_state_dict_unchanged():
    state = official_state()
    assert same(unwrap_state_dict(state), state)


def test_unwrap_prefers_params_ema_as_basicsr_test_configs_do():
    ema, raw = official_state(), {"fc.weight": torch.zeros(2, 3)}
    assert same(unwrap_state_dict({"params": raw, "params_ema": ema}), ema)
    assert same(unwrap_state_dict({"params": raw}), raw)


def test_unwrap_finds_nested_state_dicts_and_strips_dataparallel_prefixes():
    state = official_state()
    prefixed = {f"module.{k}": v for k, v in state.items()}
    checkpoint = {"epoch": 7, "state_dict": prefixed, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}}
    assert same(unwrap_state_dict(checkpoint), state)
    assert same(unwrap_state_dict({"model": {"state_dict": prefixed}}), state)


def test_unwrap_without_a_state_dict_names_what_it_found():
    with pytest.raises(ValueError, match=r"nested mappings present: \['weights'\]"):
        unwrap_state_dict({"epoch": 1, "weights": {"fc.weight": torch.zeros(1)}})


def test_load_converts_drops_computed_buffers_and_loads(tmp_path):
    state = official_state()
    path = tmp_path / "official.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model = load_official_state_dict(ToyVariant(), path)
    assert isinstance(model, ToyVariant)
    torch.testing.assert_close(model.body[0].weight, state["fc.weight"], rtol=0, atol=0)
    torch.testing.assert_close(model.body[0].bias, state["fc.bias"], rtol=0, atol=0)


def test_load_refuses_checkpoints_that_pickle_classes(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"params": official_state(), "net": Toy()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_official_state_dict(Toy(), path)


def test_model_without_converter_is_refused_naming_those_with_one():
    with pytest.raises(ValueError, match=r"Linear has no official-weights converter.*'Toy'"):
        load_official_state_dict(nn.Linear(3, 2), official_state())


def test_unknown_official_key_is_an_error_not_ignored():
    state = {**official_state(), "fc.scale": torch.ones(1)}
    with pytest.raises(ValueError, match=r"without a counterpart in Toy: \['fc.scale'\]"):
        load_official_state_dict(Toy(), state)


def test_missing_official_key_names_our_key():
    state = official_state()
    del state["fc.bias"]
    with pytest.raises(ValueError, match=r"Toy keys the checkpoint lacks: \['body.0.bias'\]"):
        load_official_state_dict(Toy(), state)


def test_wrong_shape_names_the_official_and_our_key():
    state = {**official_state(), "fc.weight": torch.zeros(2, 4)}
    with pytest.raises(ValueError, match=r"official fc\.weight: shape \(2, 4\).*body\.0\.weight has \(2, 3\)"):
        load_official_state_dict(Toy(), state)


def test_rename_refuses_keys_beyond_the_model_and_shared_targets():
    rules = RULES + ((r"fc(?P<i>\d)\.weight", r"body.\g<i>.weight"), (r"linear\.(?P<p>weight|bias)", r"body.0.\g<p>"))
    with pytest.raises(ValueError, match=r"official keys beyond this model: \['fc1.weight'\]"):
        rename_keys({**official_state(), "fc1.weight": torch.zeros(2, 3)}, rules, Toy(), drop=("relative_index",))
    with pytest.raises(ValueError, match="fc.weight and linear.weight both map to Toy's body.0.weight"):
        rename_keys({**official_state(), "linear.weight": torch.zeros(2, 3)}, rules, Toy(), drop=("relative_index",))
