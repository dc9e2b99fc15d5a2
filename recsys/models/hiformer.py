"""Hiformer: Gui, Wang, Yin, Jin, Kula, Xu, Hong, Chi, "Hiformer: Heterogeneous Feature Interactions
Learning with Transformers for Recommender Systems" (arXiv 2311.05884, 2023).

The paper's argument: a vanilla Transformer shares one query/key/value projection across features,
so the attention score of a feature pair cannot depend on *which* features they are in a
context-specific way. It makes three changes, all here:

1. Heterogeneous attention (Section 4.1): feature-specific projections
   `Q_i = e_i W_i^Q`, `K_j = e_j W_j^K`, `V_j = e_j W_j^V` (per head), softmax over `j` of
   `Q_i K_j^T / sqrt(d_k)`; the output projection and the feed-forward network are feature-specific
   too. (`HeterogeneousAttentionLayer`.)
2. Hiformer layer (Section 4.2): a composite projection. The query/key/value of every token are
   linear functions of *all* token embeddings concatenated, `[Q_1 .. Q_L] = concat(e_1 .. e_L) W^Q`
   with `W^Q: (L d) x (L H d_k)` (same for K and V), so one attention layer already sees higher-order
   interactions. A heterogeneous projection is the block-diagonal special case.
   (`HiformerLayer`, `CompositeProjection`.)
3. Serving (Section 4.3): low-rank factorization of the composite projections `W = U V`, `U: (L d) x r`,
   `V: r x (L H d_k)` (`rank`), and pruning of the last layer to the task tokens: only their queries,
   output projections and FFNs are computed, because only they feed the prediction head
   (`prune_last_layer`; exact, not an approximation).

Task tokens (Section 4): learned embeddings prepended to the feature embeddings; after the last layer
their vectors go through an MLP to the logit. The paper trains one token per task; a CTR model has one.
The paper's production sizes are not published; the defaults below (embedding 16 like every model of
this package, 2 layers, 2 heads of size 16, FFN 4 x embedding) are ours. Every softmax(QK^T)V goes
through `core.attention.attention`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from core.attention import Kernel, attention, merge_heads, split_heads
from recsys.models.base import CTRModel, mlp_tower
from recsys.models.embedding import Batch, FieldEmbedding, FieldLayout


class CompositeProjection(nn.Module):
    """`concat(e_1 .. e_T) W` split into one `out_dim` vector per token; `W = U V` when `rank` is set.

    Args:
        tokens: `T`, number of tokens (task tokens + features).
        in_dim: token embedding size `d`.
        out_dim: per-token output size (`heads * head_dim`).
        rank: rank `r` of the factorization `U: (T d, r)`, `V: (r, T out_dim)`; None = full matrix.
    """

    def __init__(self, tokens: int, in_dim: int, out_dim: int, rank: int | None = None) -> None:
        super().__init__()
        self.tokens, self.in_dim, self.out_dim, self.rank = tokens, in_dim, out_dim, rank
        fan_in = tokens * in_dim
        if rank is None:
            self.weight = nn.Parameter(torch.randn(fan_in, tokens * out_dim) / math.sqrt(fan_in))
        else:
            self.left = nn.Parameter(torch.randn(fan_in, rank) / math.sqrt(fan_in))
            self.right = nn.Parameter(torch.randn(rank, tokens * out_dim) / math.sqrt(rank))

    def forward(self, x: Tensor, first: int | None = None) -> Tensor:
        """`x: (batch, T, d)` -> `(batch, n, out_dim)` for the first `n = first or T` tokens only."""
        n = self.tokens if first is None else first
        flat = x.flatten(1)
        cols = n * self.out_dim
        if self.rank is None:
            out = flat @ self.weight[:, :cols]
        else:
            out = (flat @ self.left) @ self.right[:, :cols]
        return out.view(x.shape[0], n, self.out_dim)

    def full_weight(self) -> Tensor:
        """The `(T d, T out_dim)` matrix this projection applies."""
        return self.weight if self.rank is None else self.left @ self.right


class TokenwiseLinear(nn.Module):
    """A separate linear map per token: `(batch, T, in) -> (batch, T, out)` with weights `(T, in, out)`."""

    def __init__(self, tokens: int, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(tokens, in_dim, out_dim) / math.sqrt(in_dim))
        self.bias = nn.Parameter(torch.zeros(tokens, out_dim)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """Token `t` of `x` uses weight `t`; `x` may hold only the first `n <= T` tokens."""
        n = x.shape[1]
        out = torch.einsum("bti,tio->bto", x, self.weight[:n])
        return out if self.bias is None else out + self.bias[:n]


class _HeterogeneousBlock(nn.Module):
    """Attention output -> feature-specific output projection, residual, norm, feature-specific FFN."""

    def __init__(self, tokens: int, dim: int, num_heads: int, head_dim: int, ffn_dim: int, dropout: float, kernel: Kernel) -> None:
        super().__init__()
        self.tokens, self.num_heads, self.head_dim, self.kernel = tokens, num_heads, head_dim, kernel
        self.out = TokenwiseLinear(tokens, num_heads * head_dim, dim)
        self.ffn_in = TokenwiseLinear(tokens, dim, ffn_dim)
        self.ffn_out = TokenwiseLinear(tokens, ffn_dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def _finish(self, x: Tensor, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """`x` the layer input of the queried tokens; `q (b, n, H dk)`, `k, v (b, T, H dk)`."""
        h = self.num_heads
        o = merge_heads(attention(split_heads(q, h), split_heads(k, h), split_heads(v, h), kernel=self.kernel))
        x = self.norm1(x + self.drop(self.out(o)))
        return self.norm2(x + self.drop(self.ffn_out(self.ffn_in(x).relu())))


class HeterogeneousAttentionLayer(_HeterogeneousBlock):
    """Heterogeneous self-attention (Section 4.1): per-feature query/key/value projections.

    Args:
        tokens: number of tokens `T` (each has its own projections).
        dim: token embedding size `d`.
        num_heads, head_dim: multi-head attention sizes.
        ffn_dim: width of the feature-specific FFN.
        dropout: dropout after attention and FFN.
        kernel: attention kernel of `core.attention`.
    """

    def __init__(
        self, tokens: int, dim: int, num_heads: int = 2, head_dim: int = 16, ffn_dim: int = 64,
        dropout: float = 0.0, kernel: Kernel = "auto",
    ) -> None:
        super().__init__(tokens, dim, num_heads, head_dim, ffn_dim, dropout, kernel)
        width = num_heads * head_dim
        self.query = TokenwiseLinear(tokens, dim, width, bias=False)
        self.key = TokenwiseLinear(tokens, dim, width, bias=False)
        self.value = TokenwiseLinear(tokens, dim, width, bias=False)

    def forward(self, x: Tensor, queries: int | None = None) -> Tensor:
        """`x: (batch, T, d)` -> `(batch, n, d)` for the first `n = queries or T` tokens."""
        n = x.shape[1] if queries is None else queries
        return self._finish(x[:, :n], self.query(x[:, :n]), self.key(x), self.value(x))


class HiformerLayer(_HeterogeneousBlock):
    """Hiformer layer (Section 4.2): composite query/key/value projections over all tokens.

    Args:
        tokens: number of tokens `T`.
        dim: token embedding size `d`.
        num_heads, head_dim: multi-head attention sizes.
        ffn_dim: width of the feature-specific FFN.
        rank: low-rank factorization of the composite projections (Section 4.3); None = full.
        dropout: dropout after attention and FFN.
        kernel: attention kernel of `core.attention`.
    """

    def __init__(
        self, tokens: int, dim: int, num_heads: int = 2, head_dim: int = 16, ffn_dim: int = 64,
        rank: int | None = None, dropout: float = 0.0, kernel: Kernel = "auto",
    ) -> None:
        super().__init__(tokens, dim, num_heads, head_dim, ffn_dim, dropout, kernel)
        width = num_heads * head_dim
        self.query = CompositeProjection(tokens, dim, width, rank)
        self.key = CompositeProjection(tokens, dim, width, rank)
        self.value = CompositeProjection(tokens, dim, width, rank)

    def forward(self, x: Tensor, queries: int | None = None) -> Tensor:
        """`x: (batch, T, d)` -> `(batch, n, d)` for the first `n = queries or T` tokens (pruning)."""
        n = x.shape[1] if queries is None else queries
        return self._finish(x[:, :n], self.query(x, first=n), self.key(x), self.value(x))


class Hiformer(CTRModel):
    """Hiformer ranking model: task token(s) + feature embeddings -> Hiformer layers -> MLP on the task tokens.

    Args:
        embed_dim: feature (and task token) embedding size `d`.
        num_layers: Hiformer layers.
        num_heads: attention heads.
        head_dim: query/key/value size per head `d_k`.
        ffn_dim: width of the feature-specific FFN (default 4 x `embed_dim`).
        num_task_tokens: learned task tokens (one per task; 1 for CTR).
        layer: `hiformer` (composite projection) or `heterogeneous` (per-feature projections only,
            the paper's "Heterogeneous Attention" ablation).
        rank: low-rank factorization of the composite projections (serving optimization); None = full.
        prune_last_layer: compute only the task tokens in the last layer (serving optimization; exact).
        dropout: dropout inside the layers.
        head_dims: hidden widths of the MLP on the task tokens.
        kernel: attention kernel of `core.attention`.
        layout: build at once for these fields (default: built later from the DataModule).
    """

    role = "model"

    def __init__(
        self, embed_dim: int = 16, num_layers: int = 2, num_heads: int = 2, head_dim: int = 16,
        ffn_dim: int | None = None, num_task_tokens: int = 1, layer: Literal["hiformer", "heterogeneous"] = "hiformer",
        rank: int | None = None, prune_last_layer: bool = False, dropout: float = 0.0,
        head_dims: Sequence[int] = (64,), kernel: Kernel = "auto", layout: FieldLayout | None = None,
    ) -> None:
        super().__init__()
        if layer not in ("hiformer", "heterogeneous"):
            raise ValueError(f"Hiformer: layer must be 'hiformer' or 'heterogeneous'; got {layer!r}")
        if rank is not None and layer != "hiformer":
            raise ValueError("Hiformer: rank (low-rank composite projection) needs layer='hiformer'")
        if num_layers < 1 or num_task_tokens < 1:
            raise ValueError(f"Hiformer: num_layers and num_task_tokens must be >= 1; got {num_layers}, {num_task_tokens}")
        self.embed_dim, self.num_layers, self.num_heads, self.head_dim = embed_dim, num_layers, num_heads, head_dim
        self.ffn_dim, self.num_task_tokens, self.layer_type = ffn_dim or 4 * embed_dim, num_task_tokens, layer
        self.rank, self.prune_last_layer, self.dropout = rank, prune_last_layer, dropout
        self.head_dims, self.kernel = tuple(head_dims), kernel
        if layout is not None:
            self.build(layout)

    def _build(self, layout: FieldLayout) -> None:
        tokens = self.num_task_tokens + layout.num_fields
        self.embedding = FieldEmbedding(layout, self.embed_dim)
        self.task_tokens = nn.Parameter(torch.randn(1, self.num_task_tokens, self.embed_dim) * 0.02)
        args = (tokens, self.embed_dim, self.num_heads, self.head_dim, self.ffn_dim)
        if self.layer_type == "hiformer":
            layers = [HiformerLayer(*args, rank=self.rank, dropout=self.dropout, kernel=self.kernel) for _ in range(self.num_layers)]
        else:
            layers = [HeterogeneousAttentionLayer(*args, dropout=self.dropout, kernel=self.kernel) for _ in range(self.num_layers)]
        self.layers = nn.ModuleList(layers)
        self.head = mlp_tower(self.num_task_tokens * self.embed_dim, self.head_dims)

    def encode(self, batch: Batch, prune_last_layer: bool | None = None) -> Tensor:
        """Task-token vectors after the last layer: `(batch, num_task_tokens, embed_dim)`."""
        prune = self.prune_last_layer if prune_last_layer is None else prune_last_layer
        x = self.embedding(batch)
        x = torch.cat([self.task_tokens.expand(x.shape[0], -1, -1), x], dim=1)
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            x = layer(x, queries=self.num_task_tokens if (last and prune) else None)
        return x[:, : self.num_task_tokens]

    def forward(self, batch: Batch) -> Tensor:
        """`batch` -> logits `(batch,)`."""
        return self.head(self.encode(batch).flatten(1)).squeeze(-1)
