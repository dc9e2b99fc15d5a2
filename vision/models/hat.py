"""HAT: Hybrid Attention Transformer for single-image super-resolution.

Chen, Wang, Zhou, Qiao, Dong, "Activating More Pixels in Image Super-Resolution Transformer",
CVPR 2023, arXiv:2205.04437.

    LR -> shallow 3x3 conv -> [RHAG x G] -> LayerNorm -> 3x3 conv (+ shallow skip)
       -> conv + LeakyReLU -> pixel-shuffle upsampler -> 3x3 conv -> SR

- Residual Hybrid Attention Group (RHAG): `depth` hybrid attention blocks, one overlapping
  cross-attention block, a 3x3 conv, and a residual connection around the group.
- Hybrid Attention Block (HAB): `x + W-MSA(LN(x)) + alpha * CAB(LN(x))`, then `+ MLP(LN(.))`.
  The (shifted, every other block) window self-attention with a relative position bias is
  `core.attention.WindowAttention`; the channel attention block (CAB: conv, GELU, conv,
  squeeze-and-excitation, `torchvision.ops.SqueezeExcitation`) runs in parallel on the same
  normalized input, scaled by the small weight `alpha = conv_scale = 0.01`.
- Overlapping Cross-Attention Block (OCAB): queries from `M x M` windows, keys/values from
  `(1 + overlap_ratio) M` windows around them (`core.attention.overlapping_window`), then an MLP.

Defaults are HAT-S for x4 (embed 144, 6 groups of 6 blocks, 6 heads, window 16, MLP ratio 2,
CAB compression 24, squeeze 24: 9.6M parameters); HAT is embed 180 with compression 3 and
squeeze 30 (20.8M). The image is normalized by the DIV2K mean. Input sides must be multiples of
the window (`size_multiple`): `vision.tasks.sr.SRTask` pads whole images (reflect) and crops the
output back, as the reference's test-time code (`HATModel.pre_process`) does outside the network.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import SqueezeExcitation

from core.attention import Kernel, OverlappingWindowAttention, WindowAttention
from core.blocks import MLP, DropPath, trunc_normal_
from vision.models.sr_blocks import PixelShuffleUpsampler, div2k_mean


class ChannelAttentionBlock(nn.Module):
    """CAB: 3x3 conv to `channels / compress_ratio`, GELU, 3x3 conv back, squeeze-and-excitation.

    The squeeze-and-excitation (HAT's "channel attention") is `x * sigmoid(fc2(relu(fc1(avgpool(x)))))`
    with 1x1 convolutions to `channels // squeeze_factor` and back, exactly torchvision's.
    """

    def __init__(self, channels: int, compress_ratio: int, squeeze_factor: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // compress_ratio, 3, padding=1)
        self.conv2 = nn.Conv2d(channels // compress_ratio, channels, 3, padding=1)
        self.excite = SqueezeExcitation(channels, channels // squeeze_factor)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, channels, H, W)` -> same shape."""
        return self.excite(self.conv2(F.gelu(self.conv1(x))))


class HybridAttentionBlock(nn.Module):
    """HAB: window self-attention and a parallel channel attention block, then an MLP (pre-norm)."""

    def __init__(
        self, dim: int, num_heads: int, window_size: int, shift_size: int, compress_ratio: int,
        squeeze_factor: int, conv_scale: float, mlp_ratio: float, qkv_bias: bool, drop_path: float, kernel: Kernel,
    ) -> None:
        super().__init__()
        self.conv_scale = conv_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, shift_size, qkv_bias=qkv_bias, kernel=kernel)
        self.cab = ChannelAttentionBlock(dim, compress_ratio, squeeze_factor)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, H, W, dim)` -> same shape."""
        y = self.norm1(x)
        conv = self.cab(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = x + self.drop_path(self.attn(y)) + self.conv_scale * conv
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OverlappingCrossAttentionBlock(nn.Module):
    """OCAB: `x + OCA(LN(x))`, then `+ MLP(LN(.))`."""

    def __init__(self, dim: int, num_heads: int, window_size: int, overlap_ratio: float, mlp_ratio: float, qkv_bias: bool, kernel: Kernel) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = OverlappingWindowAttention(dim, num_heads, window_size, overlap_ratio, qkv_bias=qkv_bias, kernel=kernel)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, H, W, dim)` -> same shape."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ResidualHybridAttentionGroup(nn.Module):
    """RHAG: HABs (shift 0, M/2, 0, ...), one OCAB, a 3x3 conv, and a skip around the group."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, window_size: int, compress_ratio: int, squeeze_factor: int,
        conv_scale: float, overlap_ratio: float, mlp_ratio: float, qkv_bias: bool, drop_path: list[float], kernel: Kernel,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            HybridAttentionBlock(
                dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, compress_ratio, squeeze_factor,
                conv_scale, mlp_ratio, qkv_bias, drop_path[i], kernel,
            )
            for i in range(depth)
        )
        self.overlap = OverlappingCrossAttentionBlock(dim, num_heads, window_size, overlap_ratio, mlp_ratio, qkv_bias, kernel)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, H, W, dim)` -> same shape."""
        y = x
        for block in self.blocks:
            y = block(y)
        y = self.overlap(y)
        return x + self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class HAT(nn.Module):
    """Hybrid Attention Transformer for super-resolution (defaults: HAT-S, x4).

    Args:
        scale: upscaling factor (2, 3 or 4).
        in_channels: image channels (3).
        embed_dim: width of the deep features (HAT-S 144, HAT 180).
        depths: HABs per RHAG, one entry per group (6 groups of 6).
        num_heads: attention heads per group (6).
        window_size: window side M (16).
        compress_ratio: CAB's channel compression (HAT-S 24, HAT 3).
        squeeze_factor: squeeze-and-excitation reduction (HAT-S 24, HAT 30).
        conv_scale: weight alpha of the CAB branch (0.01).
        overlap_ratio: OCAB's key window is `(1 + overlap_ratio) * M` (0.5).
        mlp_ratio: MLP width over `embed_dim` (2).
        qkv_bias: bias in the q/k/v projections (True).
        drop_path_rate: stochastic depth, rising linearly over all HABs to this value (0.1).
        upsample_features: channels of the conv before the pixel-shuffle upsampler (64).
        upsampler: `pixelshuffle` (the paper's: conv + LeakyReLU, then conv/PixelShuffle(2) steps,
            then a 3x3 conv) or `pixelshuffledirect` (one 3x3 conv to `3 * scale^2` channels and a
            single PixelShuffle, the lightweight upsampler of SwinIR that HAT builds on; only for
            small CPU configurations, not a configuration of the HAT paper).
        img_range: inputs are scaled by this after subtracting the DIV2K mean (1.0).
        kernel: attention kernel for every window / overlapping attention.
    """

    role: ClassVar[str] = "model"

    def __init__(
        self, scale: int = 4, in_channels: int = 3, embed_dim: int = 144, depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6), window_size: int = 16, compress_ratio: int = 24,
        squeeze_factor: int = 24, conv_scale: float = 0.01, overlap_ratio: float = 0.5, mlp_ratio: float = 2.0,
        qkv_bias: bool = True, drop_path_rate: float = 0.1, upsample_features: int = 64,
        upsampler: Literal["pixelshuffle", "pixelshuffledirect"] = "pixelshuffle", img_range: float = 1.0,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"vision/models/hat.py: depths {depths} and num_heads {num_heads} must have one entry per group")
        self.scale, self.window_size, self.img_range, self.kernel = scale, window_size, img_range, kernel
        self.register_buffer("mean", div2k_mean(in_channels), persistent=False)
        self.conv_first = nn.Conv2d(in_channels, embed_dim, 3, padding=1)
        self.embed_norm = nn.LayerNorm(embed_dim)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.groups = nn.ModuleList(
            ResidualHybridAttentionGroup(
                embed_dim, depth, heads, window_size, compress_ratio, squeeze_factor, conv_scale, overlap_ratio,
                mlp_ratio, qkv_bias, rates[start:start + depth], kernel,
            )
            for depth, heads, start in zip(depths, num_heads, starts, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        if upsampler == "pixelshuffle":
            self.conv_before_upsample: nn.Module = nn.Sequential(
                nn.Conv2d(embed_dim, upsample_features, 3, padding=1), nn.LeakyReLU(inplace=True)
            )
            self.upsample: nn.Module = PixelShuffleUpsampler(scale, upsample_features)
            self.conv_last: nn.Module = nn.Conv2d(upsample_features, in_channels, 3, padding=1)
        elif upsampler == "pixelshuffledirect":
            self.conv_before_upsample = nn.Identity()
            self.upsample = nn.Sequential(nn.Conv2d(embed_dim, in_channels * scale**2, 3, padding=1), nn.PixelShuffle(scale))
            self.conv_last = nn.Identity()
        else:
            raise ValueError(f"vision/models/hat.py: unknown upsampler {upsampler!r}; use pixelshuffle or pixelshuffledirect")
        self.apply(_init_weights)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (the window); `SRTask` pads whole images to it."""
        return self.window_size

    def forward_features(self, x: Tensor) -> Tensor:
        """Deep features `(batch, embed_dim, H, W)` of shallow features of the same shape."""
        y = self.embed_norm(x.permute(0, 2, 3, 1))
        for group in self.groups:
            y = group(y)
        return self.norm(y).permute(0, 3, 1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, channels, h, w)` in [0, 1], `h, w` multiples of the window -> `(batch, channels, scale*h, scale*w)`."""
        if x.dim() != 4 or x.shape[-2] % self.size_multiple or x.shape[-1] % self.size_multiple:
            raise ValueError(
                f"vision/models/hat.py: HAT expects (batch, channels, height, width) with height and width "
                f"multiples of the window {self.size_multiple}; got {tuple(x.shape)} "
                f"(pad with vision.tiling.pad_to_multiple, or choose a patch size divisible by the window)"
            )
        x = (x - self.mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        return x / self.img_range + self.mean


def _init_weights(module: nn.Module) -> None:
    """The reference's init: truncated normal (std 0.02) linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# Registers the official-checkpoint converter (`core.official.load_official_state_dict`) with HAT.
from vision.models import hat_official  # noqa: E402,F401
