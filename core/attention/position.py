"""Position information that enters attention: rotary embeddings, ALiBi and learned relative biases."""

from __future__ import annotations

import math

import torch
from timm.layers import trunc_normal_
from torch import Tensor, nn


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al. 2021, "RoFormer", arXiv:2104.09864).

    Rotates pairs of channels of q and k by position-dependent angles so that the dot product
    q_m . k_n depends only on the offset m - n. Uses the half-split pairing (channel i with
    i + dim/2), as GPT-NeoX and LLaMA do.

    Args:
        dim: rotated head dimension (even).
        base: frequency base, 10000 in the paper.
    """

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"RotaryEmbedding needs an even dim; got {dim}")
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        """Rotate `x: (batch, heads, seq, dim)`; `positions: (seq,)` default `0..seq-1`."""
        seq = x.shape[-2]
        if positions is None:
            positions = torch.arange(seq, device=x.device)
        angles = positions.to(torch.float32)[:, None] * self.inv_freq[None, :]
        cos = torch.cat([angles.cos(), angles.cos()], dim=-1).to(x.dtype)
        sin = torch.cat([angles.sin(), angles.sin()], dim=-1).to(x.dtype)
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin


def alibi_slopes(num_heads: int) -> Tensor:
    """Per-head slopes of ALiBi: the geometric sequence 2^(-8/n), 2^(-16/n), ... (Press et al. 2022)."""
    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        return torch.tensor(power_of_two(num_heads))
    closest = 2 ** math.floor(math.log2(num_heads))
    extra = power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(power_of_two(closest) + extra)


def alibi_bias(num_heads: int, q_len: int, k_len: int, device: torch.device | None = None) -> Tensor:
    """ALiBi additive bias `(1, heads, q_len, k_len)`: -slope * |distance| ("Train Short, Test Long").

    Queries are aligned with the last keys, as in causal attention with a cache.
    """
    q_pos = torch.arange(q_len, device=device)[:, None] + (k_len - q_len)
    k_pos = torch.arange(k_len, device=device)[None, :]
    distance = (q_pos - k_pos).abs().to(torch.float32)
    return -alibi_slopes(num_heads).to(device)[None, :, None, None] * distance


class RelativePositionBias(nn.Module):
    """Learned 1-D relative position bias: one value per head and clipped offset (Shaw et al. 2018).

    Args:
        num_heads: attention heads.
        max_distance: offsets beyond +-max_distance share the last table entry.
    """

    def __init__(self, num_heads: int, max_distance: int = 128) -> None:
        super().__init__()
        self.max_distance = max_distance
        self.table = nn.Parameter(torch.zeros(2 * max_distance + 1, num_heads))
        trunc_normal_(self.table, std=0.02)

    def forward(self, q_len: int, k_len: int) -> Tensor:
        """Bias `(1, heads, q_len, k_len)`."""
        device = self.table.device
        offset = torch.arange(k_len, device=device)[None, :] - torch.arange(q_len, device=device)[:, None]
        index = offset.clamp(-self.max_distance, self.max_distance) + self.max_distance
        return self.table[index].permute(2, 0, 1).unsqueeze(0)


class WindowRelativePositionBias(nn.Module):
    """Learned 2-D relative position bias inside a window, as in Swin Transformer and HAT.

    A table of `(2*Wh-1) * (2*Ww-1)` entries per head, indexed by the (dy, dx) offset of every
    token pair of a `Wh x Ww` window (Liu et al. 2021, "Swin Transformer", arXiv:2103.14030).
    """

    def __init__(self, window_size: tuple[int, int], num_heads: int) -> None:
        super().__init__()
        wh, ww = window_size
        self.table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        trunc_normal_(self.table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
        rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N)
        index = (rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)
        self.register_buffer("index", index, persistent=False)

    def forward(self) -> Tensor:
        """Bias `(1, heads, N, N)` with N = Wh * Ww."""
        return self.table[self.index].permute(2, 0, 1).unsqueeze(0)
