"""Transformer blocks: shapes, norm placement, FFN formulas, positional tables."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.blocks import (
    GatedFFN,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    sinusoidal_table,
)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["gelu", "relu", "geglu", "swiglu"])
def test_encoder_layer_shapes_and_grads(norm_first, activation):
    layer = TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation=activation, norm_first=norm_first)
    x = rand(2, 5, 16).requires_grad_()
    out = layer(x, causal=True)
    assert out.shape == x.shape
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_post_norm_output_is_normalized_and_pre_norm_is_residual():
    post = TransformerEncoderLayer(16, 4, 32, dropout=0.0, norm_first=False).eval()
    out = post(rand(2, 5, 16))
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    pre = TransformerEncoderLayer(16, 4, 32, dropout=0.0, norm_first=True).eval()
    for p in list(pre.self_attn.out_proj.parameters()) + list(pre.ffn.fc2.parameters()):
        torch.nn.init.zeros_(p)
    x = rand(2, 5, 16)
    torch.testing.assert_close(pre(x), x)  # zero branches leave the residual stream untouched


def test_causal_encoder_does_not_look_ahead():
    enc = TransformerEncoder(2, 16, 4, 32, dropout=0.0, norm_first=True).eval()
    x = rand(1, 6, 16)
    y = x.clone()
    y[:, 4:] = rand(1, 2, 16, seed=3)
    torch.testing.assert_close(enc(x, causal=True)[:, :4], enc(y, causal=True)[:, :4])


def test_decoder_layer_shapes_and_memory_padding():
    dec = TransformerDecoderLayer(16, 4, 32, dropout=0.0, memory_dim=12).eval()
    x, memory = rand(2, 4, 16), rand(2, 7, 12, seed=1)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[:, 5:] = True
    assert dec(x, memory).shape == (2, 4, 16)
    torch.testing.assert_close(dec(x, memory, memory_key_padding_mask=pad), dec(x, memory[:, :5]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("gate", "act"), [("geglu", F.gelu), ("swiglu", F.silu)])
def test_gated_ffn_formula(gate, act):
    ffn = GatedFFN(8, 12, gate=gate).eval()
    x = rand(3, 8)
    w, v = ffn.fc_in.weight[:12], ffn.fc_in.weight[12:]
    bw, bv = ffn.fc_in.bias[:12], ffn.fc_in.bias[12:]
    ref = ffn.fc_out(act(x @ w.T + bw) * (x @ v.T + bv))
    torch.testing.assert_close(ffn(x), ref)


def test_sinusoidal_table_values():
    table = sinusoidal_table(50, 8)
    pos, i = 7, 1  # channel pair i uses frequency 10000^(-2i/d)
    freq = 10000 ** (-2 * i / 8)
    assert table[pos, 2 * i].item() == pytest.approx(math.sin(pos * freq), abs=1e-6)
    assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos * freq), abs=1e-6)
    assert sinusoidal_table(4, 7).shape == (4, 7)  # odd widths work


def test_positional_encodings_reject_long_inputs():
    with pytest.raises(ValueError, match="exceeds max_len"):
        SinusoidalPositionalEncoding(8, max_len=4)(rand(1, 5, 8))
    with pytest.raises(ValueError, match="exceeds max_len"):
        LearnedPositionalEncoding(8, max_len=4)(rand(1, 5, 8))
