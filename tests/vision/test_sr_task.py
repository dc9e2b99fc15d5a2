"""SRTask: test PSNR/SSIM are means over images (any batch size), and whole images are padded once."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from vision.metrics import psnr, quantize, ssim
from vision.models.bicubic import Bicubic
from vision.resize import imresize
from vision.tasks.sr import SRTask


def _test_metrics(pairs: TensorDataset, batch_size: int) -> dict[str, float]:
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    (result,) = trainer.test(SRTask(Bicubic(scale=2)), DataLoader(pairs, batch_size=batch_size), verbose=False)
    return result


def test_test_metrics_are_the_mean_over_images_whatever_the_batch_size():
    torch.manual_seed(0)
    amplitude = torch.tensor([0.05, 0.1, 0.3, 0.6, 1.0]).view(5, 1, 1, 1)  # images of unequal difficulty
    hr = 0.5 + amplitude * (torch.rand(5, 3, 16, 20) - 0.5)
    lr = imresize(hr, 0.5).clamp(0, 1)
    sr = quantize(imresize(lr, 2.0))
    per_image_psnr = psnr(sr, hr, crop_border=2, y_channel=True)
    assert per_image_psnr.std() > 3  # batch means would differ from the image mean
    expected = {"test/psnr": per_image_psnr.mean().item(), "test/ssim": ssim(sr, hr, crop_border=2, y_channel=True).mean().item()}
    pairs = TensorDataset(lr, hr)
    for batch_size in (1, 2, 3):  # 2 and 3 leave a ragged last batch
        result = _test_metrics(pairs, batch_size)
        for name, value in expected.items():
            assert result[name] == pytest.approx(value, abs=1e-4), (batch_size, name)


def test_super_resolve_pads_to_the_model_multiple_and_crops_to_scale():
    class Recorder(torch.nn.Module):
        scale, size_multiple = 2, 4

        def __init__(self) -> None:
            super().__init__()
            self.shapes: list[tuple[int, ...]] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.shapes.append(tuple(x.shape))
            return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)

    model = Recorder()
    lr = torch.rand(1, 3, 5, 7)
    out = SRTask(model).super_resolve(lr)
    assert model.shapes == [(1, 3, 8, 8)]
    torch.testing.assert_close(out, lr.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1))
