"""The `math` kernel: explicit softmax(q k^T * scale + bias) v, the reference for every other kernel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def attention_scores(
    q: Tensor, k: Tensor, *, mask: Tensor | None, bias: Tensor | None, causal: bool, scale: float
) -> Tensor:
    """Additive logits `(batch, heads, q_len, k_len)` with masked positions at -inf."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    if causal:
        scores = scores.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    return scores


def causal_mask(q_len: int, k_len: int, device: torch.device | None = None) -> Tensor:
    """Bool (q_len, k_len), True = attend; the last query aligns with the last key."""
    offset = k_len - q_len
    rows = torch.arange(q_len, device=device)[:, None]
    cols = torch.arange(k_len, device=device)[None, :]
    return cols <= rows + offset


def safe_softmax(scores: Tensor) -> Tensor:
    """Softmax over the last axis where a row that is entirely -inf gives zeros, not NaN."""
    row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exp = torch.exp(scores - row_max)
    denom = exp.sum(dim=-1, keepdim=True)
    return exp / torch.where(denom > 0, denom, torch.ones_like(denom))


def attention_probs(
    q: Tensor, k: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None,
) -> Tensor:
    """Attention weights `(batch, heads, q_len, k_len)`; rows with no attendable key are zero."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return safe_softmax(attention_scores(q, k, mask=mask, bias=bias, causal=causal, scale=scale).float()).to(q.dtype)


def math_attention(
    q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None, dropout_p: float = 0.0,
) -> Tensor:
    """Reference attention: `q (B, H, Lq, D)`, `k (B, H, Lk, D)`, `v (B, H, Lk, Dv)` -> `(B, H, Lq, Dv)`."""
    probs = attention_probs(q, k, mask=mask, bias=bias, causal=causal, scale=scale)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p)
    return torch.matmul(probs, v)
