"""Hyperspectral cubes in and out: the .mat, ENVI and SPOD (.npy + COCO JSON) layouts, band resampling, normalization.

Every reader returns an `HSIScene`: the cube as float32 `(height, width, bands)` in the file's own
units, and the ground truth it carries (a binary `map`, or COCO-style boxes). Ground-truth boxes of
a map are its 8-connected components (`vision.detection.boxes_from_mask`). `read_cube` reads a
user's own cube for `attn predict`, in any of the layouts, without ground truth.

Layouts:
- `.mat` (the anomaly / target-detection layout of San Diego, HYDICE, ...): a `data` array
  `H x W x bands` and a binary `map` `H x W` (MATLAB v5; v7.3 files are HDF5 and not read).
- ENVI: a `.hdr` header and its binary file (read with the `spectral` package); the header's
  `lines x samples x bands x data type + header offset` must equal the binary file's size. An
  optional map sits beside it as `<stem>_map.npy`.
- SPOD (the layout of the paper's HODToolbox): `<stem>.npy` `H x W x bands` with a COCO JSON
  (`images[].file_name`, `annotations[].bbox = [x, y, w, h]`, `category_id`) passed explicitly or
  found as the only `.json` in the folder.

Bad input gets an error naming the file and the problem (missing keys, a map whose shape differs
from the cube, partially NaN bands, a header that does not match its file size). Bands that are
entirely NaN or constant carry no information and would divide by zero in normalization or
covariance estimates: they are dropped, and the drop is logged with their indices (an explicit fix).

Spectra are resampled to a fixed band count so that one model runs on cubes from different sensors:
onto equal wavelength bins when the scene's band centres are known (`scene.wavelengths`, from the
file or `vision.data.hsi_wavelengths.KNOWN_SCENES`; `resample_to_grid`), else by adjacent-band
means (`resample_bands`, as the paper averages 150 -> 30). Each scene is then normalized on
its own (`normalize_scene`): `(x - q_low) / (q_high - q_low)` with the 0.1 and 99.9 percentiles over
all its pixels and bands, one affine map per scene, so spectral shapes are kept and sensors with
different radiometric units land on a comparable range.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision.data.hsi_wavelengths import (
    WAVELENGTH_RANGE,
    as_nanometres,
    known_wavelengths,
    resample_to_grid,
)

log = logging.getLogger(__name__)

SCENE_SUFFIXES: tuple[str, ...] = (".mat", ".hdr", ".npy")
NORMALIZE_PERCENTILES: tuple[float, float] = (0.1, 99.9)  # `normalize_scene`'s low and high percentiles


@dataclass
class HSIScene:
    """One hyperspectral scene and its ground truth.

    Attributes:
        name: the file stem (`sandiego`).
        path: the file it was read from.
        cube: float32 `(height, width, bands)`.
        map: bool `(height, width)` target / anomaly map, or None.
        boxes: float `(n, 4)` ground-truth boxes `x0, y0, x1, y1` in pixels (from the map's
            components, or from the COCO JSON).
        labels: int `(n,)` class of each box (0 for a binary map).
        dropped_bands: indices of the file's bands dropped as all-NaN or constant.
        wavelengths: float `(bands,)` band centres in nm (`vision.data.hsi_wavelengths`), or None
            when neither the file nor `KNOWN_SCENES` gives them.
    """

    name: str
    path: Path
    cube: np.ndarray
    map: np.ndarray | None = None
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    dropped_bands: tuple[int, ...] = ()
    wavelengths: np.ndarray | None = None


def read_scene(path: str | Path, annotations: str | Path | None = None) -> HSIScene:
    """Read a scene by its suffix: `.mat`, `.hdr` (ENVI) or `.npy` (SPOD, with `annotations`)."""
    path = Path(path)
    if path.suffix == ".mat":
        return read_mat_scene(path)
    if path.suffix == ".hdr":
        return read_envi_scene(path)
    if path.suffix == ".npy":
        return read_npy_scene(path, annotations)
    raise ValueError(f"{path}: unknown hyperspectral file type {path.suffix!r}; expected one of {SCENE_SUFFIXES}")


def read_cube(path: str | Path) -> HSIScene:
    """Read a user's cube for prediction: `.mat`, ENVI `.hdr` (+ its binary) or `.npy`; no ground truth needed.

    `.mat`: the `data` array, or else the file's only 3-D numeric array (`map` is not needed and
    not read). `.npy`: an `H x W x bands` array (no COCO JSON is looked for). ENVI: as
    `read_envi_scene`. Bands run along the last axis in the file's order, which must be the
    training scenes' (increasing wavelength, as AVIRIS and HYDICE store them); dead bands are
    dropped as for training. Errors name the file, the problem and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".hdr":
        return read_envi_scene(path)
    wavelengths = None
    if path.suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ValueError(f"{path}: unreadable .npy file ({err}); save the cube with numpy.save") from None
    elif path.suffix == ".mat":
        data, wavelengths = _mat_cube(path)
    elif path.with_suffix(".hdr").is_file():
        raise ValueError(f"{path}: an ENVI binary file; give its header {path.with_suffix('.hdr').name} instead")
    else:
        raise ValueError(f"{path}: unknown hyperspectral file type {path.suffix!r}; give a .mat, ENVI .hdr or .npy cube")
    if data.ndim != 3:
        raise ValueError(f"{path}: the cube must be H x W x bands; got shape {data.shape}")
    return _scene(path, data, None, wavelengths)


