"""One functional entry for attention, with the kernel picked by name.

`attention(q, k, v, ...)` validates its inputs once, expands grouped-query heads, and hands the
call to a kernel from `_KERNELS`: the only name-to-callable table of the suite. Models never
branch on the kernel; they pass the name through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor

from core.attention.chunked_kernel import chunked_attention
from core.attention.dispatch import auto_kernel
from core.attention.linear_kernel import linear_attention
from core.attention.math_kernel import math_attention
from core.attention.sdpa_kernel import sdpa_attention
from core.attention.triton_kernel import triton_attention

Kernel = Literal["auto", "math", "sdpa", "chunked", "triton", "linear"]
KERNELS: tuple[str, ...] = get_args(Kernel)

_KERNELS: dict[str, Callable[..., Tensor]] = {
    "math": math_attention,
    "sdpa": sdpa_attention,
    "chunked": chunked_attention,
    "triton": triton_attention,
    "linear": linear_attention,
}

def attention(
    q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None, dropout_p: float = 0.0, kernel: Kernel = "auto",
) -> Tensor:
    """Scaled dot-product attention through the named kernel.

    Args:
        q: `(batch, heads, q_len, head_dim)`.
        k: `(batch, kv_heads, k_len, head_dim)`; `kv_heads` divides `heads` (grouped-query).
        v: `(batch, kv_heads, k_len, v_dim)`.
        mask: bool (True = attend) or additive float, broadcastable to `(batch, heads, q_len, k_len)`.
        bias: additive float bias with the same broadcasting (relative position tables).
        causal: query i attends key j iff j <= i + k_len - q_len (last query aligns with last key).
        scale: logit scale, default `head_dim ** -0.5`.
        dropout_p: dropout on attention weights (pass 0 at evaluation).
        kernel: `math` (reference), `sdpa`, `chunked`, `triton`, `linear` (elu+1 linear attention,
            an approximation: not equal to softmax), or `auto` (an exact kernel chosen per call
            by `core.attention.dispatch.auto_kernel`, whose docstring states the rule).

    Returns:
        `(batch, heads, q_len, v_dim)`. Rows that can attend no key are zero.
    """
    _check_inputs(q, k, v, mask, bias, dropout_p)
    if kernel not in _KERNELS and kernel != "auto":
        raise ValueError(f"unknown attention kernel {kernel!r}; choose one of {KERNELS}")
    mask = _as_4d(mask)
    bias = _as_4d(bias)
    name = auto_kernel(q, k, v, mask, bias, dropout_p) if kernel == "auto" else kernel
    k, v = repeat_kv(k, v, q.shape[1])
    return _KERNELS[name](q, k, v, mask=mask, bias=bias, causal=causal, scale=scale, dropout_p=dropout_p)


def repeat_kv(k: Tensor, v: Tensor, heads: int) -> tuple[Tensor, Tensor]:
    """Expand grouped k/v heads so query head h reads kv head h // (heads // kv_heads)."""
    groups = heads // k.shape[1]
    if groups == 1:
        return k, v
    return k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)


def _as_4d(t: Tensor | None) -> Tensor | None:
    if t is None or t.dim() == 4:
        return t
    return t.reshape((1,) * (4 - t.dim()) + tuple(t.shape))


def _check_inputs(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, bias: Tensor | None, dropout_p: float
) -> None:
    # Every call passes through here: the common case is integer comparisons in Python; the messages
    # (and torch.broadcast_shapes) only come when something is wrong.
    qs, ks, vs = q.shape, k.shape, v.shape
    if len(qs) == len(ks) == len(vs) == 4 and qs[0] == ks[0] == vs[0] and ks[1] == vs[1] and ks[2] == vs[2] \
            and qs[1] % ks[1] == 0 and qs[3] == ks[3] and q.dtype == k.dtype == v.dtype and q.is_floating_point() \
            and 0.0 <= dropout_p < 1.0 and _fits(mask, qs, ks, bias=False) and _fits(bias, qs, ks, bias=True):
        return
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"attention expects (batch, heads, seq, head_dim) tensors; got {shapes}")
    if not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError(f"attention: batch sizes differ: {shapes}")
    if k.shape[1] != v.shape[1] or k.shape[2] != v.shape[2]:
        raise ValueError(f"attention: k and v must share heads and length: {shapes}")
    if q.shape[1] % k.shape[1] != 0:
        raise ValueError(f"attention: kv heads ({k.shape[1]}) must divide query heads ({q.shape[1]}): {shapes}")
    if q.shape[3] != k.shape[3]:
        raise ValueError(f"attention: q and k head_dim differ: {shapes}")
    if not (q.is_floating_point() and q.dtype == k.dtype == v.dtype):
        raise ValueError(f"attention: q, k, v must share one floating dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    target = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    for name, t in (("mask", mask), ("bias", bias)):
        if t is None:
            continue
        if name == "bias" and not t.is_floating_point():
            raise ValueError(f"attention: bias must be a float tensor; got {t.dtype}")
        if t.dtype != torch.bool and not t.is_floating_point():
            raise ValueError(f"attention: mask must be bool or float; got {t.dtype}")
        if t.dim() > 4 or not _broadcasts(t.shape, target):
            raise ValueError(f"attention: {name} of shape {tuple(t.shape)} does not broadcast to {target}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"attention: dropout_p must be in [0, 1); got {dropout_p}")


def _fits(t: Tensor | None, qs: torch.Size, ks: torch.Size, bias: bool) -> bool:
    """Whether a mask (bool or float) or a bias (float) broadcasts to `(batch, heads, q_len, k_len)`."""
    if t is None:
        return True
    if not (t.is_floating_point() or (not bias and t.dtype == torch.bool)) or t.dim() > 4:
        return False
    return all(a == 1 or a == b for a, b in zip(reversed(t.shape), (ks[2], qs[2], qs[1], qs[0]), strict=False))


def _broadcasts(shape: torch.Size, target: tuple[int, ...]) -> bool:
    try:
        return torch.broadcast_shapes(shape, target) == torch.Size(target)
    except RuntimeError:
        return False
