"""SPOD-style simulated point objects implanted into real hyperspectral backgrounds, and the DataModule.

The paper's SPOD benchmark implants point and sub-pixel targets of several classes into real
scenes; with only two real scenes here (../shared/data/vision/hyperspectral: San Diego airport,
AVIRIS, 100x100x189; HYDICE urban, 80x100x162), each scene is cut into disjoint square tiles and
every tile serves one split only, so train, validation and test backgrounds never share a pixel.

Backgrounds: each scene is resampled to `bands` (onto one wavelength grid, `wavelength_range`, when
its band centres are known, as for the shared scenes; else by adjacent-band means) and normalized
on its own (`vision.data.hsi`);
its labelled pixels (the planes / vehicles of its `map`, dilated by one pixel) are replaced by the
mean spectrum of the ring of pixels around each component, so no unlabelled real target sits in a
simulated background.

Target classes (`default_target_library`), in the same resampled, normalized space:
- `sandiego_plane`: the mean spectrum of the San Diego map's pixels;
- `hydice_vehicle`: the mean spectrum of the HYDICE map's pixels;
- `sandiego_plane_tilted` / `hydice_vehicle_tilted`: those spectra times a linear ramp over the
  bands (0.7 -> 1.3 and 1.3 -> 0.7), a documented perturbation giving two more, spectrally
  distinct classes.
Each implanted instance varies its class spectrum, as real targets do between instances
(illumination, material, adjacency): a gain drawn in `gain` (0.8-1.2) times `1 + variability * c(band)`
with `c` a random smooth curve (three cosines over the band axis with random frequencies up to 1.5
periods and random phases, scaled to a peak of 1; `variability` = 0.1).

Targets (`simulate_scene`): a footprint drawn from single pixels (sub-pixel: abundance in
`subpixel_abundance`, 0.1-0.5) and multi-pixel shapes (1x2, 2x1, 2x2, a 3x3 plus; abundance per
pixel in `multipixel_abundance`, 0.3-1.0), placed so that instances are at least one pixel apart; each target pixel
becomes `a * target + (1 - a) * background` (linear mixing). The box of an instance is the
pixel-aligned box around its footprint, its class the spectrum's.

Splits: tiles in raster order cycle through train, train, val, test. Training scenes are drawn
afresh for every item (random tile, random flip / transpose of the background, optionally its
spectral distortion and band-axis warp, random targets; the targets are implanted after both, so
their spectra stay the library's); validation and test scenes are fixed by the seed (validation
backgrounds get the same distortion and warp with `val_augment`, test backgrounds never). With
`test_path`, the test scenes are simulated on the tiles of that folder's scenes instead (another
sensor), and its scenes are also kept whole (`real_scenes`) so that their real maps can be scored.

Prediction (`attn predict --ckpt_path CKPT --predict_path PATH`): `predict_path` is a cube file
(`.mat`, ENVI `.hdr` + binary, `.npy`; `vision.data.hsi.read_cube`) or a folder of them. Each cube
is prepared exactly as the training scenes were: dead bands dropped, resampled to `bands` (onto the
training wavelength grid when the cube's band centres are known: a `.mat` `wavelength` vector or an
ENVI header's `wavelength`, or, for a cube without them that has the band count of a training
scene with known centres (a served array of that sensor), that scene's; else by adjacent-band
means, logged, and its bands must then run in increasing wavelength over a range like the
training scenes'), and normalized on its own
(`normalize_scene`). It is kept whole, at any size; the task tiles it. What this needs from
training (the band count, the wavelength grid, the tile, the target library's class names and
spectra, the training scenes' band counts and centres) is the DataModule's `state_dict`, saved in
every checkpoint, so prediction reads no training scene when a checkpoint is given.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from scipy import ndimage
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from vision.data.hsi import (
    NORMALIZE_PERCENTILES,
    HSIScene,
    list_scenes,
    normalize_scene,
    prepare_scene,
    read_cube,
    read_scene,
    resample_scene,
)
from vision.data.hsi_wavelengths import WAVELENGTH_RANGE

log = logging.getLogger(__name__)

SHARED_SCENES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "vision" / "hyperspectral"
SPLIT_CYCLE = ("train", "train", "val", "test")
FOOTPRINTS: dict[str, np.ndarray] = {
    "1x1": np.array([[1]], bool),
    "1x2": np.array([[1, 1]], bool),
    "2x1": np.array([[1], [1]], bool),
    "2x2": np.ones((2, 2), bool),
    "plus": np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool),
}


@dataclass
class TargetLibrary:
    """Class spectra: `spectra (classes, bands)` in the normalized space, `names`, and where each came from."""

    spectra: np.ndarray
    names: tuple[str, ...]
    sources: tuple[str, ...]


def clean_background(cube: np.ndarray, target_map: np.ndarray | None) -> np.ndarray:
    """Replace each labelled component (dilated by one pixel) by the mean spectrum of the two-pixel ring around it."""
    if target_map is None or not target_map.any():
        return cube
    out = cube.copy()
    labelled, count = ndimage.label(target_map, structure=np.ones((3, 3), bool))
    for k in range(1, count + 1):
        inner = ndimage.binary_dilation(labelled == k, iterations=1)
        ring = ndimage.binary_dilation(inner, iterations=2) & ~ndimage.binary_dilation(target_map, iterations=1)
        out[inner] = cube[ring].mean(0)
    return out


def default_target_library(scenes: dict[str, tuple[np.ndarray, HSIScene]]) -> TargetLibrary:
    """The four classes from the shared scenes' labelled pixels (module docstring); `scenes`: name -> (prepared cube, scene)."""
    needed = ("sandiego", "hydice")
    missing = [n for n in needed if n not in scenes or scenes[n][1].map is None]
    if missing:
        raise ValueError(f"vision/data/hsi_simulation.py: the default target library needs the labelled scenes {missing} "
                         f"(from {SHARED_SCENES})")
    plane = scenes["sandiego"][0][scenes["sandiego"][1].map].mean(0)
    vehicle = scenes["hydice"][0][scenes["hydice"][1].map].mean(0)
    ramp = np.linspace(0.7, 1.3, len(plane), dtype=np.float32)
    spectra = np.stack([plane, vehicle, plane * ramp, vehicle * ramp[::-1]]).astype(np.float32)
    names = ("sandiego_plane", "hydice_vehicle", "sandiego_plane_tilted", "hydice_vehicle_tilted")
    sources = (
        "mean of the 58 labelled pixels of sandiego.mat",
        "mean of the 17 labelled pixels of hydice.mat",
        "sandiego_plane x linear ramp 0.7 -> 1.3 over the bands",
        "hydice_vehicle x linear ramp 1.3 -> 0.7 over the bands",
    )
    return TargetLibrary(spectra, names, sources)


