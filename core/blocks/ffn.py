"""Position-wise feed-forward networks: the plain MLP and the gated GEGLU / SwiGLU variants."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """Linear -> activation -> dropout -> linear -> dropout (Vaswani et al. 2017).

    Args:
        dim: input and output width.
        hidden_dim: inner width (4 * dim in most transformers).
        activation: `gelu` or `relu`.
        dropout: dropout after the activation and after the output projection.
    """

    def __init__(self, dim: int, hidden_dim: int, activation: Literal["gelu", "relu"] = "gelu", dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU() if activation == "gelu" else nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (..., dim)` -> `(..., dim)`."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class GatedFFN(nn.Module):
    """Gated linear unit FFN (Shazeer 2020, "GLU Variants Improve Transformer"): GEGLU or SwiGLU.

    out = W2 (act(W x) * (V x)), with act = GELU (GEGLU) or SiLU (SwiGLU).

    Args:
        dim: input and output width.
        hidden_dim: width of the gated inner layer (the paper keeps parameters equal with 2/3 * 4 * dim).
        gate: `geglu` or `swiglu`.
        dropout: dropout on the gated hidden layer and the output.
    """

    def __init__(self, dim: int, hidden_dim: int, gate: Literal["geglu", "swiglu"] = "swiglu", dropout: float = 0.0) -> None:
        super().__init__()
        self.gate = gate
        self.fc_in = nn.Linear(dim, 2 * hidden_dim)
        self.fc_out = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (..., dim)` -> `(..., dim)`."""
        a, b = self.fc_in(x).chunk(2, dim=-1)
        a = F.gelu(a) if self.gate == "geglu" else F.silu(a)
        return self.drop(self.fc_out(self.drop(a * b)))
