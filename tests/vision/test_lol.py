"""vision.data.lol and synthetic_lowlight: pairing, bad files, splits, crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vision.data.lol import SHARED_LOL, LOLDataModule, PairedCrops, find_pairs, load_pair
from vision.data.synthetic_lowlight import SyntheticLowLightDataModule, darken

SUBSET = SHARED_LOL / "our485_subset"


def _png(path: Path, h: int = 8, w: int = 12, value: int = 40, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = np.full((h, w, channels), value, dtype=np.uint8)
    Image.fromarray(array[..., 0] if mode == "L" else array, mode=mode).save(path)


def _lol(root: Path, names: list[str], split: str = "our485") -> Path:
    for name in names:
        _png(root / split / "low" / name, value=10)
        _png(root / split / "high" / name, value=120)
    return root


def test_pairs_are_matched_and_sorted_numerically(tmp_path):
    _lol(tmp_path, ["10.png", "2.png", "1.png"])
    pairs = find_pairs(tmp_path / "our485")
    assert [low.name for low, _ in pairs] == ["1.png", "2.png", "10.png"]
    assert all(low.name == high.name and high.parent.name == "high" for low, high in pairs)


def test_low_without_high_raises(tmp_path):
    _lol(tmp_path, ["1.png"])
    _png(tmp_path / "our485" / "low" / "7.png")
    with pytest.raises(ValueError, match=r"low.*1 low image\(s\) without a high image.*7\.png"):
        find_pairs(tmp_path / "our485")


def test_high_without_low_is_skipped_with_a_count(tmp_path):
    _lol(tmp_path, ["1.png"])
    _png(tmp_path / "our485" / "high" / "9.png")
    with pytest.warns(UserWarning, match="skipped 1 high image"):
        assert len(find_pairs(tmp_path / "our485")) == 1


def test_missing_folder_raises(tmp_path):
    (tmp_path / "our485" / "low").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"high: folder missing"):
        find_pairs(tmp_path / "our485")


def test_size_mismatch_names_both_files(tmp_path):
    _png(tmp_path / "low" / "1.png", h=8, w=12)
    _png(tmp_path / "high" / "1.png", h=8, w=10)
    with pytest.raises(ValueError, match=r"low/1\.png: size \(8, 12\) differs from its high image .*high/1\.png"):
        load_pair(tmp_path / "low" / "1.png", tmp_path / "high" / "1.png")


def test_unreadable_and_truncated_files_raise_with_their_name(tmp_path):
    _lol(tmp_path, ["1.png", "2.png", "3.png", "4.png"])
    (tmp_path / "our485" / "low" / "2.png").write_bytes(b"garbage")
    data = LOLDataModule(root=str(tmp_path), test_dir=None, val_count=1, test_count=1)
    with pytest.raises(ValueError, match=r"2\.png: unreadable"):
        data.setup("fit")


def test_grayscale_and_rgba_are_converted_with_warnings(tmp_path):
    _png(tmp_path / "low" / "1.png", mode="L")
    _png(tmp_path / "high" / "1.png", mode="RGBA")
    with pytest.warns(UserWarning) as record:
        low, high = load_pair(tmp_path / "low" / "1.png", tmp_path / "high" / "1.png")
    assert low.shape == high.shape == (3, 8, 12)
    assert {"grayscale", "alpha"} <= {w for r in record for w in ("grayscale", "alpha") if w in str(r.message)}


def test_split_holds_out_last_pairs_and_uses_a_test_folder_when_present(tmp_path):
    _lol(tmp_path, [f"{i}.png" for i in range(1, 9)])
    data = LOLDataModule(root=str(tmp_path), test_dir="eval15", val_count=2, test_count=3)
    data.setup("fit")
    assert data.split_names == {"train": ["1.png", "2.png", "3.png"], "val": ["4.png", "5.png"],
                                "test": ["6.png", "7.png", "8.png"]}
    _lol(tmp_path, ["100.png"], split="eval15")
    data = LOLDataModule(root=str(tmp_path), test_dir="eval15", val_count=2)
    data.setup("fit")
    assert data.split_names["test"] == ["100.png"] and len(data.split_names["train"]) == 6
    assert data.dataset_name == "LOL"


def test_crops_are_aligned_deterministic_and_augmented():
    torch.manual_seed(0)
    high = torch.rand(3, 20, 30)
    crops = PairedCrops([(high * 0.1, high)], patch_size=8, seed=3)
    low_a, high_a = crops[5]
    low_b, high_b = crops[5]
    assert low_a.shape == (3, 8, 8)
    torch.testing.assert_close(low_a, high_a * 0.1)
    torch.testing.assert_close(low_a, low_b)
    assert any(not torch.equal(crops[i][1], crops[5][1]) for i in range(6, 12))


def test_darkening_lowers_the_mean_like_lol():
    g = torch.Generator().manual_seed(0)
    photo = torch.rand(3, 32, 32) * 0.5 + 0.25
    low = darken(photo, g)
    assert low.shape == photo.shape and 0.005 < float(low.mean()) < 0.12


def test_synthetic_splits_are_by_photo():
    data = SyntheticLowLightDataModule(variants=2, max_side=64)
    data.setup("fit")
    assert len(data.train_pairs) == 6 and len(data.val_pairs) == len(data.test_pairs) == 1
    test_high = data.test_pairs[0][1]
    assert all(not torch.equal(test_high, high) for _, high in data.train_pairs)
    assert data.dataset_name == "synthetic"


@pytest.mark.skipif(not SUBSET.is_dir(), reason="../shared/data/vision/LOL not present")
def test_shared_lol_subset_split():
    data = LOLDataModule(train_dir="our485_subset", test_dir=None, val_count=2, test_count=4)
    data.setup("fit")
    assert data.split_names["test"] == ["27.png", "28.png", "33.png", "35.png"]
    assert data.split_names["val"] == ["25.png", "26.png"]
    assert len(data.train_pairs) == 14
    low, high = data.test_pairs[0]
    assert low.shape == high.shape == (3, 400, 600) and float(low.mean()) < float(high.mean())
