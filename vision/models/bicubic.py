"""Bicubic interpolation: the parameter-free baseline every super-resolution paper reports.

Upscaling uses MATLAB's `imresize(x, scale, 'bicubic')` (`vision.resize.imresize`), the same
function that made the low-resolution inputs, so its Set5 scores are the literature's
(PSNR-Y 33.66 dB at x2, 28.42 dB at x4).
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from vision.resize import imresize


class Bicubic(nn.Module):
    """Upscale by `scale` with MATLAB-compatible bicubic interpolation; no parameters.

    Args:
        scale: upscaling factor.
    """

    role: ClassVar[str] = "baseline"
    kernel = "none"
    size_multiple = 1

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, channels, h, w)` -> `(batch, channels, scale*h, scale*w)`."""
        return imresize(x, float(self.scale))
