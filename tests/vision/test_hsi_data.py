"""Hyperspectral readers, band resampling, implanting and the simulated DataModule; bad inputs raise the stated errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import scipy.io
import torch

from vision.data.hsi import (
    normalize_scene,
    read_envi_scene,
    read_mat_scene,
    read_npy_scene,
    read_scene,
    resample_bands,
)
from vision.data.hsi_simulation import (
    SHARED_SCENES,
    FixedScenes,
    HSISimulationDataModule,
    RandomScenes,
    TargetLibrary,
    distort_background,
    implant,
    simulate_scene,
    smooth_curve,
    tiles,
    warp_background,
)

HAVE_SCENES = (SHARED_SCENES / "sandiego.mat").is_file() and (SHARED_SCENES / "hydice.mat").is_file()
needs_scenes = pytest.mark.skipif(not HAVE_SCENES, reason=f"shared scenes not in {SHARED_SCENES}")


def _mat(path, **content):
    scipy.io.savemat(path, content)
    return path


def test_mat_reader_boxes_the_map(tmp_path):
    cube = np.random.default_rng(0).random((6, 7, 5)).astype(np.float32)
    target = np.zeros((6, 7), np.uint8)
    target[1, 1] = target[3:5, 4:6] = 1
    scene = read_mat_scene(_mat(tmp_path / "a.mat", data=cube, map=target))
    assert scene.cube.shape == (6, 7, 5) and scene.map.sum() == 5
    assert scene.boxes.tolist() == [[1, 1, 2, 2], [4, 3, 6, 5]] and scene.labels.tolist() == [0, 0]


def test_mat_missing_key_and_wrong_map_shape(tmp_path):
    cube = np.ones((4, 4, 3)) * np.arange(3)
    with pytest.raises(ValueError, match=r"b\.mat: key\(s\) \['map'\] missing; found \['data'\]"):
        read_mat_scene(_mat(tmp_path / "b.mat", data=cube))
    with pytest.raises(ValueError, match=r"c\.mat: the map is \(4, 5\) but the cube is \(4, 4\)"):
        read_mat_scene(_mat(tmp_path / "c.mat", data=cube + np.random.rand(4, 4, 3), map=np.zeros((4, 5))))


def test_nan_and_constant_bands(tmp_path, caplog):
    rng = np.random.default_rng(0)
    cube = rng.random((4, 4, 5))
    cube[..., 1] = 7.0          # constant band: dropped, logged
    cube[..., 3] = np.nan       # all-NaN band: dropped, logged
    with caplog.at_level(logging.WARNING):
        scene = read_mat_scene(_mat(tmp_path / "d.mat", data=cube, map=np.zeros((4, 4))))
    assert scene.cube.shape[-1] == 3 and scene.dropped_bands == (1, 3)
    assert "d.mat: dropping 2 all-NaN or constant band(s) [1, 3]" in caplog.text
    cube[0, 0, 0] = np.nan      # a partially NaN band: refused
    with pytest.raises(ValueError, match=r"e\.mat: bands \[0\] hold NaN in some pixels \(\[1\] of 16\)"):
        read_mat_scene(_mat(tmp_path / "e.mat", data=cube, map=np.zeros((4, 4))))


def test_envi_reader_and_size_mismatch(tmp_path):
    import spectral.io.envi as envi

    cube = np.random.default_rng(0).random((5, 6, 4)).astype(np.float32)
    hdr = tmp_path / "scene.hdr"
    envi.save_image(str(hdr), cube, dtype=np.float32, interleave="bsq", ext=".img")
    np.save(tmp_path / "scene_map.npy", np.eye(5, 6, dtype=np.uint8))
    scene = read_scene(hdr)
    np.testing.assert_array_equal(scene.cube, cube)
    assert scene.map.sum() == 5 and len(scene.boxes) == 1  # the diagonal is one 8-connected component
    (tmp_path / "scene.img").write_bytes((tmp_path / "scene.img").read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"scene\.hdr: header says 5 lines x 6 samples x 4 bands of float32 "
                                         r"\(\+0 header bytes\) = 480 bytes, but scene\.img has 472 bytes"):
        read_envi_scene(hdr)


def test_spod_npy_with_coco_json(tmp_path):
    cube = np.random.default_rng(0).random((8, 9, 3)).astype(np.float32)
    np.save(tmp_path / "img01.npy", cube)
    coco = {"images": [{"id": 7, "file_name": "img01.png"}], "categories": [{"id": 1}, {"id": 2}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [1, 2, 3, 1]}]}
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    scene = read_npy_scene(tmp_path / "img01.npy")
    assert scene.boxes.tolist() == [[1, 2, 4, 3]] and scene.labels.tolist() == [1]
    coco["annotations"][0]["bbox"] = [7, 2, 3, 1]
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=r"ann\.json: boxes \[0\] of img01\.npy lie outside its 9x8 image"):
        read_npy_scene(tmp_path / "img01.npy")


def test_resampling_keeps_a_flat_spectrum_flat_and_averages_groups():
    flat = np.full((2, 3, 150), 0.37, np.float32)
    np.testing.assert_allclose(resample_bands(flat, 30), 0.37, rtol=1e-6)
    np.testing.assert_allclose(resample_bands(np.full((1, 1, 7), 2.0), 30), 2.0)  # interpolated up: still flat
    ramp = np.arange(150, dtype=np.float32)[None, None]
    np.testing.assert_allclose(resample_bands(ramp, 30)[0, 0], np.arange(30) * 5 + 2.0)  # means of 5 adjacent bands
    assert resample_bands(np.ones((1, 1, 189)), 30).shape == (1, 1, 30)


def test_normalize_scene_is_one_affine_map():
    cube = np.random.default_rng(0).random((10, 10, 4)) * 100 + 20
    out = normalize_scene(cube)
    lo, hi = np.percentile(cube, [0.1, 99.9])
    np.testing.assert_allclose(out, (cube - lo) / (hi - lo), rtol=1e-5)


def test_implant_changes_only_its_pixels_by_the_abundance_mix():
    rng = np.random.default_rng(0)
    background = rng.random((6, 6, 5)).astype(np.float32)
    spectrum = rng.random(5).astype(np.float32)
    pixels = np.array([[2, 3], [4, 1]])
    out = implant(background, spectrum, pixels, np.array([0.3, 1.0]))
    changed = np.argwhere((out != background).any(-1))
    assert changed.tolist() == [[2, 3], [4, 1]]
    np.testing.assert_allclose(out[2, 3], 0.3 * spectrum + 0.7 * background[2, 3], rtol=1e-6)
    np.testing.assert_allclose(out[4, 1], spectrum, rtol=1e-6)


def test_background_distortion_is_one_smooth_spectral_factor_for_every_pixel():
    rng = np.random.default_rng(0)
    background = rng.random((5, 4, 30)).astype(np.float32) + 0.1
    out = distort_background(background, np.random.default_rng(7), 0.3)
    factor = out / background
    np.testing.assert_allclose(factor, np.broadcast_to(factor[0, 0], factor.shape), rtol=1e-5)  # the same for each pixel
    assert 0.7 * 0.7 - 1e-6 <= factor.min() and factor.max() <= 1.3 * 1.3 + 1e-6
    assert np.abs(np.diff(factor[0, 0])).max() < 0.2 * np.ptp(factor[0, 0]) + 1e-6  # smooth over the bands
    assert not np.allclose(factor[0, 0], factor[0, 0].mean())  # and not flat
    np.testing.assert_array_equal(out, distort_background(background, np.random.default_rng(7), 0.3))  # seeded


def test_background_warp_reads_each_spectrum_at_smoothly_shifted_bands():
    rng = np.random.default_rng(0)
    background = rng.random((5, 4, 30)).astype(np.float32)
    np.testing.assert_array_equal(warp_background(background, np.random.default_rng(7), 0.0), background)  # no shift
    flat = np.full((3, 3, 30), 0.4, np.float32)
    np.testing.assert_allclose(warp_background(flat, np.random.default_rng(7), 3.0), 0.4, rtol=1e-6)  # flat stays flat
    ramp = np.broadcast_to(np.arange(30, dtype=np.float32), (2, 2, 30))  # value = band index: the output is the positions
    positions = warp_background(ramp, np.random.default_rng(7), 3.0)[0, 0]
    expected = np.clip(np.arange(30) + 3.0 * smooth_curve(30, np.random.default_rng(7)), 0, 29)
    np.testing.assert_allclose(positions, expected, atol=1e-5)
    assert 0.5 < np.abs(positions - np.arange(30)).max() <= 3.0 + 1e-5  # shifted, by at most `shift` bands
    out = warp_background(background, np.random.default_rng(7), 3.0)
    low = np.floor(expected).astype(int).clip(max=28)
    frac = (expected - low).astype(np.float32)
    np.testing.assert_allclose(out, background[..., low] * (1 - frac) + background[..., low + 1] * frac, rtol=1e-6)
    np.testing.assert_array_equal(out, warp_background(background, np.random.default_rng(7), 3.0))  # seeded


def test_training_scenes_warp_the_background_and_keep_the_targets(monkeypatch):
    library = TargetLibrary(np.full((1, 30), 2.0, np.float32), ("a",), ("",))
    backgrounds = [np.broadcast_to(np.linspace(0.2, 0.8, 30, dtype=np.float32), (16, 16, 30)).copy()]
    cube, _ = RandomScenes(backgrounds, library, samples=1, seed=3, background_warp=3.0, num_targets=(0, 0))[0]
    assert not torch.allclose(cube, torch.from_numpy(backgrounds[0].transpose(2, 0, 1).copy()))
    assert torch.allclose(cube, cube[:, :1, :1].expand_as(cube))  # one warp for the scene
    seen = []
    monkeypatch.setattr("vision.data.hsi_simulation.simulate_scene", lambda bg, *a, **k: seen.append(bg) or simulate_scene(bg, *a, **k))
    RandomScenes(backgrounds, library, samples=1, seed=3, background_warp=3.0, num_targets=(2, 2))[0]
    assert not np.allclose(seen[0], backgrounds[0])  # targets are implanted after the warp, so their spectra stay the library's


def test_training_scenes_distort_the_background_and_keep_the_targets(monkeypatch):
    library = TargetLibrary(np.full((1, 30), 2.0, np.float32), ("a",), ("",))
    backgrounds = [np.full((16, 16, 30), 0.5, np.float32)]
    plain = RandomScenes(backgrounds, library, samples=1, seed=3, num_targets=(0, 0))
    distorted = RandomScenes(backgrounds, library, samples=1, seed=3, background_distortion=0.3, num_targets=(0, 0))
    cube, _ = plain[0]
    np.testing.assert_allclose(cube.numpy(), 0.5)
    cube, _ = distorted[0]
    assert cube.std() > 0.01 and torch.allclose(cube, cube[:, :1, :1].expand_as(cube))  # one factor for the scene
    seen = []
    monkeypatch.setattr("vision.data.hsi_simulation.simulate_scene", lambda bg, *a, **k: seen.append(bg) or simulate_scene(bg, *a, **k))
    RandomScenes(backgrounds, library, samples=1, seed=3, background_distortion=0.3, num_targets=(2, 2))[0]
    assert not np.allclose(seen[0], 0.5)  # targets are implanted after the distortion, so their spectra stay the library's


def test_fixed_scenes_augment_their_backgrounds_only_when_asked():
    library = TargetLibrary(np.full((1, 30), 2.0, np.float32), ("a",), ("",))
    backgrounds = [np.broadcast_to(np.linspace(0.2, 0.8, 30, dtype=np.float32), (16, 16, 30)).copy()]
    plain = FixedScenes(backgrounds, library, per_tile=2, seed=5, num_targets=(0, 0))
    augmented = FixedScenes(backgrounds, library, per_tile=2, seed=5, background_distortion=0.3, background_warp=2.0,
                            num_targets=(0, 0))
    again = FixedScenes(backgrounds, library, per_tile=2, seed=5, background_distortion=0.3, background_warp=2.0,
                        num_targets=(0, 0))
    np.testing.assert_array_equal(plain.scenes[0].cube, backgrounds[0])
    first, second = (scene.cube for scene in augmented.scenes)
    assert np.abs(first - backgrounds[0]).max() > 0.01 and np.abs(first - second).max() > 0.01  # one draw per scene
    np.testing.assert_array_equal(first, again.scenes[0].cube)  # fixed by the seed


@needs_scenes
def test_val_augment_touches_validation_scenes_never_test_scenes():
    common = {"val_per_tile": 1, "test_per_tile": 1, "background_distortion": 0.3, "background_warp": 2.0}
    plain, augmented = HSISimulationDataModule(**common), HSISimulationDataModule(**common, val_augment=True)
    plain.setup()
    augmented.setup()
    assert np.abs(plain.val_set.scenes[0].cube - augmented.val_set.scenes[0].cube).max() > 0.01
    for a, b in zip(plain.test_set.scenes, augmented.test_set.scenes, strict=True):
        np.testing.assert_array_equal(a.cube, b.cube)


def test_simulated_scene_boxes_cover_its_target_pixels():
    rng = np.random.default_rng(3)
    library = TargetLibrary(np.eye(3, 6, dtype=np.float32) + 0.5, ("a", "b", "c"), ("", "", ""))
    scene = simulate_scene(np.full((16, 16, 6), 0.2, np.float32), library, rng, num_targets=(4, 4))
    assert len(scene.boxes) == 4
    from vision.detection import boxes_from_mask

    boxes, _ = boxes_from_mask(scene.mask > 0)  # instances are apart, so each is its own component
    assert sorted(map(tuple, boxes.tolist())) == sorted(map(tuple, scene.boxes.tolist()))
    for (x0, y0, x1, y1), label in zip(scene.boxes.astype(int), scene.labels, strict=True):
        assert (scene.mask[y0:y1, x0:x1] == label + 1).any()
    assert tiles((100, 80), 32) == [(0, 0), (0, 32), (32, 0), (32, 32), (64, 0), (64, 32)]


@needs_scenes
def test_datamodule_splits_are_disjoint_tiles(tmp_path):
    dm = HSISimulationDataModule(val_per_tile=1, test_per_tile=1, samples_per_epoch=2, batch_size=2)
    dm.setup()
    parts = {k: set(v) for k, v in dm.split_tiles.items()}
    assert parts["train"].isdisjoint(parts["val"]) and parts["train"].isdisjoint(parts["test"])
    assert parts["val"].isdisjoint(parts["test"]) and len(parts["test"]) == 3
    cube, targets = next(iter(dm.train_dataloader()))
    assert cube.shape == (2, 30, 32, 32) and cube.dtype == torch.float32
    assert set(targets[0]) == {"boxes", "labels", "mask"}
    # another sensor: test tiles from the other folder only, its scene kept whole for real-map scoring
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "hydice.mat").symlink_to(SHARED_SCENES.resolve() / "hydice.mat")
    cross = HSISimulationDataModule(train_scenes=["sandiego"], test_path=str(tmp_path / "other"), val_per_tile=1, test_per_tile=1)
    cross.setup()
    assert all(t.startswith("sandiego@") for t in cross.split_tiles["train"] + cross.split_tiles["val"])
    assert all(t.startswith("hydice@") for t in cross.split_tiles["test"]) and len(cross.split_tiles["test"]) == 6
    assert [s.name for s in cross.real_scenes] == ["hydice"] and cross.dataset_name == "hsi_sim_other"
