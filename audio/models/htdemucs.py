"""HT Demucs: "Hybrid Transformers for Music Source Separation" (Rouard, Massa, Défossez, ICASSP 2023).

Hybrid Demucs (Défossez 2021) runs two U-Nets side by side, one on the waveform and one on the
spectrogram (the STFT with real and imaginary parts as channels, "complex as channels"), and sums
their outputs. HT Demucs keeps both encoders and decoders and replaces the innermost layers with a
cross-domain Transformer (`audio.models.htdemucs_blocks.CrossDomainTransformer`) that lets every
waveform step attend to every time-frequency cell and back.

The encoder and decoder layers (strided convolution, GELU, the dilated residual `DConv` branch,
1x1 "rewrite" with GLU; transposed convolution in the decoder) are torchaudio's Hybrid Demucs
layers, imported rather than rewritten, so `HTDemucs` and the `HDemucs` baseline share the exact
same convolutional blocks and the official weights map onto them name for name
(`audio.models.htdemucs_official`). The defaults are the paper's configuration (`htdemucs` of the
official code: depth 4, 48 channels, growth 2, nfft 4096, 5 transformer layers, 8 heads; 26.9M
parameters at 44.1 kHz); `audio/configs/htdemucs_rendered.yaml` is a small CPU configuration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchaudio.models._hdemucs import (
    _HDecLayer,
    _HEncLayer,
    _ispectro,
    _rescale_module,
    _ScaledEmbedding,
    _spectro,
)

from audio.data.musdb import SOURCES
from audio.models.htdemucs_blocks import CrossDomainTransformer
from core.attention.functional import Kernel


class HybridSpectrogram(nn.Module):
    """The spectrogram branch's STFT and its inverse, with Demucs' padding: `frames = ceil(length / hop)`.

    The signal is reflect-padded by 3/2 hop on each side (and up to a multiple of the hop), the
    STFT (Hann window of `nfft`, hop `nfft // 4`, normalized) drops its Nyquist bin and two frames
    at each end, so frame `i` is centred on sample `i * hop + hop / 2` and the time and frequency
    branches stay aligned through the strided layers. `inverse` undoes it: the round trip reproduces
    a signal without energy near Nyquist up to float error, except within `nfft` samples of either
    end, where the dropped frames attenuate it (Demucs' choice; the waveform branch covers the edges).

    Args:
        nfft: FFT size; `nfft // 2` frequency bins are kept.
    """

    def __init__(self, nfft: int = 4096) -> None:
        super().__init__()
        self.nfft, self.hop = nfft, nfft // 4

    def forward(self, x: Tensor) -> Tensor:
        """`x: (..., length)` -> complex `(..., nfft // 2, ceil(length / hop))`."""
        hop, length = self.hop, x.shape[-1]
        frames = int(math.ceil(length / hop))
        pad = hop // 2 * 3
        right = pad + frames * hop - length
        if length <= max(pad, right):  # reflect padding needs a longer signal: zeros first, as Demucs does
            x = F.pad(x, (0, max(pad, right) - length + 1))
        x = F.pad(x, (pad, right), mode="reflect")
        z = _spectro(x, self.nfft, hop)[..., :-1, :]
        return z[..., 2:2 + frames]

    def inverse(self, z: Tensor, length: int) -> Tensor:
        """complex `(..., nfft // 2, frames)` -> `(..., length)`."""
        hop = self.hop
        z = F.pad(z, (2, 2, 0, 1))
        pad = hop // 2 * 3
        padded = hop * int(math.ceil(length / hop)) + 2 * pad
        return _ispectro(z, hop, length=padded)[..., pad:pad + length]


class HTDemucs(nn.Module):
    """Hybrid Transformer Demucs: `mix (batch, audio_channels, length) -> (batch, sources, audio_channels, length)`.

    Args:
        sources: names of the separated sources, in output order (MUSDB's drums, bass, other, vocals).
        audio_channels: channels of the input and of each source (2: stereo).
        hidden_channels: hidden channels of the first encoder layer of both branches (48; `channels` in
            the official code, renamed because the suite's CLI links a `channels` argument to the data's).
        growth: channel multiplier per layer (2): the bottleneck has `hidden_channels * growth ** (depth - 1)`.
        nfft: STFT size of the spectrogram branch (4096 at 44.1 kHz); the hop is `nfft // 4`. Each
            spectrogram layer divides the `nfft // 2` bins by `stride`; the last must keep at least `kernel_size`.
        depth: encoder (and decoder) layers of each branch (4).
        kernel_size: kernel of the strided convolutions (8).
        stride: their stride (4), over frequency in the spectrogram branch and time in the waveform branch.
        context: context of the decoder's 1x1 rewrite convolution (1: a 3-tap kernel).
        context_enc: context of the encoder's rewrite convolution (0).
        dconv_depth: layers of the dilated residual branch in each encoder layer (2).
        dconv_comp: channel compression inside that branch (8).
        dconv_init: initial LayerScale of that branch (1e-3).
        freq_emb: weight of the learned frequency embedding added after the first spectrogram
            layer (0.2; 0 disables it), which lets convolutions over frequency depend on the band.
        emb_scale: learning-rate boost of that embedding (10).
        emb_smooth: initialize it smooth over frequency (cumulative sum).
        bottom_channels: if > 0, 1x1 convolutions map the bottleneck to this many channels
            before the transformer and back after it (0 in the paper's default).
        t_layers: transformer layers per branch (5), alternating self- and cross-attention.
        t_heads: attention heads (8).
        t_hidden_scale: FFN width over model width (4).
        t_dropout: transformer dropout (0).
        t_cross_first: begin with a cross-attention layer (False).
        t_layer_scale: LayerScale on the transformer's residual branches (True).
        t_norm_in: LayerNorm before the positional embeddings (True).
        t_norm_out: GroupNorm over all tokens at the end of each layer (True).
        t_max_period: longest period of the sinusoidal embeddings (10000).
        t_weight_pos_embed: weight of the positional embeddings (1).
        rescale: rescale the initial convolution weights of both U-Nets towards a standard
            deviation of 0.1 (Demucs' initialization trick).
        sample_rate: the audio rate the model is trained at (metadata for `audio.separate`).
        segment: training segment length in seconds (7.8 for the released weights): the chunk
            `audio.separate` cuts a long track into.
        kernel: attention kernel of `core.attention` for every attention of the transformer.
    """

    role: ClassVar[str] = "model"

    def __init__(
        self,
        sources: Sequence[str] = SOURCES,
        audio_channels: int = 2,
        hidden_channels: int = 48,
        growth: int = 2,
        nfft: int = 4096,
        depth: int = 4,
        kernel_size: int = 8,
        stride: int = 4,
        context: int = 1,
        context_enc: int = 0,
        dconv_depth: int = 2,
        dconv_comp: int = 8,
        dconv_init: float = 1e-3,
        freq_emb: float = 0.2,
        emb_scale: float = 10.0,
        emb_smooth: bool = True,
        bottom_channels: int = 0,
        t_layers: int = 5,
        t_heads: int = 8,
        t_hidden_scale: float = 4.0,
        t_dropout: float = 0.0,
        t_cross_first: bool = False,
        t_layer_scale: bool = True,
        t_norm_in: bool = True,
        t_norm_out: bool = True,
        t_max_period: float = 10000.0,
        t_weight_pos_embed: float = 1.0,
        rescale: bool = True,
        sample_rate: int = 44100,
        segment: float = 7.8,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        freqs = nfft // 2
        if freqs // stride ** (depth - 1) < kernel_size:
            raise ValueError(
                f"HTDemucs: nfft {nfft} leaves {freqs // stride ** (depth - 1)} bins at layer {depth} "
                f"(< kernel_size {kernel_size}); use a larger nfft or a smaller depth"
            )
        self.sources, self.audio_channels = list(sources), audio_channels
        self.sample_rate, self.segment, self.kernel = sample_rate, segment, kernel
        self.depth = depth
        self.spectrogram = HybridSpectrogram(nfft)
        dconv = {"depth": dconv_depth, "compress": dconv_comp, "init": dconv_init}
        common = {"kernel_size": kernel_size, "stride": stride, "norm_type": "none", "dconv_kw": dconv}
        self.encoder, self.decoder = nn.ModuleList(), nn.ModuleList()  # spectrogram branch
        self.tencoder, self.tdecoder = nn.ModuleList(), nn.ModuleList()  # waveform branch
        chin, chin_z = audio_channels, 2 * audio_channels
        chout = hidden_channels
        self.freq_emb, self.freq_emb_scale = None, freq_emb
        for index in range(depth):
            self.encoder.append(_HEncLayer(chin_z, chout, freq=True, context=context_enc, **common))
            self.tencoder.append(_HEncLayer(chin, chout, freq=False, context=context_enc, **common))
            if index == 0:
                chin = audio_channels * len(self.sources)
                chin_z = 2 * chin
            self.decoder.insert(0, _HDecLayer(chout, chin_z, last=index == 0, freq=True, context=context, **common))
            self.tdecoder.insert(0, _HDecLayer(chout, chin, last=index == 0, freq=False, context=context, **common))
            chin = chin_z = chout
            chout = int(growth * chout)
            freqs //= stride
            if index == 0 and freq_emb:
                self.freq_emb = _ScaledEmbedding(freqs, chin_z, smooth=emb_smooth, scale=emb_scale)
        if rescale:
            for branch in (self.encoder, self.decoder, self.tencoder, self.tdecoder):
                _rescale_module(branch)
        bottleneck = hidden_channels * growth ** (depth - 1)
        width = bottom_channels or bottleneck
        if bottom_channels:
            self.channel_upsampler = nn.Conv1d(bottleneck, bottom_channels, 1)
            self.channel_downsampler = nn.Conv1d(bottom_channels, bottleneck, 1)
            self.channel_upsampler_t = nn.Conv1d(bottleneck, bottom_channels, 1)
            self.channel_downsampler_t = nn.Conv1d(bottom_channels, bottleneck, 1)
        self.bottom_channels = bottom_channels
        self.crosstransformer = CrossDomainTransformer(
            width, num_layers=t_layers, num_heads=t_heads, hidden_scale=t_hidden_scale, dropout=t_dropout,
            cross_first=t_cross_first, norm_in=t_norm_in, norm_out=t_norm_out, layer_scale=t_layer_scale,
            max_period=t_max_period, weight_pos_embed=t_weight_pos_embed, kernel=kernel,
        ) if t_layers > 0 else None

    def forward(self, mix: Tensor) -> Tensor:
        """`mix: (batch, audio_channels, length)` -> `(batch, sources, audio_channels, length)`."""
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise ValueError(f"HTDemucs expects (batch, {self.audio_channels}, length); got {tuple(mix.shape)}")
        length = mix.shape[-1]
        z = self.spectrogram(mix)
        batch, _, freqs, frames = z.shape
        x = torch.view_as_real(z).permute(0, 1, 4, 2, 3).reshape(batch, -1, freqs, frames)  # complex as channels
        mean, std = x.mean(dim=(1, 2, 3), keepdim=True), x.std(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) / (1e-5 + std)
        meant, stdt = mix.mean(dim=(1, 2), keepdim=True), mix.std(dim=(1, 2), keepdim=True)
        xt = (mix - meant) / (1e-5 + stdt)

        skips, skips_t, lengths, lengths_t = [], [], [], []
        for index, (encode, tencode) in enumerate(zip(self.encoder, self.tencoder, strict=True)):
            lengths.append(x.shape[-1])
            lengths_t.append(xt.shape[-1])
            xt = tencode(xt)
            x = encode(x)
            if index == 0 and self.freq_emb is not None:
                emb = self.freq_emb(torch.arange(x.shape[-2], device=x.device)).t()[None, :, :, None]
                x = x + self.freq_emb_scale * emb
            skips.append(x)
            skips_t.append(xt)

        if self.crosstransformer is not None:
            if self.bottom_channels:
                f = x.shape[2]
                x = self.channel_upsampler(x.flatten(2)).unflatten(2, (f, -1))
                xt = self.channel_upsampler_t(xt)
            x, xt = self.crosstransformer(x, xt)
            if self.bottom_channels:
                x = self.channel_downsampler(x.flatten(2)).unflatten(2, (f, -1))
                xt = self.channel_downsampler_t(xt)

        for decode, tdecode in zip(self.decoder, self.tdecoder, strict=True):
            x, _ = decode(x, skips.pop(), lengths.pop())
            xt, _ = tdecode(xt, skips_t.pop(), lengths_t.pop())

        sources = len(self.sources)
        x = x.view(batch, sources, -1, freqs, frames) * std[:, None] + mean[:, None]
        x = x.view(batch, sources, -1, 2, freqs, frames).permute(0, 1, 2, 4, 5, 3)
        spec_out = self.spectrogram.inverse(torch.view_as_complex(x.contiguous()), length)
        wave_out = xt.view(batch, sources, -1, length) * stdt[:, None] + meant[:, None]
        return wave_out + spec_out
