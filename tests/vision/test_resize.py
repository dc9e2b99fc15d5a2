"""MATLAB-compatible bicubic resize against hand-computed weights, MATLAB's output and PIL's interior."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vision.resize import bicubic_degrade, cubic, imresize, mod_crop, resize_weights


def test_cubic_kernel_values():
    got = cubic(torch.tensor([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5], dtype=torch.float64))
    # a = -0.5: 1.5|x|^3 - 2.5|x|^2 + 1 on [0, 1], -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on (1, 2)
    expected = [1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.0]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_halving_four_samples_by_hand():
    # Output 1 samples u = 1.5; the antialiased kernel 0.5 * cubic(0.5 d) covers d = -3.5..3.5, i.e.
    # input positions -2..5 mirrored to 3, 2, 1, 1, 2, 3, 4, 4 with weights 0.5 * cubic(1.75, 1.25, 0.75, 0.25, ...).
    c25, c75, c125, c175 = 0.8671875, 0.2265625, -0.0703125, -0.0234375
    row = [0.5 * (c75 + c25), 0.5 * (c125 + c25), 0.5 * (c175 + c75), 0.5 * (c125 + c175)]
    matrix = resize_weights(4, 2, 0.5)
    torch.testing.assert_close(matrix[0], torch.tensor(row, dtype=torch.float64))
    torch.testing.assert_close(matrix[1], torch.tensor(row[::-1], dtype=torch.float64))
    # MATLAB: imresize([1 2 3 4], 0.5) -> [1.4609 3.5391]
    out = imresize(torch.arange(1.0, 5.0)[None], size=(1, 2))
    torch.testing.assert_close(out, torch.tensor([[1.4609375, 3.5390625]]))


def test_rows_sum_to_one_and_constants_are_kept():
    for n_in, n_out in ((10, 5), (7, 21), (16, 4), (9, 3)):
        torch.testing.assert_close(resize_weights(n_in, n_out, n_out / n_in).sum(1), torch.ones(n_out, dtype=torch.float64))
    x = torch.full((2, 3, 12, 12), 0.3)
    torch.testing.assert_close(imresize(x, 0.25), torch.full((2, 3, 3, 3), 0.3))
    torch.testing.assert_close(imresize(x, 3), torch.full((2, 3, 36, 36), 0.3))


@pytest.mark.parametrize("scale", [0.5, 0.25, 2.0, 3.0])
def test_interior_matches_pil_bicubic(scale):
    # PIL's BICUBIC is the same a = -0.5 kernel, stretched when shrinking, with the same pixel centres;
    # it renormalizes at the borders instead of mirroring, so only pixels away from the border agree.
    rng = np.random.default_rng(0)
    image = rng.random((24, 32), dtype=np.float32)
    size = (int(32 * scale), int(24 * scale))
    expected = np.asarray(Image.fromarray(image, mode="F").resize(size, Image.BICUBIC))
    got = imresize(torch.from_numpy(image), scale).numpy()
    margin = int(max(2, 2 / scale)) + 1 if scale < 1 else int(2 * scale) + 1
    np.testing.assert_allclose(got[margin:-margin, margin:-margin], expected[margin:-margin, margin:-margin], atol=2e-5)


def test_mod_crop_and_degrade_shapes():
    hr = torch.rand(1, 3, 30, 43)
    cropped = mod_crop(hr, 4)
    assert cropped.shape == (1, 3, 28, 40)
    assert bicubic_degrade(cropped, 4).shape == (1, 3, 7, 10)
    with pytest.raises(ValueError, match="mod_crop"):
        bicubic_degrade(hr, 4)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(hr, 2.0, size=(3, 3))
