"""Autoformer: series decomposition blocks inside the network and Auto-Correlation attention.

Wu, Xu, Wang, Long, "Autoformer: Decomposition Transformers with Auto-Correlation for Long-Term
Series Forecasting" (NeurIPS 2021), as benchmarked by Zeng et al., "Are Transformers Effective for
Time Series Forecasting?" (AAAI 2023). Every sub-layer is followed by a moving-average
decomposition that keeps the seasonal part in the stream and, in the decoder, accumulates the
trend parts; attention is the FFT-based Auto-Correlation of `core.attention.autocorrelation`.
The decoder starts from the decomposition of the last `label_len` observed steps: their seasonal
part padded with zeros, their trend padded with the input mean.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from core.attention import AutoCorrelationAttention
from core.blocks import make_ffn
from timeseries.models.decomposition import SeriesDecomposition
from timeseries.models.embedding import DEFAULT_MARK_DIM, DataEmbedding, require_marks


class SeasonalLayerNorm(nn.Module):
    """LayerNorm over features, then the mean over time removed (the paper's seasonal-part norm).

    Args:
        dim: model width.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, time, dim)` -> same shape."""
        x = self.norm(x)
        return x - x.mean(dim=1, keepdim=True)


class AutoformerEncoderLayer(nn.Module):
    """Auto-Correlation and FFN, each followed by a decomposition that drops the trend.

    Args:
        dim: model width. num_heads: heads. ffn_dim: FFN width. factor: Auto-Correlation factor.
        moving_avg: decomposition kernel. dropout: residual / FFN dropout. activation: FFN activation.
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, factor: int, moving_avg: int, dropout: float,
        activation: Literal["gelu", "relu"],
    ) -> None:
        super().__init__()
        self.attention = AutoCorrelationAttention(dim, num_heads, factor=factor)
        self.ffn = make_ffn(dim, ffn_dim, activation, dropout)
        self.decomposition1, self.decomposition2 = SeriesDecomposition(moving_avg), SeriesDecomposition(moving_avg)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, seq, dim)` -> seasonal part, same shape."""
        x, _ = self.decomposition1(x + self.dropout(self.attention(x)))
        x, _ = self.decomposition2(x + self.ffn(x))
        return x


class AutoformerDecoderLayer(nn.Module):
    """Self Auto-Correlation, cross Auto-Correlation and FFN, each followed by a decomposition;
    the three trend parts are summed and projected to the output channels.

    Args are those of `AutoformerEncoderLayer`, plus `channels` (output channels of the trend).
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, factor: int, moving_avg: int, dropout: float,
        activation: Literal["gelu", "relu"], channels: int,
    ) -> None:
        super().__init__()
        self.self_attention = AutoCorrelationAttention(dim, num_heads, factor=factor)
        self.cross_attention = AutoCorrelationAttention(dim, num_heads, factor=factor)
        self.ffn = make_ffn(dim, ffn_dim, activation, dropout)
        self.decompositions = nn.ModuleList(SeriesDecomposition(moving_avg) for _ in range(3))
        self.trend_projection = nn.Conv1d(dim, channels, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """`x: (batch, tgt, dim)`, `memory: (batch, src, dim)` -> `(seasonal (batch, tgt, dim), trend (batch, tgt, channels))`."""
        x, trend1 = self.decompositions[0](x + self.dropout(self.self_attention(x)))
        x, trend2 = self.decompositions[1](x + self.dropout(self.cross_attention(x, memory)))
        x, trend3 = self.decompositions[2](x + self.ffn(x))
        trend = self.trend_projection((trend1 + trend2 + trend3).transpose(1, 2)).transpose(1, 2)
        return x, trend


class Autoformer(nn.Module):
    """Autoformer forecaster. Defaults are the DLinear paper's settings for its Autoformer baseline.

    Args:
        seq_len: encoder input length (96).
        pred_len: horizon.
        channels: input (and output) channels.
        label_len: observed steps that start the decoder (48).
        d_model: model width (512).
        num_heads: heads (8).
        encoder_layers: encoder depth (2).
        decoder_layers: decoder depth (1).
        ffn_dim: feed-forward width (2048).
        factor: Auto-Correlation factor `c`: `floor(c ln L)` lags (3 in the DLinear paper's runs).
        moving_avg: decomposition kernel (25).
        dropout: dropout (0.05).
        activation: FFN activation (`gelu`).
        mark_dim: calendar features per step (5 from `timeseries.data`).
    """

    role: ClassVar[str] = "model"

    def __init__(
        self,
        seq_len: int = 96,
        pred_len: int = 96,
        channels: int = 7,
        label_len: int = 48,
        d_model: int = 512,
        num_heads: int = 8,
        encoder_layers: int = 2,
        decoder_layers: int = 1,
        ffn_dim: int = 2048,
        factor: int = 3,
        moving_avg: int = 25,
        dropout: float = 0.05,
        activation: Literal["gelu", "relu"] = "gelu",
        mark_dim: int = DEFAULT_MARK_DIM,
    ) -> None:
        super().__init__()
        if not 0 <= label_len <= seq_len:
            raise ValueError(f"label_len must be in [0, seq_len={seq_len}]; got {label_len}")
        self.seq_len, self.pred_len, self.channels, self.label_len = seq_len, pred_len, channels, label_len
        self.decomposition = SeriesDecomposition(moving_avg)
        self.encoder_embedding = DataEmbedding(channels, d_model, mark_dim, dropout, positional=False)
        self.decoder_embedding = DataEmbedding(channels, d_model, mark_dim, dropout, positional=False)
        self.encoder = nn.ModuleList(
            AutoformerEncoderLayer(d_model, num_heads, ffn_dim, factor, moving_avg, dropout, activation)
            for _ in range(encoder_layers)
        )
        self.encoder_norm = SeasonalLayerNorm(d_model)
        self.decoder = nn.ModuleList(
            AutoformerDecoderLayer(d_model, num_heads, ffn_dim, factor, moving_avg, dropout, activation, channels)
            for _ in range(decoder_layers)
        )
        self.decoder_norm = SeasonalLayerNorm(d_model)
        self.projection = nn.Linear(d_model, channels)

    def forward(self, x: Tensor, x_mark: Tensor | None = None, y_mark: Tensor | None = None) -> Tensor:
        """`x: (batch, seq_len, channels)`, `x_mark: (batch, seq_len, marks)`, `y_mark: (batch, pred_len, marks)`
        -> `(batch, pred_len, channels)`."""
        require_marks(self, x, x_mark, y_mark, self.pred_len)
        start = x.shape[1] - self.label_len
        seasonal, trend = self.decomposition(x)
        mean = x.mean(dim=1, keepdim=True).expand(-1, self.pred_len, -1)
        trend = torch.cat([trend[:, start:], mean], dim=1)
        seasonal = torch.cat([seasonal[:, start:], x.new_zeros(x.shape[0], self.pred_len, x.shape[2])], dim=1)

        memory = self.encoder_embedding(x, x_mark)
        for layer in self.encoder:
            memory = layer(memory)
        memory = self.encoder_norm(memory)

        h = self.decoder_embedding(seasonal, torch.cat([x_mark[:, start:], y_mark], dim=1))
        for layer in self.decoder:
            h, layer_trend = layer(h, memory)
            trend = trend + layer_trend
        return (trend + self.projection(self.decoder_norm(h)))[:, -self.pred_len :]
