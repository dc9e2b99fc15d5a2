"""Test-time augmentation for detectors: the 8 flips / transposes of the image, their detections fused.

A pixel-token detector such as SpecDETR is not equivariant to flips and transposes (its position
codes and sampling offsets are learned), so its 8 views of one scene (the dihedral group D4 of the
square: transpose or not, then a horizontal and / or vertical flip) give 8 somewhat different sets
of boxes. `flip_ensemble` maps each view's boxes back to the original frame and fuses them per class
by score-weighted box fusion (Solovyev et al., "Weighted boxes fusion", Image and Vision Computing
2021): boxes of one class that overlap a cluster by IoU above `iou` join it; a cluster's box is the
score-weighted mean of its members and its score their sum over the number of views, so a target
found in every view keeps its score and one found in a single view gets an eighth of it. Over the
whole group the fused result is equivariant: the detections of a flipped scene are the flipped
detections of the scene, up to floating-point order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torchvision.ops import box_iou

from vision.detection import Detections

View = tuple[bool, bool, bool]  # transpose, flip left-right, flip up-down (applied in that order)


def views() -> Iterator[View]:
    """The 8 views of D4, the identity first."""
    for transpose in (False, True):
        for flip_x in (False, True):
            for flip_y in (False, True):
                yield transpose, flip_x, flip_y


def apply_view(image: Tensor, view: View) -> Tensor:
    """`image (..., H, W)` seen through `view`: transposed, then flipped left-right, then up-down."""
    transpose, flip_x, flip_y = view
    if transpose:
        image = image.transpose(-1, -2)
    if flip_x:
        image = image.flip(-1)
    if flip_y:
        image = image.flip(-2)
    return image


def invert_boxes(boxes: Tensor, view: View, size: tuple[int, int]) -> Tensor:
    """`boxes (n, 4)` x0 y0 x1 y1 found in `view` of an image of `size (H, W)`, in the image's own frame."""
    transpose, flip_x, flip_y = view
    h, w = (size[1], size[0]) if transpose else size
    out = boxes.clone()
    if flip_y:
        out[:, [1, 3]] = h - out[:, [3, 1]]
    if flip_x:
        out[:, [0, 2]] = w - out[:, [2, 0]]
    return out[:, [1, 0, 3, 2]] if transpose else out


def fuse_detections(found: list[Detections], count: int, iou: float = 0.3) -> Detections:
    """Weighted box fusion of the detections of `count` views of one image (module docstring)."""
    boxes = torch.cat([d.boxes.float() for d in found])
    scores = torch.cat([d.scores.float() for d in found])
    labels = torch.cat([d.labels for d in found])
    order = scores.argsort(descending=True, stable=True)
    weighted: list[Tensor] = []  # per cluster: sum of score x box
    weight: list[float] = []
    cluster_labels: list[int] = []
    for box, score, label in zip(boxes[order], scores[order].tolist(), labels[order].tolist(), strict=True):
        joined = -1
        if weighted:
            fused = torch.stack(weighted) / torch.tensor(weight)[:, None]
            overlap = box_iou(box[None], fused)[0]
            overlap[torch.tensor(cluster_labels) != label] = -1.0
            best = int(overlap.argmax())
            if overlap[best] > iou:
                joined = best
        if joined < 0:
            weighted.append(box * score)
            weight.append(score)
            cluster_labels.append(label)
        else:
            weighted[joined] = weighted[joined] + box * score
            weight[joined] += score
    if not weighted:
        return Detections(boxes[:0], scores[:0], labels[:0])
    total = torch.tensor(weight)
    return Detections(torch.stack(weighted) / total[:, None], total / count, torch.tensor(cluster_labels, dtype=labels.dtype))


def flip_ensemble(detect: Callable[[Tensor], list[Detections]], image: Tensor, iou: float = 0.3) -> list[Detections]:
    """`detect` run on the 8 views of `image (b, c, H, W)`, each view's boxes mapped back, fused per image."""
    size = (image.shape[-2], image.shape[-1])
    per_image: list[list[Detections]] = [[] for _ in range(image.shape[0])]
    all_views = list(views())
    for view in all_views:
        for i, d in enumerate(detect(apply_view(image, view))):
            per_image[i].append(Detections(invert_boxes(d.boxes, view, size), d.scores, d.labels))
    return [fuse_detections(found, len(all_views), iou) for found in per_image]