def implant(background: np.ndarray, spectrum: np.ndarray, pixels: np.ndarray, abundance: np.ndarray) -> np.ndarray:
    """Linear mixing `a * spectrum + (1 - a) * background` at `pixels (n, 2)` (row, col) with `abundance (n,)`; other pixels unchanged.

    `background: (H, W, bands)`; returns a new cube.
    """
    out = background.copy()
    rows, cols = pixels[:, 0], pixels[:, 1]
    a = np.asarray(abundance, np.float32)[:, None]
    out[rows, cols] = a * spectrum[None, :] + (1 - a) * background[rows, cols]
    return out


@dataclass
class SimulatedScene:
    """A simulated scene: `cube (H, W, bands)`, `boxes (n, 4)` x0 y0 x1 y1, `labels (n,)`, `mask (H, W)` (0 background, c+1 class c)."""

    cube: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    mask: np.ndarray


def smooth_curve(bands: int, rng: np.random.Generator) -> np.ndarray:
    """A random smooth curve over the band axis with a peak of 1: three cosines with random frequencies
    up to 1.5 periods and random phases (module docstring)."""
    t = np.linspace(0.0, 1.0, bands)
    curve = sum(np.cos(2 * np.pi * rng.uniform(0.0, 1.5) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3))
    return curve / max(np.abs(curve).max(), 1e-12)


