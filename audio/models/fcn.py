"""FCN: the fully convolutional music tagger (Choi, Fazekas, Sandler 2016, "Automatic Tagging Using Deep Convolutional Neural Networks").

Five blocks of 3x3 conv + BatchNorm + ReLU + max-pool over the log-mel spectrogram shrink it to a
single position; a linear layer then gives the tag logits. Defaults follow the authors'
re-implementation in minzwon/sota-music-tagging-models (channels 64, 128, 128, 128, 64; pools (2, 4),
(2, 4), (2, 4), (3, 5); 29 s inputs of 96 mels; dropout 0.5 before the output). Their last pool,
(4, 4), is exactly what remains of their input; here the last pool is a global max pool, which
equals it there and accepts any input length and band count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn

from audio.models.mel import check_mel, spec_batchnorm


class ConvBlock2d(nn.Module):
    """3x3 conv + BatchNorm + ReLU + max-pool (the block of FCN and of the short-chunk CNN).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        pool: max-pool kernel and stride, int or (freq, time); None for a global max pool.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: int | tuple[int, int] | None = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveMaxPool2d(1) if pool is None else nn.MaxPool2d(pool)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, in_channels, freq, time)` -> `(batch, out_channels, freq', time')`."""
        return self.pool(self.relu(self.bn(self.conv(x))))


class FCN(nn.Module):
    """Five conv blocks and a linear output over a log-mel clip.

    Args:
        num_tags: outputs (tags) of the head.
        widths: output channels of the five blocks (paper: 64, 128, 128, 128, 64); not named
            `channels`, which the CLI links from time-series data.
        pools: max-pool sizes (freq, time) of the first four blocks (paper: (2, 4), (2, 4), (2, 4), (3, 5));
            the fifth pools globally.
        dropout: dropout before the output layer (paper: 0.5).
    """

    role: ClassVar[str] = "baseline"
    kernel: ClassVar[str] = "none"

    def __init__(self, num_tags: int = 50, widths: Sequence[int] = (64, 128, 128, 128, 64),
                 pools: Sequence[Sequence[int]] = ((2, 4), (2, 4), (2, 4), (3, 5)), dropout: float = 0.5) -> None:
        super().__init__()
        if len(widths) != 5 or len(pools) != 4:
            raise ValueError(f"FCN: widths needs 5 entries and pools 4; got {list(widths)} and {list(pools)}")
        self.num_tags = num_tags
        self.spec_bn = spec_batchnorm()
        channels = [1, *widths]
        self.pools = [tuple(int(v) for v in p) for p in pools]
        pooling = [*self.pools, None]
        self.min_size = (math.prod(p[0] for p in self.pools), math.prod(p[1] for p in self.pools))
        self.blocks = nn.Sequential(*(ConvBlock2d(channels[i], channels[i + 1], pooling[i]) for i in range(5)))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], num_tags)

    def forward(self, mel: Tensor) -> Tensor:
        """`mel: (batch, n_mels, frames)` log-mel dB -> `(batch, num_tags)` logits."""
        x = check_mel(mel, type(self).__name__)
        if x.shape[-2] < self.min_size[0] or x.shape[-1] < self.min_size[1]:
            raise ValueError(
                f"FCN with pools {self.pools} needs at least {self.min_size[0]} mels and {self.min_size[1]} frames; "
                f"got {tuple(mel.shape)}"
            )
        x = self.blocks(self.spec_bn(x))
        return self.head(self.dropout(x.flatten(1)))
