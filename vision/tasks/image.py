"""`ImageTask`: what the image-to-image tasks (low light, super-resolution) share.

Whole-image evaluation padded to the model's `size_multiple`, PSNR and SSIM accumulated per image
(`MeanMetric`, so the split's value is the mean over images whatever the batch size) and logged as
`val/psnr`, `val/ssim`, `test/psnr`, `test/ssim`, and the input / output / reference grids; and
the predictions on the user's images (PNGs and `predictions.csv`) with the serving hooks, uint8
arrays of any size in and out (`vision.data.predict_images`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch import Tensor, nn
from torchmetrics import MeanMetric

from core.task import BaseTask
from vision.data.predict_images import (
    read_predicted_images,
    serving_signature,
    write_image_predictions,
    write_serving_images,
)
from vision.tasks.grid import ImageGridLogging

Batch = tuple[Tensor, Tensor]


class ImageTask(ImageGridLogging, BaseTask, ABC):
    """Base of `LowLightTask` and `SRTask`; a subclass implements `evaluate(batch, stage, batch_idx)`.

    Args:
        model: the network (`class_path` in the config); its `size_multiple` (default 1) sets the
            evaluation padding.
        grid_rows: images shown in the logged grids.
        **kwargs: `BaseTask`'s optimizer, lr_scheduler, scheduler_interval and role.
    """

    domain = "vision"

    def __init__(self, model: nn.Module, grid_rows: int = 2, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.grid_rows = grid_rows
        self.val_psnr, self.val_ssim = MeanMetric(), MeanMetric()
        self.test_psnr, self.test_ssim = MeanMetric(), MeanMetric()

    @property
    def size_multiple(self) -> int:
        return int(getattr(self.model, "size_multiple", 1))

    @abstractmethod
    def evaluate(self, batch: Batch, stage: str, batch_idx: int) -> Any:
        """Score one validation or test batch with `score`."""

    def score(self, stage: str, psnr: Tensor, ssim: Tensor) -> None:
        """Add per-image `psnr: (batch,)` and `ssim: (batch,)` to the stage's means and log them."""
        psnr_metric, ssim_metric = (self.val_psnr, self.val_ssim) if stage == "val" else (self.test_psnr, self.test_ssim)
        psnr_metric.update(psnr.float())
        ssim_metric.update(ssim.float())
        self.log_metrics(stage, {"psnr": psnr_metric, "ssim": ssim_metric}, batch_size=psnr.shape[0])

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, "val", batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, "test", batch_idx)

    def write_predictions(self, predictions: list[Tensor], datamodule: L.LightningDataModule, output: Path) -> list[Path]:
        """The output PNGs under `output` (the inputs' names and sub-folders) and `predictions.csv`."""
        return write_image_predictions(predictions, datamodule.predict_images, output)

    @classmethod
    def serving_input(cls, model_input: Any, folder: Path) -> Path:
        """uint8 `(H, W, 3)`, a list of them or `(N, H, W, 3)` -> PNGs in `folder` (`vision.data.predict_images`)."""
        return write_serving_images(model_input, folder)

    @classmethod
    def serving_output(cls, paths: list[Path]) -> np.ndarray | list[np.ndarray]:
        """The output PNGs as uint8 `(N, H', W', 3)` (a list when sizes differ)."""
        return read_predicted_images(paths)

    def serving_signature(self, example: Any, output: Any) -> Any:
        """uint8 `(N, H, W, 3)` in and out, any size (`vision.data.predict_images.serving_signature`)."""
        return serving_signature()
