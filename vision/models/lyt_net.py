"""LYT-Net: a lightweight YUV transformer for low-light image enhancement.

Brateanu, Balmez, Avram, Orhei, Ancuti, "LYT-NET: Lightweight YUV Transformer-based Network for
Low-light Image Enhancement", IEEE Signal Processing Letters 2025, arXiv:2401.15204.

Read top to bottom: `rgb_to_yuv`, `ChannelDenoiser` (the channel-wise denoiser applied to each chroma
channel: a strided conv encoder, multi-head self-attention at 1/8 resolution, a nearest-upsampling
decoder with skips), `SqueezeExcite`, `MultiStageSqueezeExciteFusion` (MSEF), then `LYTNet`: the
luminance branch gets MHSA on an 8x max-pooled map, the denoised chroma branches are merged, fused
with the luminance (x0.2) through MSEF, recombined and mapped back to RGB with a sigmoid. Its hybrid
loss is `vision.losses.LYTHybridLoss`. Attention goes through `core.attention.MultiHeadAttention`.

Defaults are the official PyTorch configuration (`filters=32`, 4 heads, denoisers of width 16):
44.9K parameters (the paper reports 45K; 1.69 GMACs at 256x256, the paper 3.49 GFLOPs). One deliberate difference from the official PyTorch port:
its attention reshapes `(B, C, H, W)` to tokens without moving channels last, which mixes pixels and
channels; here every pixel is a token with `C` features, as the paper (and its TensorFlow code) do.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.attention import Kernel, MultiHeadAttention
from core.blocks import LayerNorm2d


def rgb_to_yuv(image: Tensor) -> Tensor:
    """`(batch, 3, H, W)` RGB in [0, 1] -> YUV (BT.601 analog, U and V offset by 0.5 into ~[0, 1])."""
    r, g, b = image.unbind(dim=1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.14713 * r - 0.28886 * g + 0.436 * b + 0.5
    v = 0.615 * r - 0.51499 * g - 0.10001 * b + 0.5
    return torch.stack((y, u, v), dim=1)


class PixelSelfAttention(nn.Module):
    """Multi-head self-attention among all pixels of a (small) feature map, each pixel one token."""

    def __init__(self, dim: int, num_heads: int, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.attn = MultiHeadAttention(dim, num_heads, kernel=kernel)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, dim, height, width)` -> same shape."""
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        return self.attn(tokens).transpose(1, 2).reshape(b, c, h, w)


