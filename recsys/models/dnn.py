"""DNN: an MLP over the concatenated field embeddings (the "deep" part of Wide & Deep, Cheng et
al., DLRS 2016, and the DNN baseline of the DCN-v2 and AutoInt papers)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from recsys.models.base import CTRModel, mlp_tower
from recsys.models.embedding import Batch, FieldEmbedding, FieldLayout


class DNN(CTRModel):
    """MLP on `concat(e_1, ..., e_F)`.

    Args:
        embed_dim: field embedding size.
        hidden_dims: widths of the ReLU layers.
        dropout: dropout after each hidden layer.
        layout: build at once for these fields (default: built later from the DataModule).
    """

    def __init__(
        self, embed_dim: int = 16, hidden_dims: Sequence[int] = (256, 256, 256), dropout: float = 0.0,
        layout: FieldLayout | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim, self.hidden_dims, self.dropout = embed_dim, tuple(hidden_dims), dropout
        if layout is not None:
            self.build(layout)

    def _build(self, layout: FieldLayout) -> None:
        self.embedding = FieldEmbedding(layout, self.embed_dim)
        self.mlp = mlp_tower(layout.num_fields * self.embed_dim, self.hidden_dims, self.dropout)

    def forward(self, batch: Batch) -> Tensor:
        """`batch` -> logits `(batch,)`."""
        return self.mlp(self.embedding(batch).flatten(1)).squeeze(-1)
