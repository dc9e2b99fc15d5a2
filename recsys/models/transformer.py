"""Vanilla Transformer over field embeddings: the Hiformer paper's own ablation baseline.

Gui et al. (2023), Section 3: a standard Transformer encoder (shared query/key/value projections for
every feature, post-norm layers) over the feature embeddings plus a learned task token, whose final
vector feeds the prediction MLP, exactly as Hiformer does. The paper's point is that this model
cannot tell features apart inside attention; Hiformer's heterogeneous projections fix that.
The layers are `core.blocks.TransformerEncoder` (attention through `core.attention`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from core.attention import Kernel
from core.blocks import TransformerEncoder
from recsys.models.base import CTRModel, mlp_tower
from recsys.models.embedding import Batch, FieldEmbedding, FieldLayout


class FieldTransformer(CTRModel):
    """Transformer encoder over `[task token, e_1, ..., e_F]`; the task token's output is scored.

    Args:
        embed_dim: field embedding size = model width.
        num_layers: encoder layers.
        num_heads: attention heads (`embed_dim` divides by it).
        ffn_dim: feed-forward width (default 4 x `embed_dim`).
        dropout: dropout in attention and FFN.
        head_dims: hidden widths of the MLP on the task token.
        kernel: attention kernel of `core.attention`.
        layout: build at once for these fields (default: built later from the DataModule).
    """

    def __init__(
        self, embed_dim: int = 16, num_layers: int = 2, num_heads: int = 2, ffn_dim: int | None = None,
        dropout: float = 0.0, head_dims: Sequence[int] = (64,), kernel: Kernel = "auto",
        layout: FieldLayout | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim, self.num_layers, self.num_heads = embed_dim, num_layers, num_heads
        self.ffn_dim, self.dropout, self.head_dims, self.kernel = ffn_dim or 4 * embed_dim, dropout, tuple(head_dims), kernel
        if layout is not None:
            self.build(layout)

    def _build(self, layout: FieldLayout) -> None:
        self.embedding = FieldEmbedding(layout, self.embed_dim)
        self.task_token = nn.Parameter(torch.randn(1, 1, self.embed_dim) * 0.02)
        self.encoder = TransformerEncoder(
            self.num_layers, self.embed_dim, self.num_heads, self.ffn_dim, self.dropout, activation="relu", kernel=self.kernel
        )
        self.head = mlp_tower(self.embed_dim, self.head_dims)

    def forward(self, batch: Batch) -> Tensor:
        """`batch` -> logits `(batch,)`."""
        x = self.embedding(batch)
        x = torch.cat([self.task_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.encoder(x)[:, 0]).squeeze(-1)