def instance_spectrum(spectrum: np.ndarray, rng: np.random.Generator, gain: tuple[float, float], variability: float) -> np.ndarray:
    """One instance's spectrum: `spectrum * gain * (1 + variability * smooth random curve)` (module docstring)."""
    return (spectrum * rng.uniform(*gain) * (1 + variability * smooth_curve(len(spectrum), rng))).astype(np.float32)


def distort_background(background: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """A training background seen through another sensor and illumination: every pixel times one
    `gain in [1 - amount, 1 + amount] * (1 + amount * smooth random curve)` over the bands."""
    factor = rng.uniform(1 - amount, 1 + amount) * (1 + amount * smooth_curve(background.shape[-1], rng))
    return background * factor.astype(np.float32)


def warp_background(background: np.ndarray, rng: np.random.Generator, shift: float) -> np.ndarray:
    """A training background seen through a sensor with other band centres: every pixel's spectrum read
    at band positions `k + shift * c(k)` (`c` a smooth random curve with a peak of 1, positions clipped
    to the band range), by linear interpolation between neighbouring bands."""
    bands = background.shape[-1]
    if bands < 2:
        return background
    positions = np.clip(np.arange(bands) + shift * smooth_curve(bands, rng), 0, bands - 1)
    low = np.minimum(np.floor(positions).astype(np.int64), bands - 2)
    frac = (positions - low).astype(np.float32)
    return background[..., low] * (1 - frac) + background[..., low + 1] * frac


def augment_background(background: np.ndarray, rng: np.random.Generator, distortion: float, warp: float) -> np.ndarray:
    """`distort_background` by `distortion`, then `warp_background` by `warp` (either skipped at 0)."""
    if distortion > 0:
        background = distort_background(background, rng, distortion)
    if warp > 0:
        background = warp_background(background, rng, warp)
    return background


def simulate_scene(
    background: np.ndarray, library: TargetLibrary, rng: np.random.Generator, *, num_targets: tuple[int, int] = (3, 8),
    subpixel_fraction: float = 0.5, subpixel_abundance: tuple[float, float] = (0.1, 0.5),
    multipixel_abundance: tuple[float, float] = (0.3, 1.0), gain: tuple[float, float] = (0.8, 1.2),
    variability: float = 0.1,
) -> SimulatedScene:
    """Implant `num_targets` (inclusive range) instances into `background (H, W, bands)` (module docstring)."""
    h, w, _ = background.shape
    cube = background.copy()
    occupied = np.zeros((h, w), bool)  # target pixels grown by one: keeps instances apart
    mask = np.zeros((h, w), np.int64)
    boxes, labels = [], []
    wanted = int(rng.integers(num_targets[0], num_targets[1] + 1))
    multi = [name for name in FOOTPRINTS if name != "1x1"]
    for _ in range(wanted):
        subpixel = rng.random() < subpixel_fraction
        shape = FOOTPRINTS["1x1"] if subpixel else FOOTPRINTS[multi[int(rng.integers(len(multi)))]]
        for _attempt in range(50):
            top, left = int(rng.integers(0, h - shape.shape[0] + 1)), int(rng.integers(0, w - shape.shape[1] + 1))
            pixels = np.argwhere(shape) + (top, left)
            if not occupied[pixels[:, 0], pixels[:, 1]].any():
                break
        else:
            continue  # the tile is full
        label = int(rng.integers(len(library.names)))
        spectrum = instance_spectrum(library.spectra[label], rng, gain, variability)
        low, high = subpixel_abundance if subpixel else multipixel_abundance
        abundance = rng.uniform(low, high, size=len(pixels))
        cube = implant(cube, spectrum, pixels, abundance)
        mask[pixels[:, 0], pixels[:, 1]] = label + 1
        grown = np.zeros((h, w), bool)
        grown[pixels[:, 0], pixels[:, 1]] = True
        occupied |= ndimage.binary_dilation(grown, structure=np.ones((3, 3), bool))
        boxes.append([left, top, left + shape.shape[1], top + shape.shape[0]])
        labels.append(label)
    return SimulatedScene(cube, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64), mask)


