"""SR data: aligned patches with the 8 symmetries, the LR of the protocol, folders and their errors,
grayscale files kept recognizable (equal channels) for the intensity protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vision.data.sr import SRDataModule, SRPatches, make_pair, skimage_photo
from vision.metrics import is_grayscale, quantize
from vision.resize import bicubic_degrade


def _write(folder, name, array):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name)


def test_make_pair_mod_crops_and_quantizes():
    hr = torch.rand(3, 35, 42)
    lr, hr_cropped = make_pair(hr, 4)
    assert hr_cropped.shape == (3, 32, 40) and lr.shape == (3, 8, 10)
    torch.testing.assert_close(lr, quantize(bicubic_degrade(hr[:, :32, :40], 4)))


def test_patches_stay_aligned_under_flips_and_rotations():
    # HR where every pixel encodes its position; LR = exact 2x2 block means of that ramp are aligned crops
    hr = torch.arange(64 * 64, dtype=torch.float32).view(1, 64, 64).expand(3, -1, -1) / 4096
    lr = torch.nn.functional.avg_pool2d(hr[None], 2)[0]
    patches = SRPatches([(lr, hr)], scale=2, patch_size=8, samples_per_epoch=40, seed=0)
    seen = set()
    for i in range(40):
        lr_patch, hr_patch = patches[i]
        assert lr_patch.shape == (3, 8, 8) and hr_patch.shape == (3, 16, 16)
        torch.testing.assert_close(torch.nn.functional.avg_pool2d(hr_patch[None], 2)[0], lr_patch)
        seen.add((bool(hr_patch[0, 0, 1] < hr_patch[0, 0, 0]), bool(hr_patch[0, 1, 0] < hr_patch[0, 0, 0]),
                  bool(abs(hr_patch[0, 0, 1] - hr_patch[0, 0, 0]) > 1e-3 * 2)))
    assert len(seen) >= 6  # flips and transposes all occur


def test_embedded_default_and_names():
    data = SRDataModule(scale=4, patch_size=16, batch_size=2, samples_per_epoch=4)
    assert data.dataset_name == "skimage"
    data.setup("fit")
    lr, hr = next(iter(data.train_dataloader()))
    assert lr.shape == (2, 3, 16, 16) and hr.shape == (2, 3, 64, 64)
    (val_lr, val_hr), = list(data.val_dataloader())
    assert val_hr.shape == (1, 3, 256, 256) and val_lr.shape == (1, 3, 64, 64)
    assert skimage_photo("camera").shape == (3, 512, 512)


def test_folders_and_their_errors(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        _write(tmp_path / "train", f"{i:04d}.png", rng.integers(0, 255, (40, 44, 3), dtype=np.uint8))
    _write(tmp_path / "Set2", "a.png", rng.integers(0, 255, (30, 33, 3), dtype=np.uint8))
    _write(tmp_path / "Set2", "b.png", rng.integers(0, 255, (25, 21), dtype=np.uint8))  # grayscale: converted
    data = SRDataModule(scale=2, train_path=str(tmp_path / "train"), test_path=str(tmp_path / "Set2"), patch_size=8, samples_per_epoch=3)
    assert data.dataset_name == "Set2"
    data.setup()
    shapes = [tuple(hr.shape) for _, hr in data.test_set.pairs]
    assert shapes == [(3, 30, 32), (3, 24, 20)]
    assert len(data.val_set) == 2  # validation falls back to the test folder when training on a folder
    with pytest.raises(FileNotFoundError, match="not a folder"):
        SRDataModule(test_path=str(tmp_path / "missing")).setup("test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no png"):
        SRDataModule(test_path=str(tmp_path / "empty")).setup("test")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        SRDataModule(test_path=str(tmp_path / "bad")).setup("test")
    with pytest.raises(ValueError, match="smaller than patch_size"):
        SRDataModule(scale=2, train_path=str(tmp_path / "train"), patch_size=64).setup("fit")


def test_grayscale_files_keep_equal_channels_in_hr_and_lr(tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (30, 34), dtype=np.uint8)
    _write(tmp_path / "Set3", "a_gray.png", gray)
    Image.fromarray(np.stack([gray, rng.integers(0, 256, (30, 34), dtype=np.uint8)], axis=2), mode="LA").save(
        tmp_path / "Set3" / "b_gray_alpha.png")
    _write(tmp_path / "Set3", "c_colour.png", rng.integers(0, 256, (30, 34, 3), dtype=np.uint8))
    data = SRDataModule(scale=4, test_path=str(tmp_path / "Set3"))
    with pytest.warns(UserWarning):  # the grayscale files are converted with a warning each
        data.setup("test")
    lrs = torch.stack([lr for lr, _ in data.test_set.pairs])
    hrs = torch.stack([hr for _, hr in data.test_set.pairs])
    assert is_grayscale(hrs).tolist() == is_grayscale(lrs).tolist() == [True, True, False]
    np.testing.assert_array_equal((hrs[0, 0] * 255).round().numpy(), gray[:28, :32])  # mod-cropped intensity
    np.testing.assert_array_equal((hrs[1, 0] * 255).round().numpy(), gray[:28, :32])  # alpha dropped
