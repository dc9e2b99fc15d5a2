"""Transformer encoder and decoder layers (Vaswani et al. 2017), pre- or post-norm, over `core.attention`."""

from __future__ import annotations

from typing import Literal

from timm.layers import DropPath
from torch import Tensor, nn

from core.attention.functional import Kernel
from core.attention.multihead import MultiHeadAttention, PositionMode
from core.blocks.ffn import MLP, GatedFFN

Activation = Literal["gelu", "relu", "geglu", "swiglu"]
NormKind = Literal["layernorm", "rmsnorm"]


def make_ffn(dim: int, ffn_dim: int, activation: Activation, dropout: float) -> nn.Module:
    """The feed-forward block for an activation name: plain MLP or gated (GEGLU/SwiGLU)."""
    if activation in ("geglu", "swiglu"):
        return GatedFFN(dim, ffn_dim, gate=activation, dropout=dropout)
    return MLP(dim, ffn_dim, activation=activation, dropout=dropout)


def make_norm(dim: int, norm: NormKind) -> nn.Module:
    return nn.LayerNorm(dim) if norm == "layernorm" else nn.RMSNorm(dim)


class TransformerEncoderLayer(nn.Module):
    """Self-attention + feed-forward with residuals.

    Args:
        dim: model width.
        num_heads: attention heads.
        ffn_dim: feed-forward inner width.
        dropout: dropout on attention weights, after attention and inside the FFN.
        activation: `gelu`, `relu` (MLP) or `geglu`, `swiglu` (gated FFN).
        norm_first: pre-norm (x + f(norm(x))) if True, post-norm (norm(x + f(x))) as in the original paper if False.
        norm: `layernorm` or `rmsnorm`.
        drop_path: stochastic depth rate on both residual branches.
        kernel: attention kernel name.
        position: relative position scheme of the attention (see `MultiHeadAttention`).
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.1, activation: Activation = "gelu",
        norm_first: bool = False, norm: NormKind = "layernorm", drop_path: float = 0.0,
        kernel: Kernel = "auto", position: PositionMode = "none",
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.kernel = kernel
        self.self_attn = MultiHeadAttention(dim, num_heads, dropout=dropout, kernel=kernel, position=position)
        self.ffn = make_ffn(dim, ffn_dim, activation, dropout)
        self.norm1, self.norm2 = make_norm(dim, norm), make_norm(dim, norm)
        self.drop = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self, x: Tensor, *, key_padding_mask: Tensor | None = None, attn_mask: Tensor | None = None, causal: bool = False
    ) -> Tensor:
        """`x: (batch, seq, dim)` -> same shape; masks as in `MultiHeadAttention`."""
        def attend(h: Tensor) -> Tensor:
            return self.drop(self.self_attn(h, key_padding_mask=key_padding_mask, attn_mask=attn_mask, causal=causal))

        if self.norm_first:
            x = x + self.drop_path(attend(self.norm1(x)))
            return x + self.drop_path(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop_path(attend(x)))
        return self.norm2(x + self.drop_path(self.ffn(x)))


class TransformerDecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder memory, feed-forward.

    Args are those of `TransformerEncoderLayer`; `memory_dim` is the encoder width (default `dim`).
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.1, activation: Activation = "gelu",
        norm_first: bool = False, norm: NormKind = "layernorm", drop_path: float = 0.0,
        kernel: Kernel = "auto", memory_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.kernel = kernel
        self.self_attn = MultiHeadAttention(dim, num_heads, dropout=dropout, kernel=kernel)
        self.cross_attn = MultiHeadAttention(dim, num_heads, kdim=memory_dim, dropout=dropout, kernel=kernel)
        self.ffn = make_ffn(dim, ffn_dim, activation, dropout)
        self.norm1, self.norm2, self.norm3 = (make_norm(dim, norm) for _ in range(3))
        self.drop = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self, x: Tensor, memory: Tensor, *, causal: bool = True,
        key_padding_mask: Tensor | None = None, memory_key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """`x: (batch, tgt_len, dim)`, `memory: (batch, src_len, memory_dim)` -> `(batch, tgt_len, dim)`."""
        def self_block(h: Tensor) -> Tensor:
            return self.drop(self.self_attn(h, key_padding_mask=key_padding_mask, causal=causal))

        def cross_block(h: Tensor) -> Tensor:
            return self.drop(self.cross_attn(h, memory, key_padding_mask=memory_key_padding_mask))

        if self.norm_first:
            x = x + self.drop_path(self_block(self.norm1(x)))
            x = x + self.drop_path(cross_block(self.norm2(x)))
            return x + self.drop_path(self.ffn(self.norm3(x)))
        x = self.norm1(x + self.drop_path(self_block(x)))
        x = self.norm2(x + self.drop_path(cross_block(x)))
        return self.norm3(x + self.drop_path(self.ffn(x)))


class TransformerEncoder(nn.Module):
    """A stack of `TransformerEncoderLayer`s (plus a final norm when pre-norm).

    Args:
        num_layers: depth; the remaining arguments are those of `TransformerEncoderLayer`.
    """

    def __init__(
        self, num_layers: int, dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.1,
        activation: Activation = "gelu", norm_first: bool = False, norm: NormKind = "layernorm",
        drop_path: float = 0.0, kernel: Kernel = "auto", position: PositionMode = "none",
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(dim, num_heads, ffn_dim, dropout, activation, norm_first, norm, drop_path, kernel, position)
            for _ in range(num_layers)
        )
        self.norm = make_norm(dim, norm) if norm_first else nn.Identity()

    def forward(self, x: Tensor, *, key_padding_mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """`x: (batch, seq, dim)` -> same shape."""
        for layer in self.layers:
            x = layer(x, key_padding_mask=key_padding_mask, causal=causal)
        return self.norm(x)