class ChannelDenoiser(nn.Module):
    """Channel-wise denoiser of one chroma channel: U-shaped, MHSA at the 1/8 bottleneck, tanh output.

    Args:
        filters: width of its convolutions (16 = half of LYT-Net's `filters`).
        num_heads: heads of the bottleneck attention.
        kernel: attention kernel name.
    """

    def __init__(self, filters: int = 16, num_heads: int = 4, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, filters, 3, padding=1)
        self.conv2 = nn.Conv2d(filters, filters, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(filters, filters, 3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(filters, filters, 3, stride=2, padding=1)
        self.bottleneck = PixelSelfAttention(filters, num_heads, kernel)
        self.res_layer = nn.Conv2d(filters, 1, 3, padding=1)
        self.output_layer = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, 1, H, W)`, H and W multiples of 8 -> residual `(batch, 1, H, W)` in (-1, 1)."""
        x1 = F.relu(self.conv1(x))
        x2 = F.relu(self.conv2(x1))
        x3 = F.relu(self.conv3(x2))
        x4 = F.relu(self.conv4(x3))
        y = F.interpolate(self.bottleneck(x4), scale_factor=2, mode="nearest")
        y = F.interpolate(y + x3, scale_factor=2, mode="nearest")
        y = F.interpolate(y + x2, scale_factor=2, mode="nearest")
        y = self.res_layer(y + x1)
        return torch.tanh(self.output_layer(y + y))


# Not torchvision.ops.SqueezeExcitation: LYT-Net's gate is tanh (in (-1, 1)), not sigmoid, on nn.Linear weights.
class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a tanh gate: `x * tanh(fc2(relu(fc1(mean(x)))))`."""

    def __init__(self, dim: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, dim // reduction)
        self.fc2 = nn.Linear(dim // reduction, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.tanh(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class MultiStageSqueezeExciteFusion(nn.Module):
    """MSEF: `x + dwconv(LN(x)) * SE(LN(x))` (LayerNorm over channels)."""

    def __init__(self, dim: int, reduction: int = 16) -> None:
        super().__init__()
        self.norm = LayerNorm2d(dim, eps=1e-5)
        self.depthwise = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.se = SqueezeExcite(dim, reduction)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, dim, H, W)` -> same shape."""
        normed = self.norm(x)
        return x + self.depthwise(normed) * self.se(normed)


class LYTNet(nn.Module):
    """LYT-Net (Brateanu et al., 2024).

    Input and output are `(batch, 3, height, width)` RGB in [0, 1]; height and width must be multiples
    of `size_multiple`: lcm(`pool`, 8), 8 by default (the `pool`x pooling of the luminance attention
    and the denoisers' three stride-2 stages).

    Args:
        filters: feature width of the Y/U/V branches (32); the chroma denoisers use `filters // 2`.
        num_heads: heads of the luminance and the denoiser attention (4).
        pool: pooling factor before the luminance attention (8).
        lum_weight: weight of the luminance features added to the chroma features (0.2).
        se_reduction: squeeze-and-excite reduction ratio in MSEF (16).
        kernel: attention kernel name.
    """

    role: ClassVar[str] = "model"

    def __init__(
        self,
        filters: int = 32,
        num_heads: int = 4,
        pool: int = 8,
        lum_weight: float = 0.2,
        se_reduction: int = 16,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        self.kernel, self.pool, self.lum_weight = kernel, pool, lum_weight
        self.process_y = nn.Conv2d(1, filters, 3, padding=1)
        self.process_u = nn.Conv2d(1, filters, 3, padding=1)
        self.process_v = nn.Conv2d(1, filters, 3, padding=1)
        self.denoise_u = ChannelDenoiser(filters // 2, num_heads, kernel)
        self.denoise_v = ChannelDenoiser(filters // 2, num_heads, kernel)
        self.lum_attention = PixelSelfAttention(filters, num_heads, kernel)
        self.lum_conv = nn.Conv2d(filters, filters, 1)
        self.chroma_conv = nn.Conv2d(filters * 2, filters, 1)
        self.msef = MultiStageSqueezeExciteFusion(filters, se_reduction)
        self.recombine = nn.Conv2d(filters * 2, filters, 3, padding=1)
        self.final = nn.Conv2d(filters, 3, 3, padding=1)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, a=0, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this: of `pool` (the luminance pooling) and of 8 (the denoisers)."""
        return math.lcm(self.pool, 8)

    def forward(self, image: Tensor) -> Tensor:
        """`image: (batch, 3, height, width)` -> enhanced `(batch, 3, height, width)` in (0, 1)."""
        multiple = self.size_multiple
        if image.dim() != 4 or image.shape[1] != 3 or image.shape[-2] % multiple or image.shape[-1] % multiple:
            raise ValueError(
                f"lyt_net.py: LYTNet expects (batch, 3, height, width) with height and width multiples of "
                f"{multiple}; got {tuple(image.shape)} (pad with vision.tiling.pad_to_multiple)"
            )
        y, u, v = rgb_to_yuv(image).split(1, dim=1)
        u = u + self.denoise_u(u)
        v = v + self.denoise_v(v)
        lum = F.relu(self.process_y(y))
        chroma = torch.cat([F.relu(self.process_u(u)), F.relu(self.process_v(v))], dim=1)

        pooled = F.max_pool2d(lum, self.pool)
        lum = lum + F.interpolate(self.lum_attention(pooled), scale_factor=self.pool, mode="nearest")

        chroma = self.chroma_conv(chroma)
        fused = self.msef(chroma + self.lum_weight * self.lum_conv(lum)) + chroma
        return torch.sigmoid(self.final(self.recombine(torch.cat([fused, lum], dim=1))))
