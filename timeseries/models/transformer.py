"""Vanilla Transformer forecaster: encoder-decoder with the "timeF" embedding and a start token.

Vaswani et al., "Attention Is All You Need" (NeurIPS 2017), in the long-term forecasting form of
the Informer / Autoformer code bases that Zeng et al., "Are Transformers Effective for Time Series
Forecasting?" (AAAI 2023), benchmark against: the encoder reads `seq_len` steps; the decoder reads
the last `label_len` observed steps (the "start token") followed by `pred_len` zeros, with the
calendar features of all of them, attends causally to itself and fully to the encoder, and the
forecast is its last `pred_len` outputs (one forward pass, no autoregressive loop).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from core.attention import Kernel
from core.blocks import TransformerDecoderLayer, TransformerEncoderLayer
from timeseries.models.embedding import DEFAULT_MARK_DIM, DataEmbedding, require_marks


class Transformer(nn.Module):
    """Encoder-decoder Transformer forecaster (post-norm, as in the reference code).

    Defaults are the DLinear paper's settings for the Transformer baselines on ETT.

    Args:
        seq_len: encoder input length (96 for the Transformer baselines).
        pred_len: horizon.
        channels: input (and output) channels.
        label_len: observed steps fed to the decoder before the horizon (48).
        d_model: model width (512).
        num_heads: attention heads (8).
        encoder_layers: encoder depth (2).
        decoder_layers: decoder depth (1).
        ffn_dim: feed-forward width (2048).
        dropout: dropout of embeddings, attention weights, residual branches and FFN (0.05).
        activation: FFN activation (`gelu`).
        mark_dim: calendar features per step (5 from `timeseries.data`).
        kernel: softmax-attention kernel of every attention layer (`core.attention`).
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
        dropout: float = 0.05,
        activation: Literal["gelu", "relu"] = "gelu",
        mark_dim: int = DEFAULT_MARK_DIM,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        if not 0 <= label_len <= seq_len:
            raise ValueError(f"label_len must be in [0, seq_len={seq_len}]; got {label_len}")
        self.seq_len, self.pred_len, self.channels, self.label_len = seq_len, pred_len, channels, label_len
        self.kernel = kernel
        self.encoder_embedding = DataEmbedding(channels, d_model, mark_dim, dropout)
        self.decoder_embedding = DataEmbedding(channels, d_model, mark_dim, dropout)
        self.encoder = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, ffn_dim, dropout, activation, kernel=kernel)
            for _ in range(encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(
            TransformerDecoderLayer(d_model, num_heads, ffn_dim, dropout, activation, kernel=kernel)
            for _ in range(decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.projection = nn.Linear(d_model, channels)

    def forward(self, x: Tensor, x_mark: Tensor | None = None, y_mark: Tensor | None = None) -> Tensor:
        """`x: (batch, seq_len, channels)`, `x_mark: (batch, seq_len, marks)`, `y_mark: (batch, pred_len, marks)`
        -> `(batch, pred_len, channels)`."""
        require_marks(self, x, x_mark, y_mark, self.pred_len)
        memory = self.encoder_embedding(x, x_mark)
        for layer in self.encoder:
            memory = layer(memory)
        memory = self.encoder_norm(memory)

        start = x[:, x.shape[1] - self.label_len :]
        decoder_x = torch.cat([start, x.new_zeros(x.shape[0], self.pred_len, x.shape[2])], dim=1)
        decoder_mark = torch.cat([x_mark[:, x.shape[1] - self.label_len :], y_mark], dim=1)
        h = self.decoder_embedding(decoder_x, decoder_mark)
        for layer in self.decoder:
            h = layer(h, memory, causal=True)
        return self.projection(self.decoder_norm(h))[:, -self.pred_len :]