def _mat_cube(path: Path) -> tuple[np.ndarray, object]:
    """The cube of a `.mat` file (its `data` key, or its only 3-D numeric array) and its wavelengths, if stored."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        content = scipy.io.loadmat(path)
    except (ValueError, NotImplementedError, OSError, MatReadError) as err:  # v7.3 (HDF5) raises NotImplementedError
        raise ValueError(f"{path}: unreadable .mat file ({err}); save it as MATLAB v5 (save -v7) or as .npy") from None
    if "data" in content:
        return np.asarray(content["data"]), _mat_wavelengths(content)
    cubes = [k for k, v in content.items() if not k.startswith("__") and isinstance(v, np.ndarray) and v.ndim == 3
             and np.issubdtype(v.dtype, np.number)]
    if len(cubes) != 1:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise ValueError(f"{path}: no 'data' key and {len(cubes)} 3-D arrays (keys {keys}); store the cube as 'data' (H x W x bands)")
    return np.asarray(content[cubes[0]]), _mat_wavelengths(content)


def _mat_wavelengths(content: dict) -> object:
    """A `.mat` file's `wavelength` or `wavelengths` entry, or None."""
    return next((content[k] for k in ("wavelength", "wavelengths") if k in content), None)


def list_scenes(folder: str | Path) -> list[Path]:
    """The scene files of a folder, sorted: `.mat`, ENVI `.hdr`, and `.npy` cubes (not `*_map.npy`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of hyperspectral scenes")
    files = [p for p in sorted(folder.iterdir()) if p.suffix in SCENE_SUFFIXES and not p.stem.endswith("_map")]
    if not files:
        raise ValueError(f"{folder}: no .mat, .hdr or .npy scenes found")
    return files


def read_mat_scene(path: str | Path, data_key: str = "data", map_key: str = "map") -> HSIScene:
    """Read a `.mat` scene with a `data` cube `H x W x bands` and a binary `map` `H x W`."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        content = scipy.io.loadmat(path)
    except (ValueError, NotImplementedError, OSError, MatReadError) as err:  # v7.3 (HDF5) raises NotImplementedError
        raise ValueError(f"{path}: unreadable .mat file ({err})") from err
    keys = sorted(k for k in content if not k.startswith("__"))
    missing = [k for k in (data_key, map_key) if k not in content]
    if missing:
        raise ValueError(f"{path}: key(s) {missing} missing; found {keys}")
    data = np.asarray(content[data_key])
    if data.ndim != 3:
        raise ValueError(f"{path}: '{data_key}' must be H x W x bands; got shape {data.shape}")
    target_map = np.asarray(content[map_key])
    return _scene(path, data, target_map, _mat_wavelengths(content))


def read_envi_scene(hdr_path: str | Path) -> HSIScene:
    """Read an ENVI header and its binary file (with `<stem>_map.npy` as the map when present)."""
    import spectral.io.envi as envi

    hdr_path = Path(hdr_path)
    if not hdr_path.is_file():
        raise ValueError(f"{hdr_path}: no such ENVI header")
    try:
        header = envi.read_envi_header(str(hdr_path))
    except Exception as err:  # spectral raises its own EnviHeaderParsingError and IOError subclasses
        raise ValueError(f"{hdr_path}: unreadable ENVI header ({err})") from err
    binary = _envi_binary(hdr_path)
    try:
        lines, samples, bands = int(header["lines"]), int(header["samples"]), int(header["bands"])
        dtype = np.dtype(envi.envi_to_dtype[str(header["data type"])])
    except KeyError as err:
        raise ValueError(f"{hdr_path}: header field {err} missing or unknown") from err
    offset = int(header.get("header offset", 0))
    expected = lines * samples * bands * dtype.itemsize + offset
    actual = binary.stat().st_size
    if actual != expected:
        raise ValueError(
            f"{hdr_path}: header says {lines} lines x {samples} samples x {bands} bands of {dtype} "
            f"(+{offset} header bytes) = {expected} bytes, but {binary.name} has {actual} bytes"
        )
    data = np.asarray(envi.open(str(hdr_path), str(binary)).load())
    map_path = hdr_path.with_name(f"{hdr_path.stem}_map.npy")
    target_map = np.load(map_path) if map_path.is_file() else None
    return _scene(hdr_path, data, target_map, header.get("wavelength"))


