"""Repeat: the last observed value, repeated over the horizon.

The naive baseline of Zeng et al., "Are Transformers Effective for Time Series Forecasting?"
(AAAI 2023), Table 2 ("Repeat"). It has no parameters; training it is a no-op.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class Repeat(nn.Module):
    """Forecast every future step as the last input value of its channel.

    Args:
        seq_len: look-back window (unused beyond validation; kept so every model shares one config shape).
        pred_len: horizon.
        channels: input channels.
    """

    role: ClassVar[str] = "baseline"

    def __init__(self, seq_len: int = 336, pred_len: int = 96, channels: int = 7) -> None:
        super().__init__()
        self.seq_len, self.pred_len, self.channels = seq_len, pred_len, channels

    def forward(self, x: Tensor, x_mark: Tensor | None = None, y_mark: Tensor | None = None) -> Tensor:
        """`x: (batch, seq_len, channels)` -> `(batch, pred_len, channels)`; the marks are ignored."""
        return x[:, -1:, :].repeat(1, self.pred_len, 1)
