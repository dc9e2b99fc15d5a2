"""The `triton` kernel: flash attention from `core.kernels.flash_attention` behind autograd.

Masks are folded into the additive bias before the kernel runs (bool False -> -inf), so the
kernel sees one optional bias; the gradient flows to `bias` only, never to `mask`.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from core.kernels.flash_attention import (
    INTERPRETED,
    flash_attention_backward,
    flash_attention_forward,
)


def triton_available(q: Tensor) -> bool:
    """Whether the Triton kernels can run on `q`: a CUDA tensor, or any tensor when the kernels
    were built by Triton's interpreter (`TRITON_INTERPRET=1` before import)."""
    return q.is_cuda or INTERPRETED


class FlashAttentionFunction(torch.autograd.Function):
    """Autograd wrapper of the Triton flash-attention forward and backward.

    `apply(q, k, v, bias, mask, causal, scale)`: q `(batch, heads, q_len, head_dim)`, k and v
    `(batch, heads, k_len, head_dim)`; `bias` (differentiable) and `mask` (an additive float
    tensor, not differentiable) are None or broadcastable to `(batch, heads, q_len, k_len)`.
    Returns `(batch, heads, q_len, head_dim)`.
    """

    @staticmethod
    def forward(
        ctx: Any, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, mask: Tensor | None,
        causal: bool, scale: float,
    ) -> Tensor:
        if mask is None:
            attn_bias = bias
        else:
            attn_bias = mask if bias is None else bias + mask
        out, stats = flash_attention_forward(q, k, v, attn_bias, causal=causal, scale=scale)
        ctx.save_for_backward(q, k, v, out, stats, attn_bias)
        ctx.bias_shape = None if bias is None else bias.shape
        ctx.causal = causal
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        q, k, v, out, stats, attn_bias = ctx.saved_tensors
        bias_grad = ctx.needs_input_grad[3]
        dq, dk, dv, dbias = flash_attention_backward(
            grad_out, q, k, v, out, stats, attn_bias, causal=ctx.causal, scale=ctx.scale, bias_grad=bias_grad
        )
        if dbias is not None:
            # attn_bias may broadcast wider than bias when a mask was folded in.
            dbias = dbias.sum_to_size(ctx.bias_shape)
        return dq, dk, dv, dbias, None, None, None


def triton_attention(
    q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None, dropout_p: float = 0.0,
) -> Tensor:
    """Flash attention in Triton with the `math` kernel's semantics.

    Args:
        q: `(batch, heads, q_len, head_dim)`; float32, float16 or bfloat16; head_dim <= 128.
        k, v: `(batch, heads, k_len, head_dim)` (grouped-query heads already expanded).
        mask: bool (True = attend) or additive float, broadcastable to `(batch, heads, q_len, k_len)`.
        bias: additive float with the same broadcasting; receives a gradient.
        causal: query i attends key j iff j <= i + k_len - q_len.
        scale: logit scale, default `head_dim ** -0.5`.
        dropout_p: must be 0; this kernel has no dropout.

    Returns:
        `(batch, heads, q_len, head_dim)`; rows that can attend no key are 0.
    """
    if dropout_p > 0.0:
        raise ValueError(
            f"triton kernel does not support dropout (dropout_p={dropout_p}); "
            "use kernel='sdpa', 'math' or 'chunked'"
        )
    if not triton_available(q):
        if os.environ.get("TRITON_INTERPRET") == "1":
            reason = ("TRITON_INTERPRET=1 was set after core.kernels.flash_attention was imported; "
                      "set it before the first import of core.attention (e.g. in conftest.py)")
        else:
            reason = "it needs CUDA tensors, or TRITON_INTERPRET=1 set before import to run on CPU"
        raise RuntimeError(f"triton attention kernel cannot run on a {q.device.type} tensor: {reason}")
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    return FlashAttentionFunction.apply(q, k, v, bias, _additive_mask(mask), causal, scale)


def _additive_mask(mask: Tensor | None) -> Tensor | None:
    if mask is None or mask.dtype != torch.bool:
        return mask
    zeros = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    return zeros.masked_fill(~mask, float("-inf"))