def tiles(shape: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """Top-left corners of the disjoint `size x size` tiles of an `(H, W)` image, in raster order."""
    h, w = shape
    if h < size or w < size:
        raise ValueError(f"vision/data/hsi_simulation.py: a {h}x{w} scene is smaller than one {size}x{size} tile")
    return [(r, c) for r in range(0, h - size + 1, size) for c in range(0, w - size + 1, size)]


def to_sample(scene: SimulatedScene) -> tuple[Tensor, dict[str, Tensor]]:
    """`(cube (bands, H, W), {"boxes", "labels", "mask"})` as tensors."""
    cube = torch.from_numpy(np.ascontiguousarray(scene.cube.transpose(2, 0, 1)))
    return cube, {"boxes": torch.from_numpy(scene.boxes), "labels": torch.from_numpy(scene.labels),
                  "mask": torch.from_numpy(scene.mask)}


def collate(batch: Sequence[tuple[Tensor, dict[str, Tensor]]]) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """Stack the cubes, keep the per-image targets as a list (their box counts differ)."""
    return torch.stack([cube for cube, _ in batch]), [target for _, target in batch]


class RandomScenes(Dataset):
    """Training scenes drawn afresh per item: a random background tile, flipped / transposed at random
    (spectrally distorted by `distort_background` when `background_distortion` > 0, then band-warped by
    `warp_background` when `background_warp` > 0), random targets."""

    def __init__(self, backgrounds: list[np.ndarray], library: TargetLibrary, samples: int, seed: int,
                 background_distortion: float = 0.0, background_warp: float = 0.0, **simulation) -> None:
        self.backgrounds, self.library, self.samples, self.seed = backgrounds, library, samples, seed
        self.background_distortion, self.background_warp, self.simulation = background_distortion, background_warp, simulation
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        background = self.backgrounds[int(self.rng.integers(len(self.backgrounds)))]
        if self.rng.random() < 0.5:
            background = background[:, ::-1]
        if self.rng.random() < 0.5:
            background = background[::-1]
        if self.rng.random() < 0.5:
            background = background.transpose(1, 0, 2)
        background = augment_background(np.ascontiguousarray(background), self.rng, self.background_distortion,
                                        self.background_warp)
        return to_sample(simulate_scene(background, self.library, self.rng, **self.simulation))


class FixedScenes(Dataset):
    """Validation / test scenes simulated once: `per_tile` scenes on each background tile, fixed by `seed`;
    each scene's background distorted and band-warped first when `background_distortion` / `background_warp` > 0."""

    def __init__(self, backgrounds: list[np.ndarray], library: TargetLibrary, per_tile: int, seed: int,
                 background_distortion: float = 0.0, background_warp: float = 0.0, **simulation) -> None:
        rng = np.random.default_rng(seed)
        self.scenes = [
            simulate_scene(augment_background(bg, rng, background_distortion, background_warp), library, rng, **simulation)
            for bg in backgrounds for _ in range(per_tile)
        ]

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        return to_sample(self.scenes[index])


@dataclass
class RealScene:
    """A whole real scene for map scoring: `cube (H, W, bands)` prepared, its binary `map`, its `name`."""

    name: str
    cube: np.ndarray
    map: np.ndarray


@dataclass
class PredictCube:
    """A user's cube for prediction: its file `name` and `path`, and the prepared `cube (H, W, bands)`."""

    name: str
    path: Path
    cube: np.ndarray


class PredictCubes(Dataset):
    """The prepared cubes of `predict_path`, one item per cube: `(cube (bands, H, W), {"file": name})`."""

    def __init__(self, cubes: list[PredictCube]) -> None:
        self.cubes = cubes

    def __len__(self) -> int:
        return len(self.cubes)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, str]]:
        item = self.cubes[index]
        return torch.from_numpy(np.ascontiguousarray(item.cube.transpose(2, 0, 1))), {"file": item.name}


