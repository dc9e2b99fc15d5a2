"""What every CTR model shares: lazy construction from the data's `FieldLayout`, and the MLP tower.

Vocabulary sizes are only known once the training split has been read, so a model is configured
with its hyper-parameters and built by `build(layout)`: `CTRTask.configure_model` calls it with the
DataModule's layout before the optimizer exists (Lightning's `configure_model` hook). Passing
`layout=` to a constructor builds at once (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn

from recsys.models.embedding import Batch, FieldLayout


class CTRModel(nn.Module):
    """Base of the CTR models: `forward(batch) -> logits (batch,)`, built from a `FieldLayout`."""

    role: ClassVar[str] = "baseline"
    kernel: str = "none"

    def __init__(self) -> None:
        super().__init__()
        self.layout: FieldLayout | None = None

    @property
    def built(self) -> bool:
        return self.layout is not None

    def build(self, layout: FieldLayout) -> CTRModel:
        """Create the layers for `layout` (once; a second, different layout is an error)."""
        if self.layout is not None:
            if layout != self.layout:
                raise ValueError(f"{type(self).__name__} was built for {self.layout} but the data gives {layout}")
            return self
        self.layout = layout
        self._build(layout)
        return self

    def _build(self, layout: FieldLayout) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _build(layout)")

    def forward(self, batch: Batch) -> Tensor:  # pragma: no cover - every model overrides it
        raise NotImplementedError


def mlp_tower(in_dim: int, hidden: Sequence[int], dropout: float = 0.0, out_dim: int | None = 1) -> nn.Sequential:
    """Linear-ReLU-Dropout layers of widths `hidden`, then a linear layer to `out_dim` (None: no output layer)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)