def read_npy_scene(npy_path: str | Path, annotations: str | Path | None = None) -> HSIScene:
    """Read a SPOD `.npy` cube `H x W x bands` and its boxes from a COCO JSON (`annotations`, or the folder's one `.json`)."""
    npy_path = Path(npy_path)
    if not npy_path.is_file():
        raise ValueError(f"{npy_path}: no such file")
    try:
        data = np.load(npy_path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"{npy_path}: unreadable .npy file ({err})") from err
    if data.ndim != 3:
        raise ValueError(f"{npy_path}: the cube must be H x W x bands; got shape {data.shape}")
    map_path = npy_path.with_name(f"{npy_path.stem}_map.npy")
    scene = _scene(npy_path, data, np.load(map_path) if map_path.is_file() else None)
    if annotations is None:
        found = sorted(npy_path.parent.glob("*.json"))
        if len(found) > 1:
            raise ValueError(f"{npy_path}: several COCO JSON files beside it ({[f.name for f in found]}); pass annotations=")
        annotations = found[0] if found else None
    if annotations is not None:
        scene.boxes, scene.labels = _coco_boxes(Path(annotations), npy_path, scene.cube.shape[:2])
    return scene


def _coco_boxes(json_path: Path, npy_path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    try:
        coco = json.loads(json_path.read_text())
        images, annotations = coco["images"], coco["annotations"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{json_path}: not a COCO JSON with 'images' and 'annotations' ({err})") from err
    ids = [im["id"] for im in images if Path(str(im.get("file_name", ""))).stem == npy_path.stem]
    if not ids:
        raise ValueError(f"{json_path}: no image entry with file_name {npy_path.stem}.*")
    categories = sorted({int(c["id"]) for c in coco.get("categories", [])} | {int(a["category_id"]) for a in annotations})
    to_label = {c: i for i, c in enumerate(categories)}
    rows = [a for a in annotations if a["image_id"] == ids[0]]
    boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in rows],
                     np.float32).reshape(-1, 4)
    h, w = shape
    outside = np.where((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > w) | (boxes[:, 3] > h))[0]
    if len(outside):
        raise ValueError(f"{json_path}: boxes {outside.tolist()} of {npy_path.name} lie outside its {w}x{h} image")
    return boxes, np.array([to_label[int(a["category_id"])] for a in rows], np.int64)


def _envi_binary(hdr_path: Path) -> Path:
    for suffix in ("", ".img", ".dat", ".raw", ".bin", ".bsq", ".bil", ".bip"):
        candidate = hdr_path.with_suffix(suffix)
        if candidate.is_file() and candidate != hdr_path:
            return candidate
    raise ValueError(f"{hdr_path}: no binary file beside the header (tried {hdr_path.stem} with .img/.dat/.raw/.bin/.bsq/.bil/.bip)")


def _scene(path: Path, data: np.ndarray, target_map: np.ndarray | None, wavelengths: object = None) -> HSIScene:
    """Check the cube, map and wavelengths, drop dead bands, and box the map's components."""
    from vision.detection import boxes_from_mask

    if not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{path}: the cube has non-numeric type {data.dtype}")
    cube = data.astype(np.float32)
    bands = cube.shape[-1]
    centres = as_nanometres(wavelengths, bands, path) if wavelengths is not None else known_wavelengths(path.stem, bands)
    cube, dropped = drop_dead_bands(cube, path)
    if centres is not None and dropped:
        centres = np.delete(centres, list(dropped))
    scene = HSIScene(name=path.stem, path=path, cube=cube, dropped_bands=dropped, wavelengths=centres)
    if target_map is not None:
        target_map = np.asarray(target_map)
        if target_map.shape != cube.shape[:2]:
            raise ValueError(f"{path}: the map is {target_map.shape} but the cube is {cube.shape[:2]} (H x W)")
        values = np.unique(target_map)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"{path}: the map must be binary (0/1); found values {values[:10].tolist()}")
        scene.map = target_map.astype(bool)
        boxes, _ = boxes_from_mask(scene.map)
        scene.boxes, scene.labels = boxes, np.zeros(len(boxes), np.int64)
    return scene


