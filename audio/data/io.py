"""Audio decoding for every reader of the package: soundfile decodes, torchaudio resamples.

soundfile (libsndfile) reads WAV, FLAC, OGG/Vorbis and, from libsndfile 1.1, MP3. A file it cannot
decode, or one without samples, raises `AudioReadError` naming the file; the datasets catch it,
warn, skip the file and count it (`skipped_files`, logged to MLflow by the task).

For predicting (`attn predict --predict_path`), a `.npy` file is raw samples, `(samples,)` or
`(channels, samples)`, already at the model's sample rate: what a served model writes for the raw
array it receives (`TaggingTask.serving_input`, `SeparationTask.serving_input`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
ARRAY_SUFFIX = ".npy"  # raw samples at the model's rate (module docstring)
PREDICT_SUFFIXES = (*AUDIO_SUFFIXES, ARRAY_SUFFIX)
FORMATS_HINT = "give wav, flac, ogg or mp3 audio, or a .npy array of samples (channels, samples) at the model's rate"


class AudioReadError(ValueError):
    """An audio file that cannot be used: unreadable, or empty."""


def read_samples(path: Path | str) -> tuple[np.ndarray, int | None]:
    """`(samples (length, channels) float32, rate)` of an audio file, checked (not empty, finite).

    A `.npy` array is raw samples `(samples,)` or `(channels, samples)` at the model's rate, for
    which the rate returned is None.
    """
    path = Path(path)
    if path.suffix.lower() == ARRAY_SUFFIX:
        samples, rate = np.asarray(_array_shape_checked(path, _load_array(path)), dtype=np.float32).T, None
    else:
        try:
            samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            raise AudioReadError(f"{path}: cannot decode audio ({err})") from err
    if samples.size == 0:
        raise AudioReadError(f"{path}: the file holds no samples")
    if not np.isfinite(samples).all():
        raise AudioReadError(f"{path}: the samples hold NaN or infinite values")
    return samples, rate


def load_audio(path: Path | str, sample_rate: int) -> torch.Tensor:
    """Decode `path` to mono float32 at `sample_rate`: `(samples,)`.

    Channels are averaged; a file at another rate is resampled with torchaudio's band-limited
    sinc interpolation (`torchaudio.functional.resample`). A `.npy` array is taken to be at `sample_rate`.
    """
    samples, rate = read_samples(path)
    mono = torch.from_numpy(samples.mean(axis=1))
    if rate is not None and rate != sample_rate:
        mono = AF.resample(mono, rate, sample_rate)
    return mono.contiguous()


def load_song(path: Path | str) -> tuple[torch.Tensor, int | None]:
    """Decode `path` to `(audio (channels, length) float32, rate)` for separation: mono or stereo only.

    The rate is None for a `.npy` array (at the model's rate).
    """
    samples, rate = read_samples(path)
    if samples.shape[1] > 2:
        raise AudioReadError(f"{Path(path)}: expected mono or stereo audio; found {samples.shape[1]} channels")
    return torch.from_numpy(samples.T.copy()), rate


def probe(path: Path | str, max_channels: int | None = None) -> None:
    """Check that `path` can be read without decoding it (the header, or a `.npy` array's shape and dtype),
    and that it has at most `max_channels` channels (None: any)."""
    path = Path(path)
    if path.suffix.lower() == ARRAY_SUFFIX:
        channels = _array_shape_checked(path, _load_array(path, mmap=True)).shape[0]
    else:
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            raise AudioReadError(f"{path}: cannot decode audio ({err})") from err
        if info.frames == 0:
            raise AudioReadError(f"{path}: the file holds no samples")
        channels = info.channels
    if max_channels is not None and channels > max_channels:
        raise AudioReadError(f"{path}: expected mono or stereo audio; found {channels} channels")


def predict_inputs(path: Path | str, max_channels: int | None = None) -> tuple[Path, list[Path], list[str]]:
    """The user's input for predicting: `(root, readable files, one message per unreadable file)`.

    `path` is one file, or a folder searched recursively for files with `PREDICT_SUFFIXES` (others,
    e.g. cover images, are ignored); files are sorted by path. Each is probed (`probe`), so a file
    that is no audio (or has more than `max_channels` channels) is reported before any model runs.
    A FileNotFoundError / ValueError naming
    `path` and the fix when nothing can be read.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in PREDICT_SUFFIXES)
        if not files:
            raise ValueError(f"{root}: no audio file in this folder; {FORMATS_HINT}")
    else:
        files = [root]
    readable, errors = [], []
    for file in files:
        try:
            probe(file, max_channels)
        except AudioReadError as err:
            errors.append(str(err))
            continue
        readable.append(file)
    if not readable:
        if len(files) == 1:
            raise ValueError(f"{errors[0]}; {FORMATS_HINT}")
        raise ValueError(f"{root}: none of its {len(files)} audio files can be read (first: {errors[0]}); {FORMATS_HINT}")
    return root, readable, errors


def decoded_predictions(predictions: list[dict], datamodule: object) -> list[dict]:
    """The per-file predict outputs that decoded; the others (`{"error": ...}`) are named on stderr and
    added to `datamodule.predict_skipped`. None decoded: a ValueError naming the input."""
    done, failed = [p for p in predictions if "error" not in p], [p["error"] for p in predictions if "error" in p]
    if not done:
        raise ValueError(failed[0] if len(failed) == 1 else f"{datamodule.predict_path}: none of its {len(failed)} "
                         f"files could be decoded (first: {failed[0]})")
    for error in failed:
        print(f"skipped {error}", file=sys.stderr)
    datamodule.predict_skipped = int(getattr(datamodule, "predict_skipped", 0)) + len(failed)
    return done


def save_served_samples(model_input: object, folder: Path | str, name: str, what: str) -> Path:
    """A served model's raw samples, `(samples,)` or `(channels, samples)` at the model's rate, saved as the
    `.npy` array `predict_path` reads (`folder/name.npy`); `what` names the input in the error."""
    array = np.asarray(model_input, dtype=np.float32)
    if array.ndim not in (1, 2):
        raise ValueError(f"audio {what} serves samples (samples,) or (channels, samples) at the model's sample rate; "
                         f"got an array of shape {array.shape}")
    path = Path(folder) / f"{name}.npy"
    np.save(path, array)
    return path


def input_name(file: Path, root: Path) -> str:
    """How a predicted file is named in the outputs: its path relative to the folder given, or its name."""
    return file.relative_to(root).as_posix() if root.is_dir() else file.name


def _load_array(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise AudioReadError(f"{path}: not a readable .npy array ({err})") from err


def _array_shape_checked(path: Path, array: np.ndarray) -> np.ndarray:
    """`array` as `(channels, samples)` (a view), or an AudioReadError naming the shape or dtype."""
    if not np.issubdtype(array.dtype, np.floating):
        raise AudioReadError(f"{path}: expected float samples (e.g. float32 in [-1, 1]); found dtype {array.dtype}")
    if array.ndim not in (1, 2):
        raise AudioReadError(f"{path}: expected samples (samples,) or (channels, samples); found shape {array.shape}")
    if array.size == 0:
        raise AudioReadError(f"{path}: the file holds no samples")
    array = array.reshape(1, -1) if array.ndim == 1 else array
    if array.shape[0] > array.shape[1]:
        raise AudioReadError(f"{path}: expected (channels, samples); found shape {array.shape} (more channels than "
                             "samples: transpose it)")
    return array
