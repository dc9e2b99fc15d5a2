"""The input layer every CTR model shares: one embedding per field.

A row of a click log is a set of fields of three kinds (see `recsys.data.schema`):
categorical fields (one id each, 0 = out-of-vocabulary), multi-valued fields (a padded list of ids,
0 = padding, 1 = out-of-vocabulary, mean-pooled) and numeric fields (a standardized scalar that
scales its field's vector, as in AutoInt). `FieldEmbedding` maps a batch to
`(batch, num_fields, dim)`; with `dim=1` it gives the first-order weights of LR and FM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

Batch = dict[str, Tensor]


@dataclass(frozen=True)
class FieldLayout:
    """Sizes of the model input, fitted on the training split by `recsys.data.Preprocessor`.

    Args:
        categorical: vocabulary size of each categorical field (index 0 = OOV / missing).
        multi_valued: vocabulary size of each multi-valued field (0 = padding, 1 = OOV).
        numeric: number of numeric (dense) fields.
        names: field names in model order: categorical, multi-valued, numeric.
    """

    categorical: tuple[int, ...] = ()
    multi_valued: tuple[int, ...] = ()
    numeric: int = 0
    names: tuple[str, ...] = ()

    @property
    def num_fields(self) -> int:
        """Fields the model sees (one embedding each)."""
        return len(self.categorical) + len(self.multi_valued) + self.numeric

    def to_dict(self) -> dict:
        """Plain-data form (for checkpoints loaded with `weights_only=True`)."""
        return {"categorical": list(self.categorical), "multi_valued": list(self.multi_valued),
                "numeric": self.numeric, "names": list(self.names)}

    @classmethod
    def from_dict(cls, data: dict) -> FieldLayout:
        return cls(tuple(data["categorical"]), tuple(data["multi_valued"]), int(data["numeric"]), tuple(data["names"]))


def _offsets(sizes: tuple[int, ...]) -> Tensor:
    return torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0) if sizes else torch.zeros(0, dtype=torch.long)


class FieldEmbedding(nn.Module):
    """`batch -> (batch, num_fields, dim)`: one vector per field.

    Args:
        layout: the fields (from the DataModule).
        dim: embedding size.
        init_std: standard deviation of the normal initialization (0.05: with 0.01 the products of
            embeddings that multiplicative interactions need start too small to learn in a few epochs).
    """

    def __init__(self, layout: FieldLayout, dim: int, init_std: float = 0.05) -> None:
        super().__init__()
        if layout.num_fields == 0:
            raise ValueError("FieldEmbedding: the layout has no fields")
        self.layout, self.dim = layout, dim
        self.register_buffer("cat_offsets", _offsets(layout.categorical), persistent=False)
        self.register_buffer("multi_offsets", _offsets(layout.multi_valued), persistent=False)
        self.categorical = nn.Embedding(max(1, sum(layout.categorical)), dim)
        self.multi_valued = nn.Embedding(max(1, sum(layout.multi_valued)), dim)
        self.numeric = nn.Parameter(torch.empty(layout.numeric, dim))
        for weight in (self.categorical.weight, self.multi_valued.weight, self.numeric):
            nn.init.normal_(weight, std=init_std)

    def forward(self, batch: Batch) -> Tensor:
        """`batch["categorical"]: (b, n_cat)`, `["multi_valued"]: (b, n_multi, len)`, `["numeric"]: (b, n_num)`."""
        parts = []
        if self.layout.categorical:
            parts.append(self.categorical(batch["categorical"] + self.cat_offsets))
        if self.layout.multi_valued:
            ids = batch["multi_valued"]
            keep = (ids > 0).unsqueeze(-1).to(self.multi_valued.weight.dtype)
            vectors = self.multi_valued(ids + self.multi_offsets[:, None]) * keep
            parts.append(vectors.sum(2) / keep.sum(2).clamp_min(1.0))
        if self.layout.numeric:
            parts.append(batch["numeric"].unsqueeze(-1) * self.numeric)
        return torch.cat(parts, dim=1)
