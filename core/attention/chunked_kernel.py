"""The `chunked` kernel: query- and key-blocked attention with an online softmax, in pure PyTorch.

Memory grows with seq * block rather than seq^2, so it is the CPU path for long sequences with
masks or biases (where torch's fused CPU kernel falls back to materializing scores). With
gradients enabled, each query block is checkpointed, so the backward pass recomputes block
scores instead of storing them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from core.attention.math_kernel import needs_grad

BLOCK_Q = 1024
BLOCK_K = 1024


def chunked_attention(
    q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None, dropout_p: float = 0.0,
    block_q: int = BLOCK_Q, block_k: int = BLOCK_K,
) -> Tensor:
    """Blocked attention; `mask`/`bias` are 4-D and broadcastable to `(B, H, Lq, Lk)`."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q_len = q.shape[-2]
    record = needs_grad(q, k, v, bias, mask)
    outs = []
    q = q * scale  # once here rather than on every score block
    for qs in range(0, q_len, block_q):
        qe = min(qs + block_q, q_len)
        args = (q[:, :, qs:qe], k, v, _rows(mask, qs, qe), _rows(bias, qs, qe))
        kwargs = dict(q_start=qs, q_total=q_len, causal=causal, dropout_p=dropout_p, block_k=block_k)
        if record:
            outs.append(checkpoint(_query_block, *args, use_reentrant=False, **kwargs))
        else:
            outs.append(_query_block(*args, **kwargs))
    return torch.cat(outs, dim=-2)


def _rows(t: Tensor | None, start: int, end: int) -> Tensor | None:
    return t if t is None or t.shape[-2] == 1 else t[..., start:end, :]


def _cols(t: Tensor | None, start: int, end: int) -> Tensor | None:
    return t if t is None or t.shape[-1] == 1 else t[..., start:end]


def _query_block(
    qb: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, bias: Tensor | None, *,
    q_start: int, q_total: int, causal: bool, dropout_p: float, block_k: int,
) -> Tensor:
    """Online-softmax attention of one (pre-scaled) query block over all key blocks."""
    k_len = k.shape[-2]
    offset = k_len - q_total  # causal: query i sees keys j <= i + offset
    bq = qb.shape[-2]
    stats_shape = (*qb.shape[:-1], 1)
    row_max = qb.new_full(stats_shape, float("-inf"), dtype=torch.float32)
    row_sum = qb.new_zeros(stats_shape, dtype=torch.float32)
    acc = qb.new_zeros((*qb.shape[:-1], v.shape[-1]), dtype=torch.float32)
    last_visible = q_start + bq - 1 + offset
    for ks in range(0, k_len, block_k):
        if causal and ks > last_visible:
            break
        ke = min(ks + block_k, k_len)
        s = torch.matmul(qb, k[:, :, ks:ke].transpose(-2, -1)).float()
        b = _cols(bias, ks, ke)
        if b is not None:
            s = s + b
        m = _cols(mask, ks, ke)
        if m is not None:
            s = s.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else s + m
        if causal and ke - 1 > q_start + offset:
            rows = torch.arange(q_start, q_start + bq, device=qb.device)[:, None]
            cols = torch.arange(ks, ke, device=qb.device)[None, :]
            s = s.masked_fill(cols > rows + offset, float("-inf"))
        new_max = torch.maximum(row_max, s.amax(dim=-1, keepdim=True))
        safe_max = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
        p = torch.exp(s - safe_max)
        correction = torch.exp(row_max - safe_max)
        row_sum = row_sum * correction + p.sum(dim=-1, keepdim=True)
        if dropout_p > 0.0:
            p = F.dropout(p, p=dropout_p)
        acc = acc * correction + torch.matmul(p.to(v.dtype), v[:, :, ks:ke]).float()
        row_max = new_max
    out = acc / torch.where(row_sum > 0, row_sum, torch.ones_like(row_sum))
    return out.to(v.dtype)