def check_same_resampling(scenes: Sequence[HSIScene], wavelength_range: tuple[float, float] | None) -> None:
    """Refuse to mix scenes resampled onto the wavelength grid with scenes resampled by band index."""
    known = [s.path.name for s in scenes if s.wavelengths is not None]
    unknown = [s for s in scenes if s.wavelengths is None]
    if wavelength_range is not None and known and unknown:
        raise ValueError(f"{unknown[0].path}: {known} have band wavelengths and {[s.path.name for s in unknown]} do not, so "
                         "their bands would be resampled differently; give every scene its wavelengths (a .mat 'wavelength' "
                         "vector, an ENVI header's 'wavelength') or set wavelength_range: null")


def _seed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng([info.dataset.seed, worker_id, torch.initial_seed() % 2**32])


class HSISimulationDataModule(L.LightningDataModule):
    """Simulated point objects in real hyperspectral backgrounds (module docstring): train / val / test on disjoint tiles.

    Args:
        scene_path: folder of the labelled background scenes (`.mat` with `data` and `map`; default
            ../shared/data/vision/hyperspectral); the default target library needs its `sandiego`
            and `hydice`.
        train_scenes: names (file stems) of the scenes whose tiles give the training and
            validation backgrounds (default: all of `scene_path`).
        test_path: folder of scenes of another sensor; when set, the test scenes are simulated on
            its tiles (the shared scenes' test tiles are unused) and its labelled scenes are kept
            whole in `real_scenes` for real-map scoring.
        dataset_name: the dataset tag and MLflow experiment `vision/hsi_detection/<dataset_name>`
            (default `hsi_sim`, or `hsi_sim_<test folder name>` with `test_path`).
        bands: spectral channels after resampling (the paper: 30).
        wavelength_range: `(low, high)` nm of the wavelength grid of `bands` equal bins that scenes
            with known band centres are resampled onto (`vision.data.hsi_wavelengths`; default the
            span both shared sensors cover), so two sensors' bands meet at the same wavelengths;
            None resamples every scene by adjacent-band means, the paper's single-sensor rule.
        tile: side of the square background tiles (pixels).
        num_targets: inclusive range of implanted instances per scene.
        subpixel_fraction: share of single-pixel sub-pixel targets.
        subpixel_abundance: abundance range of sub-pixel targets.
        multipixel_abundance: abundance range of each pixel of multi-pixel targets.
        variability: amplitude of each instance's smooth spectral variation.
        background_distortion: amplitude of the random gain and smooth spectral curve multiplied into
            each training background before the targets are implanted (`distort_background`; 0 = off).
            Training on one sensor's few tiles, it keeps the detector from learning that sensor's
            background, so it transfers to another's; test scenes are never distorted (validation
            ones with `val_augment`).
        background_warp: largest shift, in bands, of the smooth random band-axis warp applied to each
            training background after the distortion (`warp_background`; 0 = off): another sensor's
            band centres and removed bands put its resampled bands at other wavelengths.
        val_augment: give the validation scenes' backgrounds the training distortion and warp too
            (drawn once, fixed by the seed), so that the checkpoint kept by a validation metric is the
            one that detects best through a simulated sensor change, not on the training sensor's own
            backgrounds (which favours a model that has learned them). Test scenes are never augmented.
        samples_per_epoch: training scenes per epoch.
        val_per_tile: validation scenes per validation tile.
        test_per_tile: test scenes per test tile.
        batch_size: training batch size (evaluation uses the same; prediction takes one cube at a time).
        num_workers: training DataLoader workers.
        seed: seeds the training stream and (with offsets) the validation and test scenes.
        predict_path: a cube file or a folder of cubes to detect in (`attn predict --predict_path`;
            module docstring). In a folder, files that cannot be read are skipped, named on stderr
            and counted in `predict_skipped`; a single bad file is an error. Without a checkpoint's
            state the target library is rebuilt from `scene_path`, which then must be there.
        predict_score_threshold: `attn predict` writes only detections scoring at least this, in the
            model's own units (class probability for SpecDETR and the CNN, the filter output for
            CEM and SMF, ACE's [0, 1], RX's Mahalanobis distance). None (default) keeps every
            detection of the model's `detect`: SpecDETR's `max_detections` best per tile after NMS,
            every component above the model's own threshold for the others. (A data argument, since
            `attn predict --ckpt_path` takes the model's arguments from the checkpoint.)
    """

    def __init__(
        self, scene_path: str | None = None, train_scenes: list[str] | None = None, test_path: str | None = None,
        dataset_name: str | None = None, bands: int = 30, wavelength_range: tuple[float, float] | None = WAVELENGTH_RANGE,
        tile: int = 32, num_targets: tuple[int, int] = (3, 8),
        subpixel_fraction: float = 0.5, subpixel_abundance: tuple[float, float] = (0.1, 0.5),
        multipixel_abundance: tuple[float, float] = (0.3, 1.0), variability: float = 0.1, background_distortion: float = 0.0,
        background_warp: float = 0.0, val_augment: bool = False, samples_per_epoch: int = 2000,
        val_per_tile: int = 4, test_per_tile: int = 8, batch_size: int = 8, num_workers: int = 0, seed: int = 0,
        predict_path: str | None = None, predict_score_threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.scene_path = scene_path
        self.train_scenes = list(train_scenes) if train_scenes else None
        self.test_path = test_path
        self.dataset_name = dataset_name or ("hsi_sim" if test_path is None else f"hsi_sim_{Path(test_path).name}")
        self.bands, self.tile = bands, tile
        self.wavelength_range = tuple(float(w) for w in wavelength_range) if wavelength_range is not None else None
        self.simulation = {"num_targets": tuple(num_targets), "subpixel_fraction": subpixel_fraction,
                           "subpixel_abundance": tuple(subpixel_abundance), "multipixel_abundance": tuple(multipixel_abundance),
                           "variability": variability}
        self.background_distortion, self.background_warp, self.val_augment = background_distortion, background_warp, val_augment
        self.samples_per_epoch, self.val_per_tile, self.test_per_tile = samples_per_epoch, val_per_tile, test_per_tile
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.library: TargetLibrary | None = None
        self.real_scenes: list[RealScene] = []
        self.split_tiles: dict[str, list[str]] = {}
        self.train_set: RandomScenes | None = None
        self.val_set: FixedScenes | None = None
        self.test_set: FixedScenes | None = None
        self.predict_path, self.predict_score_threshold = predict_path, predict_score_threshold
        self.predict_cubes: list[PredictCube] = []
        self.predict_skipped = 0
        self.train_band_counts: dict[str, int] = {}  # bands of each training scene after dead-band drop
        self.train_wavelengths: dict[str, list[float]] = {}  # band centres (nm) of the training scenes that have them
        self.raw_example: np.ndarray | None = None  # a test tile in file units: the served model's input example
        self.normalize_percentiles: tuple[float, ...] = NORMALIZE_PERCENTILES  # prepare_scene's, for training

    @property
    def num_classes(self) -> int:
        return 4  # the default target library's classes

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" or self.library is not None:
            return  # prediction needs no training scene: the checkpoint's state (load_state_dict) has what it needs
        scenes = self._training_scenes()
        names = self.train_scenes or sorted(scenes)
        unknown = sorted(set(names) - set(scenes))
        if unknown:
            raise ValueError(f"vision/data/hsi_simulation.py: train_scenes {unknown} not in {self.scene_folder} (found {sorted(scenes)})")
        split: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
        for name in names:
            cube, scene = scenes[name]
            background = clean_background(cube, scene.map)
            for i, (r, c) in enumerate(tiles(background.shape[:2], self.tile)):
                part = SPLIT_CYCLE[i % len(SPLIT_CYCLE)]
                split[part].append(background[r:r + self.tile, c:c + self.tile])
                if part == "test" and self.raw_example is None:
                    self.raw_example = np.array(scene.cube[r:r + self.tile, c:c + self.tile], np.float32)
                self.split_tiles.setdefault(part, []).append(f"{name}@{r},{c}")
        if self.test_path is not None:
            split["test"], self.split_tiles["test"] = [], []
            test_scenes = self._read(Path(self.test_path))
            check_same_resampling([s for _, s in (*scenes.values(), *test_scenes.values())], self.wavelength_range)
            for name, (cube, scene) in test_scenes.items():
                background = clean_background(cube, scene.map)
                for r, c in tiles(background.shape[:2], self.tile):
                    split["test"].append(background[r:r + self.tile, c:c + self.tile])
                    self.split_tiles["test"].append(f"{name}@{r},{c}")
                if scene.map is not None and scene.map.any():
                    self.real_scenes.append(RealScene(name, cube, scene.map))
        empty = [part for part, backgrounds in split.items() if not backgrounds]
        if empty:
            raise ValueError(f"vision/data/hsi_simulation.py: no {empty} tiles of side {self.tile} in {names}; use a smaller tile")
        log.info("hsi tiles: %s", {k: len(v) for k, v in split.items()})
        augment = {"background_distortion": self.background_distortion, "background_warp": self.background_warp}
        self.train_set = RandomScenes(split["train"], self.library, self.samples_per_epoch, self.seed, **augment, **self.simulation)
        self.val_set = FixedScenes(split["val"], self.library, self.val_per_tile, self.seed + 1,
                                   **(augment if self.val_augment else {}), **self.simulation)
        self.test_set = FixedScenes(split["test"], self.library, self.test_per_tile, self.seed + 2, **self.simulation)

    @property
    def scene_folder(self) -> Path:
        """The folder of the labelled background scenes (`scene_path`, or the shared scenes)."""
        return Path(self.scene_path) if self.scene_path else SHARED_SCENES.resolve()

    def _training_scenes(self) -> dict[str, tuple[np.ndarray, HSIScene]]:
        """The prepared labelled scenes of `scene_path`; sets the target library and the training band counts."""
        scenes = self._read(self.scene_folder)
        check_same_resampling([scene for _, scene in scenes.values()], self.wavelength_range)
        self.library = default_target_library(scenes)
        self.train_band_counts = {name: int(scene.cube.shape[-1]) for name, (_, scene) in scenes.items()}
        self.train_wavelengths = {name: scene.wavelengths.tolist() for name, (_, scene) in scenes.items()
                                  if scene.wavelengths is not None}
        return scenes

    def state_dict(self) -> dict[str, object]:
        """What prediction needs from training (module docstring), as plain values and tensors."""
        state: dict[str, object] = {"bands": self.bands, "tile": self.tile, "normalize_percentiles": list(self.normalize_percentiles),
                                    "wavelength_range": list(self.wavelength_range) if self.wavelength_range else None,
                                    "train_band_counts": dict(self.train_band_counts),
                                    "train_wavelengths": {k: list(v) for k, v in self.train_wavelengths.items()}}
        if self.library is not None:
            state.update(class_names=list(self.library.names), class_sources=list(self.library.sources),
                         class_spectra=torch.from_numpy(np.ascontiguousarray(self.library.spectra)))
        return state

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore the training state of a checkpoint; its band count and tile are the ones the model was trained with."""
        self.bands, self.tile = int(state["bands"]), int(state["tile"])
        self.normalize_percentiles = tuple(float(q) for q in state.get("normalize_percentiles", NORMALIZE_PERCENTILES))
        grid = state.get("wavelength_range")  # absent in checkpoints from before the wavelength grid: index means
        self.wavelength_range = tuple(float(w) for w in grid) if grid else None
        self.train_band_counts = {str(k): int(v) for k, v in dict(state.get("train_band_counts") or {}).items()}
        self.train_wavelengths = {str(k): [float(w) for w in v] for k, v in dict(state.get("train_wavelengths") or {}).items()}
        if "class_names" in state:
            spectra = torch.as_tensor(state["class_spectra"]).float().numpy()
            self.library = TargetLibrary(spectra, tuple(state["class_names"]), tuple(state["class_sources"]))

    def _read(self, folder: Path) -> dict[str, tuple[np.ndarray, HSIScene]]:
        out = {}
        for path in list_scenes(folder):
            scene = read_scene(path)
            out[scene.name] = (prepare_scene(scene, self.bands, self.wavelength_range), scene)
        return out

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, 0)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, 0)

    def predict_dataloader(self) -> DataLoader:
        """The cubes of `predict_path`, one per batch (module docstring)."""
        if self.predict_path is None:
            raise ValueError("HSISimulationDataModule: predict_path is not set; give --predict_path with a cube "
                             "(.mat, .hdr, .npy) or a folder of them")
        if self.library is None:  # no checkpoint state: the classes come from the training scenes
            log.warning("hsi predict: no training state restored (no --ckpt_path?); reading the target library from the scenes")
            self._training_scenes()
        self.predict_cubes, self.predict_skipped = self.read_predict_cubes(Path(self.predict_path))
        return DataLoader(PredictCubes(self.predict_cubes), batch_size=1, shuffle=False, collate_fn=collate)

    def read_predict_cubes(self, path: Path) -> tuple[list[PredictCube], int]:
        """Read and prepare the cube `path` or the cubes of the folder `path`; returns them and how many were skipped."""
        files = list_scenes(path) if path.is_dir() else [path]
        cubes, skipped = [], 0
        for file in files:
            try:
                cubes.append(self.prepare_cube(read_cube(file)))
            except (ValueError, FileNotFoundError) as err:
                if not path.is_dir():
                    raise
                print(f"hsi predict: skipped {err}", file=sys.stderr)
                skipped += 1
        if not cubes:
            raise ValueError(f"{path}: none of its {len(files)} cube file(s) could be read (see the messages above)")
        return cubes, skipped

    def prepare_cube(self, scene: HSIScene) -> PredictCube:
        """A user's scene as the model sees it: resampled to `bands` and normalized, as the training scenes were."""
        bands = int(scene.cube.shape[-1])
        if self.train_band_counts and bands not in self.train_band_counts.values():
            log.info("%s: %d bands (training scenes: %s) resampled to %d", scene.path, bands, self.train_band_counts, self.bands)
        if scene.wavelengths is None and self.wavelength_range is not None:
            same = {tuple(self.train_wavelengths[n]) for n, count in self.train_band_counts.items()
                    if count == bands and n in self.train_wavelengths}
            if len(same) == 1:  # a cube of a training sensor's band count, e.g. a served array: that sensor's bands
                scene = replace(scene, wavelengths=np.array(same.pop()))
                log.info("%s: no band wavelengths; its %d bands are read as those of the training scene with %d bands",
                         scene.path, bands, bands)
        try:
            cube = normalize_scene(resample_scene(scene, self.bands, self.wavelength_range), *self.normalize_percentiles)
        except ValueError as err:
            raise ValueError(f"{scene.path}: {err}; a cube needs spectral contrast to be scored") from None
        return PredictCube(scene.path.name, scene.path, cube)

    def _loader(self, dataset: Dataset | None, workers: int) -> DataLoader:
        if dataset is None:
            raise RuntimeError("vision/data/hsi_simulation.py: call setup() before asking for a DataLoader")
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, num_workers=workers, collate_fn=collate,
                          worker_init_fn=_seed_worker if workers else None, persistent_workers=workers > 0)
