"""LLFormer: axis-based transformer for (ultra-high-definition) low-light image enhancement.

Wang, Zhang, Shen, Luo, Stenger, Lu, "Ultra-High-Definition Low-Light Image Enhancement: A Benchmark
and Transformer-Based Method", AAAI 2023, arXiv:2212.11548.

Read top to bottom: `AxisAttention` (one axis of the axis-based multi-head self-attention, A-MSA),
`AxisMultiHeadSelfAttention` (rows, then columns), `DualGatedFFN` (DGFN), `AxisTransformerBlock`,
`LayerAttentionFusion` (the cross-layer attention fusion block), then `LLFormer`, the U-shaped
network: three encoder blocks fused by layer attention, a four-level encoder-decoder with weighted
skip connections, and three refinement blocks fused by layer attention again before the output.
All attention goes through `core.attention.attention`; the kernel is a constructor argument.

Defaults are the official training script's configuration (`dim=16`, `num_blocks=[2, 4, 8, 16]`,
`heads=[1, 2, 4, 8]`, FFN expansion 2.66, no biases except in the attention projections, as in the
official code), 24.5M parameters, the paper's 24.55M.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.attention import Kernel, attention
from core.blocks import LayerNorm2d


class AxisAttention(nn.Module):
    """Multi-head self-attention along the width axis: every image row attends within itself.

    Queries, keys and values come from a 1x1 convolution followed by two depthwise 3x3 convolutions
    (local context before the global axis attention). Queries and keys are L2-normalized per head
    and their cosine similarity is scaled by a learned temperature (initialised to 1) before softmax.

    Args:
        dim: channels.
        num_heads: heads; `dim` must divide by it.
        bias: biases in the projections (the official code has them).
        kernel: attention kernel name (see `core.attention.attention`).
    """

    def __init__(self, dim: int, num_heads: int, bias: bool = True, kernel: Kernel = "auto") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"llformer.py: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.kernel = num_heads, kernel
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dw1 = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.qkv_dw2 = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.temperature = nn.Parameter(torch.ones(1))
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, dim, height, width)` -> same shape; attention spans the `width` axis."""
        b, c, h, w = x.shape
        heads, head_dim = self.num_heads, c // self.num_heads
        qkv = self.qkv_dw2(self.qkv_dw1(self.qkv(x)))

        def rows(t: Tensor) -> Tensor:  # (b, c, h, w) -> (b*h, heads, w, head_dim)
            return t.reshape(b, heads, head_dim, h, w).permute(0, 3, 1, 4, 2).reshape(b * h, heads, w, head_dim)

        q, k, v = (rows(t) for t in qkv.chunk(3, dim=1))
        q = F.normalize(q, dim=-1) * self.temperature
        k = F.normalize(k, dim=-1)
        out = attention(q, k, v, scale=1.0, kernel=self.kernel)
        out = out.reshape(b, h, heads, w, head_dim).permute(0, 2, 4, 1, 3).reshape(b, c, h, w)
        return self.project_out(out)


class AxisMultiHeadSelfAttention(nn.Module):
    """A-MSA: attention along the width (within rows), then along the height (within columns).

    Each axis has its own projections; the column pass reads the row pass's output. Cost is
    O(H * W * (H + W)) per layer, which is what makes LLFormer usable at 4K.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool = True, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.row = AxisAttention(dim, num_heads, bias, kernel)
        self.col = AxisAttention(dim, num_heads, bias, kernel)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, dim, height, width)` -> same shape."""
        x = self.row(x)
        return self.col(x.transpose(-2, -1)).transpose(-2, -1)


