"""The cross-domain Transformer at the bottleneck of HT Demucs (Rouard, Massa, Défossez, ICASSP 2023).

Two token sequences meet here: the spectrogram branch's `(batch, channels, freqs, frames)` map,
flattened frame-major into `frames * freqs` tokens with a 2D sinusoidal embedding, and the
waveform branch's `(batch, channels, steps)` sequence with a 1D one. Layers alternate: an even
layer is self-attention within each branch, an odd one cross-attention where each branch queries
the other (both read the other's input to the layer). Every layer is pre-norm with layer scale on
its two residual branches and a group norm over all tokens at its end, as in the paper.

The sinusoidal embeddings here are Demucs' own formulas (cos/sin halves with a `max_period **
(i / (half - 1))` spacing in 1D; interleaved sin/cos of width and height in 2D), not the
Vaswani table of `core.blocks.positional`: the official weights were trained with these, and they
load with identical outputs only if the embedding is the same.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from core.attention import MultiHeadAttention
from core.attention.functional import Kernel
from core.blocks import MLP


def sin_embedding_1d(length: int, dim: int, max_period: float = 10000.0, device: torch.device | None = None) -> Tensor:
    """Demucs' 1D sinusoidal embedding `(length, dim)`: `[cos(p / T^(i/(h-1))), sin(...)]`, h = dim / 2."""
    if dim % 2:
        raise ValueError(f"sin_embedding_1d: dim {dim} must be even")
    half = dim // 2
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    index = torch.arange(half, device=device, dtype=torch.float32)[None, :]
    phase = pos / (max_period ** (index / (half - 1)))
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def sin_embedding_2d(dim: int, height: int, width: int, max_period: float = 10000.0,
                     device: torch.device | None = None) -> Tensor:
    """Demucs' 2D sinusoidal embedding `(dim, height, width)`: the first half of the channels
    encodes the width (time) position, the second half the height (frequency), sin/cos interleaved."""
    if dim % 4:
        raise ValueError(f"sin_embedding_2d: dim {dim} must be a multiple of 4")
    half = dim // 2
    div = torch.exp(torch.arange(0.0, half, 2, device=device) * -(math.log(max_period) / half))
    pos_w = torch.arange(width, device=device, dtype=torch.float32)[:, None] * div  # (width, half / 2)
    pos_h = torch.arange(height, device=device, dtype=torch.float32)[:, None] * div
    pe = torch.zeros(dim, height, width, device=device)
    pe[0:half:2] = torch.sin(pos_w).t()[:, None, :].expand(-1, height, -1)
    pe[1:half:2] = torch.cos(pos_w).t()[:, None, :].expand(-1, height, -1)
    pe[half::2] = torch.sin(pos_h).t()[:, :, None].expand(-1, -1, width)
    pe[half + 1::2] = torch.cos(pos_h).t()[:, :, None].expand(-1, -1, width)
    return pe


class LayerScale(nn.Module):
    """Per-channel residual scale started near zero (Touvron et al. 2021, CaiT); `x: (..., dim)`.

    Args:
        dim: channels.
        init: initial value of every scale.
    """

    def __init__(self, dim: int, init: float = 1e-4) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x


