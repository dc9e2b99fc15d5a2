"""Parts shared by the super-resolution models (HAT, EDSR): the DIV2K mean shift and the pixel-shuffle upsampler.

Both papers (and BasicSR, which HAT's and EDSR's reference code build on) subtract the RGB mean of
DIV2K from the input and add it back to the output, and both upsample with 3x3 convolutions
followed by `nn.PixelShuffle`. One copy here, so the two models cannot drift apart.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def div2k_mean(in_channels: int) -> Tensor:
    """The DIV2K RGB mean as a `(1, 3, 1, 1)` tensor; zeros `(1, in_channels, 1, 1)` for non-RGB inputs."""
    values = DIV2K_MEAN if in_channels == 3 else (0.0,) * in_channels
    return torch.tensor(values).view(1, in_channels, 1, 1)


class PixelShuffleUpsampler(nn.Sequential):
    """x2^n: n times (3x3 conv to 4C, PixelShuffle(2)); x3: 3x3 conv to 9C, PixelShuffle(3).

    `(batch, channels, H, W)` -> `(batch, channels, scale*H, scale*W)`. The layers are the
    sequence's children `0, 1, 2, ...` (conv, shuffle, conv, shuffle), the state-dict layout of the
    EDSR and HAT reference checkpoints.

    Args:
        scale: upscaling factor, a power of 2 or 3.
        channels: feature channels in and out.
    """

    def __init__(self, scale: int, channels: int) -> None:
        layers: list[nn.Module] = []
        if scale >= 1 and scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(channels, 9 * channels, 3, padding=1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"vision/models/sr_blocks.py: scale {scale} not supported; use 2^n or 3")
        super().__init__(*layers)
