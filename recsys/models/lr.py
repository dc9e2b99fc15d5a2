"""Logistic regression on one-hot fields: the first-order CTR baseline.

`logit = b + sum_i w_i(x_i)`: one learned weight per categorical value, the mean weight of a
multi-valued field's values, `w_i * x_i` for a numeric field (McMahan et al., "Ad Click Prediction:
a View from the Trenches", KDD 2013, train this model at scale; here it is trained like the rest).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recsys.models.base import CTRModel
from recsys.models.embedding import Batch, FieldEmbedding, FieldLayout


class LogisticRegression(CTRModel):
    """Linear model over the fields.

    Args:
        layout: build at once for these fields (default: built later from the DataModule).
    """

    def __init__(self, layout: FieldLayout | None = None) -> None:
        super().__init__()
        if layout is not None:
            self.build(layout)

    def _build(self, layout: FieldLayout) -> None:
        self.weights = FieldEmbedding(layout, 1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: Batch) -> Tensor:
        """`batch` (see `FieldEmbedding`) -> logits `(batch,)`."""
        return self.weights(batch).sum(dim=(1, 2)) + self.bias
