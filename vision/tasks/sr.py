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
"""

from __future__ import annotations

from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from vision.metrics import psnr, quantize, ssim
from vision.resize import imresize
from vision.tasks.image import Batch, ImageTask
from vision.tiling import enhance_whole


class SRTask(ImageTask):
    """Train and evaluate `model(lr) -> sr` with `sr` `scale` times larger than `lr`.

    Args:
        model: the network (`class_path`), e.g. `vision.models.hat.HAT`; it has `scale` and may
            have `size_multiple` (whole images are padded to it at evaluation and prediction;
            training patches are fed as they are, so their side must be a multiple of it).
        scheduler_interval: `step` (the papers count iterations) or `epoch`.
        **kwargs: `ImageTask`'s grid_rows and `BaseTask`'s optimizer (HAT: Adam, lr 2e-4, betas
            0.9/0.99), lr_scheduler (HAT: MultiStepLR halving at 250k/400k/450k/475k steps) and role.
    """

    task_name = "sr"

    def __init__(self, model: nn.Module, scheduler_interval: Literal["epoch", "step"] = "step", **kwargs: Any) -> None:
        super().__init__(model, scheduler_interval=scheduler_interval, **kwargs)
        self.scale = int(getattr(model, "scale", 1))

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
        return quantize(self.super_resolve(batch[0]))

    def _check_scale(self, lr: Tensor, hr: Tensor) -> None:
        if hr.shape[-2] != lr.shape[-2] * self.scale or hr.shape[-1] != lr.shape[-1] * self.scale:
            data = getattr(getattr(self, "_trainer", None), "datamodule", None)
            raise ValueError(
                f"vision/tasks/sr.py: {type(self.model).__name__} upscales x{self.scale} but the data gives LR "
                f"{tuple(lr.shape[-2:])} for HR {tuple(hr.shape[-2:])} (scale {getattr(data, 'scale', '?')}); "
                f"set data.init_args.scale only (the CLI passes it to the model)"
            )
