"""Official PatchTST checkpoints load into our PatchTST and reproduce the official code's output.

Each fixture holds a state dict of the official `PatchTST_supervised` `Model` (yuqinie98/PatchTST,
every parameter and BatchNorm statistic perturbed), keyed as its `exp_main.py` saves it, with an
input and the official model's output on it: `patchtst_small.pt` built with `res_attention=False`,
`patchtst_small_res.pt` with the official default `res_attention=True` (same weights and input);
see tests/fixtures/official/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.official import load_official_state_dict
from timeseries.models import PatchTST

FIXTURE = Path(__file__).parents[1] / "fixtures" / "official" / "patchtst_small.pt"
RES_FIXTURE = FIXTURE.with_name("patchtst_small_res.pt")
CONFIG = dict(
    seq_len=48, pred_len=12, channels=3, patch_len=8, stride=4, d_model=16, num_heads=4,
    num_layers=2, ffn_dim=32, dropout=0.2, revin_affine=True,
)


@pytest.fixture(scope="module")
def fixture() -> dict:
    return torch.load(FIXTURE, map_location="cpu", weights_only=True)


def build(**overrides) -> PatchTST:
    return PatchTST(**{**CONFIG, **overrides}).eval()


def max_diff(model: PatchTST, fixture: dict) -> float:
    with torch.no_grad():
        return (model(fixture["input"]) - fixture["output"]).abs().max().item()


@pytest.mark.parametrize("kernel", ["math", "auto"])
def test_checkpoint_file_reproduces_official_output(fixture, tmp_path, kernel):
    path = tmp_path / "checkpoint.pth"
    torch.save(fixture["state_dict"], path)  # what EarlyStopping.save_checkpoint writes
    model = load_official_state_dict(build(kernel=kernel), path)
    assert fixture["output"].abs().max() > 1.0  # the reference is not trivially small
    assert max_diff(model, fixture) <= 1e-5


def test_dataparallel_prefix_is_removed(fixture):
    state = {f"module.{k}": v for k, v in fixture["state_dict"].items()}
    assert max_diff(load_official_state_dict(build(), state), fixture) <= 1e-5


def test_fixture_detects_an_unpermuted_head(fixture):
    """Loading the head without the (d_model, patch_num) -> (patch_num, d_model) permutation is far off."""
    model = load_official_state_dict(build(), fixture["state_dict"])
    model.head[2].weight.data.copy_(fixture["state_dict"]["model.head.linear.weight"])
    assert max_diff(model, fixture) > 1e-2


def test_wrong_shape_names_the_key(fixture):
    state = dict(fixture["state_dict"])
    state["model.head.linear.weight"] = state["model.head.linear.weight"][:, :-1]
    with pytest.raises(ValueError, match=r"model\.head\.linear\.weight: shape \(12, 191\)"):
        load_official_state_dict(build(), state)


def test_missing_key_is_named(fixture):
    state = {k: v for k, v in fixture["state_dict"].items() if k != "model.backbone.W_pos"}
    with pytest.raises(ValueError, match=r"lacks model\.backbone\.W_pos \(for our position\.table\)"):
        load_official_state_dict(build(), state)


def test_unknown_key_is_named(fixture):
    state = {**fixture["state_dict"], "model.backbone.extra.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match=r"without a counterpart.*model\.backbone\.extra\.weight"):
        load_official_state_dict(build(), state)


def test_deeper_checkpoint_names_the_extra_layer(fixture):
    with pytest.raises(ValueError, match=r"model\.backbone\.encoder\.layers\.1\.self_attn\.W_Q\.weight"):
        load_official_state_dict(build(num_layers=1), fixture["state_dict"])


def test_revin_affine_mismatch_says_which_setting(fixture):
    with pytest.raises(ValueError, match=r"revin_layer\.affine_weight.*revin_affine=True"):
        load_official_state_dict(build(revin_affine=False), fixture["state_dict"])
    state = {k: v for k, v in fixture["state_dict"].items() if "revin_layer" not in k}
    with pytest.raises(ValueError, match=r"lacks model\.revin_layer\.affine_weight.*revin_affine=False"):
        load_official_state_dict(build(), state)


def test_decomposition_checkpoint_is_refused(fixture):
    state = {}
    for k, v in fixture["state_dict"].items():
        state[k.replace("model.", "model_trend.", 1)] = v
        state[k.replace("model.", "model_res.", 1)] = v
    with pytest.raises(ValueError, match=r"decomposition=1"):
        load_official_state_dict(build(), state)


def test_individual_head_is_refused(fixture):
    state = {k: v for k, v in fixture["state_dict"].items() if not k.startswith("model.head.")}
    for i in range(3):
        state[f"model.head.linears.{i}.weight"] = torch.zeros(12, 192)
        state[f"model.head.linears.{i}.bias"] = torch.zeros(12)
    with pytest.raises(ValueError, match=r"individual=1"):
        load_official_state_dict(build(), state)


def test_learned_attention_scale_is_refused(fixture):
    key = "model.backbone.encoder.layers.0.self_attn.sdp_attn.scale"
    assert fixture["state_dict"][key].item() == pytest.approx(0.5)  # head_dim 4
    state = {**fixture["state_dict"], key: torch.tensor(0.7)}
    with pytest.raises(ValueError, match=r"layers\.0\.self_attn\.sdp_attn\.scale = 0\.7.*lsa=True"):
        load_official_state_dict(build(), state)


@pytest.fixture(scope="module")
def res_fixture() -> dict:
    return torch.load(RES_FIXTURE, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("kernel", ["math", "auto"])
def test_residual_attention_checkpoint_reproduces_official_output(res_fixture, tmp_path, kernel):
    """The official default (`res_attention=True`) is reproduced with `residual_attention=True`."""
    path = tmp_path / "checkpoint.pth"
    torch.save(res_fixture["state_dict"], path)
    model = load_official_state_dict(build(kernel=kernel, residual_attention=True), path)
    assert max_diff(model, res_fixture) <= 1e-5


def test_three_layers_carry_the_running_sum_of_scores(res_fixture):
    """Only from the third layer on does it matter that each layer passes on its scores *with* the
    previous ones added (official `_ScaledDotProductAttention` returns `q k^T * scale + prev`)."""
    deep = res_fixture["deep"]
    model = load_official_state_dict(build(num_layers=3, residual_attention=True), deep["state_dict"])
    assert max_diff(model, {"input": res_fixture["input"], "output": deep["output"]}) <= 1e-5


def test_residual_attention_is_what_tells_the_fixtures_apart(fixture, res_fixture):
    """Control: the checkpoints are the same, so only residual attention separates the two outputs."""
    assert all(torch.equal(v, res_fixture["state_dict"][k]) for k, v in fixture["state_dict"].items())
    plain = load_official_state_dict(build(), res_fixture["state_dict"])
    assert max_diff(plain, res_fixture) > 1e-2
    residual = load_official_state_dict(build(residual_attention=True), fixture["state_dict"])
    assert max_diff(residual, fixture) > 1e-2


def test_residual_attention_single_layer_matches_multihead_attention():
    """With one layer there is nothing to carry: the explicit-scores path equals `MultiHeadAttention`'s."""
    torch.manual_seed(0)
    plain = build(num_layers=1, kernel="math")
    residual = build(num_layers=1, residual_attention=True)
    residual.load_state_dict(plain.state_dict())
    x = torch.randn(2, 48, 3)
    with torch.no_grad():
        assert (plain(x) - residual(x)).abs().max().item() <= 1e-5


def test_residual_attention_gradients_flow_through_the_carried_scores():
    """float64 gradcheck w.r.t. the input: a detached or misplaced score sum would fail it.

    RevIN is off because it detaches its statistics on purpose (the numerical gradient sees them).
    """
    torch.manual_seed(0)
    model = PatchTST(
        seq_len=12, pred_len=3, channels=1, patch_len=4, stride=4, d_model=8, num_heads=2,
        num_layers=2, ffn_dim=8, revin=False, residual_attention=True,
    ).double().eval()
    x = torch.randn(1, 12, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-5)


def test_residual_attention_trains():
    torch.manual_seed(0)
    model = build(residual_attention=True, attn_dropout=0.1).train()
    x = torch.randn(8, 48, 3)
    y = torch.randn(8, 12, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        if step == 0:
            for name, p in model.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_residual_attention_refuses_a_kernel_it_would_ignore():
    with pytest.raises(ValueError, match=r"residual_attention=True.*kernel='sdpa'"):
        PatchTST(residual_attention=True, kernel="sdpa")
