"""SRTask: test PSNR/SSIM are means over images (any batch size), grayscale test images are scored on
their intensity (colour ones on Y), and whole images are padded once."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch.utils.data import DataLoader, TensorDataset

from vision.data.sr import SRDataModule
from vision.metrics import psnr, quantize, ssim
from vision.models.bicubic import Bicubic
from vision.resize import imresize
from vision.tasks.sr import SRTask

SET5 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "vision" / "Set5"


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


@pytest.mark.skipif(not SET5.is_dir(), reason="../shared/data/vision/Set5 not present")
def test_grayscale_test_image_is_scored_on_its_intensity_and_colour_on_y(tmp_path):
    folder = tmp_path / "Gray1"
    folder.mkdir()
    Image.open(SET5 / "butterfly.png").convert("L").save(folder / "a_butterfly_gray.png")  # a real image made grayscale
    (folder / "b_bird.png").write_bytes((SET5 / "bird.png").read_bytes())  # colour
    data = SRDataModule(scale=4, test_path=str(folder))
    with pytest.warns(UserWarning, match="a_butterfly_gray.png"):
        data.setup("test")
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    (result,) = trainer.test(SRTask(Bicubic(scale=4)), data.test_dataloader(), verbose=False)

    (gray_lr, gray_hr), (colour_lr, colour_hr) = data.test_set.pairs
    gray_sr = quantize(Bicubic(scale=4)(gray_lr[None]))
    sr8 = (gray_sr[0] * 255).round().to(torch.uint8).numpy()
    assert (sr8 == sr8[0]).all()  # bicubic keeps the channels equal: its intensity is any channel
    c = 4
    hr_gray = np.asarray(Image.open(folder / "a_butterfly_gray.png"), dtype=np.float64)[c:-c, c:-c]  # 256x256: no mod crop
    sr_gray = sr8[0, c:-c, c:-c].astype(np.float64)
    gray_psnr = peak_signal_noise_ratio(hr_gray, sr_gray, data_range=255)
    gray_ssim = structural_similarity(hr_gray, sr_gray, data_range=255, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False)
    colour_sr = quantize(Bicubic(scale=4)(colour_lr[None]))
    colour_psnr = psnr(colour_sr, colour_hr[None], crop_border=c, y_channel=True).item()  # the Y protocol as before
    colour_ssim = ssim(colour_sr, colour_hr[None], crop_border=c, y_channel=True).item()
    assert result["test/psnr"] == pytest.approx((gray_psnr + colour_psnr) / 2, abs=1e-4)
    assert result["test/ssim"] == pytest.approx((gray_ssim + colour_ssim) / 2, abs=1e-4)
    # the old protocol (Y of the replicated gray image) read 20 log10(255/219) = 1.32 dB higher on it
    gray_on_y = psnr(gray_sr, gray_hr[None], crop_border=c, y_channel=True).item()
    assert gray_on_y - gray_psnr == pytest.approx(20 * np.log10(255 / 219), abs=0.01)


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
