"""The log-mel front end shared by the tagger and the CNN baselines (Won et al.'s settings).

torchaudio's `MelSpectrogram` (power 2, Hann window, hop n_fft // 2 unless given, HTK mel scale
without normalization, torchaudio's defaults) followed by `AmplitudeToDB` (10 log10, floor at
1e-10, so digital silence is -100 dB; no top_db clipping), as in the authors'
sota-music-tagging-models: 16 kHz, n_fft 512, 128 mel bands from 0 to 8 kHz. The DataModule runs it
once per clip and caches the result; the networks take its output.
"""

from __future__ import annotations

import warnings

import torch
import torchaudio
from torch import Tensor, nn

SILENCE_DB = -100.0  # AmplitudeToDB of zero power: what padding a clip with silence would give


class LogMel(nn.Module):
    """Waveform -> log-mel spectrogram in dB.

    Args:
        sample_rate: sampling rate of the input (Hz).
        n_fft: FFT size (and window length).
        hop_length: hop between frames; default `n_fft // 2` (torchaudio's and the authors').
        n_mels: mel bands.
        f_min: lowest band edge (Hz).
        f_max: highest band edge (Hz); default `sample_rate / 2`.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop_length: int | None = None, n_mels: int = 128,
                 f_min: float = 0.0, f_max: float | None = 8000.0) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.n_mels = sample_rate, n_fft, n_mels
        self.hop_length = hop_length or n_fft // 2
        with warnings.catch_warnings():
            # 128 bands over 257 FFT bins leave the lowest bands without a bin, as in the authors' setup
            warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
            self.spec = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=n_fft, hop_length=self.hop_length, f_min=f_min, f_max=f_max,
                n_mels=n_mels,
            )
        self.to_db = torchaudio.transforms.AmplitudeToDB()

    def forward(self, waveform: Tensor) -> Tensor:
        """`waveform: (..., samples)` -> `(..., n_mels, 1 + samples // hop_length)` dB."""
        return self.to_db(self.spec(waveform))

    def frames(self, samples: int) -> int:
        """Frames of the spectrogram of `samples` samples (centered STFT)."""
        return 1 + samples // self.hop_length

    def samples_for(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate))


def spec_batchnorm() -> nn.BatchNorm2d:
    """The one-channel BatchNorm every network of the authors applies to the log-mel input first."""
    return nn.BatchNorm2d(1)


def check_mel(mel: Tensor, who: str) -> Tensor:
    """`mel: (batch, n_mels, frames)` -> `(batch, 1, n_mels, frames)`, or a ValueError naming the shape."""
    if mel.dim() != 3:
        raise ValueError(f"{who} expects a log-mel batch (batch, n_mels, frames); got {tuple(mel.shape)}")
    return mel.unsqueeze(1).to(torch.float32)
