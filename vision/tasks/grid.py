"""Image grids (input / output / reference) logged to MLflow after each validation and test."""

from __future__ import annotations

import torch
from torch import Tensor

from core.tracking import log_figure
from vision.plots import image_grid


class ImageGridLogging:
    """Mixin for a vision task: `collect_grid` first images, then log them as one grid per epoch.

    The task sets `grid_rows` (images per grid). Validation grids go to
    `images/val_epoch<NNN>.png`, the test grid to `images/test.png`.
    """

    grid_rows: int

    def collect_grid(self, columns: dict[str, Tensor]) -> None:
        """Keep the first image of each `(batch, 3, H, W)` column until `grid_rows` are held."""
        grid = self.__dict__.setdefault("_grid", {})
        if len(next(iter(grid.values()), [])) >= self.grid_rows:
            return
        for name, images in columns.items():
            grid.setdefault(name, []).append(images[:1].detach().float().cpu())

    def on_validation_epoch_start(self) -> None:
        self._grid = {}

    def on_test_epoch_start(self) -> None:
        self._grid = {}

    def on_validation_epoch_end(self) -> None:
        if self.trainer is not None and not self.trainer.sanity_checking:
            self._log_grid(f"images/val_epoch{self.current_epoch:03d}.png")

    def on_test_epoch_end(self) -> None:
        self._log_grid("images/test.png")

    def _log_grid(self, path: str) -> None:
        grid = self.__dict__.get("_grid")
        if not grid:
            return
        columns = {name: stack_padded(images) for name, images in grid.items()}
        log_figure(self.trainer, image_grid(columns, max_rows=self.grid_rows), path)
        self._grid = {}


def stack_padded(images: list[Tensor]) -> Tensor:
    """Stack `(1, 3, h_i, w_i)` images into one batch, zero-padding to the largest size."""
    h = max(i.shape[-2] for i in images)
    w = max(i.shape[-1] for i in images)
    out = torch.zeros(len(images), 3, h, w)
    for k, image in enumerate(images):
        out[k, :, : image.shape[-2], : image.shape[-1]] = image[0]
    return out
