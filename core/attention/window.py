"""(Shifted) window self-attention with a relative position bias table, as Swin and HAT use.

Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
arXiv:2103.14030; Chen et al. 2023, "Activating More Pixels in Image Super-Resolution
Transformer" (HAT), arXiv:2205.04437.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.attention.functional import Kernel, attention
from core.attention.heads import merge_heads, split_qkv
from core.attention.math_kernel import attention_probs
from core.attention.position import WindowRelativePositionBias


def window_partition(x: Tensor, window: int) -> Tensor:
    """`(B, H, W, C)` -> `(B * nW, window * window, C)`; H and W must divide by `window`."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """Inverse of `window_partition`: `(B * nW, window * window, C)` -> `(B, H, W, C)`."""
    c = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


def shift_window_mask(height: int, width: int, window: int, shift: int, device: torch.device | None = None) -> Tensor:
    """Bool mask `(nW, N, N)`, True = attend, for shifted windows.

    After the cyclic shift, a window can hold pixels from up to four image regions that were
    not neighbours; tokens attend only to tokens of their own region.
    """
    region = torch.zeros(1, height, width, 1, device=device)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in bounds:
        for ws in bounds:
            region[:, hs, ws, :] = label
            label += 1
    ids = window_partition(region, window).squeeze(-1)  # (nW, N)
    return ids[:, :, None] == ids[:, None, :]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping (optionally shifted) windows.

    Args:
        dim: channels.
        num_heads: heads; `dim` must divide by it.
        window_size: side of the square window (HAT uses 16, Swin 7).
        shift_size: cyclic shift, 0 or usually `window_size // 2` on every other block.
        qkv_bias: bias in the qkv projection.
        dropout: dropout on attention weights during training.
        kernel: attention kernel name.
    """

    def __init__(
        self, dim: int, num_heads: int, window_size: int = 8, shift_size: int = 0,
        qkv_bias: bool = True, dropout: float = 0.0, kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size={window_size}); got {shift_size}")
        self.num_heads, self.window_size, self.shift_size = num_heads, window_size, shift_size
        self.dropout, self.kernel = dropout, kernel
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.relative_bias = WindowRelativePositionBias((window_size, window_size), num_heads)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, height, width, dim)` -> same shape; pads to the window multiple and crops back."""
        q, k, v, mask, bias, shape = self._prepare(x)
        out = attention(q, k, v, mask=mask, bias=bias, dropout_p=self.dropout if self.training else 0.0, kernel=self.kernel)
        return self._merge(out, shape)

    def attention_weights(self, x: Tensor) -> Tensor:
        """Probabilities `(batch * windows, heads, N, N)` used by `forward`."""
        q, k, _, mask, bias, _ = self._prepare(x)
        return attention_probs(q, k, mask=mask, bias=bias)

    def _prepare(self, x: Tensor):
        if x.dim() != 4:
            raise ValueError(f"WindowAttention expects (batch, height, width, dim); got {tuple(x.shape)}")
        b, h, w, _ = x.shape
        ws, shift = self.window_size, self.shift_size
        x = F.pad(x, (0, 0, 0, (-w) % ws, 0, (-h) % ws))
        hp, wp = x.shape[1], x.shape[2]
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        windows = window_partition(x, ws)  # (b * nW, N, c)
        n = windows.shape[1]
        q, k, v = split_qkv(self.qkv(windows), self.num_heads)
        mask = None
        if shift:
            n_windows = (hp // ws) * (wp // ws)
            mask = shift_window_mask(hp, wp, ws, shift, x.device)  # (nW, N, N)
            mask = mask[None].expand(b, -1, -1, -1).reshape(b * n_windows, 1, n, n)
        bias = self.relative_bias().to(x.dtype)
        return q, k, v, mask, bias, (b, h, w, hp, wp)

    def _merge(self, out: Tensor, shape: tuple[int, ...]) -> Tensor:
        b, h, w, hp, wp = shape
        windows = self.proj(merge_heads(out))
        x = window_reverse(windows, self.window_size, hp, wp)
        if self.shift_size:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        return x[:, :h, :w].contiguous()
