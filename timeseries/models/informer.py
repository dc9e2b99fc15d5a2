"""Informer: ProbSparse self-attention, self-attention distilling and a generative decoder.

Zhou, Zhang, Peng, Zhang, Li, Xiong, Zhang, "Informer: Beyond Efficient Transformer for Long
Sequence Time-Series Forecasting" (AAAI 2021), as benchmarked by Zeng et al., "Are Transformers
Effective for Time Series Forecasting?" (AAAI 2023). Encoder self-attention and decoder
self-attention are ProbSparse (`core.attention.probsparse`); between encoder layers a distilling
block (circular conv, BatchNorm, ELU, stride-2 max-pool) halves the sequence; the decoder reads a
start token of `label_len` observed steps plus `pred_len` zeros and emits the whole horizon at once.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from core.attention import Kernel, MultiHeadAttention, ProbSparseAttention
from core.blocks import make_ffn
from timeseries.models.embedding import DEFAULT_MARK_DIM, DataEmbedding, require_marks


class InformerEncoderLayer(nn.Module):
    """ProbSparse self-attention + FFN, post-norm: `norm2(h + ffn(h))`, `h = norm1(x + attn(x))`.

    Args:
        dim: model width. num_heads: heads. ffn_dim: FFN width. factor: ProbSparse factor.
        dropout: residual, FFN and attention dropout. activation: FFN activation.
        kernel: softmax kernel of the active queries.
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, factor: int, dropout: float,
        activation: Literal["gelu", "relu"], kernel: Kernel,
    ) -> None:
        super().__init__()
        self.attention = ProbSparseAttention(dim, num_heads, factor=factor, dropout=dropout, kernel=kernel)
        self.ffn = make_ffn(dim, ffn_dim, activation, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, seq, dim)` -> same shape."""
        x = self.norm1(x + self.dropout(self.attention(x)))
        return self.norm2(x + self.ffn(x))


class DistillingLayer(nn.Module):
    """Self-attention distilling: `MaxPool(ELU(BatchNorm(Conv1d(x))))`, halving the length (ceil(L / 2)).

    Args:
        dim: model width.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size=3, padding=1, padding_mode="circular")
        self.norm = nn.BatchNorm1d(dim)
        self.activation = nn.ELU()
        self.pool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, seq, dim)` -> `(batch, ceil(seq / 2), dim)`."""
        return self.pool(self.activation(self.norm(self.conv(x.transpose(1, 2))))).transpose(1, 2)


class InformerDecoderLayer(nn.Module):
    """Causal ProbSparse self-attention, full cross-attention to the encoder, FFN; post-norm.

    Args are those of `InformerEncoderLayer`.
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, factor: int, dropout: float,
        activation: Literal["gelu", "relu"], kernel: Kernel,
    ) -> None:
        super().__init__()
        self.self_attention = ProbSparseAttention(dim, num_heads, factor=factor, dropout=dropout, kernel=kernel)
        self.cross_attention = MultiHeadAttention(dim, num_heads, dropout=dropout, kernel=kernel)
        self.ffn = make_ffn(dim, ffn_dim, activation, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        """`x: (batch, tgt_len, dim)`, `memory: (batch, src_len, dim)` -> `(batch, tgt_len, dim)`."""
        x = self.norm1(x + self.dropout(self.self_attention(x, causal=True)))
        x = self.norm2(x + self.dropout(self.cross_attention(x, memory)))
        return self.norm3(x + self.ffn(x))


class Informer(nn.Module):
    """Informer forecaster. Defaults are the DLinear paper's settings for its Informer baseline.

    Args:
        seq_len: encoder input length (96).
        pred_len: horizon.
        channels: input (and output) channels.
        label_len: observed steps of the decoder's start token (48).
        d_model: model width (512).
        num_heads: attention heads (8).
        encoder_layers: encoder depth (2).
        decoder_layers: decoder depth (1).
        ffn_dim: feed-forward width (2048).
        factor: ProbSparse sampling factor `c` (3 in the DLinear paper's runs, 5 in Informer's).
        distil: halve the sequence between encoder layers (True).
        dropout: dropout (0.05).
        activation: FFN activation (`gelu`).
        mark_dim: calendar features per step (5 from `timeseries.data`).
        kernel: softmax-attention kernel of the active queries and of the cross-attention.
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
        distil: bool = True,
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
        layer_args = (d_model, num_heads, ffn_dim, factor, dropout, activation, kernel)
        self.encoder = nn.ModuleList(InformerEncoderLayer(*layer_args) for _ in range(encoder_layers))
        self.distilling = nn.ModuleList(
            DistillingLayer(d_model) for _ in range(encoder_layers - 1 if distil else 0)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(InformerDecoderLayer(*layer_args) for _ in range(decoder_layers))
        self.decoder_norm = nn.LayerNorm(d_model)
        self.projection = nn.Linear(d_model, channels)

    def forward(self, x: Tensor, x_mark: Tensor | None = None, y_mark: Tensor | None = None) -> Tensor:
        """`x: (batch, seq_len, channels)`, `x_mark: (batch, seq_len, marks)`, `y_mark: (batch, pred_len, marks)`
        -> `(batch, pred_len, channels)`."""
        require_marks(self, x, x_mark, y_mark, self.pred_len)
        memory = self.encoder_embedding(x, x_mark)
        for i, layer in enumerate(self.encoder):
            memory = layer(memory)
            if i < len(self.distilling):
                memory = self.distilling[i](memory)
        memory = self.encoder_norm(memory)

        start = x[:, x.shape[1] - self.label_len :]
        decoder_x = torch.cat([start, x.new_zeros(x.shape[0], self.pred_len, x.shape[2])], dim=1)
        decoder_mark = torch.cat([x_mark[:, x.shape[1] - self.label_len :], y_mark], dim=1)
        h = self.decoder_embedding(decoder_x, decoder_mark)
        for layer in self.decoder:
            h = layer(h, memory)
        return self.projection(self.decoder_norm(h))[:, -self.pred_len :]
