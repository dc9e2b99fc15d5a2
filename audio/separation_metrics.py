"""Source-separation metrics: the MDX challenge's SDR, scale-invariant SDR, and museval's BSS Eval v4 SDR.

- `sdr` (what Demucs and the Music Demixing challenge report as SDR or "nSDR"): per track and
  source, `10 log10((sum s^2 + eps) / (sum (s - s_hat)^2 + eps))` over all channels and samples,
  `eps = 1e-7` (Mitsufuji et al. 2021, "Music Demixing Challenge 2021"). A silent reference and a
  silent estimate give 0 dB, never NaN.
- `si_sdr` (Le Roux et al. 2019, "SDR - half-baked or well done?"): the estimate is projected on the
  reference, `s_t = <s_hat, s> / (<s, s> + eps) s`, and `10 log10((|s_t|^2 + eps) / (|s_hat - s_t|^2 + eps))`,
  computed on the channels concatenated.
- `museval_sdr`: BSS Eval v4 image SDR with the museval package (SiSEC 2018 / the MUSDB18
  protocol): SDR of each 1 s frame, the median over the frames of a track (frames where the
  reference is silent are NaN in museval and left out, as `museval.TrackStore` does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

EPS = 1e-7


def sdr(estimate: Tensor, reference: Tensor, eps: float = EPS) -> Tensor:
    """MDX SDR in dB per source: `estimate`, `reference: (..., sources, channels, samples)` -> `(..., sources)`."""
    _check(estimate, reference, "sdr")
    estimate, reference = estimate.double(), reference.double()
    num = reference.square().sum(dim=(-2, -1)) + eps
    den = (reference - estimate).square().sum(dim=(-2, -1)) + eps
    return (10 * torch.log10(num / den)).float()


def si_sdr(estimate: Tensor, reference: Tensor, eps: float = EPS) -> Tensor:
    """Scale-invariant SDR in dB per source, same shapes as `sdr` (channels concatenated)."""
    _check(estimate, reference, "si_sdr")
    estimate, reference = estimate.double().flatten(-2), reference.double().flatten(-2)
    alpha = (estimate * reference).sum(-1, keepdim=True) / (reference.square().sum(-1, keepdim=True) + eps)
    target = alpha * reference
    num = target.square().sum(-1) + eps
    den = (estimate - target).square().sum(-1) + eps
    return (10 * torch.log10(num / den)).float()


def museval_sdr(estimate: Tensor | np.ndarray, reference: Tensor | np.ndarray, sample_rate: int,
                frame_seconds: float = 1.0) -> np.ndarray:
    """BSS Eval v4 SDR per source (median over `frame_seconds` frames) of one track, with museval.

    `estimate`, `reference: (sources, channels, samples)`. A source whose reference is silent gets
    NaN (BSS Eval is undefined there; museval refuses it) and the others are scored without it;
    `nanmean` over tracks then skips it.
    """
    # museval imports musdb, whose stempeg needs ffmpeg on PATH: only the benchmark pays for it
    import museval

    est = np.asarray(estimate, dtype=np.float64).transpose(0, 2, 1)
    ref = np.asarray(reference, dtype=np.float64).transpose(0, 2, 1)
    if est.shape != ref.shape:
        raise ValueError(f"museval_sdr: estimate {est.shape} and reference {ref.shape} differ")
    window = int(round(frame_seconds * sample_rate))
    out = np.full(len(ref), np.nan)
    sounding = [j for j in range(len(ref)) if np.any(ref[j] != 0)]  # museval refuses an all-zero reference
    if not sounding:
        return out
    frames, *_ = museval.evaluate(ref[sounding], est[sounding], win=window, hop=window)
    for j, values in zip(sounding, frames, strict=True):
        finite = values[np.isfinite(values)]  # frames where the reference is silent are NaN
        out[j] = np.median(finite) if finite.size else np.nan
    return out


def source_metrics(estimate: Tensor, reference: Tensor, sources: Sequence[str]) -> dict[str, float]:
    """`sdr` and `si_sdr` of one track, per source (`sdr_drums`, ...) and their mean (`sdr`, `si_sdr`).

    `estimate`, `reference: (sources, channels, samples)`.
    """
    out: dict[str, float] = {}
    for name, values in (("sdr", sdr(estimate, reference)), ("si_sdr", si_sdr(estimate, reference))):
        out[name] = float(values.mean())
        out.update({f"{name}_{source}": float(v) for source, v in zip(sources, values, strict=True)})
    return out


def _check(estimate: Tensor, reference: Tensor, name: str) -> None:
    if estimate.shape != reference.shape or estimate.dim() < 3:
        raise ValueError(f"{name}: estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} "
                         "must both be (..., sources, channels, samples)")
