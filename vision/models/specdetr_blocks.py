"""SpecDETR's building blocks: multi-scale deformable sampling attention, its encoder and decoder layers, position codes.

Deformable attention (Zhu et al., "Deformable DETR", ICLR 2021) is not a softmax over query-key
products: each query predicts, per head, a few sampling offsets around its reference point on every
feature level and a softmax weight per sampled point, and reads the value map there by bilinear
interpolation. Here the sampling is `torch.nn.functional.grid_sample` (`deformable_sample`, tested
against a direct bilinear reference). In SpecDETR (Li et al., ISPRS P&RS 2025) the two levels are the
full-resolution pixel map and the scene's (detached) global mean token, so every pixel token attends
to learned sub-pixel positions around itself and to the scene context: the paper's self-excited
sub-pixel-scale attention. The decoder's optional query self-attention is ordinary softmax attention
and goes through `core.attention.MultiHeadAttention`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.attention import Kernel, MultiHeadAttention
from core.blocks import MLP


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """`log(x / (1 - x))` with both clamped to at least `eps` (mmdet's, for box logits)."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def deformable_sample(value: Tensor, shapes: list[tuple[int, int]], locations: Tensor, weights: Tensor) -> Tensor:
    """Weighted bilinear samples of a multi-level value map (the core of multi-scale deformable attention).

    Args:
        value: `(batch, sum_l h_l * w_l, heads, head_dim)`, the levels' tokens in raster order, concatenated.
        shapes: `(h_l, w_l)` of each level.
        locations: `(batch, queries, heads, levels, points, 2)` sampling points `(x, y)` normalized to
            [0, 1] over each level (0 and 1 are the outer pixel edges; outside reads zeros).
        weights: `(batch, queries, heads, levels, points)` weight of each sample.

    Returns `(batch, queries, heads * head_dim)`: per head, the weighted sum of the sampled values.
    """
    b, _, heads, dim = value.shape
    _, q, _, levels, points, _ = locations.shape
    if len(shapes) != levels:
        raise ValueError(f"deformable_sample: {len(shapes)} level shapes for locations with {levels} levels")
    per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * locations - 1  # grid_sample's [-1, 1] with align_corners=False: -1 and 1 are the outer edges
    samples = []
    for level, (h, w) in enumerate(shapes):
        v = per_level[level].permute(0, 2, 3, 1).reshape(b * heads, dim, h, w)
        grid = grids[:, :, :, level].transpose(1, 2).reshape(b * heads, q, points, 2)
        samples.append(F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    stacked = torch.stack(samples, dim=-2).flatten(-2)  # (b * heads, dim, q, levels * points)
    w = weights.transpose(1, 2).reshape(b * heads, 1, q, levels * points)
    out = (stacked * w).sum(-1).view(b, heads * dim, q)
    return out.transpose(1, 2).contiguous()


class DeformableAttention(nn.Module):
    """Multi-scale deformable attention (Deformable DETR), as SpecDETR configures it.

    Reference points are `(x, y)` (encoder: the token's pixel centre, offsets in pixels of each
    level) or boxes `(cx, cy, w, h)` (decoder: offsets scaled by half the box over `num_points`).

    Args:
        dim: model width.
        num_heads: attention heads (each samples its own points).
        num_levels: feature levels of the value (SpecDETR: 2, the pixel map and the global token).
        num_points: sampling points per head and level.
    """

    def __init__(self, dim: int, num_heads: int = 8, num_levels: int = 2, num_points: int = 4) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"DeformableAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.num_levels, self.num_points = num_heads, num_levels, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's init: zero offset weights, offset biases on rays of `num_heads` directions
        with point i at distance i + 1, uniform attention weights, Xavier value and output projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        grid *= torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for linear in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, query: Tensor, value: Tensor, reference: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        """`query (b, q, dim)` (position code added), `value (b, n, dim)`, `reference (b, q, levels, 2 | 4)` -> `(b, q, dim)`."""
        b, q, _ = query.shape
        n = value.shape[1]
        if sum(h * w for h, w in shapes) != n:
            raise ValueError(f"DeformableAttention: level shapes {shapes} do not add up to {n} value tokens")
        v = self.value_proj(value).view(b, n, self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(b, q, self.num_heads, self.num_levels, self.num_points, 2)
        weights = self.attention_weights(query).view(b, q, self.num_heads, self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(b, q, self.num_heads, self.num_levels, self.num_points)
        if reference.shape[-1] == 2:
            normalizer = torch.tensor([[w, h] for h, w in shapes], dtype=query.dtype, device=query.device)
            locations = reference[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        elif reference.shape[-1] == 4:
            locations = (reference[:, :, None, :, None, :2]
                         + offsets / self.num_points * reference[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError(f"DeformableAttention: reference must end in 2 (points) or 4 (boxes); got {tuple(reference.shape)}")
        return self.output_proj(deformable_sample(v, shapes, locations, weights))


class SpecDETREncoderLayer(nn.Module):
    """Post-norm encoder layer: deformable self-attention over pixel tokens and the global token, then the FFN.

    Args:
        dim: model width.
        num_heads: deformable attention heads.
        num_levels: value levels (2).
        num_points: sampling points per head and level.
        ffn_dim: FFN inner width (paper: 8 x dim).
        dropout: dropout after attention and in the FFN (paper: 0).
    """

    def __init__(self, dim: int, num_heads: int, num_levels: int, num_points: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = DeformableAttention(dim, num_heads, num_levels, num_points)
        self.ffn = MLP(dim, ffn_dim, activation="relu", dropout=dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor, reference: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        """`x, pos: (b, n, dim)`, `reference: (b, n, levels, 2)` -> `(b, n, dim)`."""
        x = self.norm1(x + self.drop(self.self_attn(x + pos, x, reference, shapes)))
        return self.norm2(x + self.ffn(x))


class SpecDETRDecoderLayer(nn.Module):
    """Post-norm decoder layer: optional query self-attention, deformable cross-attention to the memory, FFN.

    SpecDETR's official decoder has no query self-attention (its one-to-many assignment and NMS
    handle duplicates); `self_attention=True` adds DINO's, through `core.attention`.

    Args:
        dim: model width.
        num_heads: heads of the cross- (and self-) attention.
        num_levels: memory levels (2).
        num_points: sampling points per head and level.
        ffn_dim: FFN inner width.
        dropout: dropout after attention and in the FFN.
        self_attention: add multi-head self-attention among the queries.
        kernel: attention kernel of that self-attention (`core.attention.attention`).
    """

    def __init__(self, dim: int, num_heads: int, num_levels: int, num_points: int, ffn_dim: int, dropout: float = 0.0,
                 self_attention: bool = False, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, num_heads, kernel=kernel) if self_attention else None
        self.norm0 = nn.LayerNorm(dim) if self_attention else None
        self.cross_attn = DeformableAttention(dim, num_heads, num_levels, num_points)
        self.ffn = MLP(dim, ffn_dim, activation="relu", dropout=dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor, memory: Tensor, reference: Tensor, shapes: list[tuple[int, int]],
                attn_mask: Tensor | None = None) -> Tensor:
        """`x, pos: (b, q, dim)`, `memory: (b, n, dim)`, `reference: (b, q, levels, 4)`; `attn_mask (q, q)` bool, True = attend."""
        if self.self_attn is not None:
            qk = x + pos
            x = self.norm0(x + self.drop(self.self_attn(qk, qk, x, attn_mask=attn_mask)))
        x = self.norm1(x + self.drop(self.cross_attn(x + pos, memory, reference, shapes)))
        return self.norm2(x + self.ffn(x))


def sine_position_code(height: int, width: int, num_feats: int, temperature: float, device: torch.device | None = None) -> Tensor:
    """DETR's normalized 2-D sine code of an unpadded `height x width` map: `(height * width, 2 * num_feats)`, y half first.

    Row i has `y = (i + 1) / height * 2 pi` (and likewise x), then sin/cos at frequencies
    `temperature ** (2 floor(j / 2) / num_feats)`.
    """
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, dtype=torch.float32, device=device)[:, None].expand(height, width) / (height + eps) * scale
    x = torch.arange(1, width + 1, dtype=torch.float32, device=device)[None, :].expand(height, width) / (width + eps) * scale
    dim_t = temperature ** (2 * (torch.arange(num_feats, dtype=torch.float32, device=device) // 2) / num_feats)
    pos_x, pos_y = x[..., None] / dim_t, y[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=-1).flatten(2)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=-1).flatten(2)
    return torch.cat((pos_y, pos_x), dim=-1).reshape(height * width, 2 * num_feats)


def box_position_code(boxes: Tensor, num_feats: int, temperature: float = 10000.0) -> Tensor:
    """Sine code of normalized `(..., 4)` boxes cx, cy, w, h: `(..., 4 * num_feats)`, ordered y, x, w, h.

    As mmdet's `coordinate_to_encoding`, which SpecDETR's decoder uses for its query positions.
    """
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=boxes.device)
    dim_t = temperature ** (2 * (dim_t // 2) / num_feats)
    parts = []
    for index in (1, 0, 2, 3):
        p = boxes[..., index, None] * (2 * math.pi) / dim_t
        parts.append(torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=-1).flatten(-2))
    return torch.cat(parts, dim=-1)
