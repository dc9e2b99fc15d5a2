"""PSNR / SSIM against scikit-image on fixed images; the Y conversion against the BT.601 formula;
grayscale images scored on their intensity (the SR protocol's `gray_intensity`)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vision.metrics import is_grayscale, psnr, quantize, rgb_to_luma, rgb_to_y, ssim

SSIM_KWARGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 64x80 crop of skimage's astronaut and a noisy copy, float64 HWC in [0, 1]."""
    ref = skimage.data.astronaut()[100:164, 150:230].astype(np.float64) / 255.0
    noisy = np.clip(ref + np.random.default_rng(seed).normal(0, 0.05, ref.shape), 0, 1)
    return noisy, ref


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None].float()


def test_rgb_to_y_matches_bt601_formula():
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.2, 0.5, 0.7]])
    y = rgb_to_y(rgb.T.reshape(3, 1, 6)).reshape(6)
    expected = [(16 + 65.481) / 255, (16 + 128.553) / 255, (16 + 24.966) / 255, 16 / 255, 235 / 255,
                (16 + 65.481 * 0.2 + 128.553 * 0.5 + 24.966 * 0.7) / 255]
    torch.testing.assert_close(y, torch.tensor(expected), atol=1e-6, rtol=0)
    assert rgb_to_y(torch.rand(2, 4, 3, 5, 6)).shape == (2, 4, 1, 5, 6)
    with pytest.raises(ValueError, match="metrics.py"):
        rgb_to_y(torch.rand(2, 4, 5))


def test_psnr_matches_skimage_rgb_and_y():
    noisy, ref = _pair()
    got = psnr(_t(noisy), _t(ref))
    assert got.shape == (1,)
    assert got.item() == pytest.approx(peak_signal_noise_ratio(ref, noisy.astype(np.float32).astype(np.float64), data_range=1.0), abs=1e-3)
    y = lambda a: 16 / 255 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255  # noqa: E731
    n32 = noisy.astype(np.float32).astype(np.float64)
    expected = peak_signal_noise_ratio(y(ref)[4:-4, 4:-4], y(n32)[4:-4, 4:-4], data_range=1.0)
    assert psnr(_t(noisy), _t(ref), crop_border=4, y_channel=True).item() == pytest.approx(expected, abs=1e-3)


def test_ssim_matches_skimage_per_channel_and_y():
    noisy, ref = _pair(1)
    n32 = noisy.astype(np.float32).astype(np.float64)
    r32 = ref.astype(np.float32).astype(np.float64)
    kwargs = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0}
    expected = structural_similarity(r32, n32, channel_axis=2, **kwargs)
    assert ssim(_t(noisy), _t(ref)).item() == pytest.approx(expected, abs=1e-5)
    y = lambda a: 16 / 255 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255  # noqa: E731
    expected_y = structural_similarity(y(r32)[3:-3, 3:-3], y(n32)[3:-3, 3:-3], **kwargs)
    assert ssim(_t(noisy), _t(ref), crop_border=3, y_channel=True).item() == pytest.approx(expected_y, abs=1e-5)


def test_metrics_are_per_image_and_identity_is_perfect():
    noisy, ref = _pair()
    batch_pred = torch.cat([_t(noisy), _t(ref)])
    batch_ref = torch.cat([_t(ref), _t(ref)])
    p, s = psnr(batch_pred, batch_ref), ssim(batch_pred, batch_ref)
    assert p.shape == s.shape == (2,)
    assert torch.isinf(p[1]) and s[1].item() == pytest.approx(1.0, abs=1e-6)
    assert p[0] == psnr(_t(noisy), _t(ref))[0]
    with pytest.raises(ValueError, match="differ"):
        psnr(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))


def test_quantize_rounds_to_8_bit():
    x = torch.tensor([-0.1, 0.0, 0.5, 1.2, 100.4 / 255])
    torch.testing.assert_close(quantize(x), torch.tensor([0.0, 0.0, 128 / 255, 1.0, 100 / 255]))


