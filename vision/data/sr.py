"""Super-resolution data: HR-only image folders (DIV2K / Set5 layouts) with MATLAB-bicubic LR inputs.

The protocol of the SR literature: every HR image is cropped at the bottom/right to a multiple of
the scale, its LR input is MATLAB's antialiased bicubic downsampling (`vision.resize`) rounded to
8 bits (as the LR PNGs of DIV2K / Set5 are), training uses random aligned LR/HR patches with flips
and 90-degree rotations, and evaluation uses whole images. A grayscale file is read as three equal
channels (`read_image`), and its LR keeps them equal (the resize acts per channel): that is how
`SRTask` knows to score it on its intensity (`vision.metrics.is_grayscale`).

Without folders, an embedded default needs no download: photos that scikit-image ships
(`skimage.data`), split into training photos, one validation photo (a 256x256 centre crop, so that
validation stays cheap on a CPU) and one test photo (whole).

`predict_path` (`attn predict --predict_path`): the user's own LR images, a file or a folder of any
size (`vision.data.predict_images`), upscaled by the model's scale; with it, `setup("predict")`
reads no training or test images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from vision.data.io import list_images, read_image
from vision.data.predict_images import PredictImage, predict_loader
from vision.metrics import quantize
from vision.resize import bicubic_degrade, mod_crop

log = logging.getLogger(__name__)

EMBEDDED_TRAIN = ("astronaut", "rocket", "stereo_motorcycle", "immunohistochemistry", "camera", "brick", "grass", "gravel")
EMBEDDED_VAL = ("coffee",)
EMBEDDED_TEST = ("chelsea",)


def skimage_photo(name: str) -> Tensor:
    """A photo bundled with scikit-image as float32 `(3, H, W)` in [0, 1] (grayscale replicated)."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo pairs: the left view
        image = image[0]
    t = torch.from_numpy(np.ascontiguousarray(image)).float() / 255.0
    if t.dim() == 2:
        t = t[None].expand(3, -1, -1)
    else:
        t = t[..., :3].permute(2, 0, 1)
    return t.contiguous()


