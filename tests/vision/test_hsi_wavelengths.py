"""Band wavelengths: read from .mat and ENVI files or known for the shared scenes, and resampled onto one grid so
that two sensors' bands meet at the same wavelengths."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.io

from vision.data.hsi import (
    normalize_scene,
    read_cube,
    read_mat_scene,
    read_scene,
    resample_bands,
    resample_scene,
)
from vision.data.hsi_simulation import SHARED_SCENES, HSISimulationDataModule
from vision.data.hsi_wavelengths import KNOWN_SCENES, band_centres, resample_to_grid

needs_scenes = pytest.mark.skipif(not (SHARED_SCENES / "hydice.mat").is_file(), reason=f"shared scenes not in {SHARED_SCENES}")
GRID = np.linspace(430, 2370, 31)


def step_spectrum(wavelengths: np.ndarray) -> np.ndarray:
    """A spectrum constant inside each 30-bin grid cell, a different value per cell: what one material looks like
    to any sensor once its bands are binned on that grid."""
    cell = np.clip(np.searchsorted(GRID, wavelengths, side="right") - 1, 0, 29)
    return (1.0 + 0.1 * cell + 0.3 * np.sin(cell)).astype(np.float32)


def test_band_centres_drop_the_removed_bands():
    centres = band_centres(10, 100.0, 190.0, [(1, 2), (5, 5)])
    np.testing.assert_allclose(centres, [120, 130, 150, 160, 170, 180, 190])
    assert len(KNOWN_SCENES["sandiego"]) == 189 and len(KNOWN_SCENES["hydice"]) == 162


def test_the_grid_puts_two_sensors_bands_at_the_same_wavelengths():
    aviris, hydice = KNOWN_SCENES["sandiego"], KNOWN_SCENES["hydice"]
    a = resample_to_grid(step_spectrum(aviris)[None, None], aviris, 30)[0, 0]
    h = resample_to_grid(step_spectrum(hydice)[None, None], hydice, 30)[0, 0]
    expected = step_spectrum((GRID[:-1] + GRID[1:]) / 2)
    both = np.array([all(((w >= lo) & (w < hi)).any() for w in (aviris, hydice)) for lo, hi in zip(GRID, GRID[1:], strict=False)])
    assert both.sum() >= 26  # only the water-absorption windows hold no band of one sensor or the other
    np.testing.assert_allclose(a[both], expected[both], rtol=1e-6)
    np.testing.assert_allclose(h[both], expected[both], rtol=1e-6)
    # by band index the same material lands in different channels: the misalignment the grid removes
    by_index = np.abs(resample_bands(step_spectrum(aviris)[None, None], 30) - resample_bands(step_spectrum(hydice)[None, None], 30))
    assert by_index.max() > 0.2


def test_the_grid_keeps_a_flat_spectrum_flat_and_interpolates_empty_bins():
    wavelengths = np.array([450.0, 500.0, 2300.0])  # bins between 500 and 2300 nm hold no band
    np.testing.assert_allclose(resample_to_grid(np.full((2, 2, 3), 0.4, np.float32), wavelengths, 30), 0.4, rtol=1e-6)
    linear = (wavelengths / 1000.0).astype(np.float32)[None]
    out = resample_to_grid(linear, wavelengths, 30)[0]
    centres = (GRID[:-1] + GRID[1:]) / 2
    np.testing.assert_allclose(out[5:28], centres[5:28] / 1000.0, rtol=1e-5)  # interpolated: the line itself
    with pytest.raises(ValueError, match="3 wavelengths for a cube of 4 bands"):
        resample_to_grid(np.ones((1, 4)), wavelengths, 30)


def test_mat_and_envi_wavelengths_are_read_in_nanometres(tmp_path, caplog):
    import spectral.io.envi as envi

    cube = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    scipy.io.savemat(tmp_path / "a.mat", {"data": cube, "map": np.zeros((4, 5)), "wavelength": [0.5, 0.6, 0.7]})
    np.testing.assert_allclose(read_mat_scene(tmp_path / "a.mat").wavelengths, [500, 600, 700])
    scipy.io.savemat(tmp_path / "b.mat", {"data": cube, "wavelengths": [[500.0, 600.0, 700.0]]})
    np.testing.assert_allclose(read_cube(tmp_path / "b.mat").wavelengths, [500, 600, 700])
    envi.save_image(str(tmp_path / "c.hdr"), cube, dtype=np.float32, ext=".img",
                    metadata={"wavelength": ["410.5", "520", "630"], "wavelength units": "Nanometers"})
    np.testing.assert_allclose(read_scene(tmp_path / "c.hdr").wavelengths, [410.5, 520, 630])
    scipy.io.savemat(tmp_path / "n.mat", {"data": cube})
    scene = read_cube(tmp_path / "n.mat")
    assert scene.wavelengths is None
    with caplog.at_level(logging.WARNING, logger="vision.data.hsi"):
        np.testing.assert_array_equal(resample_scene(scene, 30), resample_bands(scene.cube, 30))
    assert "n.mat: no band wavelengths" in caplog.text and "resampled by band index" in caplog.text


def test_bad_wavelengths_name_the_file(tmp_path):
    cube = np.ones((2, 2, 3), np.float32) * np.arange(3)
    scipy.io.savemat(tmp_path / "short.mat", {"data": cube, "map": np.zeros((2, 2)), "wavelength": [500.0, 600.0]})
    with pytest.raises(ValueError, match=r"short\.mat: 2 wavelengths for 3 bands"):
        read_mat_scene(tmp_path / "short.mat")
    scipy.io.savemat(tmp_path / "down.mat", {"data": cube, "map": np.zeros((2, 2)), "wavelength": [700.0, 600.0, 500.0]})
    with pytest.raises(ValueError, match=r"down\.mat: the wavelengths must be finite and increasing"):
        read_mat_scene(tmp_path / "down.mat")


def test_a_dropped_dead_band_takes_its_wavelength_with_it(tmp_path):
    cube = np.random.default_rng(1).random((3, 3, 4)).astype(np.float32)
    cube[..., 1] = 7.0  # constant: dropped
    scipy.io.savemat(tmp_path / "d.mat", {"data": cube, "map": np.zeros((3, 3)), "wavelength": [500.0, 600.0, 700.0, 800.0]})
    scene = read_mat_scene(tmp_path / "d.mat")
    assert scene.dropped_bands == (1,) and scene.wavelengths.tolist() == [500.0, 700.0, 800.0]


@needs_scenes
def test_the_shared_scenes_carry_their_documented_wavelengths_and_the_grid_reaches_checkpoints():
    sandiego, hydice = read_scene(SHARED_SCENES / "sandiego.mat"), read_scene(SHARED_SCENES / "hydice.mat")
    np.testing.assert_array_equal(sandiego.wavelengths, KNOWN_SCENES["sandiego"])
    np.testing.assert_array_equal(hydice.wavelengths, KNOWN_SCENES["hydice"])
    assert 370 <= sandiego.wavelengths.min() and sandiego.wavelengths.max() <= 2510
    dm = HSISimulationDataModule(tile=16, val_per_tile=1, test_per_tile=1)
    dm.setup("fit")
    state = dm.state_dict()
    assert state["wavelength_range"] == [430.0, 2370.0]
    restored = HSISimulationDataModule(wavelength_range=None)
    restored.load_state_dict(state)
    assert restored.wavelength_range == (430.0, 2370.0)
    old = {k: v for k, v in state.items() if k != "wavelength_range"}  # a checkpoint from before the grid
    restored.load_state_dict(old)
    assert restored.wavelength_range is None


@needs_scenes
def test_scenes_with_and_without_wavelengths_are_not_mixed(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    hydice = read_scene(SHARED_SCENES / "hydice.mat")
    scipy.io.savemat(other / "nowl.mat", {"data": hydice.cube, "map": hydice.map.astype(np.uint8)})
    dm = HSISimulationDataModule(train_scenes=["sandiego"], test_path=str(other), tile=16, val_per_tile=1, test_per_tile=1)
    with pytest.raises(ValueError, match=r"nowl\.mat: \['hydice\.mat', 'sandiego\.mat'\] have band wavelengths and "
                                         r"\['nowl\.mat'\] do not.*or set wavelength_range: null"):
        dm.setup("fit")
    dm = HSISimulationDataModule(train_scenes=["sandiego"], test_path=str(other), tile=16, val_per_tile=1, test_per_tile=1,
                                 wavelength_range=None)
    dm.setup("fit")  # by band index for every scene: allowed
    assert len(dm.test_set) > 0


@needs_scenes
def test_a_cube_without_wavelengths_is_read_as_the_training_scene_of_its_band_count(tmp_path, caplog):
    dm = HSISimulationDataModule(tile=16, val_per_tile=1, test_per_tile=1)
    dm.setup("fit")
    restored = HSISimulationDataModule()
    restored.load_state_dict(dm.state_dict())  # what a checkpoint gives `attn predict` and the served model
    hydice = read_scene(SHARED_SCENES / "hydice.mat")
    np.save(tmp_path / "served.npy", hydice.cube[:20, :24])
    with caplog.at_level(logging.INFO, logger="vision.data.hsi_simulation"):
        prepared = restored.prepare_cube(read_cube(tmp_path / "served.npy"))
    expected = normalize_scene(resample_to_grid(hydice.cube[:20, :24], KNOWN_SCENES["hydice"], 30))
    np.testing.assert_allclose(prepared.cube, expected, rtol=1e-6)
    assert "its 162 bands are read as those of the training scene with 162 bands" in caplog.text
    np.save(tmp_path / "other.npy", hydice.cube[:20, :24, :100])  # no training scene has 100 bands: by band index
    with caplog.at_level(logging.WARNING, logger="vision.data.hsi"):
        other = restored.prepare_cube(read_cube(tmp_path / "other.npy"))
    np.testing.assert_allclose(other.cube, normalize_scene(resample_bands(hydice.cube[:20, :24, :100], 30)), rtol=1e-6)
    assert "other.npy: no band wavelengths" in caplog.text
