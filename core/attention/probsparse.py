"""ProbSparse self-attention (Zhou et al., "Informer: Beyond Efficient Transformer for Long Sequence
Time-Series Forecasting", AAAI 2021, Section "Efficient Self-attention Mechanism").

Only the `u = factor * ceil(ln L_q)` "active" queries attend; the rest ("lazy" queries, whose
attention is close to uniform) output the uniform average of the values. Queries are ranked by the
sparsity measurement `M(q, K) = max_j(q k_j^T) - (1 / L_k) * sum_j(q k_j^T)`, estimated on
`factor * ceil(ln L_k)` randomly sampled keys so the whole layer costs O(L log L). The active
queries attend through `core.attention.attention`, so the softmax kernel is selectable.

With `causal=True` (Informer's decoder self-attention) query i only sees keys j <= i, and a lazy
query outputs the mean of the values up to its position (the causal form of the uniform average).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.attention.functional import Kernel, attention
from core.attention.multihead import MultiHeadProjection


def probsparse_attention(
    q: Tensor, k: Tensor, v: Tensor, *, factor: int = 5, causal: bool = False, scale: float | None = None,
    dropout_p: float = 0.0, kernel: Kernel = "auto", generator: torch.Generator | None = None,
) -> Tensor:
    """ProbSparse attention of `q (batch, heads, q_len, d)` over `k (batch, heads, k_len, d)`, `v (..., k_len, dv)`.

    Args:
        factor: the sampling factor `c` of the paper: `c * ceil(ln L_k)` sampled keys per query for
            the measurement and `c * ceil(ln L_q)` active queries (both capped at the lengths).
        causal: query i sees keys j <= i (needs q_len == k_len).
        scale: logit scale of the active queries, default `d ** -0.5`.
        dropout_p: dropout on the attention weights of the active queries.
        kernel: softmax-attention kernel for the active queries (see `core.attention.attention`).
        generator: random source of the key sampling (default: torch's global generator).

    Returns:
        `(batch, heads, q_len, dv)`. When every query is active the result equals full attention.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"probsparse_attention expects (batch, heads, seq, head_dim) tensors; got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    batch, heads, q_len, _ = q.shape
    k_len = k.shape[2]
    if causal and q_len != k_len:
        raise ValueError(f"causal ProbSparse attention needs q_len == k_len; got {q_len} and {k_len}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1; got {factor}")
    n_sample = min(k_len, factor * math.ceil(math.log(k_len)) if k_len > 1 else 1)
    n_top = min(q_len, factor * math.ceil(math.log(q_len)) if q_len > 1 else 1)

    # sparsity measurement on sampled keys (the same samples for every batch element and head)
    sample = torch.randint(k_len, (q_len, n_sample), device=q.device, generator=generator)
    if k_len <= n_sample * q.shape[-1]:  # same numbers, less memory than gathering sampled keys
        scores = torch.matmul(q, k.transpose(-2, -1)).gather(-1, sample.expand(batch, heads, -1, -1))
    else:
        scores = torch.einsum("bhqd,bhqsd->bhqs", q, k[:, :, sample, :])
    if causal:  # a sampled key in the future of its query does not count
        visible = sample <= torch.arange(q_len, device=q.device)[:, None]
        top_score = scores.masked_fill(~visible, float("-inf")).amax(-1)
        top_score = torch.where(visible.any(-1), top_score, torch.zeros_like(top_score))
        measure = top_score - (scores * visible).sum(-1) / k_len
    else:
        measure = scores.amax(-1) - scores.sum(-1) / k_len
    active = measure.topk(n_top, dim=-1, sorted=False).indices  # (batch, heads, n_top)

    # lazy queries: uniform average of the (visible) values
    if causal:
        counts = torch.arange(1, k_len + 1, device=v.device, dtype=v.dtype)[:, None]
        out = v.cumsum(dim=-2) / counts
    else:
        out = v.mean(dim=-2, keepdim=True).expand(batch, heads, q_len, v.shape[-1])

    q_active = q.gather(2, active[..., None].expand(-1, -1, -1, q.shape[-1]))
    mask = None
    if causal:
        mask = torch.arange(k_len, device=q.device) <= active[..., None]  # (batch, heads, n_top, k_len)
    attended = attention(q_active, k, v, mask=mask, scale=scale, dropout_p=dropout_p, kernel=kernel)
    return out.scatter(2, active[..., None].expand(-1, -1, -1, v.shape[-1]), attended)


class ProbSparseAttention(MultiHeadProjection):
    """Multi-head ProbSparse attention (Informer, Zhou et al. AAAI 2021).

    The projections are `MultiHeadProjection`'s (`q_proj`, `k_proj`, `v_proj`, `out_proj`).

    Args:
        embed_dim: model width (the output has this width).
        num_heads: heads; `embed_dim` must divide by it.
        factor: sampling factor `c` (5 in the Informer paper, 3 in the DLinear paper's runs).
        dropout: dropout on the attention weights of the active queries during training.
        bias: biases in the projections.
        kernel: softmax-attention kernel for the active queries.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, *, factor: int = 5, dropout: float = 0.0, bias: bool = True,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__(embed_dim, num_heads, bias=bias)
        self.factor, self.dropout, self.kernel = factor, dropout, kernel

    def forward(
        self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, *, causal: bool = False
    ) -> Tensor:
        """`query: (batch, q_len, embed_dim)`, `key`/`value` (default `query`) -> `(batch, q_len, embed_dim)`."""
        q, k, v = self.project(query, key, value)
        out = probsparse_attention(
            q, k, v, factor=self.factor, causal=causal, dropout_p=self.dropout if self.training else 0.0,
            kernel=self.kernel,
        )
        return self.merge(out)
