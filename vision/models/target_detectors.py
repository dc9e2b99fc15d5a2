"""The classical hyperspectral target detectors, scored per pixel: CEM, ACE, the spectral matched filter, RX.

Each is a parameter-free `nn.Module` whose forward maps a cube `(batch, bands, H, W)` to one score
map per class `(batch, classes, H, W)`; the background statistics are estimated on each image itself
(global mean `mu`, covariance `Sigma`, correlation `R = X^T X / N`, each with a ridge of `ridge`
times its mean diagonal so that flat or low-rank scenes stay invertible). With `d` a class's target
signature (`signatures`, set from the data's target library by the task) and `x` a pixel:

- CEM, constrained energy minimization (Harsanyi 1993): `w = R^-1 d / (d^T R^-1 d)`, score `w^T x`
  (the filter passes `d` with gain 1 and minimizes the output energy of everything else).
- ACE, adaptive coherence / cosine estimator (Kraut & Scharf 1999, Manolakis 2003):
  `((d-mu)^T S^-1 (x-mu))^2 / ((d-mu)^T S^-1 (d-mu) (x-mu)^T S^-1 (x-mu))`, in [0, 1].
- SMF, spectral matched filter (Manolakis & Shaw 2002): `(d-mu)^T S^-1 (x-mu) / ((d-mu)^T S^-1 (d-mu))`.
- RX anomaly detector (Reed & Yu 1990): the Mahalanobis distance `(x-mu)^T S^-1 (x-mu)`, one map
  for all classes (it needs no signature); its boxes take the class whose signature has the
  highest cosine similarity with the component's peak pixel.

Boxes: pixels above a per-image, per-class threshold (`threshold_quantile` of that score map) are
grouped into 8-connected components (`vision.detection.detections_from_score_maps`), each scored by
its peak. The quantile is the detector's only setting; it is reported with the results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn

from vision.detection import Detections, detections_from_score_maps


def background_statistics(cube: Tensor, ridge: float = 1e-6) -> tuple[Tensor, Tensor, Tensor]:
    """Per image of `cube (b, bands, H, W)`: pixels `(b, N, bands)`, mean `(b, bands)`, inverse covariance `(b, bands, bands)`."""
    b, c, h, w = cube.shape
    x = cube.double().reshape(b, c, h * w).transpose(1, 2)
    mu = x.mean(1)
    centred = x - mu[:, None]
    cov = centred.transpose(1, 2) @ centred / max(h * w - 1, 1)
    return x, mu, torch.linalg.inv(_ridged(cov, ridge))


def _ridged(matrix: Tensor, ridge: float) -> Tensor:
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    scale = matrix.diagonal(dim1=-2, dim2=-1).mean(-1).clamp(min=1e-12)
    return matrix + ridge * scale[:, None, None] * eye


def cem(cube: Tensor, signatures: Tensor, ridge: float = 1e-6) -> Tensor:
    """CEM scores `(b, classes, H, W)` of `cube (b, bands, H, W)` for `signatures (classes, bands)`."""
    b, c, h, w = cube.shape
    x = cube.double().reshape(b, c, h * w).transpose(1, 2)
    r_inv = torch.linalg.inv(_ridged(x.transpose(1, 2) @ x / (h * w), ridge))
    d = signatures.double().to(cube.device)
    r_inv_d = torch.einsum("bij,kj->bki", r_inv, d)  # (b, classes, bands)
    filters = r_inv_d / torch.einsum("bki,ki->bk", r_inv_d, d)[..., None]
    return torch.einsum("bki,bni->bkn", filters, x).reshape(b, -1, h, w).float()


def _whitened(cube: Tensor, signatures: Tensor, ridge: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x, mu, s_inv = background_statistics(cube, ridge)
    xc = x - mu[:, None]
    dc = signatures.double().to(cube.device)[None] - mu[:, None]  # (b, classes, bands)
    s_inv_d = torch.einsum("bij,bkj->bki", s_inv, dc)
    dsd = torch.einsum("bki,bki->bk", s_inv_d, dc)  # (b, classes)
    dsx = torch.einsum("bki,bni->bkn", s_inv_d, xc)  # (b, classes, N)
    xsx = torch.einsum("bni,bij,bnj->bn", xc, s_inv, xc)  # (b, N)
    return dsd, dsx, xsx, x


def ace(cube: Tensor, signatures: Tensor, ridge: float = 1e-6) -> Tensor:
    """ACE scores `(b, classes, H, W)`, each in [0, 1]."""
    b, _, h, w = cube.shape
    dsd, dsx, xsx, _ = _whitened(cube, signatures, ridge)
    return (dsx.pow(2) / (dsd[..., None] * xsx[:, None].clamp(min=1e-12))).reshape(b, -1, h, w).float()


def smf(cube: Tensor, signatures: Tensor, ridge: float = 1e-6) -> Tensor:
    """Spectral matched filter scores `(b, classes, H, W)` (1 at `d` itself, 0 at the background mean)."""
    b, _, h, w = cube.shape
    dsd, dsx, _, _ = _whitened(cube, signatures, ridge)
    return (dsx / dsd[..., None]).reshape(b, -1, h, w).float()


def rx(cube: Tensor, ridge: float = 1e-6) -> Tensor:
    """RX anomaly scores `(b, 1, H, W)`: the Mahalanobis distance of each pixel from the image's background."""
    b, _, h, w = cube.shape
    x, mu, s_inv = background_statistics(cube, ridge)
    xc = x - mu[:, None]
    return torch.einsum("bni,bij,bnj->bn", xc, s_inv, xc).reshape(b, 1, h, w).float()


