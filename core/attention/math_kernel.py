"""The `math` kernel: explicit softmax(q k^T * scale + bias) v, the reference for every other kernel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SLICE_SCORE_BYTES = 4 * 2**20
SLICE_MIN_ROWS = 512


def attention_scores(
    q: Tensor, k: Tensor, *, mask: Tensor | None, bias: Tensor | None, causal: bool, scale: float
) -> Tensor:
    """Additive logits `(batch, heads, q_len, k_len)` with masked positions at -inf."""
    # The scale goes on whichever is smaller, q or the scores; bias and masks are applied in place
    # on the fresh score tensor (matmul's backward needs its inputs, not its output).
    if q.shape[-1] <= k.shape[-2]:
        scores = torch.matmul(q * scale, k.transpose(-2, -1))
    else:
        scores = torch.matmul(q, k.transpose(-2, -1)).mul_(scale)
    if bias is not None:
        scores = scores.add_(bias) if _broadcasts_into(bias, scores) else scores + bias
    if mask is not None:
        if mask.dtype == torch.bool and scores.requires_grad:
            # As an additive 0/-inf mask (built on the mask's own, smaller shape): an addition's
            # backward passes the gradient through, a masked_fill's costs one more pass over it.
            additive = torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device).masked_fill_(~mask, float("-inf"))
            scores = scores.add_(additive) if _broadcasts_into(additive, scores) else scores + additive
        elif mask.dtype == torch.bool:
            fill = scores.masked_fill_ if _broadcasts_into(mask, scores) else scores.masked_fill
            scores = fill(~mask, float("-inf"))
        else:
            scores = scores.add_(mask) if _broadcasts_into(mask, scores) else scores + mask
    if causal:
        scores = scores.masked_fill_(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    return scores


def _broadcasts_into(t: Tensor, scores: Tensor) -> bool:
    """Whether an in-place op of `t` on `scores` keeps the scores' shape and dtype."""
    shape_fits = t.dim() <= scores.dim() and all(
        a in (1, b) for a, b in zip(reversed(t.shape), reversed(scores.shape), strict=False)
    )
    return shape_fits and (t.dtype == torch.bool or torch.promote_types(t.dtype, scores.dtype) == scores.dtype)


def causal_mask(q_len: int, k_len: int, device: torch.device | None = None) -> Tensor:
    """Bool (q_len, k_len), True = attend; the last query aligns with the last key."""
    offset = k_len - q_len
    rows = torch.arange(q_len, device=device)[:, None]
    cols = torch.arange(k_len, device=device)[None, :]
    return cols <= rows + offset


def safe_softmax(scores: Tensor, maybe_empty: bool = True) -> Tensor:
    """Softmax over the last axis where a row that is entirely -inf gives zeros, not NaN.

    torch's fused softmax does the work (one pass; the hand-written max/exp/sum/div version cost
    1.4x-1.7x a plain softmax). Only when a row may be fully masked (`maybe_empty`) is one row-max
    pass added to find such rows (`attention_probs` finds them from a bool mask instead, which is
    far smaller than the scores).
    """
    if not maybe_empty:
        return torch.softmax(scores, dim=-1)
    return softmax_without_rows(scores, scores.amax(dim=-1, keepdim=True) == float("-inf"))


def softmax_without_rows(scores: Tensor, empty: Tensor) -> Tensor:
    """Softmax over the last axis, with the rows where `empty` (broadcastable, `(..., 1)`) is True set to 0.

    The empty rows are filled with 0 before the softmax, so neither the value nor the gradient is NaN.
    """
    if not bool(empty.any()):
        return torch.softmax(scores, dim=-1)
    return torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)


def attention_probs(
    q: Tensor, k: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None,
) -> Tensor:
    """Attention weights `(batch, heads, q_len, k_len)`; rows with no attendable key are zero.

    `bias` is finite (relative-position terms); -inf masking goes through `mask`. A row can only be
    empty through the mask or a causal pattern: a bool mask alone tells which rows are empty
    (`mask.any(-1)`, on the mask's own small shape); a float mask or a causal pattern combined
    with a mask is checked on the scores.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = attention_scores(q, k, mask=mask, bias=bias, causal=causal, scale=scale)
    half = scores.dtype in (torch.float16, torch.bfloat16)
    if half:
        scores = scores.float()
    if mask is not None and mask.dtype == torch.bool and not causal:
        probs = softmax_without_rows(scores, ~mask.any(dim=-1, keepdim=True))
    else:
        probs = safe_softmax(scores, maybe_empty=mask is not None or (causal and q.shape[-2] > k.shape[-2]))
    return probs.to(q.dtype) if half else probs


def math_attention(
    q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None, dropout_p: float = 0.0,
) -> Tensor:
    """Reference attention: `q (B, H, Lq, D)`, `k (B, H, Lk, D)`, `v (B, H, Lk, Dv)` -> `(B, H, Lq, Dv)`.

    Without gradients, many small maps (`batch x heads >= SLICE_MIN_ROWS`) whose scores exceed
    `SLICE_SCORE_BYTES` run in batch slices that each stay under it: the same computation per slice,
    on a score buffer that stays in cache (PatchTST inference, 3,584 maps of 42 x 42, 25 MB of
    scores: 6.0 ms sliced against 8.6 ms whole; a few large maps gain nothing from it).
    """
    per_item = q.shape[1] * q.shape[2] * k.shape[2] * q.element_size()
    step = max(1, SLICE_SCORE_BYTES // per_item)
    if q.shape[0] > step and q.shape[0] * q.shape[1] >= SLICE_MIN_ROWS \
            and not needs_grad(q, k, v, mask, bias):
        return torch.cat([
            _attend(q[i:i + step], k[i:i + step], v[i:i + step], _batch_rows(mask, i, step),
                    _batch_rows(bias, i, step), causal, scale, dropout_p)
            for i in range(0, q.shape[0], step)
        ])
    return _attend(q, k, v, mask, bias, causal, scale, dropout_p)


def _attend(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, bias: Tensor | None,
    causal: bool, scale: float | None, dropout_p: float,
) -> Tensor:
    probs = attention_probs(q, k, mask=mask, bias=bias, causal=causal, scale=scale)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p)
    return torch.matmul(probs, v)


def needs_grad(*tensors: Tensor | None) -> bool:
    """Whether autograd will record this call: grad mode is on and one of `tensors` requires grad."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _batch_rows(t: Tensor | None, start: int, step: int) -> Tensor | None:
    """Batch rows `start:start + step` of a broadcastable mask or bias (one shared row stays)."""
    if t is None or t.dim() < 4 or t.shape[0] == 1:
        return t
    return t[start:start + step]
