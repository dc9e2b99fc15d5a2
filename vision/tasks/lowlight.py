"""`LowLightTask`: the LightningModule of every low-light enhancer (LLFormer, LYT-Net, classical baselines).

Batches are `(low, high)` pairs from `vision.data.lol.LOLDataModule` or
`vision.data.synthetic_lowlight.SyntheticLowLightDataModule`. Training sees random crops; validation
and test see whole images, reflect-padded to the model's `size_multiple` and cropped back (or, with
`tile`, enhanced tile by tile). PSNR and SSIM are computed on RGB in [0, 1] after clamping and 8-bit
rounding (what a saved PNG holds) and averaged over images: `val/psnr`, `val/ssim`, `test/psnr`,
`test/ssim`. A grid input / output / reference is logged to MLflow after every validation and test.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

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
        tile_overlap: pixels shared by neighbouring tiles.
        **kwargs: `ImageTask`'s grid_rows and `BaseTask`'s optimizer, lr_scheduler,
            scheduler_interval and role.
    """

    task_name = "lowlight"

    def __init__(
        self, model: nn.Module, loss: nn.Module | None = None, tile: int | None = None, tile_overlap: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.loss = loss if loss is not None else nn.SmoothL1Loss()
        self.tile, self.tile_overlap = tile, tile_overlap

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
        return self.enhance(batch[0])
