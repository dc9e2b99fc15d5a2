"""`SRTask`: the LightningModule of every super-resolution model (HAT, EDSR, bicubic).

Training minimizes the L1 loss between the output and the HR patch (HAT and EDSR both train with
L1). Validation and testing follow the SR literature: the whole LR image is padded (reflect) at
the bottom/right to the model's `size_multiple`, super-resolved, cropped back, rounded to 8 bits,
and scored by PSNR and SSIM on the BT.601 Y channel with `scale` border pixels removed; the
reported value is the mean over images. An image grid (input, output, reference) is logged per
validation and after testing.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from core.task import BaseTask, Role
from vision.metrics import psnr, quantize, ssim
from vision.resize import imresize
from vision.tasks.grid import ImageGridLogging

Batch = tuple[Tensor, Tensor]


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Reflect-pad `x: (batch, C, H, W)` at the bottom/right to sides divisible by `multiple`."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class SRTask(ImageGridLogging, BaseTask):
    """Train and evaluate `model(lr) -> sr` with `sr` `scale` times larger than `lr`.

    Args:
        model: the network (`class_path`), e.g. `vision.models.hat.HAT`; it has `scale` and may
            have `size_multiple` (inputs are padded to it at evaluation).
        optimizer: optimizer callable (HAT: Adam, lr 2e-4, betas 0.9/0.99).
        lr_scheduler: optional schedule (HAT: MultiStepLR halving at 250k/400k/450k/475k steps).
        scheduler_interval: `step` (the papers count iterations) or `epoch`.
        role: overrides the model's `baseline` / `model` tag.
        grid_rows: images in the logged grids.
    """

    domain = "vision"

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["epoch", "step"] = "step",
        role: Role = "auto",
        grid_rows: int = 2,
    ) -> None:
        super().__init__(model, optimizer, lr_scheduler, scheduler_interval, role)
        self.scale = int(getattr(model, "scale", 1))
        self.grid_rows = grid_rows

    def super_resolve(self, lr: Tensor) -> Tensor:
        """Whole-image inference: pad to the model's multiple, run, crop back to `scale` x the input."""
        h, w = lr.shape[-2:]
        out = self.model(pad_to_multiple(lr, int(getattr(self.model, "size_multiple", 1))))
        return out[..., : h * self.scale, : w * self.scale]

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        lr, hr = batch
        self._check_scale(lr, hr)
        loss = F.l1_loss(self.model(lr), hr)
        self.log_metrics("train", {"l1": loss}, batch_size=lr.shape[0])
        if not loss.requires_grad:  # parameter-free baseline (bicubic): nothing to optimize
            return None
        return loss

    def evaluate(self, batch: Batch, stage: str, batch_idx: int) -> dict[str, Tensor]:
        """Per-image Y-channel PSNR/SSIM (border `scale` cropped) of the 8-bit output."""
        lr, hr = batch
        self._check_scale(lr, hr)
        sr = quantize(self.super_resolve(lr))
        metrics = {
            "psnr": psnr(sr, hr, crop_border=self.scale, y_channel=True),
            "ssim": ssim(sr, hr, crop_border=self.scale, y_channel=True),
        }
        if batch_idx < self.grid_rows:
            self.collect_grid({"input (bicubic-upscaled LR)": quantize(imresize(lr, float(self.scale))), "output": sr, "reference": hr})
        self.log_metrics(stage, {k: v.mean() for k, v in metrics.items()}, batch_size=lr.shape[0])
        return metrics

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, "val", batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, "test", batch_idx)

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return quantize(self.super_resolve(batch[0]))

    def _check_scale(self, lr: Tensor, hr: Tensor) -> None:
        if hr.shape[-2] != lr.shape[-2] * self.scale or hr.shape[-1] != lr.shape[-1] * self.scale:
            data = getattr(getattr(self, "_trainer", None), "datamodule", None)
            raise ValueError(
                f"vision/tasks/sr.py: {type(self.model).__name__} upscales x{self.scale} but the data gives LR "
                f"{tuple(lr.shape[-2:])} for HR {tuple(hr.shape[-2:])} (scale {getattr(data, 'scale', '?')}); "
                f"set model.init_args.model.init_args.scale and data.init_args.scale to the same value"
            )
