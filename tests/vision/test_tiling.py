"""vision.tiling: padding round trips and tiled inference equal to whole-image inference."""

from __future__ import annotations

import pytest
import torch

from vision.tiling import blend_window, enhance_whole, pad_to_multiple, tiled_inference


def pointwise(x: torch.Tensor) -> torch.Tensor:
    """A per-pixel nonlinear map: tiling must not change it at all."""
    return torch.sigmoid(3 * x - 1) * x.sum(dim=1, keepdim=True)


@pytest.mark.parametrize(("tile", "overlap", "multiple"), [(16, 4, 1), (32, 8, 8), (24, 0, 8), (64, 16, 16)])
def test_tiled_pointwise_model_equals_whole_image(tile, overlap, multiple):
    torch.manual_seed(0)
    image = torch.rand(2, 3, 45, 70)
    whole = pointwise(image)
    tiled = tiled_inference(pointwise, image, tile=tile, overlap=overlap, multiple=multiple)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=1e-6)


def test_tiled_convolution_matches_inside_tiles_with_seams_blended():
    # A 3x3 box blur sees across tile borders: tiles differ from the whole image only near seams.
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")
    image = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        whole = conv(image)
        tiled = tiled_inference(conv, image, tile=24, overlap=8)
    assert (tiled - whole).abs().max() < 0.2
    torch.testing.assert_close(tiled[..., :15, :15], whole[..., :15, :15])


def test_pad_to_multiple_reflects_and_crops_back():
    image = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    padded, (h, w) = pad_to_multiple(image, 4)
    assert padded.shape == (2, 3, 8, 8) and (h, w) == (5, 7)
    torch.testing.assert_close(padded[..., :5, :7], image)
    torch.testing.assert_close(padded[..., 5, :7], image[..., 3, :])  # reflect: row 5 mirrors row 3
    seen = []
    out = enhance_whole(lambda x: seen.append(x.shape) or x * 2, image, 4)
    assert seen == [torch.Size([2, 3, 8, 8])]
    torch.testing.assert_close(out, image * 2)


def test_pad_to_multiple_replicates_images_too_small_to_reflect():
    image = torch.rand(1, 3, 3, 2)
    padded, size = pad_to_multiple(image, 4)
    assert size == (3, 2)
    torch.testing.assert_close(padded, torch.nn.functional.pad(image, (0, 2, 0, 1), mode="replicate"))
    assert pad_to_multiple(padded, 4)[0] is padded  # already a multiple: untouched


def test_enhance_whole_crops_an_upscaled_output_to_scale_times_the_input():
    image = torch.rand(1, 3, 5, 6)
    upscale = lambda x: x.repeat_interleave(3, dim=-2).repeat_interleave(3, dim=-1)  # noqa: E731
    torch.testing.assert_close(enhance_whole(upscale, image, 4, scale=3), upscale(image))


def test_blend_windows_of_neighbours_sum_to_one_over_overlap():
    left = blend_window(10, 4, start=True, end=False)
    right = blend_window(10, 4, start=False, end=True)
    torch.testing.assert_close(left[-4:] + right[:4], torch.ones(4))
    assert left[0] == 1 and right[-1] == 1


def test_bad_arguments_raise():
    image = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="overlap"):
        tiled_inference(pointwise, image, tile=8, overlap=8)
    with pytest.raises(ValueError, match="multiple"):
        tiled_inference(pointwise, image, tile=12, overlap=2, multiple=8)
    with pytest.raises(ValueError, match="batch, channels"):
        tiled_inference(pointwise, image[0], tile=8, overlap=2)
