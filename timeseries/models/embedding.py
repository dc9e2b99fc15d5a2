"""Input embedding of the Transformer forecasters: values + calendar features (+ positions).

The "timeF" data embedding of Informer (Zhou et al., AAAI 2021) and Autoformer (Wu et al.,
NeurIPS 2021), used by the DLinear paper's Transformer baselines (Zeng et al., AAAI 2023):
a width-3 circular convolution over the values of all channels, a bias-free linear map of the
calendar features (`timeseries.data.time_features`), and the fixed sinusoidal position table of
Vaswani et al. (omitted by Autoformer). The Transformer, Informer and Autoformer models import it
from here.
"""

from __future__ import annotations

from torch import Tensor, nn

from core.blocks import SinusoidalPositionalEncoding

DEFAULT_MARK_DIM = 5  # timeseries.data.NUM_TIME_FEATURES; models do not import the data package


class TokenEmbedding(nn.Module):
    """Value embedding: `Conv1d(channels, dim, kernel 3, circular padding, no bias)` along time.

    Args:
        channels: input channels.
        dim: model width.
    """

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, dim, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, time, channels)` -> `(batch, time, dim)`."""
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class DataEmbedding(nn.Module):
    """`dropout(TokenEmbedding(x) + Linear(x_mark) [+ sinusoidal positions])`.

    Args:
        channels: input channels.
        dim: model width.
        mark_dim: number of calendar features per step (5 from `timeseries.data`).
        dropout: dropout on the sum (0.05 in the DLinear paper's Transformer runs).
        positional: add the sinusoidal position table (False for Autoformer).
        max_len: longest sequence the position table covers.
    """

    def __init__(
        self, channels: int, dim: int, mark_dim: int = DEFAULT_MARK_DIM, dropout: float = 0.05,
        positional: bool = True, max_len: int = 5000,
    ) -> None:
        super().__init__()
        self.value = TokenEmbedding(channels, dim)
        self.time = nn.Linear(mark_dim, dim, bias=False)
        self.position = SinusoidalPositionalEncoding(dim, max_len) if positional else nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, x_mark: Tensor) -> Tensor:
        """`x: (batch, time, channels)`, `x_mark: (batch, time, mark_dim)` -> `(batch, time, dim)`."""
        return self.dropout(self.position(self.value(x) + self.time(x_mark)))


def require_marks(model: nn.Module, x: Tensor, x_mark: Tensor | None, y_mark: Tensor | None, pred_len: int) -> None:
    """Raise a clear error when a Transformer forecaster is called without calendar features."""
    if x_mark is None or y_mark is None:
        raise ValueError(
            f"{type(model).__name__} needs the calendar features x_mark (batch, seq_len, marks) and "
            "y_mark (batch, pred_len, marks); timeseries.data.ETTDataModule provides them"
        )
    if x_mark.shape[:2] != x.shape[:2] or y_mark.shape[1] != pred_len:
        raise ValueError(
            f"{type(model).__name__}: x {tuple(x.shape)}, x_mark {tuple(x_mark.shape)} and y_mark {tuple(y_mark.shape)} "
            f"do not match (y_mark must cover pred_len={pred_len} steps)"
        )
