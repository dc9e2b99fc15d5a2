"""The MUSDB18-HQ layout: `root/{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav`.

MUSDB18-HQ (Rafii et al. 2019) ships each track as five uncompressed 44.1 kHz stereo WAVs. The
literature's validation set is 14 named tracks of `train/` (musdb's `validation_tracks`, the list
every Demucs and Open-Unmix paper uses); they are read from the musdb package's own configuration.
A folder of track folders without `train/` and `test/` (e.g. one excerpt) is read as a test split.

Bad input is reported per track: a track missing a stem is skipped with a warning naming it and
the missing files (counted in `MUSDBLayout.skipped`); stems whose sample rates or lengths differ
raise `ValueError` naming the track and what was found when the track is read. Mono stems are
duplicated to stereo.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
import yaml

from audio.data.io import AUDIO_SUFFIXES

# the four sources of MUSDB18, in the output order of Demucs and of every model here
SOURCES: tuple[str, ...] = ("drums", "bass", "other", "vocals")


def validation_tracks() -> tuple[str, ...]:
    """The 14 validation track names of MUSDB18 (from the musdb package's `mus.yaml`)."""
    # the config file only: importing `musdb` itself pulls in stempeg, which needs ffmpeg
    spec = importlib.util.find_spec("musdb")
    if spec is None or spec.origin is None:
        raise ValueError("the musdb package (a dependency of museval) is not installed; pass `validation` names")
    path = Path(spec.origin).parent / "configs" / "mus.yaml"
    return tuple(yaml.safe_load(path.read_text())["validation_tracks"])


@dataclass
class Track:
    """One multitrack: its name, folder and the file of the mixture and of each source."""

    name: str
    folder: Path
    mixture: Path
    stems: dict[str, Path]

    def info(self) -> tuple[int, int]:
        """`(sample_rate, frames)` of the track; ValueError naming the track when its files disagree."""
        found = {}
        for label, path in {"mixture": self.mixture, **self.stems}.items():
            try:
                meta = sf.info(str(path))
            except (sf.LibsndfileError, RuntimeError) as err:
                raise ValueError(f"{self.folder}: cannot read {path.name} ({err})") from err
            found[label] = (meta.samplerate, meta.frames, meta.channels)
        rates = {v[0] for v in found.values()}
        if len(rates) > 1:
            raise ValueError(f"{self.folder}: stems have different sample rates: "
                             + ", ".join(f"{k} {v[0]} Hz" for k, v in found.items()))
        lengths = {v[1] for v in found.values()}
        if len(lengths) > 1:
            raise ValueError(f"{self.folder}: stems have different lengths: "
                             + ", ".join(f"{k} {v[1]} frames" for k, v in found.items()))
        channels = {v[2] for v in found.values()}
        if not channels <= {1, 2}:
            raise ValueError(f"{self.folder}: stems must be mono or stereo; found channels {sorted(channels)}")
        return rates.pop(), lengths.pop()

    def read(self, sample_rate: int, start: int = 0, frames: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
        """`(mixture (2, samples), sources (4, 2, samples))` float32 at `sample_rate` (resampled if needed).

        `start`, `frames`: the excerpt to read, in samples of the file's own rate (-1: to the end).
        """
        rate, _ = self.info()
        mixture = _read(self.mixture, start, frames)
        sources = torch.stack([_read(self.stems[s], start, frames) for s in SOURCES])
        if rate != sample_rate:
            mixture, sources = AF.resample(mixture, rate, sample_rate), AF.resample(sources, rate, sample_rate)
        return mixture, sources


def _read(path: Path, start: int, frames: int) -> torch.Tensor:
    samples, _ = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    if not np.isfinite(samples).all():
        raise ValueError(f"{path}: the samples hold NaN or infinite values")
    if samples.shape[1] == 1:  # mono stems: the same signal on both channels
        samples = np.repeat(samples, 2, axis=1)
    return torch.from_numpy(samples.T.copy())


@dataclass
class MUSDBLayout:
    """The tracks of a MUSDB18-HQ-layout folder per split (`train`, `valid`, `test`), and those skipped."""

    root: Path
    splits: dict[str, list[Track]]
    skipped: list[str] = field(default_factory=list)


def find_track(folder: Path) -> tuple[Track | None, list[str]]:
    """The track in `folder` (any audio suffix of `audio.data.io`), or None and the stems it lacks."""
    def find(stem: str) -> Path | None:
        return next((folder / f"{stem}{suffix}" for suffix in AUDIO_SUFFIXES if (folder / f"{stem}{suffix}").exists()), None)

    files = {name: find(name) for name in ("mixture", *SOURCES)}
    missing = [name for name, path in files.items() if path is None]
    if missing:
        return None, missing
    return Track(folder.name, folder, files.pop("mixture"), files), []


def read_musdb(root: Path | str, validation: tuple[str, ...] | None = None) -> MUSDBLayout:
    """Index a MUSDB18-HQ-layout folder; `validation` names the training tracks held out (default: MUSDB's 14,
    plus the names listed in `root/validation_tracks.txt` when it exists, as the rendered set writes it)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder (expected a MUSDB18-HQ layout with train/ and test/)")
    if validation is None:
        listed = root / "validation_tracks.txt"
        extra = tuple(listed.read_text().split("\n")) if listed.exists() else ()
        validation = validation_tracks() + tuple(name for name in extra if name)
    layout = MUSDBLayout(root, {"train": [], "valid": [], "test": []})
    folders = {"train": root / "train", "test": root / "test"}
    if not any(f.is_dir() for f in folders.values()):
        folders = {"test": root}  # a plain folder of tracks
    for split, folder in folders.items():
        if not folder.is_dir():
            continue
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            track, missing = find_track(sub)
            if track is None:
                warnings.warn(f"{sub}: skipped, missing {', '.join(missing)}", stacklevel=2)
                layout.skipped.append(sub.name)
                continue
            target = "valid" if split == "train" and track.name in validation else split
            layout.splits[target].append(track)
    if not any(layout.splits.values()):
        raise ValueError(f"{root}: no complete track (mixture + {', '.join(SOURCES)}) found"
                         + (f"; skipped {layout.skipped}" if layout.skipped else ""))
    return layout