def test_rgb_to_luma_is_full_range_bt601_and_is_grayscale_needs_equal_channels():
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.2, 0.5, 0.7]])
    expected = [0.299, 0.587, 0.114, 1.0, 0.299 * 0.2 + 0.587 * 0.5 + 0.114 * 0.7]
    torch.testing.assert_close(rgb_to_luma(rgb.T.reshape(3, 1, 5)).reshape(5), torch.tensor(expected), atol=1e-6, rtol=0)
    levels = torch.arange(256, dtype=torch.float32) / 255  # equal channels give the channel back at every 8-bit level
    assert torch.equal(rgb_to_luma(levels.view(1, 1, -1).expand(3, 1, -1)).view(-1), levels)
    gray = torch.rand(1, 1, 8, 8).expand(1, 3, 8, 8)
    colour = gray.clone()
    colour[0, 2, 5, 3] += 1 / 255  # one pixel off
    assert is_grayscale(torch.cat([gray, colour])).tolist() == [True, False]
    with pytest.raises(ValueError, match="is_grayscale"):
        is_grayscale(torch.rand(1, 1, 8, 8))


def _gray_and_colour() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """A batch of (grayscale camera crop, colour astronaut crop): 8-bit noisy RGB predictions and references."""
    rng = np.random.default_rng(3)
    gray = skimage.data.camera()[200:264, 150:230]
    colour = skimage.data.astronaut()[100:164, 150:230]
    refs = np.stack([np.repeat(gray[..., None], 3, axis=2), colour])
    noisy = np.clip(refs + rng.normal(0, 8, refs.shape), 0, 255).round().astype(np.uint8)  # noise differs per channel
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return to_t(noisy), to_t(refs), noisy, refs


def test_gray_intensity_scores_grayscale_on_intensity_against_skimage():
    pred, target, noisy, refs = _gray_and_colour()
    c = 4
    # hand computation: the prediction's full-range BT.601 luma against the gray reference
    luma = (noisy[0] @ np.array([0.299, 0.587, 0.114]))[c:-c, c:-c]
    gray_ref = refs[0, c:-c, c:-c, 0].astype(np.float64)
    got_psnr = psnr(pred, target, crop_border=c, y_channel=True, gray_intensity=True)
    got_ssim = ssim(pred, target, crop_border=c, y_channel=True, gray_intensity=True)
    assert got_psnr[0].item() == pytest.approx(peak_signal_noise_ratio(gray_ref, luma, data_range=255), abs=1e-3)
    assert got_ssim[0].item() == pytest.approx(structural_similarity(gray_ref, luma, data_range=255, **SSIM_KWARGS), abs=1e-5)
    # the colour image of the same batch scores exactly as the plain Y protocol
    assert got_psnr[1].item() == psnr(pred, target, crop_border=c, y_channel=True)[1].item()
    assert got_ssim[1].item() == ssim(pred, target, crop_border=c, y_channel=True)[1].item()
    with pytest.raises(ValueError, match="needs y_channel"):
        psnr(pred, target, gray_intensity=True)


def test_gray_intensity_undoes_the_219_over_255_of_y_on_replicated_gray():
    # a gray prediction of a gray reference: Y scales every error by 219/255, so Y-PSNR reads 1.32 dB higher
    pred, target, _, _ = _gray_and_colour()
    pred_gray = pred[:1, :1].expand(1, 3, -1, -1)
    on_y = psnr(pred_gray, target[:1], crop_border=2, y_channel=True).item()
    on_intensity = psnr(pred_gray, target[:1], crop_border=2, y_channel=True, gray_intensity=True).item()
    assert on_y - on_intensity == pytest.approx(20 * np.log10(255 / 219), abs=1e-3)
    assert on_intensity == pytest.approx(psnr(pred_gray[:, :1], target[:1, :1], crop_border=2).item(), abs=1e-5)
    assert torch.isinf(psnr(target[:1], target[:1], y_channel=True, gray_intensity=True)).all()