class TargetDetector(nn.Module, ABC):
    """Base of the classical detectors: signatures buffer, quantile thresholding into boxes.

    Args:
        num_classes: target classes (rows of `signatures`).
        in_channels: spectral bands.
        threshold_quantile: per image and class, pixels above this quantile of the score map form
            the candidate components.
        ridge: covariance / correlation ridge, relative to the mean diagonal.
    """

    role: ClassVar[str] = "baseline"
    needs_signatures: ClassVar[bool] = True

    def __init__(self, num_classes: int = 4, in_channels: int = 30, threshold_quantile: float = 0.98, ridge: float = 1e-6) -> None:
        super().__init__()
        if not 0 < threshold_quantile < 1:
            raise ValueError(f"threshold_quantile must be in (0, 1); got {threshold_quantile}")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.threshold_quantile, self.ridge = threshold_quantile, ridge
        self.register_buffer("signatures", torch.zeros(num_classes, in_channels))

    def set_signatures(self, signatures: Tensor) -> None:
        """Set the class target spectra `(num_classes, in_channels)` (from the data's target library)."""
        if tuple(signatures.shape) != (self.num_classes, self.in_channels):
            raise ValueError(f"{type(self).__name__}: signatures must be {(self.num_classes, self.in_channels)}; "
                             f"got {tuple(signatures.shape)}")
        self.signatures.copy_(signatures)

    def forward(self, cube: Tensor) -> Tensor:
        """`cube (b, bands, H, W)` -> per-class scores `(b, classes, H, W)` for the set signatures."""
        return self.score(cube, self.signatures)

    @abstractmethod
    def score(self, cube: Tensor, signatures: Tensor) -> Tensor:
        """Scores `(b, len(signatures), H, W)` of `cube (b, bands, H, W)` for `signatures (n, bands)`."""

    def detect(self, scores: Tensor, cube: Tensor) -> list[Detections]:
        """Boxes from the score maps: the `threshold_quantile` of each map, components, peak scores."""
        flat = scores.flatten(2).float()
        return detections_from_score_maps(scores, torch.quantile(flat, self.threshold_quantile, dim=-1))

    def pixel_scores(self, scores: Tensor) -> Tensor:
        """One target score per pixel `(b, H, W)`: the maximum over classes."""
        return scores.amax(1)


class CEM(TargetDetector):
    """Constrained energy minimization (Harsanyi 1993); arguments of `TargetDetector`."""

    def score(self, cube: Tensor, signatures: Tensor) -> Tensor:
        return cem(cube, signatures, self.ridge)


class ACE(TargetDetector):
    """Adaptive coherence estimator (Kraut & Scharf 1999); arguments of `TargetDetector`."""

    def score(self, cube: Tensor, signatures: Tensor) -> Tensor:
        return ace(cube, signatures, self.ridge)


class SMF(TargetDetector):
    """Spectral matched filter (Manolakis & Shaw 2002); arguments of `TargetDetector`."""

    def score(self, cube: Tensor, signatures: Tensor) -> Tensor:
        return smf(cube, signatures, self.ridge)


class RX(TargetDetector):
    """RX anomaly detector (Reed & Yu 1990): one class-agnostic map; boxes labelled by the nearest signature (cosine).

    Arguments of `TargetDetector`; the signatures only label the boxes.
    """

    def score(self, cube: Tensor, signatures: Tensor) -> Tensor:
        return rx(cube, self.ridge)

    def detect(self, scores: Tensor, cube: Tensor) -> list[Detections]:
        found = super().detect(scores, cube)
        signatures = nn.functional.normalize(self.signatures.float(), dim=1)
        for image, region, det in zip(cube, scores[:, 0], found, strict=True):
            if len(det.boxes) == 0:
                continue
            pixels = []
            for x0, y0, x1, y1 in det.boxes.long().tolist():
                patch = region[y0:y1, x0:x1]
                r, c = divmod(int(patch.argmax()), patch.shape[1])
                pixels.append(image[:, y0 + r, x0 + c])
            spectra = nn.functional.normalize(torch.stack(pixels).float(), dim=1)
            det.labels = (spectra @ signatures.T).argmax(1)
        return found