def drop_dead_bands(cube: np.ndarray, path: Path | str = "<array>") -> tuple[np.ndarray, tuple[int, ...]]:
    """Drop bands that are all NaN or constant (logged); refuse bands with some NaN pixels.

    `cube: (H, W, bands)`. Returns the kept cube and the dropped band indices.
    """
    flat = cube.reshape(-1, cube.shape[-1])
    nan = np.isnan(flat)
    all_nan = nan.all(0)
    partial = np.where(nan.any(0) & ~all_nan)[0]
    if len(partial):
        counts = nan[:, partial].sum(0)
        raise ValueError(
            f"{path}: bands {partial.tolist()[:10]} hold NaN in some pixels ({counts.tolist()[:10]} of {len(flat)}); "
            "fill or mask them before reading"
        )
    with np.errstate(invalid="ignore"):
        constant = ~all_nan & (np.nanmax(np.where(all_nan, 0, flat), 0) == np.nanmin(np.where(all_nan, 0, flat), 0))
    dead = np.where(all_nan | constant)[0]
    if len(dead) == cube.shape[-1]:
        raise ValueError(f"{path}: every band is NaN or constant")
    if len(dead):
        log.warning("%s: dropping %d all-NaN or constant band(s) %s", path, len(dead), dead.tolist())
        cube = np.delete(cube, dead, axis=-1)
    return cube, tuple(int(b) for b in dead)


def resample_bands(cube: np.ndarray, bands: int) -> np.ndarray:
    """Resample `cube: (..., B)` to `bands` spectral channels.

    With `B >= bands`, the band axis is cut into `bands` contiguous groups of (nearly) equal size
    (edges at `round(k * B / bands)`) and each group is averaged: the paper's 150 -> 30 averages
    five adjacent bands. With `B < bands`, the spectrum is linearly interpolated at the group
    centres (logged). A flat spectrum stays flat either way.
    """
    n = cube.shape[-1]
    if bands < 1:
        raise ValueError(f"resample_bands: bands must be >= 1; got {bands}")
    if n == bands:
        return cube.astype(np.float32, copy=False)
    if n > bands:
        edges = np.round(np.linspace(0, n, bands + 1)).astype(int)
        sums = np.add.reduceat(cube.astype(np.float64), edges[:-1], axis=-1)
        return (sums / np.diff(edges)).astype(np.float32)
    log.warning("resample_bands: interpolating %d bands up to %d", n, bands)
    centres = (np.arange(bands) + 0.5) * n / bands - 0.5
    flat = cube.reshape(-1, n).astype(np.float64)
    out = np.stack([np.interp(centres, np.arange(n), row) for row in flat])
    return out.reshape(*cube.shape[:-1], bands).astype(np.float32)


def normalize_scene(cube: np.ndarray, low: float = NORMALIZE_PERCENTILES[0], high: float = NORMALIZE_PERCENTILES[1]) -> np.ndarray:
    """One affine map per scene: `(x - q_low) / (q_high - q_low)` with percentiles over all pixels and bands."""
    lo, hi = np.percentile(cube, [low, high])
    if hi <= lo:
        raise ValueError(f"normalize_scene: the scene is constant between its {low} and {high} percentiles ({lo})")
    return ((cube - lo) / (hi - lo)).astype(np.float32)


def resample_scene(scene: HSIScene, bands: int, wavelength_range: tuple[float, float] | None = WAVELENGTH_RANGE) -> np.ndarray:
    """`scene.cube` with `bands` channels: onto the wavelength grid over `wavelength_range` when the
    scene's band centres are known and a range is given, else by adjacent-band means (logged when
    a range was asked for)."""
    if wavelength_range is not None and scene.wavelengths is not None:
        return resample_to_grid(scene.cube, scene.wavelengths, bands, wavelength_range)
    if wavelength_range is not None:
        log.warning("%s: no band wavelengths (a .mat 'wavelength' vector or an ENVI header's 'wavelength'); "
                    "resampled by band index", scene.path)
    return resample_bands(scene.cube, bands)


def prepare_scene(scene: HSIScene, bands: int, wavelength_range: tuple[float, float] | None = WAVELENGTH_RANGE) -> np.ndarray:
    """The cube a model sees: resampled to `bands` (`resample_scene`) and normalized per scene, `(H, W, bands)` float32."""
    return normalize_scene(resample_scene(scene, bands, wavelength_range))
