"""Series decomposition into trend (moving average) and seasonal (remainder) parts.

Introduced by Autoformer (Wu et al., "Autoformer: Decomposition Transformers with Auto-Correlation
for Long-Term Series Forecasting", NeurIPS 2021) and reused by DLinear (Zeng et al., "Are
Transformers Effective for Time Series Forecasting?", AAAI 2023). Both models import it from here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MovingAverage(nn.Module):
    """Moving average along time with edge padding: the series keeps its length.

    The first and last values are repeated `(kernel_size - 1) // 2` times at each end before a
    stride-1 average of `kernel_size` steps, so `trend[t]` averages `x[t - h .. t + h]` with
    out-of-range steps replaced by the nearest edge value (h = (kernel_size - 1) // 2).

    Args:
        kernel_size: window length; odd so that the output keeps the input length (25 in both papers).
    """

    def __init__(self, kernel_size: int = 25) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"moving-average kernel_size must be a positive odd number; got {kernel_size}")
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, time, channels)` -> trend of the same shape."""
        half = (self.kernel_size - 1) // 2
        padded = torch.cat([x[:, :1].expand(-1, half, -1), x, x[:, -1:].expand(-1, half, -1)], dim=1)
        return F.avg_pool1d(padded.transpose(1, 2), self.kernel_size, stride=1).transpose(1, 2)


class SeriesDecomposition(nn.Module):
    """`x -> (seasonal, trend)` with `trend = MovingAverage(x)` and `seasonal = x - trend`.

    Args:
        kernel_size: moving-average window (25).
    """

    def __init__(self, kernel_size: int = 25) -> None:
        super().__init__()
        self.moving_average = MovingAverage(kernel_size)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`x: (batch, time, channels)` -> `(seasonal, trend)`, each the shape of `x`."""
        trend = self.moving_average(x)
        return x - trend, trend
