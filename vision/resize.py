"""MATLAB-compatible bicubic resizing (`imresize(x, scale, 'bicubic')`, antialiasing on).

The super-resolution literature makes its low-resolution inputs, and its bicubic baseline, with
MATLAB's `imresize`; PIL's and torch's bicubic differ from it (other kernel coefficient, other
border handling, no antialiasing in torch by default), which moves the bicubic PSNR by tenths of
a dB. MATLAB's rules, reproduced here:

- cubic kernel with a = -0.5 (Keys 1981);
- when shrinking by `s < 1`, the kernel is stretched to `h(x) = s * cubic(s * x)` (antialiasing),
  so it spans `4 / s` input pixels;
- output pixel `x` (1-based) samples input position `u = x / s + 0.5 * (1 - 1 / s)`;
- taps falling outside the image are mirrored (`[1..n, n..1]` symmetric padding) and each
  output's weights are normalized to sum to one;
- the dimension with the smaller scale is resized first (only rounding depends on the order).

Each dimension is a dense `(out, in)` weight matrix applied by a matrix product, so the whole
operation is linear, differentiable and runs on any device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def cubic(x: Tensor, a: float = -0.5) -> Tensor:
    """Keys' cubic convolution kernel with parameter `a` (MATLAB and PIL use -0.5)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (a + 2) * ax3 - (a + 3) * ax2 + 1
    far = a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a
    return torch.where(ax <= 1, near, torch.where(ax < 2, far, torch.zeros_like(ax)))


def resize_weights(in_size: int, out_size: int, scale: float, antialias: bool = True) -> Tensor:
    """Dense float64 matrix `(out_size, in_size)` of MATLAB's bicubic resize along one axis."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"vision/resize.py: sizes must be positive; got in {in_size}, out {out_size}")
    kernel_width = 4.0
    stretch = scale < 1 and antialias
    if stretch:
        kernel_width /= scale
    x = torch.arange(1, out_size + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # 1-based
    distance = u[:, None] - indices
    weights = scale * cubic(scale * distance) if stretch else cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    mirror = torch.cat([torch.arange(in_size), torch.arange(in_size - 1, -1, -1)])  # 0-based [1..n, n..1]
    source = mirror[((indices - 1).long()) % (2 * in_size)]
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    matrix.scatter_add_(1, source, weights)
    return matrix


def imresize(
    x: Tensor, scale: float | None = None, *, size: tuple[int, int] | None = None, antialias: bool = True
) -> Tensor:
    """Bicubic resize of `x: (..., H, W)` as MATLAB's `imresize(x, scale)` or `imresize(x, size)`.

    Args:
        x: float images (any leading dims, e.g. `(batch, 3, H, W)`); values are not clamped.
        scale: factor applied to both sides; output side `ceil(scale * side)`, as MATLAB.
        size: `(height, width)` of the output instead of `scale`.
        antialias: stretch the kernel when shrinking (MATLAB's default).

    Returns:
        `(..., out_h, out_w)` in the dtype of `x`.
    """
    if x.dim() < 2 or not x.is_floating_point():
        raise ValueError(f"vision/resize.py: imresize expects a float tensor (..., H, W); got {x.dtype} {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if (scale is None) == (size is None):
        raise ValueError("vision/resize.py: give exactly one of scale and size")
    if size is not None:
        out_h, out_w = size
        scale_h, scale_w = out_h / h, out_w / w
    else:
        if scale <= 0:
            raise ValueError(f"vision/resize.py: scale must be positive; got {scale}")
        out_h, out_w = math.ceil(scale * h), math.ceil(scale * w)
        scale_h = scale_w = scale
    wh = resize_weights(h, out_h, scale_h, antialias).to(device=x.device)
    ww = resize_weights(w, out_w, scale_w, antialias).to(device=x.device)
    out = x.double()
    if scale_h <= scale_w:
        out = torch.matmul(wh, out)
        out = torch.matmul(out, ww.T)
    else:
        out = torch.matmul(out, ww.T)
        out = torch.matmul(wh, out)
    return out.to(x.dtype)


def mod_crop(x: Tensor, scale: int) -> Tensor:
    """Crop `x: (..., H, W)` at the bottom/right to sides divisible by `scale` (the SR protocol)."""
    h, w = x.shape[-2:]
    return x[..., : h - h % scale, : w - w % scale]


def bicubic_degrade(hr: Tensor, scale: int) -> Tensor:
    """The low-resolution input of the SR protocol: MATLAB bicubic downsampling of `hr` by 1/`scale`.

    `hr: (..., H, W)` must have sides divisible by `scale` (see `mod_crop`).
    """
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"vision/resize.py: HR size {h}x{w} is not a multiple of scale {scale}; mod_crop it first")
    return imresize(hr, size=(h // scale, w // scale))
