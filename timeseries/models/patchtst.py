"""PatchTST: patching, channel independence, RevIN, and a Transformer encoder.

Nie, Nguyen, Sinthong, Kalagnanam, "A Time Series is Worth 64 Words: Long-term Forecasting with
Transformers" (ICLR 2023). Each channel is forecast on its own by one shared network: the
instance-normalized series (RevIN, Kim et al. ICLR 2022) is cut into overlapping patches, each
patch is a token (linear projection + learned position), a Transformer encoder with BatchNorm
mixes the tokens, and a linear head maps the flattened tokens to the horizon; the normalization
is then undone. Defaults are PatchTST/42 on ETTh1 (seq_len 336, patch 16, stride 8: 42 patches).

The reference code also adds the previous layer's attention logits to the next layer's
("residual attention"); that is not part of the paper's method and is not done here: attention
goes through `core.attention.MultiHeadAttention`, whose kernel is selectable.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.attention import Kernel, MultiHeadAttention
from core.blocks import LearnedPositionalEncoding, make_ffn


class RevIN(nn.Module):
    """Reversible instance normalization (Kim et al., ICLR 2022) over the time axis, per series.

    Args:
        channels: channels (only used by the affine parameters).
        eps: added to the variance.
        affine: learn a per-channel scale and shift (off in PatchTST's ETTh1 setting).
    """

    def __init__(self, channels: int, eps: float = 1e-5, affine: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None

    def normalize(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`x: (batch, time, channels)` -> `(normalized x, mean, std)`; mean/std `(batch, 1, channels)`."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        x = (x - mean) / std
        if self.weight is not None:
            x = x * self.weight + self.bias
        return x, mean, std

    def denormalize(self, y: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """Undo `normalize` on a forecast `y: (batch, pred_len, channels)`."""
        if self.weight is not None:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * std + mean


class PatchTSTEncoderLayer(nn.Module):
    """Post-norm encoder layer with BatchNorm (or LayerNorm) over the model width.

    `h = norm1(x + drop(drop(attn(x))))`, `out = norm2(h + ffn(h))` (the reference code drops the
    attention output twice: in the projection and on the residual branch).

    Args:
        dim: model width. num_heads: heads. ffn_dim: FFN width. dropout: dropout (0.3 on ETTh1).
        attn_dropout: dropout on attention weights (0). norm: `batch` (paper) or `layer`.
        activation: FFN activation. kernel: attention kernel.
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, dropout: float, attn_dropout: float,
        norm: Literal["batch", "layer"], activation: Literal["gelu", "relu"], kernel: Kernel,
    ) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(dim, num_heads, dropout=attn_dropout, kernel=kernel)
        self.projection_dropout, self.residual_dropout = nn.Dropout(dropout), nn.Dropout(dropout)
        self.ffn = make_ffn(dim, ffn_dim, activation, dropout)
        self.norm_kind = norm
        self.norm1 = nn.BatchNorm1d(dim) if norm == "batch" else nn.LayerNorm(dim)
        self.norm2 = nn.BatchNorm1d(dim) if norm == "batch" else nn.LayerNorm(dim)

    def _norm(self, norm: nn.Module, x: Tensor) -> Tensor:
        return norm(x.transpose(1, 2)).transpose(1, 2) if self.norm_kind == "batch" else norm(x)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, tokens, dim)` -> same shape."""
        x = self._norm(self.norm1, x + self.residual_dropout(self.projection_dropout(self.attention(x))))
        return self._norm(self.norm2, x + self.ffn(x))


class PatchTST(nn.Module):
    """PatchTST/42 forecaster (supervised, channel-independent).

    Args:
        seq_len: look-back window (336).
        pred_len: horizon.
        channels: input (and output) channels; all share the same weights.
        patch_len: steps per patch (16).
        stride: steps between patch starts (8).
        pad_end: repeat the last value `stride` times before patching (one more patch, as in the paper).
        d_model: token width (16 on ETTh1).
        num_heads: heads (4 on ETTh1).
        num_layers: encoder depth (3).
        ffn_dim: FFN width (128 on ETTh1).
        dropout: dropout of tokens, attention output, FFN (0.3 on ETTh1).
        attn_dropout: dropout on attention weights (0).
        head_dropout: dropout before the linear head (0).
        norm: `batch` (BatchNorm, the paper's choice) or `layer`.
        activation: FFN activation (`gelu`).
        revin: reversible instance normalization (True).
        revin_affine: learnable RevIN scale/shift (False).
        kernel: attention kernel (`core.attention`).
    """

    role: ClassVar[str] = "model"

    def __init__(
        self,
        seq_len: int = 336,
        pred_len: int = 96,
        channels: int = 7,
        patch_len: int = 16,
        stride: int = 8,
        pad_end: bool = True,
        d_model: int = 16,
        num_heads: int = 4,
        num_layers: int = 3,
        ffn_dim: int = 128,
        dropout: float = 0.3,
        attn_dropout: float = 0.0,
        head_dropout: float = 0.0,
        norm: Literal["batch", "layer"] = "batch",
        activation: Literal["gelu", "relu"] = "gelu",
        revin: bool = True,
        revin_affine: bool = False,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        if patch_len > seq_len or stride < 1:
            raise ValueError(f"need 1 <= stride and patch_len <= seq_len; got patch_len {patch_len}, stride {stride}, seq_len {seq_len}")
        self.seq_len, self.pred_len, self.channels = seq_len, pred_len, channels
        self.patch_len, self.stride, self.pad_end = patch_len, stride, pad_end
        self.num_patches = (seq_len - patch_len) // stride + 1 + (1 if pad_end else 0)
        self.kernel = kernel
        self.revin = RevIN(channels, affine=revin_affine) if revin else None
        self.patch_embedding = nn.Linear(patch_len, d_model)
        self.position = LearnedPositionalEncoding(d_model, self.num_patches)
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(
            PatchTSTEncoderLayer(d_model, num_heads, ffn_dim, dropout, attn_dropout, norm, activation, kernel)
            for _ in range(num_layers)
        )
        self.head = nn.Sequential(nn.Flatten(start_dim=1), nn.Dropout(head_dropout), nn.Linear(self.num_patches * d_model, pred_len))

    def forward(self, x: Tensor, x_mark: Tensor | None = None, y_mark: Tensor | None = None) -> Tensor:
        """`x: (batch, seq_len, channels)` -> `(batch, pred_len, channels)`; the marks are ignored."""
        batch, _, channels = x.shape
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        series = x.transpose(1, 2)  # (batch, channels, seq_len)
        if self.pad_end:
            series = F.pad(series, (0, self.stride), mode="replicate")
        patches = series.unfold(-1, self.patch_len, self.stride)  # (batch, channels, num_patches, patch_len)
        tokens = self.dropout(self.position(self.patch_embedding(patches.flatten(0, 1))))  # channel independence
        for layer in self.encoder:
            tokens = layer(tokens)
        y = self.head(tokens).view(batch, channels, self.pred_len).transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y, mean, std)
        return y
