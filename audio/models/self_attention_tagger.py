"""The self-attention music tagger (Won, Chun, Serra 2019, "Toward Interpretable Music Tagging with Self-Attention").

A CNN front end reads the log-mel spectrogram, pools frequency away and keeps time, so each column
of its output is one token of a sequence; a [CLS] token is prepended, Transformer encoder layers
(`core.blocks.TransformerEncoder`, BERT-style post-norm with GELU) relate the tokens, and a pooler
(linear + tanh on [CLS], as BERT's) feeds the sigmoid multi-label head. The [CLS] row of the
attention weights says which segments of the clip drove the tags (`attention_maps`).

Defaults are the authors' maintained re-implementation (`CNNSA` in minzwon/sota-music-tagging-models):
seven residual 3x3 blocks (128, 128, 256 channels with stride 2, then four 256-channel blocks with
stride 2 in frequency only), 2 encoder layers of width 256, 8 heads, FFN 1024, 15 s inputs at 16 kHz
(938 frames of 128 mels -> 118 tokens), about 10.5M parameters. Differences, each for a reason:
the [CLS] vector is learned (theirs is a fixed random vector); one dropout rate (0.4, their hidden
dropout) serves attention weights and hidden states (theirs: 0.5 on attention weights), as
`core`'s layer has one; whatever frequency rows remain after the front end are max-pooled (one row
remains for 128 mels, where this equals their squeeze). Like `CNNSA`, no positional encoding is
added: the convolutions see local context and the tags are clip-level.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from audio.models.mel import check_mel, spec_batchnorm
from core.attention.functional import Kernel
from core.blocks import TransformerEncoder, trunc_normal_


class ResBlock2d(nn.Module):
    """Two 3x3 conv + BatchNorm layers with a residual connection (a strided 3x3 conv where the shape changes).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the first conv (and of the shortcut), int or (freq, time).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int | tuple[int, int] = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        changes = stride != 1 or in_channels != out_channels
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.BatchNorm2d(out_channels)
        ) if changes else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, in_channels, freq, time)` -> `(batch, out_channels, freq', time')`."""
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + self.shortcut(x))


class SelfAttentionTagger(nn.Module):
    """CNN front end + [CLS] + Transformer encoder + sigmoid head over a log-mel clip.

    Args:
        num_tags: outputs (tags) of the head; the data's tag count (50 for MagnaTagATune's top 50).
        n_channels: channels of the first front-end blocks; the later ones and the encoder width are
            twice this (the paper: 128, so width 256).
        num_layers: Transformer encoder layers (paper: 2).
        num_heads: attention heads (paper: 8).
        ffn_dim: encoder feed-forward width; default 4 x width (paper: 1024).
        dropout: dropout on attention weights and hidden states in the encoder (paper: 0.4).
        head_dropout: dropout before the output layer (paper: 0.5).
        kernel: attention kernel of the encoder (`core.attention`), one config line.
    """

    role: ClassVar[str] = "model"
    time_stride: ClassVar[int] = 8  # spectrogram frames per token: three stride-2 blocks in time

    def __init__(self, num_tags: int = 50, n_channels: int = 128, num_layers: int = 2, num_heads: int = 8,
                 ffn_dim: int | None = None, dropout: float = 0.4, head_dropout: float = 0.5,
                 kernel: Kernel = "auto") -> None:
        super().__init__()
        c = n_channels
        dim = 2 * c
        self.num_tags, self.kernel, self.dim = num_tags, kernel, dim
        self.spec_bn = spec_batchnorm()
        self.front = nn.Sequential(
            ResBlock2d(1, c, 2), ResBlock2d(c, c, 2), ResBlock2d(c, dim, 2),
            *(ResBlock2d(dim, dim, (2, 1)) for _ in range(4)),
        )
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        trunc_normal_(self.cls, std=0.02)
        self.encoder = TransformerEncoder(num_layers, dim, num_heads, ffn_dim or 4 * dim, dropout=dropout,
                                          activation="gelu", norm_first=False, kernel=kernel)
        self.pooler = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(dim, num_tags)

    def tokens(self, mel: Tensor) -> Tensor:
        """`mel: (batch, n_mels, frames)` -> `(batch, 1 + frames // 8 (about), width)`: [CLS] then one token per time step."""
        x = self.front(self.spec_bn(check_mel(mel, type(self).__name__)))
        x = x.amax(dim=2).transpose(1, 2)  # (batch, time, width): frequency pooled away
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)

    def forward(self, mel: Tensor) -> Tensor:
        """`mel: (batch, n_mels, frames)` log-mel dB -> `(batch, num_tags)` logits (sigmoid gives tag probabilities)."""
        h = self.encoder(self.tokens(mel))
        return self.head(self.dropout(self.pooler(h[:, 0])))

    @torch.no_grad()
    def attention_maps(self, mel: Tensor) -> list[Tensor]:
        """Attention weights of every encoder layer, `[(batch, heads, tokens, tokens)]`, token 0 = [CLS].

        Each row sums to one. Row 0 of the last layer over tokens 1.. is the heat map over time
        (token t covers frames `[8 (t - 1), 8 t)`).
        """
        x = self.tokens(mel)
        maps = []
        for layer in self.encoder.layers:
            maps.append(layer.self_attn.attention_weights(layer.norm1(x) if layer.norm_first else x))
            x = layer(x)
        return maps
