"""Audio decoding for every reader of the package: soundfile decodes, torchaudio resamples.

soundfile (libsndfile) reads WAV, FLAC, OGG/Vorbis and, from libsndfile 1.1, MP3. A file it cannot
decode, or one without samples, raises `AudioReadError` naming the file; the datasets catch it,
warn, skip the file and count it (`skipped_files`, logged to MLflow by the task).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class AudioReadError(ValueError):
    """An audio file that cannot be used: unreadable, or empty."""


def load_audio(path: Path | str, sample_rate: int) -> torch.Tensor:
    """Decode `path` to mono float32 at `sample_rate`: `(samples,)`.

    Channels are averaged; a file at another rate is resampled with torchaudio's band-limited
    sinc interpolation (`torchaudio.functional.resample`).
    """
    path = Path(path)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioReadError(f"{path}: cannot decode audio ({err})") from err
    if samples.size == 0:
        raise AudioReadError(f"{path}: the file holds no samples")
    if not np.isfinite(samples).all():
        raise AudioReadError(f"{path}: the samples hold NaN or infinite values")
    mono = torch.from_numpy(samples.mean(axis=1))
    if rate != sample_rate:
        mono = AF.resample(mono, rate, sample_rate)
    return mono.contiguous()
