"""`LowLightTask`: the LightningModule of every low-light enhancer (LLFormer, LYT-Net, classical baselines).

Batches are `(low, high)` pairs from `vision.data.lol.LOLDataModule` or
`vision.data.synthetic_lowlight.SyntheticLowLightDataModule`. Training sees random crops; validation
and test see whole images, reflect-padded to the model's `size_multiple` and cropped back (or, with
`tile`, enhanced tile by tile). PSNR and SSIM are computed on RGB in [0, 1] after clamping and 8-bit
rounding (what a saved PNG holds) and averaged over images: `val/psnr`, `val/ssim`, `test/psnr`,
`test/ssim`. A grid input / output / reference is logged to MLflow after every validation and test.

`attn predict --ckpt_path CKPT --predict_path PATH --output DIR` enhances the user's own images of any
size (`vision.data.predict_images`): images larger than `predict_tile` go tile by tile with
`tile_overlap` blended pixels (`vision.tiling.tiled_inference`; each tile padded to the model's size
multiple), and the 8-bit results are written as PNGs with the inputs' names plus `predictions.csv`.
The model logged to MLflow serves uint8 arrays `(N, H, W, 3)` the same way.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
from torch import Tensor, nn

from vision.data.predict_images import (
    serving_example_of,
    to_uint8,
)
from vision.metrics import psnr, quantize, ssim
from vision.tasks.image import Batch, ImageTask
from vision.tiling import enhance_whole, tiled_inference


class LowLightTask(ImageTask):
    """Train and evaluate an enhancer `model(low: (batch, 3, H, W)) -> (batch, 3, H, W)`.

    Args:
        model: the enhancer (`class_path` in the config), e.g. `vision.models.lyt_net.LYTNet`; its
            class attribute `size_multiple` sets the evaluation padding.
        loss: training loss `loss(pred, target)`; default Smooth-L1 (LLFormer's). LYT-Net uses
            `vision.losses.LYTHybridLoss`.
        tile: evaluate with tiles of this side (`vision.tiling.tiled_inference`); None = whole images.
        tile_overlap: pixels shared by neighbouring tiles (evaluation and prediction).
        predict_tile: `attn predict` enhances images with a side above this tile by tile (rounded up
            to the model's size multiple), bounding memory on large photos; None = whole images.
            Parameter-free baselines always see whole images: they are cheap, and adaptive gamma and
            CLAHE use whole-image statistics that tiles would change.
        **kwargs: `ImageTask`'s grid_rows and `BaseTask`'s optimizer, lr_scheduler,
            scheduler_interval and role.
    """

    task_name = "lowlight"

    def __init__(
        self, model: nn.Module, loss: nn.Module | None = None, tile: int | None = None, tile_overlap: int = 32,
        predict_tile: int | None = 512, **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.loss = loss if loss is not None else nn.SmoothL1Loss()
        self.tile, self.tile_overlap, self.predict_tile = tile, tile_overlap, predict_tile

    def enhance(self, low: Tensor) -> Tensor:
        """The model's output for whole images `low: (batch, 3, H, W)` (padded or tiled), clamped to [0, 1]."""
        if self.tile is not None:
            out = tiled_inference(self.model, low, tile=self.tile, overlap=self.tile_overlap, multiple=self.size_multiple)
        else:
            out = enhance_whole(self.model, low, self.size_multiple)
        return out.clamp(0.0, 1.0)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        low, high = batch
        pred = self.model(low)
        loss = self.loss(pred, high)
        self.log_metrics("train", {"loss": loss}, batch_size=low.shape[0])
        if not loss.requires_grad:  # classical baselines: nothing to optimize
            return None
        return loss

    def evaluate(self, batch: Batch, stage: str, batch_idx: int) -> Tensor:
        """RGB PSNR/SSIM of the 8-bit whole-image output, per image."""
        low, high = batch
        out = quantize(self.enhance(low))
        self.score(stage, psnr(out, high), ssim(out, high))
        self.collect_grid({"input": low, "output": out, "reference": high})
        return out

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """`batch[0]: (1, 3, H, W)` -> the enhanced image, 8-bit `(1, H, W, 3)` as its PNG holds it."""
        low = batch[0]
        multiple = self.size_multiple
        if self.predict_tile is None or not any(True for _ in self.model.parameters()):
            out = enhance_whole(self.model, low, multiple)
        else:
            tile = math.ceil(self.predict_tile / multiple) * multiple
            out = tiled_inference(self.model, low, tile=tile, overlap=self.tile_overlap, multiple=multiple)
        return to_uint8(out)

    def serving_example(self, datamodule: L.LightningDataModule) -> np.ndarray | None:
        """A 20x28 crop of the first validation (else test) low-light image, uint8 `(1, 20, 28, 3)`."""
        pairs = getattr(datamodule, "val_pairs", None) or getattr(datamodule, "test_pairs", None)
        return serving_example_of(pairs[0][0]) if pairs else None

