"""Image files in and out: float32 `(3, H, W)` tensors in [0, 1], with errors that name the file.

`read_image` decodes with Pillow (torchvision's own dependency) and calls `.load()` so a truncated
file fails here, not later inside a DataLoader worker. Grayscale is replicated to RGB and RGBA has
its alpha dropped in `mode="convert"` (with a warning naming the file); `mode="error"` refuses both.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_image(path: str | Path, *, mode: Literal["error", "convert"] = "convert") -> Tensor:
    """Read an image file as float32 `(3, height, width)` in [0, 1].

    Args:
        path: image file (any format Pillow reads).
        mode: `convert` replicates grayscale to RGB and drops an alpha channel, warning with the
            file name; `error` raises `ValueError` for anything that is not plain RGB.

    Raises:
        ValueError: `"{path}: ..."` when the file is missing, unreadable, truncated, or (in
            `error` mode) not RGB.
    """
    if mode not in ("error", "convert"):
        raise ValueError(f"read_image: mode must be 'error' or 'convert'; got {mode!r}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            img.load()
            image = img.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path}: unreadable or truncated image ({err})") from err
    band_mode = image.mode
    if band_mode != "RGB":
        if mode == "error":
            raise ValueError(f"{path}: expected an RGB image; found mode {band_mode!r} ({_describe(band_mode)})")
        warnings.warn(f"{path}: converting {_describe(band_mode)} image (mode {band_mode!r}) to RGB", stacklevel=2)
        image = _to_rgb(image)
    array = np.asarray(image)
    if array.dtype == np.uint8:
        data = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        data = array.astype(np.float32) / 65535.0
    else:
        raise ValueError(f"{path}: unsupported pixel type {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))


def save_image(image: Tensor, path: str | Path) -> None:
    """Write `image: (3, height, width)` in [0, 1] (values are clamped) as an 8-bit file."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{path}: save_image expects (3, height, width); got {tuple(image.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255.0).round().astype(np.uint8)
    Image.fromarray(array, mode="RGB").save(path)


def list_images(folder: str | Path) -> list[Path]:
    """Image files (png, jpg, jpeg, bmp, tif) directly inside `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a directory")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _describe(band_mode: str) -> str:
    if band_mode in ("L", "I", "I;16", "F", "1"):
        return "grayscale"
    if band_mode in ("RGBA", "LA", "PA"):
        return "with alpha"
    return "non-RGB"


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I"):
        # 16-bit grayscale: keep the precision Pillow's 8-bit "RGB" conversion would drop.
        gray = np.asarray(image).astype(np.float32) / 65535.0
        rgb = (np.repeat(gray[..., None], 3, axis=2) * 255.0).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(rgb, mode="RGB")
    return image.convert("RGB")
