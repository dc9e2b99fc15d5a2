"""EDSR-baseline and the bicubic baseline: parameter counts, shapes, overfitting, Set5 protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.profiling import count_parameters
from vision.models.bicubic import Bicubic
from vision.models.edsr import EDSR
from vision.resize import imresize

SET5 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "vision" / "Set5"


@pytest.mark.parametrize(("scale", "paper"), [(2, 1.37e6), (3, 1.55e6), (4, 1.52e6)])
def test_edsr_baseline_parameter_counts(scale, paper):
    assert abs(count_parameters(EDSR(scale=scale)) - paper) / paper < 0.01


@pytest.fixture(autouse=True)
def one_thread():
    """Two threads per process oversubscribe a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_edsr_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = EDSR(scale=2, features=16, num_blocks=2)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_bicubic_is_matlab_imresize_without_parameters():
    x = torch.rand(1, 3, 5, 7)
    model = Bicubic(scale=3)
    assert count_parameters(model) == 0 and model.role == "baseline"
    torch.testing.assert_close(model(x), imresize(x, 3.0))
    assert model(x).shape == (1, 3, 15, 21)


@pytest.mark.skipif(not SET5.is_dir(), reason="../shared/data/vision/Set5 not present")
@pytest.mark.parametrize(("scale", "published"), [(2, 33.66), (4, 28.42)])
def test_bicubic_reproduces_the_literature_on_set5(scale, published):
    from vision.data.io import list_images, read_image
    from vision.data.sr import make_pair
    from vision.metrics import psnr, quantize

    scores = []
    for path in list_images(SET5):
        lr, hr = make_pair(read_image(path), scale)
        scores.append(psnr(quantize(Bicubic(scale)(lr[None])), hr[None], crop_border=scale, y_channel=True).item())
    assert sum(scores) / len(scores) == pytest.approx(published, abs=0.05)
