"""Classical baselines against direct computations (numpy / skimage)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import exposure

from vision.models.classical_lowlight import CLAHE, GammaCorrection, IdentityEnhancer


def test_identity_returns_input():
    x = torch.rand(2, 3, 5, 6)
    assert IdentityEnhancer()(x) is x and IdentityEnhancer.role == "baseline"


def test_fixed_gamma_is_a_power():
    x = torch.rand(1, 3, 4, 4) * 0.9 + 0.05
    torch.testing.assert_close(GammaCorrection(gamma=0.5)(x), x.sqrt())


def test_adaptive_gamma_maps_a_flat_image_to_the_target_mean():
    flat = torch.full((2, 3, 4, 4), 0.04)
    flat[1] = 0.2
    out = GammaCorrection(target_mean=0.5)(flat)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="target_mean"):
        GammaCorrection(target_mean=1.5)


def test_clahe_equals_skimage():
    rng = np.random.default_rng(0)
    image = (rng.random((40, 50, 3)) ** 3).astype(np.float64)
    expected = exposure.equalize_adapthist(image, clip_limit=0.02)
    out = CLAHE(clip_limit=0.02)(torch.from_numpy(image.transpose(2, 0, 1)).float()[None])
    np.testing.assert_allclose(out[0].numpy().transpose(1, 2, 0), expected, atol=1e-6)
