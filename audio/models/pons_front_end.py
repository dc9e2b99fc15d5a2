"""The musically motivated CNN front end (Pons et al. 2017) that Won, Chun and Serra (2019) put under their Transformer.

Pons, Lidy, Serra, "Timbre analysis of music audio signals with convolutional neural networks"
(EUSIPCO 2017) and Pons, Serra, "Designing efficient architectures for modeling temporal features
with convolutional neural networks" (ICASSP 2017): one layer of filters shaped by what they should
learn, all in parallel on the (batch-normalized) log-mel input, every output frame kept.

- *Timbre* ("vertical") filters span a fraction of the mel axis (0.9 and 0.4 of it) and 7, 3 or 1
  frames; each is max-pooled over the frequency positions it slid over, so it answers "is this
  spectral shape present, at any pitch".
- *Temporal* ("horizontal") filters run along time, 165, 129, 65 and 33 frames long (2.6 to 0.5 s at
  16 kHz / hop 256), over the spectrogram averaged across frequency: they see the energy envelope,
  where onsets, beat period and tempo live.

The outputs are concatenated (29 x `n_channels` channels) and a 1x1 conv + BatchNorm + ReLU maps
them to the Transformer's width, one token per spectrogram frame. This is the `pons_won`
architecture of the authors' original code (minzwon/self-attention-music-tagging,
`front_end/pons_module.py`): same filter shapes, channel multiples and fusion. Departure: their
filter heights are `int(0.9 * 96)` and `int(0.4 * 96)` for 96 mel bands; here the same fractions of
`n_mels` (115 and 51 for the suite's 128 bands).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# (fraction of the mel axis, frames, channel multiple) of the timbre filters; (frames, multiple) of the temporal ones
TIMBRE_FILTERS: tuple[tuple[float, int, int], ...] = ((0.9, 7, 1), (0.9, 3, 2), (0.9, 1, 4), (0.4, 7, 1), (0.4, 3, 2), (0.4, 1, 4))
TEMPORAL_FILTERS: tuple[tuple[int, int], ...] = ((165, 1), (129, 2), (65, 4), (33, 8))


class TimbreConv(nn.Module):
    """A conv of `height` mel bands x `width` frames, BatchNorm, ReLU, max over frequency positions.

    Args:
        out_channels: filters.
        height: mel bands the filter spans.
        width: frames the filter spans (odd, so time keeps its length).
    """

    def __init__(self, out_channels: int, height: int, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, out_channels, (height, width), padding=(0, width // 2))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, 1, n_mels, frames)` -> `(batch, out_channels, frames)`."""
        return torch.relu(self.bn(self.conv(x))).amax(dim=2)


class TemporalConv(nn.Module):
    """A 1-D conv of `length` frames over the frequency-averaged spectrogram, BatchNorm, ReLU.

    Args:
        out_channels: filters.
        length: frames the filter spans (odd, so time keeps its length).
    """

    def __init__(self, out_channels: int, length: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, out_channels, length, padding=length // 2)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, 1, n_mels, frames)` -> `(batch, out_channels, frames)`."""
        return torch.relu(self.bn(self.conv(x.mean(dim=2))))


class PonsFrontEnd(nn.Module):
    """Timbre and temporal filters in parallel, fused by a 1x1 conv into one `width`-wide token per frame.

    Args:
        n_mels: mel bands of the input (the timbre filters' heights are fractions of it).
        n_channels: the base channel count; the filters have 1, 2, 4 (and 8) times it (the
            authors' code: 16 with 512-wide attention).
        width: channels of the output tokens (the Transformer's width).
    """

    time_stride = 1  # spectrogram frames per token

    def __init__(self, n_mels: int, n_channels: int, width: int) -> None:
        super().__init__()
        c = n_channels
        self.timbre = nn.ModuleList(TimbreConv(m * c, max(1, int(f * n_mels)), w) for f, w, m in TIMBRE_FILTERS)
        self.temporal = nn.ModuleList(TemporalConv(m * c, length) for length, m in TEMPORAL_FILTERS)
        fused = c * (sum(m for *_, m in TIMBRE_FILTERS) + sum(m for _, m in TEMPORAL_FILTERS))
        self.fuse = nn.Sequential(nn.Conv1d(fused, width, 1), nn.BatchNorm1d(width), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, 1, n_mels, frames)` (normalized log-mel) -> `(batch, frames, width)`."""
        out = torch.cat([layer(x) for layer in (*self.timbre, *self.temporal)], dim=1)
        return self.fuse(out).transpose(1, 2)
