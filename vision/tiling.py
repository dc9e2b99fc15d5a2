"""Whole-image inference for image-to-image models: reflect padding to a size multiple, and tiling.

`pad_to_multiple` / `enhance_whole` run a model on a whole image padded (reflect) to the model's
size multiple and crop the result back (to `scale` times the input for super-resolution); the
low-light and the SR task both evaluate through them, so padding lives in this one place.
`tiled_inference` runs a model on overlapping tiles and blends them with a separable window that is
1 in the tile's interior and ramps linearly over the overlap, so seams vanish and memory is bounded
by one tile: LLFormer enhances a 3840x2160 image on a CPU in a few GiB. Where tiles overlap,
outputs are averaged with those weights; a pointwise model therefore gives exactly the whole-image
result.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

Model = Callable[[Tensor], Tensor]


def pad_to_multiple(image: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad `image: (batch, C, H, W)` at the bottom/right to multiples of `multiple`.

    Returns the padded image and the original `(H, W)` (to crop the output back). Falls back to
    replicate padding where the image is too small to reflect (a pad not smaller than the side,
    which `F.pad(mode="reflect")` refuses); an image that is already a multiple comes back as is.
    """
    if image.dim() != 4:
        raise ValueError(f"vision/tiling.py: expected (batch, channels, height, width); got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return image, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(image, (0, pw, 0, ph), mode=mode), (h, w)


def enhance_whole(model: Model, image: Tensor, multiple: int = 1, scale: int = 1) -> Tensor:
    """`model` on the whole `image: (batch, C, H, W)`, padded to `multiple` and cropped back.

    `scale` is the model's upscaling factor: the output is cropped to `(scale * H, scale * W)`.
    """
    padded, (h, w) = pad_to_multiple(image, multiple)
    return model(padded)[..., : h * scale, : w * scale]


def blend_window(size: int, overlap: int, *, start: bool, end: bool) -> Tensor:
    """1-D blending weights of one tile: linear ramps over `overlap` pixels at the sides that have a neighbour.

    The ramps of two neighbours sum to a positive constant over their overlap; image borders (`start`
    or `end` true) keep weight 1.
    """
    weights = torch.ones(size)
    if overlap > 0:
        ramp = (torch.arange(overlap, dtype=torch.float32) + 1) / (overlap + 1)
        if not start:
            weights[:overlap] = ramp
        if not end:
            weights[-overlap:] = ramp.flip(0)
    return weights


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering `length` pixels with at least `overlap` shared pixels (last tile flush)."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    starts = [min(i * stride, length - tile) for i in range(count)]
    return sorted(set(starts))


@torch.no_grad()
def tiled_inference(
    model: Model,
    image: Tensor,
    *,
    tile: int = 256,
    overlap: int = 32,
    multiple: int = 1,
    progress: bool = False,
) -> Tensor:
    """Enhance `image: (batch, C, H, W)` tile by tile and blend the overlapping outputs.

    Args:
        model: maps `(batch, C, h, w)` to `(batch, C_out, h, w)`.
        tile: tile side in pixels (a multiple of `multiple`; shrunk to the image where it is smaller).
        overlap: pixels shared by neighbouring tiles (less than `tile`).
        multiple: the model's size multiple; edge tiles that do not fit are reflect-padded.
        progress: show a tqdm bar over tiles.

    Returns:
        `(batch, C_out, H, W)` on the image's device, float32.
    """
    if image.dim() != 4:
        raise ValueError(f"vision/tiling.py: expected (batch, channels, height, width); got {tuple(image.shape)}")
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"vision/tiling.py: need tile > 0 and 0 <= overlap < tile; got tile={tile}, overlap={overlap}")
    if tile % multiple:
        raise ValueError(f"vision/tiling.py: tile {tile} is not a multiple of the model's size multiple {multiple}")
    b, _, h, w = image.shape
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    out: Tensor | None = None
    norm = torch.zeros(1, 1, h, w, device=image.device)
    bar = tqdm(total=len(ys) * len(xs), desc="tiles", disable=not progress)
    for y0 in ys:
        th = min(tile, h - y0)
        wy = blend_window(th, overlap, start=y0 == 0, end=y0 + th >= h).to(image.device)
        for x0 in xs:
            tw = min(tile, w - x0)
            wx = blend_window(tw, overlap, start=x0 == 0, end=x0 + tw >= w).to(image.device)
            piece = enhance_whole(model, image[..., y0:y0 + th, x0:x0 + tw], multiple).float()
            if out is None:
                out = torch.zeros(b, piece.shape[1], h, w, device=image.device)
            weight = wy[:, None] * wx[None, :]
            out[..., y0:y0 + th, x0:x0 + tw] += piece * weight
            norm[..., y0:y0 + th, x0:x0 + tw] += weight
            bar.update()
    bar.close()
    assert out is not None
    return out / norm
