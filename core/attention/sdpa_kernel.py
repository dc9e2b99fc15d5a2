"""The `sdpa` kernel: torch's fused scaled_dot_product_attention (flash / memory-efficient / math backends)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from core.attention.math_kernel import causal_mask


def sdpa_attention(
    q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None, dropout_p: float = 0.0,
) -> Tensor:
    """Attention through `F.scaled_dot_product_attention` with our mask conventions.

    torch aligns `is_causal` top-left; ours aligns the last query with the last key, so a causal
    call with q_len != k_len gets an explicit lower-right mask. Rows with no attendable key are
    set to zero, as in the `math` reference (torch may return NaN there). Inputs whose last axis is
    not contiguous (a column pass's transposed view, a bias gathered from a table and permuted)
    are copied first: torch's fused CPU kernel refuses them and silently takes its math backend,
    10x slower on LLFormer's column pass, where the copy costs a fraction of that.
    """
    q, k, v = (_last_dim_contiguous(t) for t in (q, k, v))
    mask, bias = _last_dim_contiguous(mask), _last_dim_contiguous(bias)
    q_len, k_len = q.shape[-2], k.shape[-2]
    attn_mask = mask
    if bias is not None:
        attn_mask = bias if attn_mask is None else _combine(attn_mask, bias)
    is_causal = causal and attn_mask is None and q_len == k_len
    if causal and not is_causal:
        attn_mask = _combine(causal_mask(q_len, k_len, q.device), attn_mask)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=_as_dtype(attn_mask, q.dtype), dropout_p=dropout_p, is_causal=is_causal, scale=scale
    )
    empty = _empty_rows(mask, causal, q_len, k_len, q.device)
    return out if empty is None else out.masked_fill(empty, 0.0)


def _last_dim_contiguous(t: Tensor | None) -> Tensor | None:
    if t is None or t.shape[-1] == 1 or t.stride(-1) == 1:
        return t
    return t.contiguous()


def _combine(a: Tensor, b: Tensor | None) -> Tensor:
    """Merge two masks/biases into one: bool & bool stays bool, otherwise additive float."""
    if b is None:
        return a
    if a.dtype == torch.bool and b.dtype == torch.bool:
        return a & b
    return _to_additive(a, b.dtype if a.dtype == torch.bool else a.dtype) + _to_additive(b, a.dtype if b.dtype == torch.bool else b.dtype)


def _to_additive(m: Tensor, dtype: torch.dtype) -> Tensor:
    if m.dtype != torch.bool:
        return m
    return torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(~m, float("-inf"))


def _as_dtype(m: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    if m is None or m.dtype == torch.bool:
        return m
    return m.to(dtype)


def _empty_rows(mask: Tensor | None, causal: bool, q_len: int, k_len: int, device: torch.device) -> Tensor | None:
    """Bool `(..., q_len, 1)` marking query rows that cannot attend any key, or None if there are none."""
    keep = None
    if mask is not None:
        keep = mask if mask.dtype == torch.bool else torch.isfinite(mask) | (mask > 0)
    if causal and q_len > k_len:
        c = causal_mask(q_len, k_len, device)
        keep = c if keep is None else keep & c
    if keep is None:
        return None
    empty = ~keep.any(dim=-1, keepdim=True)
    return empty if bool(empty.any()) else None
