"""MAT: Molecule Attention Transformer.

Maziarka, Danel, Mucha, Rataj, Tabor, Jastrzębski, "Molecule Attention Transformer",
arXiv 2002.08264 (2020).

MAT's molecule self-attention mixes three row-stochastic matrices before weighting the values:

    A_mol = lambda_a softmax(q k^T / sqrt(d)) + lambda_d g(D) + lambda_g A_norm

with D the 3D distance matrix, g(D) = softmax(-D) over each row, and A_norm the adjacency matrix
normalized by its row sums. The learned part, softmax(q k^T / sqrt(d)) v, goes through
`core.attention.attention()` (its kernel is a constructor argument); the two fixed structural
matrices weight the same values with one einsum here. Pre-LayerNorm residual blocks, mean
pooling over the dummy node and atoms, and a linear prediction layer, as in the paper.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from core.attention import Kernel, attention, attention_probs, merge_heads, split_qkv
from molecules.data.featurize import ATOM_DIM


class MoleculeAttention(nn.Module):
    """MAT's self-attention (see the module docstring).

    Args:
        dim: model width.
        heads: attention heads.
        lambda_attention: weight of the learned attention (paper: 0.33).
        lambda_distance: weight of softmax(-D) (paper: 0.33); the adjacency gets the rest.
        dropout: dropout on the learned attention weights.
        kernel: attention kernel name.
    """

    def __init__(self, dim: int, heads: int, lambda_attention: float = 0.33, lambda_distance: float = 0.33,
                 dropout: float = 0.0, kernel: Kernel = "auto") -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"mat.py: dim {dim} is not divisible by heads {heads}")
        if not 0 <= lambda_attention + lambda_distance <= 1:
            raise ValueError(f"mat.py: lambda_attention + lambda_distance must be in [0, 1]; got {lambda_attention} + {lambda_distance}")
        self.heads, self.head_dim, self.dropout, self.kernel = heads, dim // heads, dropout, kernel
        self.lambda_attention, self.lambda_distance = lambda_attention, lambda_distance
        self.lambda_adjacency = 1.0 - lambda_attention - lambda_distance
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def structure(self, distances: Tensor, adjacency: Tensor, mask: Tensor) -> Tensor:
        """`lambda_d softmax(-D) + lambda_g A_norm`: `(b, 1, n, n)`, shared by every head."""
        key_mask = mask[:, None, :]
        neg = (-distances).masked_fill(~key_mask, float("-inf"))
        by_distance = torch.softmax(neg, dim=-1).nan_to_num(0.0)
        adjacency = adjacency * key_mask
        by_bonds = adjacency / (adjacency.sum(-1, keepdim=True) + 1e-6)
        return (self.lambda_distance * by_distance + self.lambda_adjacency * by_bonds).unsqueeze(1)

    def forward(self, x: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> Tensor:
        """`x: (b, n, dim)`, `distances`/`adjacency: (b, n, n)`, `mask: (b, n)` -> `(b, n, dim)`."""
        q, k, v = split_qkv(self.qkv(x), self.heads)
        learned = attention(q, k, v, mask=mask[:, None, None, :], dropout_p=self.dropout if self.training else 0.0,
                            kernel=self.kernel)
        fixed = torch.matmul(self.structure(distances, adjacency, mask), v)
        return self.out(merge_heads(self.lambda_attention * learned + fixed))

    def attention_weights(self, x: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> Tensor:
        """The mixed weights A_mol `(b, heads, n, n)` (for plots)."""
        q, k, _ = split_qkv(self.qkv(x), self.heads)
        learned = attention_probs(q, k, mask=mask[:, None, None, :])
        return self.lambda_attention * learned + self.structure(distances, adjacency, mask)


class MATLayer(nn.Module):
    """Pre-LayerNorm residual block: molecule attention, then a ReLU feed-forward."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, lambda_attention: float, lambda_distance: float,
                 dropout: float, kernel: Kernel) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MoleculeAttention(dim, heads, lambda_attention, lambda_distance, dropout, kernel)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), distances, adjacency, mask))
        return x + self.drop(self.ffn(self.norm2(x)))


class MAT(nn.Module):
    """Molecule Attention Transformer (the transformer baseline of R-MAT).

    Args:
        outputs: predicted targets (tasks).
        atom_dim: atom feature width (`molecules.data.ATOM_DIM`).
        dim: model width (paper: 1024).
        depth: encoder layers (paper: 8).
        heads: attention heads (paper: 16).
        ffn_dim: feed-forward hidden width (paper: 4 * dim would be 4096; the paper's one dense
            layer uses `dim`, the default here).
        lambda_attention: weight of self-attention in A_mol (paper: 0.33).
        lambda_distance: weight of softmax(-D) (paper: 0.33); adjacency gets 1 - both.
        dropout: dropout (paper's grid includes 0.0, the default).
        kernel: attention kernel name.
    """

    role: ClassVar[str] = "baseline"

    def __init__(
        self,
        outputs: int = 1,
        atom_dim: int = ATOM_DIM,
        dim: int = 1024,
        depth: int = 8,
        heads: int = 16,
        ffn_dim: int = 1024,
        lambda_attention: float = 0.33,
        lambda_distance: float = 0.33,
        dropout: float = 0.0,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.embed = nn.Linear(atom_dim, dim)
        self.layers = nn.ModuleList(
            MATLayer(dim, heads, ffn_dim, lambda_attention, lambda_distance, dropout, kernel) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, outputs)

    def encode(self, atoms: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> Tensor:
        """Atom states `(b, n, dim)`."""
        x = self.embed(atoms)
        for layer in self.layers:
            x = layer(x, distances, adjacency, mask)
        return self.norm(x)

    def forward(self, atoms: Tensor, pairs: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> Tensor:
        """Same inputs as `molecules.models.rmat.RMAT.forward` (`pairs` unused) -> `(b, outputs)`."""
        x = self.encode(atoms, distances, adjacency, mask)
        weights = mask.unsqueeze(-1).to(x.dtype)
        return self.head((x * weights).sum(1) / weights.sum(1).clamp_min(1.0))

    @torch.no_grad()
    def attention_maps(self, atoms: Tensor, pairs: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> list[Tensor]:
        """Per-layer mixed attention weights `(b, heads, n, n)`."""
        x, maps = self.embed(atoms), []
        for layer in self.layers:
            maps.append(layer.attn.attention_weights(layer.norm1(x), distances, adjacency, mask))
            x = layer(x, distances, adjacency, mask)
        return maps
