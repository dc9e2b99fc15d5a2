"""Embedded default for low-light enhancement: scikit-image's bundled photos, darkened synthetically.

No download: the photos ship inside scikit-image (`skimage.data`). Each normal-light photo `x` becomes
a low-light input `clip(gain * x ** gamma + noise)`: a gamma curve (darkens mid-tones more than
highlights, as under-exposure does after a camera's tone curve), a global gain, and
signal-dependent Gaussian noise `N(0, read**2 + shot**2 * signal)` (the usual Poisson-Gaussian
sensor model). The ranges are chosen so the mean intensity falls to about 0.02-0.10, like LOL's low
images. Splits are by photo, so the test photo is never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from skimage import data as skdata
from torch import Tensor

from vision.data.lol import Pair, PairedLowLightDataModule

TRAIN_PHOTOS: tuple[str, ...] = ("astronaut", "rocket", "immunohistochemistry")
VAL_PHOTOS: tuple[str, ...] = ("chelsea",)
TEST_PHOTOS: tuple[str, ...] = ("coffee",)


@dataclass(frozen=True)
class Darkening:
    """Ranges of the synthetic darkening, each sampled uniformly per image."""

    gamma: tuple[float, float] = (1.8, 2.6)
    gain: tuple[float, float] = (0.15, 0.35)
    read_noise: tuple[float, float] = (0.002, 0.01)
    shot_noise: tuple[float, float] = (0.005, 0.02)


def darken(image: Tensor, generator: torch.Generator, ranges: Darkening = Darkening()) -> Tensor:
    """A synthetic low-light version of `image: (3, H, W)` in [0, 1] (same shape, clipped to [0, 1])."""

    def draw(bounds: tuple[float, float]) -> float:
        low, high = bounds
        return low + (high - low) * float(torch.rand((), generator=generator))

    gamma, gain, read, shot = draw(ranges.gamma), draw(ranges.gain), draw(ranges.read_noise), draw(ranges.shot_noise)
    signal = gain * image.clamp(0, 1) ** gamma
    std = torch.sqrt(read**2 + shot**2 * signal)
    noise = torch.randn(image.shape, generator=generator) * std
    return (signal + noise).clamp(0, 1)


def load_photo(name: str) -> Tensor:
    """A bundled scikit-image colour photo as float `(3, H, W)` in [0, 1]."""
    loader = getattr(skdata, name, None)
    if loader is None:
        raise ValueError(f"vision/data/synthetic_lowlight.py: skimage.data has no photo {name!r}")
    array = np.asarray(loader())
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"vision/data/synthetic_lowlight.py: skimage.data.{name} is not an RGB photo; shape {array.shape}")
    return torch.from_numpy(array.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


class SyntheticLowLightDataModule(PairedLowLightDataModule):
    """Synthetic low/normal pairs from skimage's photos (the no-download default).

    Training crops come from `variants` darkened copies of each training photo; validation and test
    photos are darkened once each, with fixed seeds.

    Args:
        train_photos / val_photos / test_photos: `skimage.data` names of each split.
        variants: darkened copies per training photo.
        max_side: photos are centre-cropped to at most this side (keeps evaluation fast); 0 keeps them whole.
        dataset_name: the dataset tag and the MLflow experiment `vision/lowlight/<dataset_name>`.
        predict_path: an image file or a folder of them to enhance (`attn predict --predict_path`,
            `vision.data.predict_images`); None predicts the test photos. With it, `setup("predict")`
            darkens no photos.
        **kwargs: the loader settings of `PairedLowLightDataModule` (patch_size, batch_size,
            samples_per_epoch, num_workers, and seed, which also seeds the darkening).
    """

    def __init__(
        self,
        train_photos: tuple[str, ...] = TRAIN_PHOTOS,
        val_photos: tuple[str, ...] = VAL_PHOTOS,
        test_photos: tuple[str, ...] = TEST_PHOTOS,
        variants: int = 4,
        max_side: int = 0,
        dataset_name: str = "synthetic",
        predict_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset_name, predict_path=predict_path, **kwargs)
        self.train_photos, self.val_photos, self.test_photos = tuple(train_photos), tuple(val_photos), tuple(test_photos)
        self.variants, self.max_side = variants, max_side

    def _pairs(self, names: tuple[str, ...], variants: int, offset: int) -> list[Pair]:
        pairs = []
        for i, name in enumerate(names):
            photo = self._crop(load_photo(name))
            for v in range(variants):
                g = torch.Generator().manual_seed(self.seed * 7919 + offset + 100 * i + v)
                pairs.append((darken(photo, g), photo))
        return pairs

    def _crop(self, photo: Tensor) -> Tensor:
        if self.max_side <= 0:
            return photo
        h, w = photo.shape[-2:]
        th, tw = min(h, self.max_side), min(w, self.max_side)
        y, x = (h - th) // 2, (w - tw) // 2
        return photo[:, y:y + th, x:x + tw]

    def setup(self, stage: str | None = None) -> None:
        if self.train_pairs or self.reads_own_images(stage):
            return
        self.train_pairs = self._pairs(self.train_photos, self.variants, 0)
        self.val_pairs = self._pairs(self.val_photos, 1, 10_000)
        self.test_pairs = self._pairs(self.test_photos, 1, 20_000)
