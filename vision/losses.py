"""Losses of the low-light models: MS-SSIM, soft-histogram, colour, PSNR terms and LYT-Net's hybrid loss.

LYT-Net (Brateanu et al., arXiv:2401.15204, Eq. 9) trains on
`L = Smooth-L1 + 0.06 L_perc + 0.05 L_hist + 0.0083 L_psnr + 0.25 L_color + 0.5 L_ms-ssim`.
`L_perc` compares VGG-19 features (up to block3_conv3) and needs ImageNet weights, which nothing here
downloads: pass a local torchvision `vgg19` state-dict file as `vgg_weights`, otherwise the term is
left out (and `LYTHybridLoss.perceptual_enabled` says so). LLFormer trains on Smooth-L1 alone
(`torch.nn.SmoothL1Loss`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gaussian(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32) -> Tensor:
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim_terms(x: Tensor, y: Tensor, window: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    """Per-image, per-channel mean SSIM and contrast-structure terms over the valid region."""
    c = x.shape[1]
    kh = window.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = window.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim_map = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return ssim_map.mean(dim=(2, 3)), cs.mean(dim=(2, 3))


def ms_ssim(pred: Tensor, target: Tensor, *, data_range: float = 1.0, window_size: int = 11) -> Tensor:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003) per image: `(batch, C, H, W)` pairs -> `(batch,)`.

    Five scales with the standard weights, 2x average pooling between them; contrast-structure at
    every scale, the full SSIM at the coarsest, each clamped at 0 (as pytorch-msssim does). Images
    too small for five scales (smaller side < 16 * window_size) use the scales that fit, with the
    weights renormalized.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"vision/losses.py: ms_ssim needs equal (batch, C, H, W) shapes; got {tuple(pred.shape)}, {tuple(target.shape)}")
    side = min(pred.shape[-2:])
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and side // 2**scales >= window_size:
        scales += 1
    if side < window_size:
        raise ValueError(f"vision/losses.py: ms_ssim needs images of at least {window_size} pixels; got {tuple(pred.shape[-2:])}")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=pred.dtype, device=pred.device)
    weights = weights / weights.sum()
    window = _gaussian(window_size, 1.5, pred.dtype).to(pred.device)
    values = []
    x, y = pred, target
    for scale in range(scales):
        ssim_val, cs = _ssim_terms(x, y, window, data_range)
        values.append(torch.relu(ssim_val if scale == scales - 1 else cs))
        if scale < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(values, dim=0)  # (scales, batch, C)
    return torch.prod(stacked ** weights[:, None, None], dim=0).mean(dim=1)


def soft_histogram(x: Tensor, bins: int = 256) -> Tensor:
    """Differentiable normalized histogram of all values of `x` in [0, 1]: `(bins,)`.

    Each value splits its unit mass linearly between the two nearest bin centres (a triangular
    kernel one bin wide). LYT-Net's code uses a Gaussian kernel of sigma 0.01 over 256 bins, whose
    `(pixels x bins)` tensor does not fit a CPU batch; the two agree up to that small smoothing.
    """
    pos = x.clamp(0, 1).reshape(-1) * (bins - 1)
    lower = pos.floor().clamp(max=bins - 2)
    frac = pos - lower
    hist = torch.zeros(bins, dtype=x.dtype, device=x.device)
    hist = hist.index_add(0, lower.long(), 1 - frac).index_add(0, lower.long() + 1, frac)
    return hist / pos.numel()


def histogram_loss(pred: Tensor, target: Tensor, bins: int = 256) -> Tensor:
    """Mean absolute difference of the soft histograms of `pred` and `target`."""
    return (soft_histogram(pred, bins) - soft_histogram(target, bins)).abs().mean()


def color_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of |mean(pred) - mean(target)| per image (global brightness/colour shift)."""
    return (pred.mean(dim=(1, 2, 3)) - target.mean(dim=(1, 2, 3))).abs().mean()


def psnr_loss(pred: Tensor, target: Tensor, max_psnr: float = 40.0) -> Tensor:
    """`max_psnr - PSNR` of the batch (data range 1)."""
    mse = F.mse_loss(pred, target).clamp_min(1e-10)
    return max_psnr - 10 * torch.log10(1.0 / mse)


class VGGPerceptual(nn.Module):
    """MSE between VGG-19 features up to block3_conv3 (`features[:16]`) of prediction and target."""

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torchvision.models import vgg19

        path = Path(weights_path)
        if not path.is_file():
            raise ValueError(f"{path}: VGG-19 weights file not found (a torchvision vgg19 state dict)")
        net = vgg19()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.features = net.features[:16].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(self.features((pred - self.mean) / self.std), self.features((target - self.mean) / self.std))


class LYTHybridLoss(nn.Module):
    """LYT-Net's hybrid loss; each weight is the paper's default.

    Args:
        smooth_l1: weight of Smooth-L1 (1.0).
        perceptual: weight of the VGG-19 perceptual term (0.06); used only with `vgg_weights`.
        histogram: weight of the histogram term (0.05).
        psnr: weight of `40 - PSNR` (0.0083).
        color: weight of the global colour term (0.25).
        ms_ssim: weight of `1 - MS-SSIM` (0.5).
        vgg_weights: local torchvision `vgg19` state-dict file; None leaves the perceptual term out.
    """

    def __init__(
        self,
        smooth_l1: float = 1.0,
        perceptual: float = 0.06,
        histogram: float = 0.05,
        psnr: float = 0.0083,
        color: float = 0.25,
        ms_ssim: float = 0.5,
        vgg_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.weights = {"smooth_l1": smooth_l1, "perceptual": perceptual, "histogram": histogram,
                        "psnr": psnr, "color": color, "ms_ssim": ms_ssim}
        self.vgg = VGGPerceptual(vgg_weights) if vgg_weights else None

    @property
    def perceptual_enabled(self) -> bool:
        """Whether the VGG perceptual term is part of the loss."""
        return self.vgg is not None and self.weights["perceptual"] > 0

    def terms(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Each unweighted term, by name."""
        out = {
            "smooth_l1": F.smooth_l1_loss(pred, target),
            "histogram": histogram_loss(pred, target),
            "psnr": psnr_loss(pred, target),
            "color": color_loss(pred, target),
            "ms_ssim": 1 - ms_ssim(pred, target).mean(),
        }
        if self.vgg is not None:
            out["perceptual"] = self.vgg(pred, target)
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Weighted sum of the terms for `pred, target: (batch, 3, H, W)` in [0, 1]."""
        return sum(self.weights[name] * value for name, value in self.terms(pred, target).items())
