"""EDSR-baseline and the bicubic baseline: parameter counts, shapes, overfitting, Set5 protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.profiling import count_parameters
from vision.models.bicubic import Bicubic
from vision.models.edsr import EDSR
from vision.models.hat import HAT
from vision.models.sr_blocks import DIV2K_MEAN, PixelShuffleUpsampler
from vision.resize import imresize

SET5 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "vision" / "Set5"


@pytest.mark.parametrize(("scale", "paper"), [(2, 1.37e6), (3, 1.55e6), (4, 1.52e6)])
def test_edsr_baseline_parameter_counts(scale, paper):
    assert abs(count_parameters(EDSR(scale=scale)) - paper) / paper < 0.01



@pytest.mark.parametrize(
    ("scale", "shapes"),
    [
        (2, {"upsample.0.weight": (64, 16, 3, 3)}),
        (3, {"upsample.0.weight": (144, 16, 3, 3)}),
        (4, {"upsample.0.weight": (64, 16, 3, 3), "upsample.2.weight": (64, 16, 3, 3)}),
    ],
)
def test_edsr_tail_keeps_the_reference_state_dict_layout(scale, shapes):
    state = EDSR(scale=scale, features=16, num_blocks=1).state_dict()
    upsample = {k: tuple(v.shape) for k, v in state.items() if k.startswith("upsample.") and k.endswith("weight")}
    assert upsample == shapes
    assert {"head.weight", "body.0.conv1.weight", "body_conv.weight", "tail.weight"} <= set(state)


def test_pixel_shuffle_upsampler_is_conv_then_shuffle():
    torch.manual_seed(0)
    up = PixelShuffleUpsampler(4, 2)
    x = torch.randn(1, 2, 3, 5)
    expected = torch.nn.functional.pixel_shuffle(up[2](torch.nn.functional.pixel_shuffle(up[0](x), 2)), 2)
    torch.testing.assert_close(up(x), expected)
    assert up(x).shape == (1, 2, 12, 20) and PixelShuffleUpsampler(3, 2)(x).shape == (1, 2, 9, 15)
    with pytest.raises(ValueError, match="scale 5 not supported"):
        PixelShuffleUpsampler(5, 2)


def test_edsr_and_hat_share_the_upsampler_and_the_div2k_mean():
    edsr = EDSR(scale=2, features=8, num_blocks=1)
    hat = HAT(scale=2, embed_dim=8, depths=(1,), num_heads=(1,), window_size=4, compress_ratio=2, squeeze_factor=2)
    assert type(edsr.upsample) is PixelShuffleUpsampler and type(hat.upsample) is PixelShuffleUpsampler
    for model in (edsr, hat):
        torch.testing.assert_close(model.mean.flatten(), torch.tensor(DIV2K_MEAN))
    assert EDSR(scale=2, in_channels=1, features=8, num_blocks=1).mean.flatten().tolist() == [0.0]


def test_edsr_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = EDSR(scale=2, features=16, num_blocks=2)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(120):  # 60 steps left a 2x margin on the worst of seeds 0-9; 120 leave 8.5x
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
