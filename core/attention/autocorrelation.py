"""Auto-Correlation (Wu et al., "Autoformer: Decomposition Transformers with Auto-Correlation for
Long-Term Series Forecasting", NeurIPS 2021, Section 3.2).

Instead of point-wise dot products, Auto-Correlation finds period-based dependencies: the
autocorrelation `R(tau)` between queries and keys at every lag `tau` is computed for all lags at
once with the FFT (Wiener-Khinchin: `R = IFFT(FFT(q) * conj(FFT(k)))`, O(L log L)); the
`k = floor(factor * ln L)` lags with the largest correlation are kept, their correlations are
softmax-normalized into weights, and the output is the weighted sum of the values rolled by each
lag ("time delay aggregation"): `out[t] = sum_i w_i * v[(t + tau_i) mod L]`.

Lags are selected per sample from the correlation averaged over heads and channels (the paper's
and the reference inference path; the reference training path shares one set of lags across the
batch).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.attention.multihead import MultiHeadProjection


def autocorrelation(q: Tensor, k: Tensor, v: Tensor, *, factor: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """Auto-Correlation of `q (batch, heads, q_len, d)` with `k`, `v (batch, heads, k_len, d)`.

    Keys and values longer than the queries are truncated to `q_len`, shorter ones zero-padded at
    the end (as in the paper's encoder-decoder cross-correlation).

    Args:
        factor: the hyper-parameter `c` of the paper: `floor(c * ln q_len)` lags are aggregated
            (at least 1, at most `q_len`).

    Returns:
        `(out, lags, weights)`: `out (batch, heads, q_len, d)`, the selected `lags (batch, top_k)`
        and their softmax `weights (batch, top_k)`.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"autocorrelation expects (batch, heads, seq, head_dim) tensors; got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[:3] != v.shape[:3]:
        raise ValueError(f"autocorrelation: q/k widths or k/v lengths differ: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    batch, heads, length, _ = q.shape
    k, v = _fit_length(k, length), _fit_length(v, length)

    # R(tau) for every lag, averaged over heads and channels: (batch, length)
    spectrum = torch.fft.rfft(q.float(), dim=2) * torch.conj(torch.fft.rfft(k.float(), dim=2))
    correlation = torch.fft.irfft(spectrum, n=length, dim=2).mean(dim=(1, 3))

    top_k = max(1, min(length, int(factor * math.log(length)))) if length > 1 else 1
    scores, lags = torch.topk(correlation, top_k, dim=-1)
    weights = torch.softmax(scores, dim=-1).to(v.dtype)

    # time delay aggregation: out[t] = sum_i w_i * v[(t + lag_i) mod length]
    steps = torch.arange(length, device=v.device)
    out = torch.zeros_like(v)
    for i in range(top_k):
        index = (steps[None, :] + lags[:, i : i + 1]) % length  # (batch, length)
        rolled = v.gather(2, index[:, None, :, None].expand(-1, heads, -1, v.shape[-1]))
        out = out + rolled * weights[:, i, None, None, None]
    return out, lags, weights


def _fit_length(x: Tensor, length: int) -> Tensor:
    """Truncate or zero-pad `x (batch, heads, seq, d)` along seq to `length`."""
    if x.shape[2] >= length:
        return x[:, :, :length]
    pad = x.new_zeros(x.shape[0], x.shape[1], length - x.shape[2], x.shape[3])
    return torch.cat([x, pad], dim=2)


class AutoCorrelationAttention(MultiHeadProjection):
    """Multi-head Auto-Correlation, a drop-in for self/cross attention.

    The projections are `MultiHeadProjection`'s (`q_proj`, `k_proj`, `v_proj`, `out_proj`).

    Args:
        embed_dim: model width (the output has this width).
        num_heads: heads; `embed_dim` must divide by it.
        factor: the lag-count factor `c` (1 in the Autoformer paper's default, 3 in the DLinear
            paper's runs).
        bias: biases in the projections.
    """

    def __init__(self, embed_dim: int, num_heads: int, *, factor: int = 1, bias: bool = True) -> None:
        super().__init__(embed_dim, num_heads, bias=bias)
        self.factor = factor

    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None) -> Tensor:
        """`query: (batch, q_len, embed_dim)`, `key`/`value` (default `query`) -> `(batch, q_len, embed_dim)`."""
        q, k, v = self.project(query, key, value)
        out, _, _ = autocorrelation(q, k, v, factor=self.factor)
        return self.merge(out)
