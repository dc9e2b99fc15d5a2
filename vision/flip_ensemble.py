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

import numpy as np
import torch
from torch import Tensor

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
    boxes = torch.cat([d.boxes.detach().float() for d in found]).numpy()
    scores = torch.cat([d.scores.detach().float() for d in found]).numpy()
    labels = torch.cat([d.labels for d in found])
    classes = labels.numpy()
    weighted = np.zeros((len(scores), 4))  # per cluster: sum of score x box
    weight = np.zeros(len(scores))
    cluster_labels = np.zeros(len(scores), classes.dtype)
    clusters = 0
    for i in np.argsort(-scores, kind="stable"):
        box, score = boxes[i], float(scores[i])
        if clusters:
            overlap = _iou(box, weighted[:clusters] / weight[:clusters, None])
            overlap[cluster_labels[:clusters] != classes[i]] = -1.0
            best = int(overlap.argmax())
            if overlap[best] > iou:
                weighted[best] += box * score
                weight[best] += score
                continue
        weighted[clusters], weight[clusters], cluster_labels[clusters] = box * score, score, classes[i]
        clusters += 1
    fused = weighted[:clusters] / np.maximum(weight[:clusters, None], 1e-30)
    return Detections(torch.from_numpy(fused.astype(np.float32)), torch.from_numpy((weight[:clusters] / count).astype(np.float32)),
                      torch.from_numpy(cluster_labels[:clusters]).to(labels.dtype))


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one x0 y0 x1 y1 `box (4,)` with each of `others (n, 4)` (0 where both are empty)."""
    wh = np.clip(np.minimum(box[2:], others[:, 2:]) - np.maximum(box[:2], others[:, :2]), 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = (box[2] - box[0]) * (box[3] - box[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def flip_ensemble(detect: Callable[[Tensor], list[Detections]], image: Tensor, iou: float = 0.3,
                  identity: list[Detections] | None = None) -> list[Detections]:
    """`detect` run on the 8 views of `image (b, c, H, W)`, each view's boxes mapped back, fused per image.

    `identity`: the detections of `image` itself when the caller has them (they are not computed again).
    """
    size = (image.shape[-2], image.shape[-1])
    per_image: list[list[Detections]] = [[] for _ in range(image.shape[0])]
    all_views = list(views())
    for view in all_views:
        found = identity if identity is not None and not any(view) else detect(apply_view(image, view))
        for i, d in enumerate(found):
            per_image[i].append(Detections(invert_boxes(d.boxes, view, size), d.scores, d.labels))
    return [fuse_detections(found, len(all_views), iou) for found in per_image]
