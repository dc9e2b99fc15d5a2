"""Linear: one linear layer along time, the simplest LTSF-Linear model.

Zeng, Chen, Zhang, Xu, "Are Transformers Effective for Time Series Forecasting?" (AAAI 2023),
Section 4 "LTSF-Linear". Each channel's future is a weighted sum of its own past:
`y[:, c] = W x[:, c] + b`, with `W: (pred_len, seq_len)` shared by all channels or, with
`individual=True`, one `W` per channel.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn


class TemporalLinear(nn.Module):
    """A linear map along time, shared across channels or one per channel.

    Args:
        seq_len: input steps.
        pred_len: output steps.
        channels: number of channels (only used by `individual`).
        individual: one weight matrix per channel (the paper's "individual" option).
        average_init: start every weight at `1 / seq_len` (each output step the mean of the input
            window) instead of nn.Linear's random init; the biases keep nn.Linear's init.
    """

    def __init__(
        self, seq_len: int, pred_len: int, channels: int, individual: bool = False, average_init: bool = False
    ) -> None:
        super().__init__()
        self.individual = individual
        if individual:
            # one nn.Linear(seq_len, pred_len) per channel, stored as one tensor; nn.Linear's init
            bound = 1.0 / math.sqrt(seq_len)
            self.weight = nn.Parameter(torch.empty(channels, pred_len, seq_len).uniform_(-bound, bound))
            self.bias = nn.Parameter(torch.empty(channels, pred_len).uniform_(-bound, bound))
        else:
            self.linear = nn.Linear(seq_len, pred_len)
        if average_init:
            with torch.no_grad():
                (self.weight if individual else self.linear.weight).fill_(1.0 / seq_len)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, seq_len, channels)` -> `(batch, pred_len, channels)`."""
        if self.individual:
            return torch.einsum("blc,cpl->bpc", x, self.weight) + self.bias.T
        return self.linear(x.transpose(1, 2)).transpose(1, 2)


class Linear(nn.Module):
    """LTSF "Linear": `y = W x + b` along time for every channel.

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
        return self.linear(x)
