"""Overlapping cross-window attention: queries from a window, keys/values from a larger window around it.

Chen et al. 2023, "Activating More Pixels in Image Super-Resolution Transformer" (HAT),
arXiv:2205.04437, Sec. 3.2.3 (OCAB). Queries are the non-overlapping `M x M` windows of the
feature map; keys and values come from the overlapping `Mo x Mo` windows centred on them, with
`Mo = (1 + overlap_ratio) * M`, cut from the zero-padded map (as the reference unfolds it, padded
keys are zero vectors and are not masked). A learned relative position bias covers every
(query, key) offset: `(M + Mo - 1)^2` entries per head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import Tensor, nn

from core.attention.functional import Kernel, attention
from core.attention.heads import merge_heads, split_heads
from core.attention.math_kernel import attention_probs
from core.attention.window import window_partition, window_reverse


class OverlappingWindowBias(nn.Module):
    """Learned bias `(1, heads, M*M, Mo*Mo)` between an `M x M` query window and the `Mo x Mo` key window around it."""

    def __init__(self, window_size: int, overlap_size: int, num_heads: int) -> None:
        super().__init__()
        span = window_size + overlap_size - 1
        self.table = nn.Parameter(torch.zeros(span * span, num_heads))
        trunc_normal_(self.table, std=0.02)
        q = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")).flatten(1)
        k = torch.stack(torch.meshgrid(torch.arange(overlap_size), torch.arange(overlap_size), indexing="ij")).flatten(1)
        rel = k[:, None, :] - q[:, :, None] + (window_size - 1)  # (2, M*M, Mo*Mo), in [0, span)
        self.register_buffer("index", rel[0] * span + rel[1], persistent=False)

    def forward(self) -> Tensor:
        """Bias `(1, heads, M*M, Mo*Mo)`."""
        return self.table[self.index].permute(2, 0, 1).unsqueeze(0)


class OverlappingWindowAttention(nn.Module):
    """Overlapping cross-attention (HAT's OCA): `M x M` query windows attend to `Mo x Mo` key windows.

    Args:
        dim: channels.
        num_heads: heads; `dim` must divide by it.
        window_size: side `M` of the query windows (16 in HAT).
        overlap_ratio: `Mo = M + int(overlap_ratio * M)` (0.5 in HAT); `Mo - M` must be even.
        qkv_bias: bias in the qkv projection.
        kernel: attention kernel name.
    """

    def __init__(
        self, dim: int, num_heads: int, window_size: int = 16, overlap_ratio: float = 0.5,
        qkv_bias: bool = True, kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"core/attention/overlapping_window.py: dim {dim} is not divisible by num_heads {num_heads}")
        self.overlap_size = window_size + int(overlap_ratio * window_size)
        if (self.overlap_size - window_size) % 2:
            raise ValueError(
                f"core/attention/overlapping_window.py: overlap window {self.overlap_size} - window {window_size} must be even"
            )
        self.dim, self.num_heads, self.window_size, self.kernel = dim, num_heads, window_size, kernel
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.relative_bias = OverlappingWindowBias(window_size, self.overlap_size, num_heads)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, height, width, dim)` -> same shape; pads (zeros) to the window multiple and crops back."""
        q, k, v, bias, shape = self._prepare(x)
        out = attention(q, k, v, bias=bias, kernel=self.kernel)
        return self._merge(out, shape)

    def attention_weights(self, x: Tensor) -> Tensor:
        """Probabilities `(batch * windows, heads, M*M, Mo*Mo)` used by `forward`."""
        q, k, _, bias, _ = self._prepare(x)
        return attention_probs(q, k, bias=bias)

    def gather_windows(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-window `q (B*nW, M*M, C)`, `k, v (B*nW, Mo*Mo, C)` of `x: (B, H, W, C)` (H, W multiples of M)."""
        b, h, w, c = x.shape
        ws, ows = self.window_size, self.overlap_size
        qkv = self.qkv(x)
        q = window_partition(qkv[..., :c], ws)
        kv = qkv[..., c:].permute(0, 3, 1, 2)  # (b, 2c, h, w)
        kv = F.unfold(kv, kernel_size=ows, stride=ws, padding=(ows - ws) // 2)  # (b, 2c*ows*ows, nW)
        kv = kv.view(b, 2, c, ows * ows, -1).permute(1, 0, 4, 3, 2).reshape(2, -1, ows * ows, c)
        return q, kv[0], kv[1]

    def _prepare(self, x: Tensor):
        if x.dim() != 4:
            raise ValueError(f"OverlappingWindowAttention expects (batch, height, width, dim); got {tuple(x.shape)}")
        b, h, w, _ = x.shape
        ws = self.window_size
        x = F.pad(x, (0, 0, 0, (-w) % ws, 0, (-h) % ws))
        q, k, v = self.gather_windows(x)
        q, k, v = (split_heads(t, self.num_heads) for t in (q, k, v))
        bias = self.relative_bias().to(x.dtype)
        return q, k, v, bias, (b, h, w, x.shape[1], x.shape[2])

    def _merge(self, out: Tensor, shape: tuple[int, ...]) -> Tensor:
        b, h, w, hp, wp = shape
        windows = merge_heads(out)  # (b*nW, M*M, c)
        x = window_reverse(windows, self.window_size, hp, wp)
        return self.proj(x[:, :h, :w]).contiguous()
