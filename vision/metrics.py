"""Image quality metrics shared by the vision tasks: PSNR, SSIM and the luma (Y) channel.

The super-resolution literature scores the Y channel of YCbCr as MATLAB's `rgb2ycbcr` computes it
(BT.601 "studio swing", Y in [16, 235] / 255) with `scale` border pixels cropped; low-light
enhancement scores RGB. A grayscale test image has no Y to take: the literature's MATLAB evaluation
(`if size(im_HR, 3) == 3 ... rgb2ycbcr ... else` the image itself) scores it on its intensity, and
that is where its published bicubic numbers come from. Taking the Y of the grayscale image replicated
to RGB instead multiplies every error by 219/255 and lifts that image's PSNR by
20 log10(255/219) = 1.32 dB; `gray_intensity=True` scores such an image on its intensity.

SSIM follows Wang et al. 2004 ("Image quality assessment: from error visibility to structural
similarity"): an 11-tap Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, population (not
sample) covariances, averaged over the valid part of the map and over channels, which is what
`skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)` computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_Y_WEIGHTS = (65.481, 128.553, 24.966)
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # = _Y_WEIGHTS / 219: the same luma in full range


def rgb_to_y(x: Tensor) -> Tensor:
    """Luma of `x: (..., 3, H, W)` in [0, 1] -> `(..., 1, H, W)` in [16/255, 235/255] (MATLAB rgb2ycbcr)."""
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"vision/metrics.py: rgb_to_y expects (..., 3, H, W); got {tuple(x.shape)}")
    r, g, b = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
    return 16.0 / 255.0 + (_Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b) / 255.0


def rgb_to_luma(x: Tensor) -> Tensor:
    """Full-range BT.601 luma of `x: (..., 3, H, W)` in [0, 1] -> `(..., 1, H, W)` in [0, 1].

    0.299 R + 0.587 G + 0.114 B: the Y of `rgb_to_y` without the 16-235 studio range (what MATLAB's
    `rgb2gray` and Pillow's `convert("L")` compute before rounding), so an output's colour deviations
    count with the weights of the colour protocol and equal channels give back that channel.
    """
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"vision/metrics.py: rgb_to_luma expects (..., 3, H, W); got {tuple(x.shape)}")
    r, g, b = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
    # the weights sum to 1: written around R, equal channels give R bit for bit (a perfect output scores inf)
    return r + _LUMA_WEIGHTS[1] * (g - r) + _LUMA_WEIGHTS[2] * (b - r)


def is_grayscale(x: Tensor) -> Tensor:
    """`(batch,)` bool: True where the three channels of `x: (batch, 3, H, W)` are identical.

    This is how a grayscale image arrives here: `vision.data.io.read_image` replicates a
    single-channel (L, LA, 16-bit) file to three channels, and a grayscale image stored as RGB has
    three equal channels already; a colour photo never has R = G = B at every pixel. Deciding on the
    pixels rather than on the file's mode scores the same image the same way whichever way a copy
    of a test set stores it.
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"vision/metrics.py: is_grayscale expects (batch, 3, H, W); got {tuple(x.shape)}")
    return ((x[:, 0] == x[:, 1]) & (x[:, 1] == x[:, 2])).flatten(1).all(dim=1)


def quantize(x: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to 8-bit levels, as an output saved to a PNG would be."""
    return x.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def _prepare(
    pred: Tensor, target: Tensor, crop_border: int, y_channel: bool, gray_intensity: bool, name: str,
) -> tuple[Tensor, Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"vision/metrics.py: {name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dim() == 3:
        pred, target = pred[None], target[None]
    if pred.dim() != 4:
        raise ValueError(f"vision/metrics.py: {name} expects (batch, channels, H, W); got {tuple(pred.shape)}")
    if crop_border < 0 or 2 * crop_border >= min(pred.shape[-2:]):
        raise ValueError(f"vision/metrics.py: {name}: crop_border {crop_border} too large for {tuple(pred.shape[-2:])}")
    if gray_intensity and not y_channel:
        raise ValueError(f"vision/metrics.py: {name}: gray_intensity=True needs y_channel=True (it replaces grayscale images' Y)")
    gray = is_grayscale(target) if gray_intensity else None
    pred, target = pred.double(), target.double()
    if y_channel:
        pred_y, target_y = rgb_to_y(pred), rgb_to_y(target)
        if gray is not None and bool(gray.any()):
            pick = gray.view(-1, 1, 1, 1)
            pred_y = torch.where(pick, rgb_to_luma(pred), pred_y)
            target_y = torch.where(pick, target[:, 0:1], target_y)
        pred, target = pred_y, target_y
    if crop_border:
        c = crop_border
        pred, target = pred[..., c:-c, c:-c], target[..., c:-c, c:-c]
    return pred, target


def psnr(
    pred: Tensor, target: Tensor, *, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False,
    gray_intensity: bool = False,
) -> Tensor:
    """Peak signal-to-noise ratio in dB per image: `pred, target: (batch, C, H, W)` -> `(batch,)`.

    Args:
        data_range: the value range of the images (1.0 for [0, 1]).
        crop_border: pixels removed from every side before scoring (the SR scale factor).
        y_channel: score the BT.601 luma (needs RGB input) instead of every channel.
        gray_intensity: with `y_channel`, an image whose `target` is grayscale (`is_grayscale`) is
            scored on its intensity, as the SR literature does: the target's channel against the
            full-range luma of `pred` (`rgb_to_luma`: `pred`'s channel when its channels are equal,
            as a bicubic output's are; not rounded again, as the Y of colour images is not); colour
            images keep the Y channel.
    """
    pred, target = _prepare(pred, target, crop_border, y_channel, gray_intensity, "psnr")
    mse = (pred - target).pow(2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(data_range**2 / mse)).float()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """Normalized 1-D Gaussian taps `(size,)` in float64."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def ssim(
    pred: Tensor, target: Tensor, *, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False,
    gray_intensity: bool = False,
) -> Tensor:
    """Structural similarity per image, averaged over channels: `(batch, C, H, W)` -> `(batch,)`.

    The Gaussian-filtered statistics are taken over the valid region only (no padding), so the
    map is `(H - 10) x (W - 10)`, as skimage's mean over the map with its border cropped. The
    arguments are those of `psnr`.
    """
    pred, target = _prepare(pred, target, crop_border, y_channel, gray_intensity, "ssim")
    if min(pred.shape[-2:]) < 11:
        raise ValueError(f"vision/metrics.py: ssim needs images of at least 11x11 after cropping; got {tuple(pred.shape[-2:])}")
    channels = pred.shape[1]
    w = gaussian_window().to(pred.device)
    kh = w.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    kw = w.view(1, 1, 1, -1).expand(channels, 1, 1, -1)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, kh, groups=channels), kw, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    numerator = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    denominator = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    return (numerator / denominator).flatten(2).mean(dim=2).mean(dim=1).float()