class DualGatedFFN(nn.Module):
    """DGFN: two parallel GELU gates, `gelu(x2) * x1 + gelu(x1) * x2`, after a depthwise 3x3 conv.

    Args:
        dim: channels in and out.
        expansion: hidden width factor (2.66 in the paper: hidden = int(dim * 2.66)).
        bias: biases in the convolutions.
    """

    def __init__(self, dim: int, expansion: float = 2.66, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, dim, height, width)` -> same shape."""
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x2) * x1 + F.gelu(x1) * x2)


class AxisTransformerBlock(nn.Module):
    """Pre-norm block: `x + A-MSA(LN(x))`, then `x + DGFN(LN(x))` (LayerNorm over channels, with bias)."""

    def __init__(
        self, dim: int, num_heads: int, expansion: float = 2.66, bias: bool = False, kernel: Kernel = "auto"
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-5)
        self.attn = AxisMultiHeadSelfAttention(dim, num_heads, bias=True, kernel=kernel)
        self.norm2 = LayerNorm2d(dim, eps=1e-5)
        self.ffn = DualGatedFFN(dim, expansion, bias)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, dim, height, width)` -> same shape."""
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class LayerAttentionFusion(nn.Module):
    """Cross-layer attention fusion: the outputs of `layers` consecutive blocks attend to each other.

    Each block's whole feature map (after a 1x1 and a depthwise 3x3 projection of the stacked maps)
    is one token; the `layers x layers` attention uses L2-normalized queries and keys and a learned
    temperature. The result is projected, added to the input and reduced back to `dim` channels.

    Args:
        dim: channels of each block's output.
        layers: how many block outputs are fused (3 in the paper).
        bias: bias of the reducing 1x1 convolution (the attention projections always have one).
        kernel: attention kernel name.
    """

    def __init__(self, dim: int, layers: int = 3, bias: bool = False, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.layers, self.kernel = layers, kernel
        width = dim * layers
        self.temperature = nn.Parameter(torch.ones(1))
        self.qkv = nn.Conv2d(width, width * 3, kernel_size=1)
        self.qkv_dwconv = nn.Conv2d(width * 3, width * 3, kernel_size=3, padding=1, groups=width * 3)
        self.project_out = nn.Conv2d(width, width, kernel_size=1)
        self.reduce = nn.Conv2d(width, dim, kernel_size=1, bias=bias)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """`features`: `layers` maps `(batch, dim, height, width)` -> fused `(batch, dim, height, width)`."""
        if len(features) != self.layers:
            raise ValueError(f"llformer.py: LayerAttentionFusion expects {self.layers} feature maps; got {len(features)}")
        x = torch.cat(list(features), dim=1)
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, 1, self.layers, -1) for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        q = F.normalize(q, dim=-1) * self.temperature
        k = F.normalize(k, dim=-1)
        out = attention(q, k, v, scale=1.0, kernel=self.kernel).reshape(b, c, h, w)
        return self.reduce(self.project_out(out) + x)


class Downsample(nn.Module):
    """3x3 conv to half the channels, then pixel-unshuffle: `(b, c, h, w) -> (b, 2c, h/2, w/2)`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv to double the channels, then pixel-shuffle: `(b, c, h, w) -> (b, c/2, 2h, 2w)`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class WeightedSkip(nn.Module):
    """Weighted skip connection: `conv1x1(a * skip + b * up)` with learned per-channel weights `a, b` (init 1)."""

    def __init__(self, dim: int, bias: bool = False, project: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2, dim))
        self.proj = nn.Conv2d(dim, dim, kernel_size=1, bias=bias) if project else nn.Identity()

    def forward(self, skip: Tensor, up: Tensor) -> Tensor:
        return self.proj(self.weight[0, :, None, None] * skip + self.weight[1, :, None, None] * up)


def _stage(dim: int, heads: int, depth: int, expansion: float, bias: bool, kernel: Kernel) -> nn.Sequential:
    return nn.Sequential(*(AxisTransformerBlock(dim, heads, expansion, bias, kernel) for _ in range(depth)))


