"""The references HT Demucs is compared with: Hybrid Demucs (torchaudio), the mixture floor, the IRM ceiling.

- `HDemucs`: "Hybrid Spectrogram and Waveform Source Separation" (Défossez, MDX workshop 2021), the
  model HT Demucs grows from, as torchaudio implements it (`torchaudio.models.HDemucs`): the same
  two U-Nets, merged into one shared layer at the bottom instead of a cross-domain Transformer.
- `MixtureCopy`: every source estimated as the mixture itself, the floor any separator must beat.
- `IdealRatioMask`: the oracle that masks the mixture's STFT with the true sources' magnitude
  ratios (`|S_j|^alpha / sum_k |S_k|^alpha`; alpha 2 is the Wiener-like "IRM2" of SiSEC 2018,
  Stöter et al.), the ceiling of mask-based separation. It reads the reference sources, so the task
  passes them (`uses_references`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torchaudio
from torch import Tensor, nn

from audio.data.musdb import SOURCES


class HDemucs(torchaudio.models.HDemucs):
    """Hybrid Demucs (torchaudio): `mix (batch, audio_channels, length) -> (batch, sources, audio_channels, length)`.

    Args:
        sources: names of the sources, in output order.
        audio_channels: channels of the input and of each source.
        hidden_channels: hidden channels of the first layer (48 in the paper; torchaudio's `channels`,
            renamed because the suite's CLI links a `channels` argument to the data's).
        growth: channel multiplier per layer (2).
        nfft: STFT size of the spectrogram branch (4096); the hop is `nfft // 4`.
        depth: encoder/decoder layers (6 in the paper; the branches merge where the spectrogram
            has `kernel_size` bins left, which must happen by the last layer).
        freq_emb: weight of the frequency embedding after the first spectrogram layer (0.2).
        kernel_size: kernel of the strided convolutions (8).
        stride: their stride (4).
        time_stride: stride of the time layers after the merge (2).
        dconv_depth: layers of the dilated residual branch (2).
        dconv_comp: its channel compression (4).
        sample_rate: the audio rate the model is trained at (metadata for `audio.separate`).
        segment: training segment in seconds (the chunk `audio.separate` cuts a long track into).
    """

    role: ClassVar[str] = "baseline"

    def __init__(self, sources: Sequence[str] = SOURCES, audio_channels: int = 2, hidden_channels: int = 48, growth: int = 2,
                 nfft: int = 4096, depth: int = 6, freq_emb: float = 0.2, kernel_size: int = 8, stride: int = 4,
                 time_stride: int = 2, dconv_depth: int = 2, dconv_comp: int = 4, sample_rate: int = 44100,
                 segment: float = 10.0) -> None:
        super().__init__(list(sources), audio_channels=audio_channels, channels=hidden_channels, growth=growth, nfft=nfft,
                         depth=depth, freq_emb=freq_emb, kernel_size=kernel_size, stride=stride,
                         time_stride=time_stride, dconv_depth=dconv_depth, dconv_comp=dconv_comp)
        self.sample_rate, self.segment = sample_rate, segment


class MixtureCopy(nn.Module):
    """The floor: each of the `sources` estimated as the mixture, `(batch, channels, length) -> (batch, sources, channels, length)`.

    Args:
        sources: source names (their number is the output's source axis).
        sample_rate: the rate it is evaluated at (metadata, as for the trained models).
        segment: chunk length in seconds when `audio.separate` runs it.
    """

    role: ClassVar[str] = "baseline"

    def __init__(self, sources: Sequence[str] = SOURCES, sample_rate: int = 44100, segment: float = 10.0) -> None:
        super().__init__()
        self.sources, self.sample_rate, self.segment = list(sources), sample_rate, segment

    def forward(self, mix: Tensor) -> Tensor:
        return mix[:, None].expand(-1, len(self.sources), -1, -1).clone()


class IdealRatioMask(nn.Module):
    """The oracle: the mixture's STFT masked by the true sources' ratios, `(mix, sources) -> estimates`.

    Args:
        sources: source names.
        nfft: STFT size (Hann window, hop `nfft // 4`); 4096 at 44.1 kHz as museval's oracles.
        alpha: exponent of the magnitudes in the ratio (1: magnitude ratio "IRM1", 2: power ratio "IRM2").
        sample_rate: the rate it is evaluated at (metadata).
        segment: chunk length in seconds when run in chunks.
    """

    role: ClassVar[str] = "baseline"
    uses_references: ClassVar[bool] = True

    def __init__(self, sources: Sequence[str] = SOURCES, nfft: int = 4096, alpha: float = 2.0,
                 sample_rate: int = 44100, segment: float = 10.0) -> None:
        super().__init__()
        self.sources, self.nfft, self.alpha = list(sources), nfft, alpha
        self.sample_rate, self.segment = sample_rate, segment
        self.register_buffer("window", torch.hann_window(nfft), persistent=False)

    def forward(self, mix: Tensor, references: Tensor) -> Tensor:
        """`mix: (batch, channels, length)`, `references: (batch, sources, channels, length)` -> like `references`."""
        length = mix.shape[-1]
        stft = lambda x: torch.stft(x.reshape(-1, length), self.nfft, self.nfft // 4, window=self.window,  # noqa: E731
                                    return_complex=True)
        power = stft(references).abs().pow(self.alpha).view(*references.shape[:3], -1, stft(mix[:1, :1]).shape[-1])
        mask = power / power.sum(dim=1, keepdim=True).clamp_min(1e-12)
        spec = stft(mix).view(*mix.shape[:2], *mask.shape[-2:])
        masked = (mask * spec[:, None]).flatten(0, 2)
        out = torch.istft(masked, self.nfft, self.nfft // 4, window=self.window, length=length)
        return out.view_as(references)
