"""DCN-v2: Wang, Shivanna, Cheng, Jain, Lin, Hong, Chi, "DCN V2: Improved Deep & Cross Network and
Practical Lessons for Web-scale Learning to Rank Systems" (WWW 2021).

Cross layer (Eq. 1): `x_{l+1} = x_0 * (W_l x_l + b_l) + x_l`, with a full `d x d` matrix `W_l`
(or its low-rank form `U_l V_l^T`, Eq. 2, the DCN-Mix idea without the mixture). `l` cross layers
express feature interactions up to degree `l + 1`. The deep network is stacked on the cross
network (the paper's "stacked" structure) or runs beside it ("parallel") and the outputs are
concatenated before the final logit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from recsys.models.base import CTRModel, mlp_tower
from recsys.models.embedding import Batch, FieldEmbedding, FieldLayout


class CrossLayer(nn.Module):
    """`x_{l+1} = x_0 * (W x_l + b) + x_l`; `W = U V^T` when `rank` is given."""

    def __init__(self, dim: int, rank: int | None = None) -> None:
        super().__init__()
        if rank is None:
            self.weight = nn.Linear(dim, dim)
        else:
            self.weight = nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim))

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        return x0 * self.weight(x) + x


class DCNv2(CTRModel):
    """Deep & Cross Network v2.

    Args:
        embed_dim: field embedding size.
        cross_layers: number of cross layers (degree of the explicit interactions is this + 1).
        hidden_dims: widths of the deep network's ReLU layers.
        structure: `stacked` (cross then deep, the paper's best on Criteo) or `parallel`.
        rank: low-rank cross matrices `U V^T` of this rank; None = full rank (the paper's DCN-v2).
        dropout: dropout in the deep network.
        layout: build at once for these fields (default: built later from the DataModule).
    """

    def __init__(
        self, embed_dim: int = 16, cross_layers: int = 3, hidden_dims: Sequence[int] = (256, 256),
        structure: Literal["stacked", "parallel"] = "stacked", rank: int | None = None, dropout: float = 0.0,
        layout: FieldLayout | None = None,
    ) -> None:
        super().__init__()
        if structure not in ("stacked", "parallel"):
            raise ValueError(f"DCNv2: structure must be 'stacked' or 'parallel'; got {structure!r}")
        self.embed_dim, self.cross_layers, self.hidden_dims = embed_dim, cross_layers, tuple(hidden_dims)
        self.structure, self.rank, self.dropout = structure, rank, dropout
        if layout is not None:
            self.build(layout)

    def _build(self, layout: FieldLayout) -> None:
        dim = layout.num_fields * self.embed_dim
        self.embedding = FieldEmbedding(layout, self.embed_dim)
        self.cross = nn.ModuleList(CrossLayer(dim, self.rank) for _ in range(self.cross_layers))
        self.deep = mlp_tower(dim, self.hidden_dims, self.dropout, out_dim=None)
        deep_out = self.hidden_dims[-1] if self.hidden_dims else dim
        self.head = nn.Linear(deep_out if self.structure == "stacked" else dim + deep_out, 1)

    def forward(self, batch: Batch) -> Tensor:
        """`batch` -> logits `(batch,)`."""
        x0 = self.embedding(batch).flatten(1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        if self.structure == "stacked":
            return self.head(self.deep(x)).squeeze(-1)
        return self.head(torch.cat([x, self.deep(x0)], dim=-1)).squeeze(-1)
