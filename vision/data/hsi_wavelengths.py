"""Band wavelengths: where a cube's bands sit in the spectrum, and resampling onto one wavelength grid.

Two sensors' cubes resampled by band index (`vision.data.hsi.resample_bands`, the paper's adjacent-band
means) put their k-th resampled band at different wavelengths whenever their ranges or removed bands
differ: AVIRIS San Diego keeps 189 of 224 bands over 370-2510 nm, HYDICE urban 162 of 210 over
400-2500 nm, so after 30 index means their middle bands sit about two bands apart. When a scene's
band centres are known, `resample_to_grid` averages its bands into the same wavelength bins for
every sensor instead, so a model trained on one sensor reads another's bands at the same wavelengths.

Where the centres come from:
- a `.mat` cube's `wavelength` (or `wavelengths`) vector, one value per band;
- an ENVI header's `wavelength` list (`wavelength units` micrometers are converted to nm);
- for the two shared scenes, whose files carry none, `KNOWN_SCENES`: the sensor's nominal range
  spaced evenly over its bands, less the bands the scene's providers removed, as the
  anomaly-detection literature lists them (San Diego: AVIRIS, 224 bands over 370-2510 nm, bands
  1-6, 33-35, 97, 107-113, 153-166 and 221-224 removed; HYDICE urban: 210 bands over 400-2500 nm,
  bands 1-4, 76, 87, 101-111, 136-153 and 198-210 removed). The true centres are not exactly even
  (AVIRIS has four spectrometers, HYDICE a varying bandwidth), and that error is not measured
  here; the bins of a 30-band grid are 65 nm wide.
Values above 100 are read as nanometres, smaller ones as micrometres.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# the default grid: the span both shared sensors cover after their removed bands (AVIRIS to 2471 nm,
# HYDICE from 430 nm to 2370 nm)
WAVELENGTH_RANGE: tuple[float, float] = (430.0, 2370.0)


def band_centres(total: int, low: float, high: float, removed: list[tuple[int, int]]) -> np.ndarray:
    """Centres (nm) of a sensor's `total` bands spaced evenly from `low` to `high`, without the
    `removed` 1-based inclusive ranges of band numbers."""
    centres = np.linspace(low, high, total)
    keep = np.ones(total, bool)
    for first, last in removed:
        keep[first - 1:last] = False
    return centres[keep]


KNOWN_SCENES: dict[str, np.ndarray] = {
    "sandiego": band_centres(224, 370.0, 2510.0, [(1, 6), (33, 35), (97, 97), (107, 113), (153, 166), (221, 224)]),
    "hydice": band_centres(210, 400.0, 2500.0, [(1, 4), (76, 76), (87, 87), (101, 111), (136, 153), (198, 210)]),
}


def known_wavelengths(name: str, bands: int) -> np.ndarray | None:
    """The `KNOWN_SCENES` centres of a scene named `name` with `bands` bands, else None."""
    centres = KNOWN_SCENES.get(name)
    return centres.copy() if centres is not None and len(centres) == bands else None


def as_nanometres(values: object, bands: int, path: Path | str) -> np.ndarray:
    """A file's band centres as a float `(bands,)` array in nm (ValueError naming the file when they
    are not one finite, increasing value per band)."""
    centres = np.asarray(values, dtype=np.float64).ravel()
    if centres.size != bands:
        raise ValueError(f"{path}: {centres.size} wavelengths for {bands} bands; give one centre per band (or none)")
    if not np.isfinite(centres).all() or (np.diff(centres) <= 0).any():
        raise ValueError(f"{path}: the wavelengths must be finite and increasing, band by band")
    return centres * 1000.0 if centres.max() <= 100.0 else centres


def resample_to_grid(cube: np.ndarray, wavelengths: np.ndarray, bands: int,
                     wavelength_range: tuple[float, float] = WAVELENGTH_RANGE) -> np.ndarray:
    """Resample `cube: (..., B)` with band centres `wavelengths (B,)` (nm) to `bands` equal
    wavelength bins over `wavelength_range`: each bin is the mean of the bands whose centres fall in
    it; a bin that holds none (a removed water-absorption window) is interpolated linearly at its
    centre from the neighbouring bands. A flat spectrum stays flat; a spectrum linear in wavelength
    gives each bin the value at its bands' mean wavelength, whatever the sensor."""
    wavelengths = np.asarray(wavelengths, np.float64)
    if bands < 1:
        raise ValueError(f"resample_to_grid: bands must be >= 1; got {bands}")
    if wavelengths.shape != cube.shape[-1:]:
        raise ValueError(f"resample_to_grid: {wavelengths.size} wavelengths for a cube of {cube.shape[-1]} bands")
    low, high = wavelength_range
    if wavelengths[0] > low + (high - low) / bands or wavelengths[-1] < high - (high - low) / bands:
        log.warning("resample_to_grid: bands at %.0f-%.0f nm do not cover the grid %.0f-%.0f nm; edge bins repeat the edge bands",
                    wavelengths[0], wavelengths[-1], low, high)
    edges = np.linspace(low, high, bands + 1)
    flat = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
    out = np.empty((flat.shape[0], bands))
    for k in range(bands):
        inside = (wavelengths >= edges[k]) & (wavelengths < edges[k + 1])
        if inside.any():
            out[:, k] = flat[:, inside].mean(axis=1)
        else:
            out[:, k] = _interpolate(flat, wavelengths, (edges[k] + edges[k + 1]) / 2)
    return out.reshape(*cube.shape[:-1], bands).astype(np.float32)


def _interpolate(flat: np.ndarray, wavelengths: np.ndarray, x: float) -> np.ndarray:
    """Each row of `flat (pixels, B)` linearly interpolated at wavelength `x` (the edge band outside the range)."""
    if len(wavelengths) == 1:
        return flat[:, 0]
    j = int(np.clip(np.searchsorted(wavelengths, x), 1, len(wavelengths) - 1))
    t = float(np.clip((x - wavelengths[j - 1]) / (wavelengths[j] - wavelengths[j - 1]), 0.0, 1.0))
    return (1 - t) * flat[:, j - 1] + t * flat[:, j]
