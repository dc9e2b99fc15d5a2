"""Axial attention: self-attention along the height axis, then along the width axis.

Ho et al. 2019, "Axial Attention in Multidimensional Transformers", arXiv:1912.12180; LLFormer's
axis-based multi-head self-attention (Wang et al., AAAI 2023) applies the same two passes.
"""

from __future__ import annotations

from torch import Tensor, nn

from core.attention.functional import Kernel
from core.attention.multihead import MultiHeadAttention


class AxialAttention(nn.Module):
    """Height-then-width multi-head self-attention, each axis with its own projections.

    Cost is O(H * W * (H + W)) instead of O((H * W)^2).

    Args:
        dim: channels.
        num_heads: heads per axis.
        dropout: attention-weight dropout.
        kernel: attention kernel name.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.kernel = kernel
        self.height = MultiHeadAttention(dim, num_heads, dropout=dropout, kernel=kernel)
        self.width = MultiHeadAttention(dim, num_heads, dropout=dropout, kernel=kernel)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, height, width, dim)` -> same shape (height pass, then width pass on its output)."""
        if x.dim() != 4:
            raise ValueError(f"AxialAttention expects (batch, height, width, dim); got {tuple(x.shape)}")
        b, h, w, c = x.shape
        cols = x.permute(0, 2, 1, 3).reshape(b * w, h, c)
        x = self.height(cols).view(b, w, h, c).permute(0, 2, 1, 3)
        rows = x.reshape(b * h, w, c)
        return self.width(rows).view(b, h, w, c)
