"""NLinear: Linear on the series minus its last value.

Zeng, Chen, Zhang, Xu, "Are Transformers Effective for Time Series Forecasting?" (AAAI 2023),
Section 4: "to boost the performance of LTSF-Linear when there is a distribution shift in the
dataset, NLinear first subtracts the input by the last value of the sequence. Then, the input
goes through a linear layer, and the subtracted part is added back before making the final
prediction."
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from timeseries.models.linear import TemporalLinear


class NLinear(nn.Module):
    """Normalized Linear: `y = W (x - x_last) + b + x_last` along time, per channel.

    Args:
        seq_len: look-back window (336 in the paper).
        pred_len: horizon (96 / 192 / 336 / 720).
        channels: input channels (7 for ETT with features M).
        individual: one linear layer per channel instead of one shared layer.
    """

    role: ClassVar[str] = "baseline"

    def __init__(self, seq_len: int = 336, pred_len: int = 96, channels: int = 7, individual: bool = False) -> None:
        super().__init__()
        self.seq_len, self.pred_len, self.channels = seq_len, pred_len, channels
        self.linear = TemporalLinear(seq_len, pred_len, channels, individual)

    def forward(self, x: Tensor, x_mark: Tensor | None = None, y_mark: Tensor | None = None) -> Tensor:
        """`x: (batch, seq_len, channels)` -> `(batch, pred_len, channels)`; the marks are ignored."""
        last = x[:, -1:, :]
        return self.linear(x - last) + last
