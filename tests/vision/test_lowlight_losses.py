"""vision.losses: MS-SSIM (single scale against skimage's SSIM), soft histograms, the LYT-Net hybrid loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from vision.losses import LYTHybridLoss, color_loss, ms_ssim, psnr_loss, soft_histogram


def test_single_scale_ms_ssim_equals_skimage_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((20, 21, 3))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    expected = structural_similarity(a, b, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    ta, tb = (torch.from_numpy(x.transpose(2, 0, 1))[None] for x in (a, b))
    assert ms_ssim(ta, tb).item() == pytest.approx(expected, abs=1e-6)


def test_ms_ssim_is_one_for_identical_images_and_lower_otherwise():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 180, 180, dtype=torch.float64)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(2, dtype=torch.float64))
    assert (ms_ssim(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1)) < 0.9).all()
    with pytest.raises(ValueError, match="at least 11"):
        ms_ssim(x[..., :8, :8], x[..., :8, :8])


def test_soft_histogram_matches_numpy_on_bin_centres():
    values = torch.tensor([0.0, 0.0, 1 / 3, 2 / 3, 1.0])
    hist = soft_histogram(values, bins=4)
    expected, _ = np.histogram([0, 0, 1, 2, 3], bins=4, range=(-0.5, 3.5))
    torch.testing.assert_close(hist, torch.tensor(expected / 5, dtype=torch.float32))
    torch.testing.assert_close(soft_histogram(torch.rand(1000), 16).sum(), torch.tensor(1.0))


def test_psnr_and_color_terms():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)
    assert psnr_loss(a, b).item() == pytest.approx(40 - 20.0, abs=1e-4)  # MSE 0.01 -> 20 dB
    assert color_loss(a, b).item() == pytest.approx(0.1)


def test_hybrid_loss_weights_and_gradient():
    torch.manual_seed(0)
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    target = torch.rand(2, 3, 32, 32)
    loss = LYTHybridLoss()
    terms = loss.terms(pred, target)
    assert set(terms) == {"smooth_l1", "histogram", "psnr", "color", "ms_ssim"} and not loss.perceptual_enabled
    expected = terms["smooth_l1"] + 0.05 * terms["histogram"] + 0.0083 * terms["psnr"] + 0.25 * terms["color"] + 0.5 * terms["ms_ssim"]
    value = loss(pred, target)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    with pytest.raises(ValueError, match="not found"):
        LYTHybridLoss(vgg_weights="/nonexistent/vgg19.pth")
