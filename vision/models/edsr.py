"""EDSR-baseline: the small residual CNN of "Enhanced Deep Residual Networks for Single Image Super-Resolution".

Lim, Son, Kim, Nah, Lee, CVPRW 2017, arXiv:1707.02921. A 3x3 head conv, residual blocks without
batch normalization (conv, ReLU, conv, scaled by `res_scale`), a conv closing the body with a
long skip, and a pixel-shuffle tail (`vision.models.sr_blocks.PixelShuffleUpsampler`, shared with
HAT). The baseline configuration is 16 blocks of 64 features with `res_scale` 1 (1.5M parameters at
x4); the input is shifted by the DIV2K mean.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from vision.models.sr_blocks import PixelShuffleUpsampler, div2k_mean


class ResidualBlock(nn.Module):
    """`x + res_scale * conv(relu(conv(x)))`, no batch norm."""

    def __init__(self, features: int, res_scale: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, features, H, W)` -> same shape."""
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class EDSR(nn.Module):
    """EDSR (defaults: the EDSR-baseline of the paper).

    Args:
        scale: upscaling factor (2^n or 3).
        in_channels: image channels.
        features: channels of every conv (64 baseline, 256 full EDSR).
        num_blocks: residual blocks (16 baseline, 32 full EDSR).
        res_scale: residual scaling (1 baseline, 0.1 full EDSR).
    """

    role: ClassVar[str] = "baseline"
    kernel = "none"
    size_multiple = 1

    def __init__(self, scale: int = 4, in_channels: int = 3, features: int = 64, num_blocks: int = 16, res_scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.register_buffer("mean", div2k_mean(in_channels), persistent=False)
        self.head = nn.Conv2d(in_channels, features, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(features, res_scale) for _ in range(num_blocks)))
        self.body_conv = nn.Conv2d(features, features, 3, padding=1)
        self.upsample = PixelShuffleUpsampler(scale, features)
        self.tail = nn.Conv2d(features, in_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, channels, h, w)` in [0, 1] -> `(batch, channels, scale*h, scale*w)`."""
        x = self.head(x - self.mean)
        x = x + self.body_conv(self.body(x))
        return self.tail(self.upsample(x)) + self.mean
