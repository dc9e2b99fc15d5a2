"""Figures for the vision tasks: a grid of images, one column per role (input / output / reference)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures go to MLflow artifacts, never to a screen

from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402


def image_grid(columns: dict[str, Tensor], max_rows: int = 4) -> Figure:
    """One column per name, one row per image of the batch (at most `max_rows`).

    Args:
        columns: name -> `(batch, 3, H, W)` images in [0, 1] (clamped for display); the columns
            may have different sizes (a low-resolution input beside its upscaled output).
        max_rows: how many images of the batch are shown.
    """
    if not columns:
        raise ValueError("vision/plots.py: image_grid needs at least one column")
    for name, images in columns.items():
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"vision/plots.py: column {name!r} must be (batch, 3, H, W); got {tuple(images.shape)}")
    rows = min(max_rows, min(images.shape[0] for images in columns.values()))
    cols = len(columns)
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for c, (name, images) in enumerate(columns.items()):
        for r in range(rows):
            image = images[r].detach().float().clamp(0, 1).cpu()
            ax = axes[r][c]
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{name} ({image.shape[-1]}x{image.shape[-2]})", fontsize="small")
    fig.tight_layout()
    return fig