class TokenGroupNorm(nn.GroupNorm):
    """GroupNorm over tokens `x: (batch, seq, dim)`: with one group it normalizes each example over
    all its tokens and channels together (the end-of-layer norm of HT Demucs)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class CrossDomainLayer(nn.Module):
    """One pre-norm layer of one branch: self-attention (`cross=False`) or cross-attention to the other branch.

    `x = x + s1 * attn(norm_q(x), norm_kv(other))`, `x = x + s2 * ffn(norm_ffn(x))`, then `norm_out`.

    Args:
        dim: token width (the bottleneck channels).
        num_heads: attention heads.
        hidden_dim: FFN inner width (`hidden_scale * dim` in the paper, 4x).
        cross: True for cross-attention (keys and values from the other branch, normed by `norm_kv`).
        dropout: dropout on attention weights and in the FFN (0 in the paper).
        layer_scale: scale both residual branches by a learned per-channel `LayerScale`.
        layer_scale_init: its initial value (1e-4 in the paper).
        norm_out: end the layer with a GroupNorm (1 group) over all tokens.
        kernel: attention kernel of `core.attention`.
    """

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, *, cross: bool, dropout: float = 0.0,
                 layer_scale: bool = True, layer_scale_init: float = 1e-4, norm_out: bool = True,
                 kernel: Kernel = "auto") -> None:
        super().__init__()
        self.cross = cross
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None
        self.attn = MultiHeadAttention(dim, num_heads, dropout=dropout, kernel=kernel)
        self.scale1 = LayerScale(dim, layer_scale_init) if layer_scale else nn.Identity()
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = MLP(dim, hidden_dim, activation="gelu", dropout=dropout)
        self.scale2 = LayerScale(dim, layer_scale_init) if layer_scale else nn.Identity()
        self.norm_out = TokenGroupNorm(1, dim) if norm_out else nn.Identity()

    def forward(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        """`x: (batch, seq, dim)`; `other: (batch, other_seq, dim)` for a cross layer -> `(batch, seq, dim)`."""
        query = self.norm_q(x)
        if self.cross:
            if other is None:
                raise ValueError("CrossDomainLayer(cross=True) needs the other branch's tokens")
            context = self.norm_kv(other)
            x = x + self.scale1(self.attn(query, context, context))
        else:
            x = x + self.scale1(self.attn(query))
        x = x + self.scale2(self.ffn(self.norm_ffn(x)))
        return self.norm_out(x)


class CrossDomainTransformer(nn.Module):
    """The cross-domain Transformer encoder of HT Demucs: `(spec, wave) -> (spec, wave)`, shapes kept.

    Args:
        dim: channels of both branches at the bottleneck (a multiple of 4 and of `num_heads`).
        num_layers: layers per branch (5 in the paper: self, cross, self, cross, self).
        num_heads: attention heads (8 in the paper).
        hidden_scale: FFN width as a multiple of `dim` (4 in the paper).
        dropout: attention and FFN dropout (0 in the paper).
        cross_first: start with a cross-attention layer (False in the paper, which found it worse).
        norm_in: LayerNorm each branch's tokens before adding the positional embedding.
        norm_out: GroupNorm over all tokens at the end of every layer.
        layer_scale: LayerScale on every residual branch (init 1e-4).
        max_period: the sinusoidal embeddings' longest period.
        weight_pos_embed: weight of the positional embeddings added to the tokens.
        kernel: attention kernel of `core.attention` for every self- and cross-attention.
    """

    def __init__(self, dim: int, num_layers: int = 5, num_heads: int = 8, hidden_scale: float = 4.0,
                 dropout: float = 0.0, cross_first: bool = False, norm_in: bool = True, norm_out: bool = True,
                 layer_scale: bool = True, max_period: float = 10000.0, weight_pos_embed: float = 1.0,
                 kernel: Kernel = "auto") -> None:
        super().__init__()
        if dim % num_heads or dim % 4:
            raise ValueError(f"CrossDomainTransformer: dim {dim} must divide by num_heads {num_heads} and by 4")
        self.max_period, self.weight_pos_embed = max_period, weight_pos_embed
        self.cross_parity = 0 if cross_first else 1  # layer idx is a cross layer when idx % 2 == cross_parity
        self.norm_in = nn.LayerNorm(dim) if norm_in else nn.Identity()
        self.norm_in_t = nn.LayerNorm(dim) if norm_in else nn.Identity()
        hidden = int(dim * hidden_scale)

        def layer(idx: int) -> CrossDomainLayer:
            return CrossDomainLayer(dim, num_heads, hidden, cross=idx % 2 == self.cross_parity, dropout=dropout,
                                    layer_scale=layer_scale, norm_out=norm_out, kernel=kernel)

        self.layers = nn.ModuleList(layer(i) for i in range(num_layers))  # spectrogram branch
        self.layers_t = nn.ModuleList(layer(i) for i in range(num_layers))  # waveform branch

    def forward(self, x: Tensor, xt: Tensor) -> tuple[Tensor, Tensor]:
        """`x: (batch, dim, freqs, frames)` spectrogram branch, `xt: (batch, dim, steps)` waveform branch."""
        batch, dim, freqs, frames = x.shape
        pos_2d = sin_embedding_2d(dim, freqs, frames, self.max_period, x.device).permute(2, 1, 0).reshape(frames * freqs, dim)
        x = x.permute(0, 3, 2, 1).reshape(batch, frames * freqs, dim)  # tokens frame-major, frequency-minor
        x = self.norm_in(x) + self.weight_pos_embed * pos_2d.to(x.dtype)
        xt = xt.transpose(1, 2)
        xt = self.norm_in_t(xt) + self.weight_pos_embed * sin_embedding_1d(xt.shape[1], dim, self.max_period, x.device).to(x.dtype)
        for spec_layer, wave_layer in zip(self.layers, self.layers_t, strict=True):
            if spec_layer.cross:
                x, xt = spec_layer(x, xt), wave_layer(xt, x)  # both read the other's input to this layer
            else:
                x, xt = spec_layer(x), wave_layer(xt)
        x = x.reshape(batch, frames, freqs, dim).permute(0, 3, 2, 1)
        return x, xt.transpose(1, 2)
