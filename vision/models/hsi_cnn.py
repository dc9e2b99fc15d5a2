"""A small dense per-pixel CNN detector: the learned baseline of hyperspectral point-object detection.

The spectrum of each pixel is embedded by a 1x1 convolution, a few 3x3 convolutions add the
spatial context of the neighbourhood (a point object is a few pixels wide), and a 1x1 convolution
scores every pixel for every class. Trained with a per-pixel sigmoid focal loss
(`vision.detection.dense_focal_loss`) against the target pixels; boxes are the 8-connected
components of the pixels whose class probability exceeds `threshold`, each scored by its peak,
exactly as the classical detectors' score maps are boxed.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from vision.detection import Detections, detections_from_score_maps


class DensePixelCNN(nn.Module):
    """Per-pixel class logits from a 1x1 spectral embedding and `depth` 3x3 conv blocks.

    Args:
        in_channels: spectral bands.
        num_classes: object classes.
        width: channels of the hidden layers.
        depth: 3x3 conv + BatchNorm + ReLU blocks (receptive field 2 * depth + 1 pixels).
        threshold: class probability above which pixels form detected components.
    """

    role: ClassVar[str] = "baseline"

    def __init__(self, in_channels: int = 30, num_classes: int = 4, width: int = 64, depth: int = 3, threshold: float = 0.1) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.threshold = in_channels, num_classes, threshold
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 1), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        nn.init.constant_(self.classifier.bias, -math.log((1 - 0.01) / 0.01))  # focal-loss prior 0.01

    def forward(self, cube: Tensor) -> Tensor:
        """`cube (b, in_channels, H, W)` -> class logits `(b, num_classes, H, W)`."""
        if cube.dim() != 4 or cube.shape[1] != self.in_channels:
            raise ValueError(f"DensePixelCNN expects (batch, {self.in_channels}, H, W); got {tuple(cube.shape)}")
        return self.classifier(self.body(cube))

    @torch.no_grad()
    def detect(self, logits: Tensor, cube: Tensor | None = None) -> list[Detections]:
        """Components of pixels with probability above `threshold`, per class, scored by their peak probability."""
        probs = logits.sigmoid()
        return detections_from_score_maps(probs, torch.full(probs.shape[:2], self.threshold))

    def pixel_scores(self, logits: Tensor) -> Tensor:
        """One target score per pixel `(b, H, W)`: the highest class probability."""
        return logits.sigmoid().amax(1)
