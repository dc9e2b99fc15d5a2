"""AutoInt: Song, Shi, Xiao, Duan, Xu, Zhang, Tang, "AutoInt: Automatic Feature Interaction Learning
via Self-Attentive Neural Networks" (CIKM 2019).

Each interacting layer is multi-head self-attention over the field embeddings (Eq. 5-6, one shared
`W_Query, W_Key, W_Value` for all fields), the heads concatenated, plus a residual projection
`W_Res e_m` and a ReLU (Eq. 7-8). The final output concatenates every field's vector into one
logistic unit (Eq. 9). Paper defaults: embedding 16, 3 layers, 2 heads, attention size 32.
The softmax(QK^T)V goes through `core.attention.attention`.
"""

from __future__ import annotations

from torch import Tensor, nn

from core.attention import Kernel, attention, merge_heads, split_qkv
from recsys.models.base import CTRModel
from recsys.models.embedding import Batch, FieldEmbedding, FieldLayout


class InteractingLayer(nn.Module):
    """`relu(MultiHead(e) + W_res e)` over fields: `(batch, fields, in_dim) -> (batch, fields, heads * head_dim)`."""

    def __init__(self, in_dim: int, num_heads: int, head_dim: int, residual: bool = True, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.kernel = num_heads, head_dim, kernel
        self.qkv = nn.Linear(in_dim, 3 * num_heads * head_dim, bias=False)
        self.residual = nn.Linear(in_dim, num_heads * head_dim, bias=False) if residual else None

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = split_qkv(self.qkv(x), self.num_heads)
        out = merge_heads(attention(q, k, v, kernel=self.kernel))
        if self.residual is not None:
            out = out + self.residual(x)
        return out.relu()


class AutoInt(CTRModel):
    """AutoInt (without the "+" DNN branch).

    Args:
        embed_dim: field embedding size (16 in the paper).
        num_layers: interacting layers (3).
        num_heads: attention heads (2).
        head_dim: attention size per head `d'` (32 in the paper's Table 2 setting of d'=32).
        residual: the `W_Res` residual connection.
        kernel: attention kernel of `core.attention`.
        layout: build at once for these fields (default: built later from the DataModule).
    """

    role = "baseline"

    def __init__(
        self, embed_dim: int = 16, num_layers: int = 3, num_heads: int = 2, head_dim: int = 32,
        residual: bool = True, kernel: Kernel = "auto", layout: FieldLayout | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim, self.num_layers, self.num_heads, self.head_dim = embed_dim, num_layers, num_heads, head_dim
        self.residual, self.kernel = residual, kernel
        if layout is not None:
            self.build(layout)

    def _build(self, layout: FieldLayout) -> None:
        self.embedding = FieldEmbedding(layout, self.embed_dim)
        width = self.num_heads * self.head_dim
        self.layers = nn.ModuleList(
            InteractingLayer(self.embed_dim if i == 0 else width, self.num_heads, self.head_dim, self.residual, self.kernel)
            for i in range(self.num_layers)
        )
        self.head = nn.Linear(layout.num_fields * (width if self.num_layers else self.embed_dim), 1)

    def forward(self, batch: Batch) -> Tensor:
        """`batch` -> logits `(batch,)`."""
        x = self.embedding(batch)
        for layer in self.layers:
            x = layer(x)
        return self.head(x.flatten(1)).squeeze(-1)
