"""`SRTask`: the LightningModule of every super-resolution model (HAT, EDSR, bicubic).

Training minimizes the L1 loss between the output and the HR patch (HAT and EDSR both train with
L1). Validation and testing follow the SR literature: the whole LR image is padded (reflect) at
the bottom/right to the model's `size_multiple` (`vision.tiling.enhance_whole`, the only place an
SR input is padded), super-resolved, cropped back, rounded to 8 bits, and scored by PSNR and SSIM on
the BT.601 Y channel with `scale` border pixels removed. A grayscale test image (its HR's three
channels equal, as `read_image` makes a single-channel file) is scored on its intensity instead, as
the literature's MATLAB evaluation does (`vision.metrics`, `gray_intensity`): the Y of a grayscale
image replicated to RGB would shrink its errors by 219/255 and lift its PSNR by 1.32 dB.
Scores are accumulated per image in torchmetrics `MeanMetric`s, as in `LowLightTask`, so the
reported value is the mean over images whatever the batch size. An image grid (input, output,
reference) is logged per validation and after testing.

`attn predict --ckpt_path CKPT --predict_path PATH --output DIR` upscales the user's own images of any
size by the model's scale (`vision.data.predict_images`): LR images larger than `predict_tile` go
tile by tile with `predict_tile_overlap` blended LR pixels (`tiled_super_resolve`, on
`vision.tiling.tiled_inference`; each tile padded to the model's size multiple, e.g. HAT's window),
and the 8-bit results are written as PNGs with the inputs' names plus `predictions.csv`. The model
logged to MLflow serves uint8 arrays `(N, H, W, 3)` the same way.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from vision.data.predict_images import (
    serving_example_of,
    to_uint8,
)
from vision.metrics import psnr, quantize, ssim
from vision.resize import imresize
from vision.tasks.image import Batch, ImageTask
from vision.tiling import Model, enhance_whole, tiled_inference


def tiled_super_resolve(model: Model, lr: Tensor, scale: int, *, tile: int, overlap: int, multiple: int = 1) -> Tensor:
    """`model` (x`scale`) on `lr: (batch, C, H, W)` in overlapping LR tiles -> `(batch, C_out, scale*H, scale*W)`.

    `vision.tiling.tiled_inference` blends outputs of the input's size, so each tile's output is
    pixel-unshuffled to the LR grid (every `scale x scale` block of output pixels becomes channels of
    its LR pixel), blended there with the LR-pixel weights, and shuffled back: a lossless
    rearrangement, so an image within one tile gives exactly the whole-image output.
    """
    def on_lr_grid(x: Tensor) -> Tensor:
        return F.pixel_unshuffle(model(x), scale)

    return F.pixel_shuffle(tiled_inference(on_lr_grid, lr, tile=tile, overlap=overlap, multiple=multiple), scale)


class SRTask(ImageTask):
    """Train and evaluate `model(lr) -> sr` with `sr` `scale` times larger than `lr`.

    Args:
        model: the network (`class_path`), e.g. `vision.models.hat.HAT`; it has `scale` and may
            have `size_multiple` (whole images are padded to it at evaluation and prediction;
            training patches are fed as they are, so their side must be a multiple of it).
        scheduler_interval: `step` (the papers count iterations) or `epoch`.
        predict_tile: `attn predict` upscales LR images with a side above this tile by tile (LR
            pixels, rounded up to the model's size multiple), bounding memory on large photos;
            None = whole images. The parameter-free bicubic baseline always sees whole images.
        predict_tile_overlap: LR pixels shared by neighbouring prediction tiles.
        **kwargs: `ImageTask`'s grid_rows and `BaseTask`'s optimizer (HAT: Adam, lr 2e-4, betas
            0.9/0.99), lr_scheduler (HAT: MultiStepLR halving at 250k/400k/450k/475k steps) and role.
    """

    task_name = "sr"

    def __init__(
        self, model: nn.Module, scheduler_interval: Literal["epoch", "step"] = "step", predict_tile: int | None = 256,
        predict_tile_overlap: int = 16, **kwargs: Any,
    ) -> None:
        super().__init__(model, scheduler_interval=scheduler_interval, **kwargs)
        self.scale = int(getattr(model, "scale", 1))
        self.predict_tile, self.predict_tile_overlap = predict_tile, predict_tile_overlap

    def super_resolve(self, lr: Tensor) -> Tensor:
        """Whole-image inference: pad to the model's multiple, run, crop back to `scale` x the input."""
        return enhance_whole(self.model, lr, self.size_multiple, self.scale)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        lr, hr = batch
        self._check_scale(lr, hr)
        loss = F.l1_loss(self.model(lr), hr)
        self.log_metrics("train", {"l1": loss}, batch_size=lr.shape[0])
        if not loss.requires_grad:  # parameter-free baseline (bicubic): nothing to optimize
            return None
        return loss

    def evaluate(self, batch: Batch, stage: str, batch_idx: int) -> Tensor:
        """Per-image PSNR/SSIM (border `scale` cropped) of the 8-bit output: Y, or intensity for grayscale."""
        lr, hr = batch
        self._check_scale(lr, hr)
        sr = quantize(self.super_resolve(lr))
        protocol = {"crop_border": self.scale, "y_channel": True, "gray_intensity": True}
        self.score(stage, psnr(sr, hr, **protocol), ssim(sr, hr, **protocol))
        if batch_idx < self.grid_rows:
            self.collect_grid({"input (bicubic-upscaled LR)": quantize(imresize(lr, float(self.scale))), "output": sr, "reference": hr})
        return sr

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """`batch[0]: (1, 3, H, W)` -> the upscaled image, 8-bit `(1, scale*H, scale*W, 3)` as its PNG holds it."""
        lr = batch[0]
        multiple = self.size_multiple
        if self.predict_tile is None or not any(True for _ in self.model.parameters()):
            return to_uint8(self.super_resolve(lr))
        tile = math.ceil(self.predict_tile / multiple) * multiple
        return to_uint8(tiled_super_resolve(
            self.model, lr, self.scale, tile=tile, overlap=self.predict_tile_overlap, multiple=multiple,
        ))

    def serving_example(self, datamodule: L.LightningDataModule) -> np.ndarray | None:
        """A 20x28 crop of the first validation (else test) LR image, uint8 `(1, 20, 28, 3)`."""
        dataset = getattr(datamodule, "val_set", None) or getattr(datamodule, "test_set", None)
        pairs = getattr(dataset, "pairs", None)
        return serving_example_of(pairs[0][0]) if pairs else None

    def _check_scale(self, lr: Tensor, hr: Tensor) -> None:
        if hr.shape[-2] != lr.shape[-2] * self.scale or hr.shape[-1] != lr.shape[-1] * self.scale:
            data = getattr(getattr(self, "_trainer", None), "datamodule", None)
            raise ValueError(
                f"vision/tasks/sr.py: {type(self.model).__name__} upscales x{self.scale} but the data gives LR "
                f"{tuple(lr.shape[-2:])} for HR {tuple(hr.shape[-2:])} (scale {getattr(data, 'scale', '?')}); "
                f"set data.init_args.scale only (the CLI passes it to the model)"
            )
