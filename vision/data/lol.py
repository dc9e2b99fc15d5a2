"""LOL-layout paired low/normal-light folders and the `LOLDataModule`.

LOL (Wei, Wang, Yang, Liu, "Deep Retinex Decomposition for Low-Light Enhancement", BMVC 2018) ships
`our485/{low,high}` (training) and `eval15/{low,high}` (test): PNG pairs with the same file name.
Every low image needs its high partner of the same size (else `ValueError` naming the files); high
images without a low partner are skipped and counted in a warning. When no test folder exists (the
20-pair subset in `../shared/data/vision/LOL/our485_subset`), the last `test_count` pairs in numeric
order are held out for test and the `val_count` before them for validation: consecutive LOL ids are
often shots of the same scene, so a contiguous split keeps scenes out of training.

Training samples are random `patch_size` crops with random flips and 90-degree rotations (LLFormer's
and LYT-Net's augmentation); validation and test use whole images (batch size 1).

`predict_path` (`attn predict --predict_path`): the user's own images, a file or a folder of any
size (`vision.data.predict_images`); with it, `setup("predict")` reads no training data, so a
machine with only the checkpoint and the images predicts.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from vision.data.io import list_images, read_image
from vision.data.predict_images import PredictImage, predict_loader

Pair = tuple[Tensor, Tensor]

SHARED_LOL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "vision" / "LOL"


def _numeric_key(path: Path) -> tuple[int, int | str]:
    match = re.fullmatch(r"\d+", path.stem)
    return (0, int(path.stem)) if match else (1, path.stem)


def find_pairs(folder: str | Path, low_dir: str = "low", high_dir: str = "high") -> list[tuple[Path, Path]]:
    """`(low, high)` file pairs of `folder/low_dir` and `folder/high_dir`, matched by file name.

    Sorted numerically where names are numbers (LOL's ids), else by name.

    Raises:
        ValueError: a folder is missing or empty, or a low image has no high image of the same name.
    """
    folder = Path(folder)
    low_folder, high_folder = folder / low_dir, folder / high_dir
    for sub in (low_folder, high_folder):
        if not sub.is_dir():
            raise ValueError(f"{sub}: folder missing; a LOL-layout folder holds '{low_dir}/' and '{high_dir}/'")
    lows = sorted(list_images(low_folder), key=_numeric_key)
    if not lows:
        raise ValueError(f"{low_folder}: no images (png/jpg/jpeg/bmp/tif)")
    highs = {p.name: p for p in list_images(high_folder)}
    missing = [p.name for p in lows if p.name not in highs]
    if missing:
        raise ValueError(f"{low_folder}: {len(missing)} low image(s) without a high image in {high_folder}: {missing[:5]}")
    unpaired = len(highs) - len(lows)
    if unpaired:
        warnings.warn(f"{high_folder}: skipped {unpaired} high image(s) without a low image", stacklevel=2)
    return [(p, highs[p.name]) for p in lows]


def load_pair(low_path: Path, high_path: Path) -> Pair:
    """Read one pair as float `(3, H, W)` tensors; `ValueError` naming both files if sizes differ."""
    low, high = read_image(low_path), read_image(high_path)
    if low.shape != high.shape:
        raise ValueError(
            f"{low_path}: size {tuple(low.shape[1:])} differs from its high image {high_path} {tuple(high.shape[1:])}"
        )
    return low, high


def augment(low: Tensor, high: Tensor, generator: torch.Generator) -> Pair:
    """The same random horizontal/vertical flip and 90-degree rotation applied to both images."""
    flips = torch.randint(0, 2, (2,), generator=generator).tolist()
    turns = int(torch.randint(0, 4, (1,), generator=generator))
    dims = [d for d, f in zip((-1, -2), flips, strict=True) if f]
    if dims:
        low, high = low.flip(dims), high.flip(dims)
    return low.rot90(turns, (-2, -1)), high.rot90(turns, (-2, -1))


class PairedCrops(Dataset):
    """Random aligned crops (with flips/rotations) of in-memory `(low, high)` pairs.

    Sample `i` (which pair, where, which flip/rotation) is a pure function of `seed` and `i`; the
    index space is virtual (2**31 samples), so a sampler drawing random indices with replacement
    (`PairedLowLightDataModule.train_dataloader`) gives fresh crops every epoch, reproducibly.

    Args:
        pairs: `(low, high)` tensors `(3, H, W)`.
        patch_size: crop side (images smaller than it are reflect-padded first).
        seed: base seed.
    """

    def __init__(self, pairs: Sequence[Pair], patch_size: int, seed: int = 0) -> None:
        if not pairs:
            raise ValueError("vision/data/lol.py: PairedCrops needs at least one pair")
        self.pairs, self.patch_size, self.seed = list(pairs), patch_size, seed

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, index: int) -> Pair:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        low, high = self.pairs[int(torch.randint(len(self.pairs), (1,), generator=g))]
        p = self.patch_size
        h, w = low.shape[-2:]
        if h < p or w < p:
            pad = (0, max(0, p - w), 0, max(0, p - h))
            mode = "reflect" if p - h < h and p - w < w else "replicate"
            low = torch.nn.functional.pad(low[None], pad, mode=mode)[0]
            high = torch.nn.functional.pad(high[None], pad, mode=mode)[0]
            h, w = low.shape[-2:]
        y = int(torch.randint(h - p + 1, (1,), generator=g))
        x = int(torch.randint(w - p + 1, (1,), generator=g))
        return augment(low[:, y:y + p, x:x + p], high[:, y:y + p, x:x + p], g)


class WholeImages(Dataset):
    """Whole `(low, high)` pairs for validation and test."""

    def __init__(self, pairs: Sequence[Pair]) -> None:
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Pair:
        return self.pairs[index]


class PairedLowLightDataModule(L.LightningDataModule):
    """Shared loaders of the low-light DataModules: crops for training, whole images to evaluate.

    Subclasses fill `self.train_pairs`, `self.val_pairs` and `self.test_pairs` in `setup`.

    Args:
        dataset_name: the dataset tag and the MLflow experiment `vision/lowlight/<dataset_name>`.
        patch_size: training crop side (LLFormer uses 128, LYT-Net 256).
        batch_size: training batch size.
        samples_per_epoch: random crops per training epoch.
        num_workers: DataLoader workers.
        seed: seeds the crops and augmentations (and a subclass's own randomness).
        predict_path: an image file or a folder of them to enhance (`attn predict --predict_path`,
            `vision.data.predict_images`); None predicts the test split.
    """

    def __init__(self, dataset_name: str, patch_size: int = 128, batch_size: int = 8, samples_per_epoch: int = 400,
                 num_workers: int = 0, seed: int = 0, predict_path: str | None = None) -> None:
        super().__init__()
        self.dataset_name = dataset_name
        self.patch_size, self.batch_size, self.samples_per_epoch = patch_size, batch_size, samples_per_epoch
        self.num_workers, self.seed = num_workers, seed
        self.predict_path = predict_path
        self.train_pairs: list[Pair] = []
        self.val_pairs: list[Pair] = []
        self.test_pairs: list[Pair] = []
        self.predict_images: list[PredictImage] = []
        self.predict_skipped = 0

    def reads_own_images(self, stage: str | None) -> bool:
        """True when `setup(stage)` needs no training data: predicting the user's `predict_path`."""
        return stage == "predict" and self.predict_path is not None

    def train_dataloader(self) -> DataLoader:
        crops = PairedCrops(self.train_pairs, self.patch_size, self.seed)
        sampler = RandomSampler(crops, replacement=True, num_samples=self.samples_per_epoch,
                                generator=torch.Generator().manual_seed(self.seed))
        return DataLoader(crops, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(WholeImages(self.val_pairs), batch_size=1, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(WholeImages(self.test_pairs), batch_size=1, num_workers=self.num_workers)

    def predict_dataloader(self) -> DataLoader:
        """`predict_path`'s images one by one (unreadable files skipped and counted in `predict_skipped`), else the
        test split."""
        if self.predict_path is None:
            return self.test_dataloader()
        loader, self.predict_images, self.predict_skipped = predict_loader(self.predict_path, self.num_workers)
        return loader


class LOLDataModule(PairedLowLightDataModule):
    """LOL-layout pairs (`<root>/<train_dir>/{low,high}`, `<root>/<test_dir>/{low,high}`).

    Args:
        root: the LOL folder; default `../shared/data/vision/LOL` beside the repository.
        train_dir: training folder (`our485`; the shared subset is `our485_subset`).
        test_dir: test folder (`eval15`); None, or a folder that does not exist, holds out the last
            `test_count` training pairs instead.
        val_count: training pairs (in numeric order, just before the test hold-out) kept for validation.
        test_count: pairs held out for test when there is no test folder.
        dataset_name: the dataset tag and the MLflow experiment `vision/lowlight/<dataset_name>`.
        predict_path: an image file or a folder of them to enhance (`attn predict --predict_path`);
            None predicts the test split.
        **kwargs: the loader settings of `PairedLowLightDataModule` (patch_size, batch_size,
            samples_per_epoch, num_workers, seed).
    """

    def __init__(
        self,
        root: str | None = None,
        train_dir: str = "our485",
        test_dir: str | None = "eval15",
        val_count: int = 2,
        test_count: int = 4,
        dataset_name: str = "LOL",
        predict_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset_name, predict_path=predict_path, **kwargs)
        self.root = Path(root) if root is not None else SHARED_LOL
        self.train_dir, self.test_dir = train_dir, test_dir
        self.val_count, self.test_count = val_count, test_count
        self.split_names: dict[str, list[str]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.train_pairs or self.test_pairs or self.reads_own_images(stage):
            return
        train_files = find_pairs(self.root / self.train_dir)
        test_folder = self.root / self.test_dir if self.test_dir else None
        if test_folder is not None and test_folder.is_dir():
            test_files = find_pairs(test_folder)
        else:
            if self.test_count <= 0:
                raise ValueError(f"{self.root}: no test folder '{self.test_dir}' and test_count={self.test_count}")
            test_files, train_files = train_files[-self.test_count:], train_files[:-self.test_count]
        if self.val_count < 1:
            raise ValueError(f"{self.root / self.train_dir}: val_count must be at least 1; got {self.val_count}")
        val_files = train_files[-self.val_count:]
        train_files = train_files[: len(train_files) - len(val_files)]
        if not train_files:
            raise ValueError(f"{self.root / self.train_dir}: no training pairs left after holding out "
                             f"{len(val_files)} for validation and {len(test_files)} for test")
        self.split_names = {name: [low.name for low, _ in files]
                            for name, files in (("train", train_files), ("val", val_files), ("test", test_files))}
        self.train_pairs = [load_pair(*f) for f in train_files]
        self.val_pairs = [load_pair(*f) for f in val_files]
        self.test_pairs = [load_pair(*f) for f in test_files]
