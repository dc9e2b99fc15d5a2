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

`front_end="pons"` is the paper's own front end instead (the `pons_won` model of the original code,
minzwon/self-attention-music-tagging; `audio/models/pons_front_end.py`): timbre filters over 0.9 and
0.4 of the mel axis and temporal filters of 33-165 frames over the energy envelope, one token per
frame, and the fixed sinusoidal positions of that code added to the frame tokens ([CLS] gets none).
Its temporal filters see the beat period, which the residual front end's 128-ms tokens do not learn
at CPU budgets (audio/README.md); the CPU config uses it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from audio.models.mel import check_mel, spec_batchnorm
from audio.models.pons_front_end import PonsFrontEnd
from core.attention.functional import Kernel
from core.blocks import TransformerEncoder, sinusoidal_table, trunc_normal_


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
        n_channels: `resnet`: channels of the first front-end blocks, the later ones twice this (CNNSA:
            128); `pons`: the base channel count of its filters (the original code: 16).
        width: encoder width; default twice `n_channels` for `resnet` (CNNSA: 256), 32 times for
            `pons` (the original code: 512).
        front_end: `resnet`, CNNSA's seven residual blocks (8 frames per token), or `pons`, the
            original code's timbre + temporal filters (one token per frame, sinusoidal positions).
        n_mels: mel bands of the input; `pons` sizes its timbre filters by it.
        num_layers: Transformer encoder layers (paper: 2).
        num_heads: attention heads (paper: 8).
        ffn_dim: encoder feed-forward width; default 4 x width (paper: 1024).
        dropout: dropout on attention weights and hidden states in the encoder (paper: 0.4).
        head_dropout: dropout before the output layer (paper: 0.5).
        kernel: attention kernel of the encoder (`core.attention`), one config line.
    """

    role: ClassVar[str] = "model"

    def __init__(self, num_tags: int = 50, n_channels: int = 128, num_layers: int = 2, num_heads: int = 8,
                 ffn_dim: int | None = None, dropout: float = 0.4, head_dropout: float = 0.5,
                 kernel: Kernel = "auto", width: int | None = None,
                 front_end: Literal["resnet", "pons"] = "resnet", n_mels: int = 128) -> None:
        super().__init__()
        c = n_channels
        if front_end not in ("resnet", "pons"):
            raise ValueError(f"SelfAttentionTagger: front_end must be 'resnet' or 'pons', got {front_end!r}")
        dim = width or (2 * c if front_end == "resnet" else 32 * c)
        self.num_tags, self.kernel, self.dim, self.front_end, self.n_mels = num_tags, kernel, dim, front_end, n_mels
        if front_end == "resnet":
            self.spec_bn = spec_batchnorm()
            self.front = nn.Sequential(
                ResBlock2d(1, c, 2), ResBlock2d(c, c, 2), ResBlock2d(c, dim, 2),
                *(ResBlock2d(dim, dim, (2, 1)) for _ in range(4)),
            )
            self.time_stride = 8  # spectrogram frames per token: three stride-2 blocks in time
        else:
            # the input BatchNorm without affine parameters: the BatchNorm after every filter makes them redundant,
            # and learning them would cost the input gradient of every tall filter (half the step on a CPU)
            self.spec_bn = nn.BatchNorm2d(1, affine=False)
            self.front = PonsFrontEnd(n_mels, c, dim)
            self.time_stride = PonsFrontEnd.time_stride
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        trunc_normal_(self.cls, std=0.02)
        self.encoder = TransformerEncoder(num_layers, dim, num_heads, ffn_dim or 4 * dim, dropout=dropout,
                                          activation="gelu", norm_first=False, kernel=kernel)
        self.pooler = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(dim, num_tags)

    def tokens(self, mel: Tensor) -> Tensor:
        """`mel: (batch, n_mels, frames)` -> `(batch, 1 + frames // time_stride (about), width)`: [CLS] then one token per time step."""
        x = check_mel(mel, type(self).__name__)
        if self.front_end == "pons":
            if x.shape[2] != self.n_mels:
                raise ValueError(f"SelfAttentionTagger(front_end='pons') was built for {self.n_mels} mel bands; got {x.shape[2]}")
            x = self.front(self.spec_bn(x))
            x = x + sinusoidal_table(x.shape[1] + 1, self.dim)[1:].to(x)  # positions 1.. ([CLS] is 0)
        else:
            x = self.front(self.spec_bn(x)).amax(dim=2).transpose(1, 2)  # (batch, time, width): frequency pooled away
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)

    def forward(self, mel: Tensor) -> Tensor:
        """`mel: (batch, n_mels, frames)` log-mel dB -> `(batch, num_tags)` logits (sigmoid gives tag probabilities)."""
        h = self.encoder(self.tokens(mel))
        return self.head(self.dropout(self.pooler(h[:, 0])))

    @torch.no_grad()
    def attention_maps(self, mel: Tensor) -> list[Tensor]:
        """Attention weights of every encoder layer, `[(batch, heads, tokens, tokens)]`, token 0 = [CLS].

        Each row sums to one. Row 0 of the last layer over tokens 1.. is the heat map over time
        (token t covers frames `[s (t - 1), s t)` with s = `time_stride`).
        """
        x = self.tokens(mel)
        maps = []
        for layer in self.encoder.layers:
            maps.append(layer.self_attn.attention_weights(layer.norm1(x) if layer.norm_first else x))
            x = layer(x)
        return maps
