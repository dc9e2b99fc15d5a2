"""The image grid: one column per name, one row per image, mixed sizes allowed."""

from __future__ import annotations

import pytest
import torch

from vision.plots import image_grid


def test_image_grid_layout_and_titles():
    fig = image_grid({"input": torch.rand(5, 3, 8, 8), "output": torch.rand(5, 3, 32, 32), "reference": torch.rand(5, 3, 32, 32)}, max_rows=2)
    assert len(fig.axes) == 2 * 3
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input (8x8)", "output (32x32)", "reference (32x32)"]
    shown = fig.axes[1].images[0].get_array()
    assert shown.shape == (32, 32, 3)


def test_image_grid_rejects_bad_columns():
    with pytest.raises(ValueError, match="plots.py"):
        image_grid({})
    with pytest.raises(ValueError, match="'x'"):
        image_grid({"x": torch.rand(3, 8, 8)})
