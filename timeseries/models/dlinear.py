"""DLinear: a moving-average decomposition followed by one linear layer per component.

Zeng, Chen, Zhang, Xu, "Are Transformers Effective for Time Series Forecasting?" (AAAI 2023),
Section 4: "DLinear ... first decomposes a raw data input into a trend component by a moving
average kernel and a remainder (seasonal) component. Then, two one-layer linear layers are
applied to each component, and we sum up the two features to get the final prediction."
The decomposition is Autoformer's series decomposition block (kernel 25, edge padding).
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from timeseries.models.decomposition import SeriesDecomposition
from timeseries.models.linear import TemporalLinear


class DLinear(nn.Module):
    """Decomposition-Linear: `y = W_s seasonal(x) + W_t trend(x)` along time, per channel.

    Args:
        seq_len: look-back window (336 in the paper).
        pred_len: horizon (96 / 192 / 336 / 720).
        channels: input channels (7 for ETT with features M).
        individual: one pair of linear layers per channel instead of one shared pair.
        kernel_size: moving-average window of the trend (25 in the paper, odd).
        average_init: start both layers' weights at `1 / seq_len` (every output step the mean of the
            window) instead of nn.Linear's random init (the biases keep nn.Linear's init). The
            reference code did this when the paper's DLinear results were produced (cure-lab/
            LTSF-Linear f7cbf46, 2022-05-27) and commented it out in 7f7a25b (2022-08-15, "Use
            this two lines if you want to visualize the weights"); the current code starts
            randomly. Table 2's DLinear numbers are, on every dataset but ILI, those of the paper's
            first version (May 2022), so this init with the May scripts' settings is what
            reproduces them (ETTh1 with batch 8, lr 1e-4: 0.375/0.406/0.435/0.475 against
            0.375/0.405/0.439/0.472; the August script's batch 32, lr 0.005 with a random init give
            0.631 at 720). ILI's row was re-run after the change, so its settings use False (see
            `timeseries.published`).
    """

    role: ClassVar[str] = "baseline"

    def __init__(
        self, seq_len: int = 336, pred_len: int = 96, channels: int = 7, individual: bool = False,
        kernel_size: int = 25, average_init: bool = True,
    ) -> None:
        super().__init__()
        self.seq_len, self.pred_len, self.channels = seq_len, pred_len, channels
        self.decomposition = SeriesDecomposition(kernel_size)
        self.seasonal = TemporalLinear(seq_len, pred_len, channels, individual, average_init)
        self.trend = TemporalLinear(seq_len, pred_len, channels, individual, average_init)

    def forward(self, x: Tensor, x_mark: Tensor | None = None, y_mark: Tensor | None = None) -> Tensor:
        """`x: (batch, seq_len, channels)` -> `(batch, pred_len, channels)`; the marks are ignored."""
        seasonal, trend = self.decomposition(x)
        return self.seasonal(seasonal) + self.trend(trend)
