"""The short-chunk CNN (Won, Ferraro, Bogdanov, Serra 2020, "Evaluation of CNN-based Automatic Music Tagging Models").

A VGG-like stack of seven 3x3 conv blocks with 2x2 max-pooling over short log-mel chunks (3.69 s in
the paper), global max-pooling over what remains of time, then dense + BatchNorm + ReLU + dropout
and the output layer. Defaults: the authors' `ShortChunkCNN` (channels 128, 128, 256, 256, 256,
256, 512; dense 512; dropout 0.5; 128 mels at 16 kHz). Frequency rows left after the seventh pool
(none for 128 mels) are max-pooled with time.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from audio.models.fcn import ConvBlock2d
from audio.models.mel import check_mel, spec_batchnorm


class ShortChunkCNN(nn.Module):
    """Seven conv blocks, global max pool, a dense layer and the output over a log-mel chunk.

    Args:
        num_tags: outputs (tags) of the head.
        n_channels: channels of the first two blocks; blocks 3-6 have twice, block 7 four times this
            (paper: 128), which is also the dense width.
        dropout: dropout before the output layer (paper: 0.5).
    """

    role: ClassVar[str] = "baseline"
    kernel: ClassVar[str] = "none"

    def __init__(self, num_tags: int = 50, n_channels: int = 128, dropout: float = 0.5) -> None:
        super().__init__()
        c = n_channels
        widths = [1, c, c, 2 * c, 2 * c, 2 * c, 2 * c, 4 * c]
        self.num_tags = num_tags
        self.spec_bn = spec_batchnorm()
        self.blocks = nn.Sequential(*(ConvBlock2d(widths[i], widths[i + 1], 2) for i in range(7)))
        self.dense = nn.Sequential(nn.Linear(4 * c, 4 * c), nn.BatchNorm1d(4 * c), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(4 * c, num_tags)

    def forward(self, mel: Tensor) -> Tensor:
        """`mel: (batch, n_mels, frames)` log-mel dB (at least 128 frames) -> `(batch, num_tags)` logits."""
        x = check_mel(mel, type(self).__name__)
        if x.shape[-1] < 128 or x.shape[-2] < 128:
            raise ValueError(f"ShortChunkCNN needs at least 128 mels and 128 frames (seven 2x2 pools); got {tuple(mel.shape)}")
        x = self.blocks(self.spec_bn(x)).amax(dim=(2, 3))
        return self.head(self.dense(x))
