"""Multi-head attention (Vaswani et al. 2017, "Attention Is All You Need") over `core.attention`."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from core.attention.functional import Kernel, attention
from core.attention.heads import merge_heads, split_heads
from core.attention.math_kernel import attention_probs
from core.attention.position import RelativePositionBias, RotaryEmbedding, alibi_bias

PositionMode = Literal["none", "rotary", "alibi", "relative"]


class MultiHeadProjection(nn.Module):
    """The query/key/value/output projections of multi-head attention, and the head split around them.

    A base for every module that projects tokens into heads, attends in its own way and projects
    back (`MultiHeadAttention`, `ProbSparseAttention`, `AutoCorrelationAttention`): the subclass
    inherits `q_proj`, `k_proj`, `v_proj`, `out_proj` as its own attributes, so its state_dict keys
    are `q_proj.weight`, ... whichever attention it runs.

    Args:
        embed_dim: model width; the output has this width.
        num_heads: query heads; `embed_dim` must divide by it.
        kdim: width of the key input (cross-attention), default `embed_dim`.
        vdim: width of the value input, default `kdim`.
        num_kv_heads: key/value heads for grouped-query attention (divides `num_heads`).
        bias: biases in the projections.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        kdim: int | None = None,
        vdim: int | None = None,
        num_kv_heads: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        num_kv_heads = num_kv_heads or num_heads
        if num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads {num_kv_heads} must divide num_heads {num_heads}")
        kdim = kdim or embed_dim
        vdim = vdim or kdim
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(kdim, num_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(vdim, num_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def project(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Project and split into heads.

        `query: (batch, q_len, embed_dim)`, `key: (batch, k_len, kdim)` (default `query`), `value:
        (batch, k_len, vdim)` (default `key`) -> `q: (batch, heads, q_len, head_dim)`,
        `k`, `v: (batch, kv_heads, k_len, head_dim)`.
        """
        if query.dim() != 3:
            raise ValueError(f"{type(self).__name__} expects (batch, seq, embed_dim); got query {tuple(query.shape)}")
        key = query if key is None else key
        value = key if value is None else value
        q = split_heads(self.q_proj(query), self.num_heads)
        k = split_heads(self.k_proj(key), self.num_kv_heads)
        v = split_heads(self.v_proj(value), self.num_kv_heads)
        return q, k, v

    def merge(self, out: Tensor) -> Tensor:
        """Merge heads and project: `out: (batch, heads, q_len, head_dim)` -> `(batch, q_len, embed_dim)`."""
        return self.out_proj(merge_heads(out))


class MultiHeadAttention(MultiHeadProjection):
    """Self- or cross-attention with its own projections; the kernel is a constructor argument.

    Args:
        embed_dim: model width; the output has this width.
        num_heads: query heads; `embed_dim` must divide by it.
        kdim: width of the key input (cross-attention), default `embed_dim`.
        vdim: width of the value input, default `kdim`.
        num_kv_heads: key/value heads for grouped-query attention (divides `num_heads`).
        dropout: dropout on attention weights during training.
        bias: biases in the projections.
        kernel: attention kernel name (see `core.attention.attention`).
        position: `rotary` (RoFormer), `alibi` (Press et al.), `relative` (learned clipped
            offsets, Shaw et al.) or `none`.
        max_distance: clipping distance of the `relative` table.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        kdim: int | None = None,
        vdim: int | None = None,
        num_kv_heads: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        kernel: Kernel = "auto",
        position: PositionMode = "none",
        max_distance: int = 128,
    ) -> None:
        super().__init__(embed_dim, num_heads, kdim=kdim, vdim=vdim, num_kv_heads=num_kv_heads, bias=bias)
        self.dropout = dropout
        self.kernel = kernel
        self.position = position
        self.rotary = RotaryEmbedding(self.head_dim) if position == "rotary" else None
        self.relative = RelativePositionBias(num_heads, max_distance) if position == "relative" else None

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        causal: bool = False,
    ) -> Tensor:
        """Attend `query: (batch, q_len, embed_dim)` to `key`/`value: (batch, k_len, kdim/vdim)`.

        `key`/`value` default to `query` (self-attention). `key_padding_mask: (batch, k_len)` bool,
        True marks padding to ignore (PyTorch's convention). `attn_mask`: bool (True = attend) or
        additive float, broadcastable to `(batch, heads, q_len, k_len)`.
        Returns `(batch, q_len, embed_dim)`.
        """
        q, k, v, mask, bias = self._prepare(query, key, value, key_padding_mask, attn_mask)
        out = attention(
            q, k, v, mask=mask, bias=bias, causal=causal,
            dropout_p=self.dropout if self.training else 0.0, kernel=self.kernel,
        )
        return self.merge(out)

    def attention_weights(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        causal: bool = False,
    ) -> Tensor:
        """The attention probabilities `(batch, heads, q_len, k_len)` that `forward` uses (for plots)."""
        q, k, _, mask, bias = self._prepare(query, key, value, key_padding_mask, attn_mask)
        k = k.repeat_interleave(self.num_heads // self.num_kv_heads, dim=1)
        return attention_probs(q, k, mask=mask, bias=bias, causal=causal)

    def _prepare(
        self, query: Tensor, key: Tensor | None, value: Tensor | None,
        key_padding_mask: Tensor | None, attn_mask: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
        q, k, v = self.project(query, key, value)
        batch, _, q_len, _ = q.shape
        k_len = k.shape[2]
        if self.rotary is not None:
            q_pos = torch.arange(k_len - q_len, k_len, device=query.device)
            q, k = self.rotary(q, q_pos), self.rotary(k)
        mask = attn_mask
        if key_padding_mask is not None:
            if key_padding_mask.shape != (batch, k_len):
                raise ValueError(
                    f"key_padding_mask must be (batch, k_len) = {(batch, k_len)}; got {tuple(key_padding_mask.shape)}"
                )
            keep = ~key_padding_mask.bool()[:, None, None, :]
            mask = keep if mask is None else _merge_masks(mask, keep)
        bias = None
        if self.position == "alibi":
            bias = alibi_bias(self.num_heads, q_len, k_len, query.device).to(q.dtype)
        elif self.relative is not None:
            bias = self.relative(q_len, k_len).to(q.dtype)
        return q, k, v, mask, bias


def _merge_masks(mask: Tensor, keep: Tensor) -> Tensor:
    """Combine a user mask (bool or additive) with a boolean keep-mask."""
    if mask.dtype == torch.bool:
        return mask & keep
    return torch.where(keep, mask, torch.full((), float("-inf"), dtype=mask.dtype, device=mask.device))