class LLFormer(nn.Module):
    """LLFormer (Wang et al., AAAI 2023).

    Input and output are `(batch, 3, height, width)` images in [0, 1]; height and width must be
    multiples of `size_multiple` = 16 (four 2x downsamplings): pad with `vision.tiling.pad_to_multiple`.

    Args:
        in_channels: input image channels.
        out_channels: output image channels.
        dim: width of the full-resolution stages (16); level `i` of the U-net has `dim * 2**i` channels.
        num_blocks: blocks per level `[1, 2, 3, 4]`; the three encoder stages, the latent branch and
            level 1 of the U-net use `num_blocks[0]` (the official configuration).
        num_refinement_blocks: blocks in each of the three refinement stages.
        heads: attention heads of levels 0..3 (level 4 reuses `heads[3]`).
        ffn_expansion: DGFN hidden width factor.
        bias: biases in convolutions outside attention (False in the paper's configuration).
        residual: add the input image to the output (the official `skip`, off by default).
        kernel: attention kernel name for every attention layer.
    """

    role: ClassVar[str] = "model"
    size_multiple: ClassVar[int] = 16

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        dim: int = 16,
        num_blocks: Sequence[int] = (2, 4, 8, 16),
        num_refinement_blocks: int = 2,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion: float = 2.66,
        bias: bool = False,
        residual: bool = False,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError(f"llformer.py: num_blocks and heads need 4 entries; got {list(num_blocks)}, {list(heads)}")
        self.kernel, self.residual = kernel, residual
        nb, hd, e = list(num_blocks), list(heads), ffn_expansion
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=3, padding=1, bias=bias)
        self.encoder = nn.ModuleList(_stage(dim, hd[0], nb[0], e, bias, kernel) for _ in range(3))
        self.encoder_fusion = LayerAttentionFusion(dim, 3, bias, kernel)
        self.latent = _stage(dim, hd[0], nb[0], e, bias, kernel)

        self.down1, self.level1 = Downsample(dim), _stage(dim * 2, hd[1], nb[0], e, bias, kernel)
        self.down2, self.level2 = Downsample(dim * 2), _stage(dim * 4, hd[2], nb[1], e, bias, kernel)
        self.down3, self.level3 = Downsample(dim * 4), _stage(dim * 8, hd[3], nb[2], e, bias, kernel)
        self.down4, self.level4 = Downsample(dim * 8), _stage(dim * 16, hd[3], nb[3], e, bias, kernel)

        self.up4, self.skip3 = Upsample(dim * 16), WeightedSkip(dim * 8, bias)
        self.decoder3 = _stage(dim * 8, hd[3], nb[2], e, bias, kernel)
        self.up3, self.skip2 = Upsample(dim * 8), WeightedSkip(dim * 4, bias)
        self.decoder2 = _stage(dim * 4, hd[2], nb[1], e, bias, kernel)
        self.up2, self.skip1 = Upsample(dim * 4), WeightedSkip(dim * 2, bias)
        self.decoder1 = _stage(dim * 2, hd[1], nb[0], e, bias, kernel)
        self.up1, self.skip0 = Upsample(dim * 2), WeightedSkip(dim, bias, project=False)

        self.refinement = nn.ModuleList(_stage(dim, hd[0], num_refinement_blocks, e, bias, kernel) for _ in range(3))
        self.refinement_fusion = LayerAttentionFusion(dim, 3, bias, kernel)
        self.output = nn.Conv2d(dim, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, image: Tensor) -> Tensor:
        """`image: (batch, in_channels, height, width)` -> `(batch, out_channels, height, width)`."""
        multiple = self.size_multiple
        if image.dim() != 4 or image.shape[-2] % multiple or image.shape[-1] % multiple:
            raise ValueError(
                f"llformer.py: LLFormer expects (batch, channels, height, width) with height and width "
                f"multiples of {multiple}; got {tuple(image.shape)} (pad with vision.tiling.pad_to_multiple)"
            )
        x = self.patch_embed(image)
        encoded = []
        for stage in self.encoder:
            x = stage(x)
            encoded.append(x)
        fused = self.encoder_fusion(encoded)

        l1 = self.level1(self.down1(fused))
        l2 = self.level2(self.down2(l1))
        l3 = self.level3(self.down3(l2))
        l4 = self.level4(self.down4(l3))
        d3 = self.decoder3(self.skip3(l3, self.up4(l4)))
        d2 = self.decoder2(self.skip2(l2, self.up3(d3)))
        d1 = self.decoder1(self.skip1(l1, self.up2(d2)))
        x = self.skip0(self.latent(fused), self.up1(d1))

        refined = []
        for stage in self.refinement:
            x = stage(x)
            refined.append(x)
        out = self.output(self.refinement_fusion(refined))
        return out + image if self.residual else out


# Registers the official-checkpoint converter (`core.official.load_official_state_dict`) with LLFormer.
from vision.models import llformer_official  # noqa: E402,F401
