"""Official HAT and LLFormer checkpoints load into our models and reproduce the official code's output.

`hat_small.pt` / `llformer_small.pt` hold state dicts of the official models (XPixelGroup/HAT,
TaoWangzj/LLFormer) at small configurations, every parameter perturbed away from its init, in the
format their training code saves (BasicSR's `params_ema`; LLFormer's `epoch`/`state_dict`/
`optimizer`), with a seeded input and the official output on it. `*_keys.json.gz` list the names
and shapes of the official state dicts at the released configurations. See
tests/fixtures/official/README.md.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
from torch import Tensor

from core.attention import OverlappingWindowAttention
from core.official import load_official_state_dict, unwrap_state_dict
from vision.models.hat import HAT
from vision.models.hat_official import official_oca_shift
from vision.models.llformer import LLFormer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "official"
# The official configurations of the fixtures, in our constructors' terms.
HAT_SMALL = dict(
    scale=2, embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, compress_ratio=2, squeeze_factor=4,
    conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, upsample_features=64, upsampler="pixelshuffle",
)
LLFORMER_SMALL = dict(dim=4, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4), bias=False)
# name -> (model class, config, fixture file, key of the state dict in it)
MODELS = {
    "hat": (HAT, HAT_SMALL, "hat_small.pt", "params_ema"),
    "llformer": (LLFormer, LLFORMER_SMALL, "llformer_small.pt", "state_dict"),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request) -> tuple[str, dict]:
    return request.param, torch.load(FIXTURES / MODELS[request.param][2], map_location="cpu", weights_only=True)


def build(name: str, **overrides) -> torch.nn.Module:
    cls, config, _, _ = MODELS[name]
    return cls(**{**config, **overrides}).eval()


def max_diff(model: torch.nn.Module, fixture: dict) -> float:
    with torch.no_grad():
        return (model(fixture["input"]) - fixture["output"]).abs().max().item()


@pytest.mark.parametrize("kernel", ["math", "auto"])
def test_checkpoint_file_reproduces_official_output(case, kernel):
    name, fixture = case
    model = load_official_state_dict(build(name, kernel=kernel), FIXTURES / MODELS[name][2])
    assert fixture["output"].std() > 0.1  # the reference is not trivially flat
    diff = max_diff(model, fixture)
    print(f"{name} {kernel}: max |ours - official| = {diff:.3g}")
    assert diff <= 1e-5


def test_fixture_detects_an_unshifted_oca_table():
    """Copying the official OCA tables without the cyclic shift is far off the official output."""
    fixture = torch.load(FIXTURES / "hat_small.pt", weights_only=True)
    model = load_official_state_dict(build("hat"), fixture)
    with torch.no_grad():
        for g, group in enumerate(model.groups):
            table = fixture["params_ema"][f"layers.{g}.residual_group.overlap_attn.relative_position_bias_table"]
            group.overlap.attn.relative_bias.table.copy_(table)
    assert max_diff(model, fixture) > 1e-3  # 1.6e-2 measured


def test_fixture_detects_the_unused_llformer_skip_conv():
    """The official forward convolves level 1 with `skip_1_0`; its declared `skip_2_1` would be far off."""
    fixture = torch.load(FIXTURES / "llformer_small.pt", weights_only=True)
    model = load_official_state_dict(build("llformer"), fixture)
    with torch.no_grad():
        model.skip1.proj.weight.copy_(fixture["state_dict"]["skip_2_1.weight"])
    assert max_diff(model, fixture) > 0.1  # 0.99 measured


def corrupt(state: dict[str, Tensor], how: str, key: str) -> dict[str, Tensor]:
    state = dict(state)
    if how == "missing":
        del state[key]
    elif how == "unknown":
        state[key + "_extra"] = state[key].clone()
    else:
        state[key] = torch.zeros(*state[key].shape[:-1], state[key].shape[-1] + 1)
    return state


# A parameter of each model whose official name differs from ours.
CORRUPTED_KEY = {
    "hat": "layers.1.residual_group.blocks.0.conv_block.cab.3.attention.1.weight",
    "llformer": "decoder_level3_1.0.attn.col_att.fac",
}
OUR_KEY = {"hat": "groups.1.blocks.0.cab.excite.fc1.weight", "llformer": "decoder3.0.attn.col.temperature"}


@pytest.mark.parametrize("how", ["missing", "unknown", "shape"])
def test_corrupted_checkpoint_fails_naming_the_key(case, how):
    name, fixture = case
    state = corrupt(unwrap_state_dict(fixture), how, CORRUPTED_KEY[name])
    expected = {"missing": OUR_KEY[name], "unknown": CORRUPTED_KEY[name] + "_extra", "shape": CORRUPTED_KEY[name]}[how]
    with pytest.raises(ValueError, match=expected.replace(".", r"\.")):
        load_official_state_dict(build(name), state)


def test_checkpoint_of_another_configuration_is_refused(case):
    name, fixture = case
    other = {"hat": dict(depths=(2,), num_heads=(2,)), "llformer": dict(num_refinement_blocks=2)}[name]
    with pytest.raises(ValueError, match="another configuration"):
        load_official_state_dict(build(name, **other), fixture)


def test_hat_without_the_official_upsampler_is_refused():
    fixture = torch.load(FIXTURES / "hat_small.pt", weights_only=True)
    with pytest.raises(ValueError, match="pixelshuffle"):
        load_official_state_dict(build("hat", upsampler="pixelshuffledirect"), fixture)


@pytest.mark.parametrize("window, ratio", [(4, 0.5), (8, 0.5), (16, 0.5), (16, 0.25)])
def test_oca_shift_maps_the_official_index_onto_ours(window, ratio):
    """Hand-derived check of the shift against the official index rule (`calculate_rpi_oca`).

    Official: `(dy + M - Mo + 1) * span + (dx + M - Mo + 1)` for the key - query offset `(dy, dx)`,
    wrapped into the table by negative indexing. After the roll, our table at our index must hold
    the official table's entry at the official index, for every (query, key) pair.
    """
    attn = OverlappingWindowAttention(8, 2, window_size=window, overlap_ratio=ratio)
    m, mo = window, attn.overlap_size
    span = m + mo - 1
    qy, qx = torch.arange(m * m) // m, torch.arange(m * m) % m
    ky, kx = torch.arange(mo * mo) // mo, torch.arange(mo * mo) % mo
    dy, dx = ky[None] - qy[:, None], kx[None] - qx[:, None]
    official_index = ((dy + m - mo + 1) * span + (dx + m - mo + 1)) % (span * span)
    official = torch.randn(span * span, 2)
    ours = torch.roll(official, official_oca_shift(attn), dims=0)
    torch.testing.assert_close(ours[attn.relative_bias.index], official[official_index], rtol=0, atol=0)


RELEASED = {
    # HAT_SRx4_ImageNet-pretrain.pth (options/test/HAT_SRx4_ImageNet-pretrain.yml); our defaults are HAT-S.
    "hat": (HAT, dict(embed_dim=180, compress_ratio=3, squeeze_factor=30), "hat_srx4_keys.json.gz", 2),
    # The official train.py / test.py configuration, our defaults.
    "llformer": (LLFormer, {}, "llformer_keys.json.gz", 2),
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_configuration_maps_every_official_tensor_once(name):
    """Each official tensor (of the released names and shapes), filled with its own index, lands in exactly one of ours."""
    cls, config, keys_file, dropped = RELEASED[name]
    shapes = json.loads(gzip.decompress((FIXTURES / keys_file).read_bytes()))
    official = {key: torch.full(shape, float(i)) for i, (key, shape) in enumerate(shapes.items())}
    model = load_official_state_dict(cls(**config), official)
    ids = {}
    for our_key, value in model.state_dict().items():
        assert (value == value.flatten()[0]).all(), our_key
        ids[our_key] = int(value.flatten()[0])
    assert sorted(ids.values()) == sorted(set(ids.values()))
    assert len(ids) == len(official) - dropped
    index = {key: i for i, key in enumerate(shapes)}
    spot_checks = {
        "hat": {
            "embed_norm.weight": "patch_embed.norm.weight",
            "groups.5.blocks.5.cab.excite.fc2.weight": "layers.5.residual_group.blocks.5.conv_block.cab.3.attention.3.weight",
            "groups.5.overlap.attn.relative_bias.table": "layers.5.residual_group.overlap_attn.relative_position_bias_table",
            "upsample.2.weight": "upsample.2.weight",
        },
        "llformer": {
            "skip1.proj.weight": "skip_1_0.weight",
            "level4.15.attn.col.temperature": "decoder_level4.15.attn.col_att.fac",
            "refinement.2.1.norm2.bias": "refinement_3.1.norm2.body.bias",
            "encoder_fusion.reduce.weight": "conv_fuss.weight",
        },
    }[name]
    for ours, theirs in spot_checks.items():
        assert ids[ours] == index[theirs], (ours, theirs)
