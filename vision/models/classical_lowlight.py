"""Classical low-light baselines with no training: identity, gamma correction, CLAHE.

They are `nn.Module`s with `role = "baseline"` so that they run through `LowLightTask` and the
same evaluation (whole images, PSNR/SSIM on RGB) as LLFormer and LYT-Net. None has learnable
parameters; a fit of their single setting on the training pairs, where one exists, is the
benchmark's job (see `vision.benchmarks.lowlight`), not a training loop's.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from skimage import exposure
from torch import Tensor, nn


class IdentityEnhancer(nn.Module):
    """Returns the low-light input unchanged: the floor every method must beat."""

    role: ClassVar[str] = "baseline"
    size_multiple: ClassVar[int] = 1

    def forward(self, image: Tensor) -> Tensor:
        """`image: (batch, 3, H, W)` -> the same tensor."""
        return image


class GammaCorrection(nn.Module):
    """Power-law brightening `x ** gamma`, with a fixed or a per-image gamma.

    Args:
        gamma: fixed exponent (< 1 brightens). When None, each image gets the gamma that maps its
            mean intensity to `target_mean` (`gamma = log(target_mean) / log(mean(x))`), the usual
            auto-gamma; no reference image is used.
        target_mean: mean intensity the adaptive gamma aims at.
    """

    role: ClassVar[str] = "baseline"
    size_multiple: ClassVar[int] = 1

    def __init__(self, gamma: float | None = None, target_mean: float = 0.5) -> None:
        super().__init__()
        if gamma is not None and gamma <= 0:
            raise ValueError(f"classical_lowlight.py: gamma must be positive; got {gamma}")
        if not 0.0 < target_mean < 1.0:
            raise ValueError(f"classical_lowlight.py: target_mean must be in (0, 1); got {target_mean}")
        self.gamma, self.target_mean = gamma, target_mean

    def forward(self, image: Tensor) -> Tensor:
        """`image: (batch, 3, H, W)` in [0, 1] -> brightened, same shape."""
        x = image.clamp(1e-6, 1.0)
        if self.gamma is not None:
            return x ** self.gamma
        mean = x.mean(dim=(1, 2, 3), keepdim=True).clamp(1e-4, 0.9999)
        gamma = torch.log(torch.tensor(self.target_mean, dtype=x.dtype, device=x.device)) / torch.log(mean)
        return x ** gamma


class CLAHE(nn.Module):
    """Contrast-limited adaptive histogram equalization, `skimage.exposure.equalize_adapthist`.

    Applied to each image as skimage does for RGB input (on the value/lightness channel, keeping hue).

    Args:
        clip_limit: contrast clipping limit in [0, 1] (skimage's default 0.01).
        kernel_size: contextual region side in pixels; None uses skimage's default (1/8 of each side).
        nbins: histogram bins.
    """

    role: ClassVar[str] = "baseline"
    size_multiple: ClassVar[int] = 1

    def __init__(self, clip_limit: float = 0.01, kernel_size: int | None = None, nbins: int = 256) -> None:
        super().__init__()
        self.clip_limit, self.kernel_size, self.nbins = clip_limit, kernel_size, nbins

    def forward(self, image: Tensor) -> Tensor:
        """`image: (batch, 3, H, W)` in [0, 1] -> equalized, same shape (not differentiable)."""
        arrays = image.detach().clamp(0, 1).cpu().double().numpy().transpose(0, 2, 3, 1)
        out = np.stack([
            exposure.equalize_adapthist(a, kernel_size=self.kernel_size, clip_limit=self.clip_limit, nbins=self.nbins)
            for a in arrays
        ])
        return torch.from_numpy(out.transpose(0, 3, 1, 2).copy()).to(image.device, image.dtype)
