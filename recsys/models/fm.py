"""Factorization Machine (Rendle, "Factorization Machines", ICDM 2010).

`logit = b + sum_i w_i + sum_{i<j} <v_i, v_j>`, the pairwise term computed in O(fields * dim) as
`0.5 * sum_k ((sum_i v_ik)^2 - sum_i v_ik^2)` (the paper's Lemma 3.1). Field embeddings `v_i` are
the same as every other model's, so FM is the second-order reference: it cannot express a 3-way
interaction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recsys.models.base import CTRModel
from recsys.models.embedding import Batch, FieldEmbedding, FieldLayout


class FM(CTRModel):
    """Factorization Machine over field embeddings.

    Args:
        embed_dim: factor size `k` of the pairwise term.
        layout: build at once for these fields (default: built later from the DataModule).
    """

    def __init__(self, embed_dim: int = 16, layout: FieldLayout | None = None) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        if layout is not None:
            self.build(layout)

    def _build(self, layout: FieldLayout) -> None:
        self.linear = FieldEmbedding(layout, 1)
        self.embedding = FieldEmbedding(layout, self.embed_dim)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: Batch) -> Tensor:
        """`batch` -> logits `(batch,)`."""
        v = self.embedding(batch)  # (b, fields, k)
        pairwise = 0.5 * (v.sum(1).pow(2) - v.pow(2).sum(1)).sum(-1)
        return self.linear(batch).sum(dim=(1, 2)) + pairwise + self.bias
