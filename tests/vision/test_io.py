"""vision.data.io: round trips, conversions and the errors that name the file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vision.data.io import list_images, read_image, save_image


def _write(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode=mode).save(path)
    return path


def test_round_trip_is_exact_for_8_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    image = read_image(_write(tmp_path / "a.png", array))
    assert image.shape == (3, 5, 7) and image.dtype == torch.float32
    np.testing.assert_allclose(image.numpy().transpose(1, 2, 0), array / 255.0, atol=1e-7)
    save_image(image, tmp_path / "b.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), array)


def test_grayscale_is_replicated_with_a_warning(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = _write(tmp_path / "gray.png", gray)
    with pytest.warns(UserWarning, match="gray.png"):
        image = read_image(path)
    for c in range(3):
        np.testing.assert_allclose(image[c].numpy(), gray / 255.0, atol=1e-7)
    with pytest.raises(ValueError, match=r"gray\.png.*grayscale"):
        read_image(path, mode="error")


def test_every_grayscale_mode_reads_as_three_equal_channels(tmp_path: Path) -> None:
    # the SR protocol recognizes a grayscale test image by its equal channels (vision.metrics.is_grayscale)
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    paths = [
        _write(tmp_path / "l.png", gray),
        _write(tmp_path / "la.png", np.stack([gray, np.full_like(gray, 99)], axis=2), mode="LA"),
        _write(tmp_path / "i16.png", gray.astype(np.uint16) * 257),  # 16-bit: k * 257 / 65535 = k / 255
    ]
    for path in paths:
        with pytest.warns(UserWarning, match=path.name):
            image = read_image(path)
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]), path.name
        np.testing.assert_array_equal((image[0].numpy() * 255).round(), gray)


def test_rgba_drops_alpha_or_raises(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    path = _write(tmp_path / "alpha.png", rgba, mode="RGBA")
    with pytest.warns(UserWarning, match="alpha"):
        image = read_image(path)
    assert image.shape == (3, 2, 2)
    assert torch.allclose(image[0], torch.full((2, 2), 200 / 255.0))
    assert float(image[1:].abs().max()) == 0.0  # colour kept, not premultiplied by alpha
    with pytest.raises(ValueError, match=r"alpha\.png.*alpha"):
        read_image(path, mode="error")


def test_unreadable_and_truncated_files_raise(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"junk\.png: unreadable"):
        read_image(junk)
    full = _write(tmp_path / "full.png", np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.png: unreadable or truncated"):
        read_image(cut)
    with pytest.raises(ValueError, match=r"missing\.png: no such"):
        read_image(tmp_path / "missing.png")


def test_list_images_filters_and_sorts(tmp_path: Path) -> None:
    for name in ("b.PNG", "a.jpg", "c.txt", "d.bmp"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "d.bmp"]
    with pytest.raises(ValueError, match="not a directory"):
        list_images(tmp_path / "nope")


def test_save_rejects_wrong_shape(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        with pytest.raises(ValueError, match=r"x\.png.*\(3, height, width\)"):
            save_image(torch.zeros(1, 4, 4), tmp_path / "x.png")
