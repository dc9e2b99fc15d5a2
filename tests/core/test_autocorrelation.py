"""Auto-Correlation (Autoformer) against a direct, loop-based reference."""

from __future__ import annotations

import math

import pytest
import torch

from core.attention import AutoCorrelationAttention
from core.attention.autocorrelation import autocorrelation


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, factor: int) -> tuple[torch.Tensor, ...]:
    """R(tau) = mean over heads, channels of sum_t q[t] k[t - tau] (circular), then roll-and-sum."""
    batch, heads, length, dim = q.shape
    corr = torch.zeros(batch, length, dtype=q.dtype)
    for tau in range(length):
        shifted = torch.roll(k, shifts=tau, dims=2)  # shifted[t] = k[t - tau]
        corr[:, tau] = (q * shifted).sum(dim=2).mean(dim=(1, 2))
    top_k = int(factor * math.log(length))
    scores, lags = corr.topk(top_k, dim=-1)
    weights = torch.softmax(scores, dim=-1)
    out = torch.zeros_like(v)
    for b in range(batch):
        for i in range(top_k):
            out[b] += weights[b, i] * torch.roll(v[b], shifts=-int(lags[b, i]), dims=1)  # v[t + lag]
    return out, lags, weights


def test_matches_direct_circular_correlation_and_roll():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 24, 4, dtype=torch.float64) for _ in range(3))
    out, lags, weights = autocorrelation(q, k, v, factor=2)
    ref_out, ref_lags, ref_weights = reference(q, k, v, factor=2)
    assert lags.shape == (2, int(2 * math.log(24)))
    torch.testing.assert_close(lags, ref_lags)
    torch.testing.assert_close(weights, ref_weights.to(weights.dtype), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-5)


def test_finds_the_period_of_a_periodic_signal():
    length, period = 48, 12
    t = torch.arange(length, dtype=torch.float32)
    x = torch.sin(2 * torch.pi * t / period)[None, None, :, None].expand(1, 1, length, 2)
    _, lags, _ = autocorrelation(x, x, x, factor=1)
    assert {int(lag) % period for lag in lags[0]} == {0}  # every kept lag is a multiple of the period


def test_shorter_keys_are_padded_longer_truncated_and_gradients_flow():
    torch.manual_seed(0)
    q = torch.randn(2, 2, 16, 4, requires_grad=True)
    k_short, v_short = torch.randn(2, 2, 10, 4), torch.randn(2, 2, 10, 4)
    out, _, _ = autocorrelation(q, k_short, v_short)
    assert out.shape == (2, 2, 16, 4)
    padded = torch.cat([v_short, torch.zeros(2, 2, 6, 4)], dim=2)
    ref, _, _ = reference(q.detach().double(), torch.cat([k_short, torch.zeros(2, 2, 6, 4)], 2).double(), padded.double(), 1)
    torch.testing.assert_close(out.detach().double(), ref, atol=1e-5, rtol=1e-4)
    k_long, v_long = torch.randn(2, 2, 20, 4), torch.randn(2, 2, 20, 4)
    out_long, _, _ = autocorrelation(q, k_long, v_long)
    out_cut, _, _ = autocorrelation(q, k_long[:, :, :16], v_long[:, :, :16])
    torch.testing.assert_close(out_long, out_cut)
    out.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


def test_module_shapes_and_errors():
    layer = AutoCorrelationAttention(16, 4, factor=1)
    x, memory = torch.randn(2, 12, 16), torch.randn(2, 20, 16)
    assert layer(x).shape == (2, 12, 16)
    assert layer(x, memory).shape == (2, 12, 16)
    with pytest.raises(ValueError, match="not divisible"):
        AutoCorrelationAttention(10, 4)
    with pytest.raises(ValueError, match=r"\(batch, seq, embed_dim\)"):
        layer(torch.randn(12, 16))
    with pytest.raises(ValueError, match="head_dim"):
        autocorrelation(torch.randn(2, 12, 4), torch.randn(2, 12, 4), torch.randn(2, 12, 4))


def test_module_projects_heads_like_multihead_attention_and_merges_back():
    torch.manual_seed(0)
    layer = AutoCorrelationAttention(16, 4, factor=2).eval()
    assert sorted(layer.state_dict()) == sorted(
        f"{proj}.{p}" for proj in ("q_proj", "k_proj", "v_proj", "out_proj") for p in ("weight", "bias")
    )
    x, memory = torch.randn(2, 12, 16), torch.randn(2, 20, 16)

    def heads(t):  # head h owns channels 4h .. 4h + 3
        return torch.stack([t[..., 4 * h : 4 * h + 4] for h in range(4)], dim=1)

    q, k, v = heads(layer.q_proj(x)), heads(layer.k_proj(memory)), heads(layer.v_proj(memory))
    out, _, _ = reference(q.double(), k[:, :, :12].double(), v[:, :, :12].double(), factor=2)
    ref = layer.out_proj(torch.cat(out.float().unbind(1), dim=-1))
    torch.testing.assert_close(layer(x, memory), ref, atol=1e-5, rtol=1e-4)