def center_crop(image: Tensor, size: int) -> Tensor:
    """Centre crop of `(..., H, W)` to at most `size x size`."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[..., top:top + size, left:left + size]


def make_pair(hr: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """`(lr, hr)` of the protocol: HR mod-cropped to `scale`, LR its 8-bit bicubic downsampling."""
    hr = mod_crop(hr, scale)
    return quantize(bicubic_degrade(hr, scale)), hr


class SRPairs(Dataset):
    """Whole-image `(lr, hr)` pairs for validation and testing (batch size 1: sizes differ)."""

    def __init__(self, images: list[Tensor], scale: int, names: list[str]) -> None:
        self.pairs = [make_pair(hr, scale) for hr in images]
        self.names = names

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.pairs[index]


class SRPatches(Dataset):
    """Random aligned patches: an LR crop of `patch_size` and the HR crop `scale` times larger.

    Each item picks an image and a position at random, then a random horizontal flip, vertical flip
    and transpose (together the 8 symmetries of the square). `samples_per_epoch` items per epoch.
    """

    def __init__(self, pairs: list[tuple[Tensor, Tensor]], scale: int, patch_size: int, samples_per_epoch: int, seed: int) -> None:
        small = [i for i, (lr, _) in enumerate(pairs) if min(lr.shape[-2:]) < patch_size]
        if small:
            raise ValueError(f"vision/data/sr.py: LR images {small} are smaller than patch_size {patch_size}")
        self.pairs, self.scale, self.patch_size, self.samples = pairs, scale, patch_size, samples_per_epoch
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        lr, hr = self.pairs[int(self.rng.integers(len(self.pairs)))]
        p, s = self.patch_size, self.scale
        top = int(self.rng.integers(lr.shape[-2] - p + 1))
        left = int(self.rng.integers(lr.shape[-1] - p + 1))
        lr = lr[:, top:top + p, left:left + p]
        hr = hr[:, top * s:(top + p) * s, left * s:(left + p) * s]
        hflip, vflip, transpose = self.rng.random(3) < 0.5
        if hflip:
            lr, hr = lr.flip(-1), hr.flip(-1)
        if vflip:
            lr, hr = lr.flip(-2), hr.flip(-2)
        if transpose:
            lr, hr = lr.transpose(-1, -2), hr.transpose(-1, -2)
        return lr.contiguous(), hr.contiguous()


def _seed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset
    dataset.rng = np.random.default_rng([dataset.seed, worker_id, torch.initial_seed() % 2**32])


class SRDataModule(L.LightningDataModule):
    """HR image folders (or scikit-image's photos) -> LR/HR pairs for x`scale` super-resolution.

    Args:
        scale: the upscaling factor (2, 3, 4).
        train_path: folder of HR training images (DIV2K_train_HR layout: one image per file);
            default: the embedded scikit-image photos.
        val_path: folder of HR validation images; default: the embedded validation photo (256x256
            centre crop) when training on the embedded photos, else `test_path`.
        test_path: folder of HR test images (e.g. Set5); default: the embedded test photo.
        dataset_name: the dataset tag and the MLflow experiment `vision/sr/<dataset_name>` (the scale
            is the run param `data.scale`); default: the test folder's name, or `skimage`.
        patch_size: side of the LR training patches (64 in HAT, 48 in EDSR).
        batch_size: training batch size.
        samples_per_epoch: random patches per training epoch.
        val_crop: validation images are centre-cropped to this HR side (0 keeps them whole).
        num_workers: training DataLoader workers.
        seed: seeds the patch sampler.
        predict_path: an image file or a folder of them to upscale as they are, no downsampling
            (`attn predict --predict_path`, `vision.data.predict_images`); None predicts the test split.
    """

    def __init__(
        self, scale: int = 4, train_path: str | None = None, val_path: str | None = None, test_path: str | None = None,
        dataset_name: str | None = None, patch_size: int = 64, batch_size: int = 4, samples_per_epoch: int = 1000,
        val_crop: int = 256, num_workers: int = 0, seed: int = 0, predict_path: str | None = None,
    ) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"vision/data/sr.py: scale must be >= 1; got {scale}")
        self.scale, self.train_path, self.val_path, self.test_path = scale, train_path, val_path, test_path
        self.dataset_name = dataset_name or (Path(test_path).name if test_path else "skimage")
        self.patch_size, self.batch_size, self.samples_per_epoch = patch_size, batch_size, samples_per_epoch
        self.val_crop, self.num_workers, self.seed = val_crop, num_workers, seed
        self.predict_path = predict_path
        self.train_set: SRPatches | None = None
        self.val_set: SRPairs | None = None
        self.test_set: SRPairs | None = None
        self.predict_images: list[PredictImage] = []
        self.predict_skipped = 0

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and self.predict_path is not None:
            return  # the user's images are read by predict_dataloader
        if stage in (None, "fit") and self.train_set is None:
            hr = self._load(self.train_path, EMBEDDED_TRAIN)[0]
            pairs = [make_pair(image, self.scale) for image in hr]
            self.train_set = SRPatches(pairs, self.scale, self.patch_size, self.samples_per_epoch, self.seed)
        if stage in (None, "fit", "validate") and self.val_set is None:
            path = self.val_path or (self.test_path if self.train_path else None)
            images, names = self._load(path, EMBEDDED_VAL)
            if self.val_crop:
                images = [center_crop(image, self.val_crop) for image in images]
            self.val_set = SRPairs(images, self.scale, names)
        if stage in (None, "test", "predict") and self.test_set is None:
            images, names = self._load(self.test_path, EMBEDDED_TEST)
            self.test_set = SRPairs(images, self.scale, names)

    def _load(self, path: str | None, embedded: tuple[str, ...]) -> tuple[list[Tensor], list[str]]:
        if path is None:
            return [skimage_photo(name) for name in embedded], list(embedded)
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"vision/data/sr.py: {folder}: not a folder of HR images")
        files = list_images(folder)
        if not files:
            raise ValueError(f"vision/data/sr.py: {folder}: no png/jpg/bmp/tif images found")
        images = [read_image(f) for f in files]
        small = [f.name for f, im in zip(files, images, strict=True) if min(im.shape[-2:]) < self.scale]
        if small:
            raise ValueError(f"vision/data/sr.py: {folder}: images smaller than the scale {self.scale}: {small}")
        log.info("%s: %d HR images", folder, len(images))
        return images, [f.stem for f in files]

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, _seed_worker if self.num_workers else None, self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, 1, None, 0)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, 1, None, 0)

    def predict_dataloader(self) -> DataLoader:
        """`predict_path`'s images one by one (unreadable files skipped and counted in `predict_skipped`), else the
        test split."""
        if self.predict_path is None:
            return self.test_dataloader()
        loader, self.predict_images, self.predict_skipped = predict_loader(self.predict_path)
        return loader

    def _loader(self, dataset: Dataset | None, batch_size: int, init: Callable | None, workers: int) -> DataLoader:
        if dataset is None:
            raise RuntimeError("vision/data/sr.py: call setup() before asking for a DataLoader")
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, worker_init_fn=init,
                          persistent_workers=workers > 0)
