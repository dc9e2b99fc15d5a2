"""Object detection pieces shared by the hyperspectral detectors: boxes, matching, losses, metrics.

- boxes: `x0, y0, x1, y1` in pixels (a pixel-aligned box around pixels `[x0, x1) x [y0, y1)`)
  or normalized `cx, cy, w, h` in [0, 1] (what DETR regresses); GIoU is torchvision's.
- matching: Hungarian assignment on a cost matrix (`scipy.optimize.linear_sum_assignment`), and
  SpecDETR's one-to-many variant (`one_to_many_assign`): after the one-to-one match, further rounds
  match each ground truth to more queries whose IoU with it exceeds `1 - iou_loss_threshold`.
- `SetCriterion`: focal classification, L1 and GIoU losses over the matched queries of every
  decoder layer (auxiliary losses), the encoder's two-stage proposals and the denoising queries.
- boxes from score maps: threshold, then 8-connected components (`scipy.ndimage.label`), a box
  per component scored by its peak.
- metrics: COCO mAP over IoU 0.5:0.95, AP at IoU 0.25 and 0.5 (pycocotools), per-pixel ROC-AUC
  (scikit-learn).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchvision.ops import box_iou, generalized_box_iou, sigmoid_focal_loss

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass
class Detections:
    """Detections of one image: `boxes (n, 4)` x0 y0 x1 y1 pixels, `scores (n,)`, `labels (n,)`."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """`(..., 4)` cx, cy, w, h -> x0, y0, x1, y1."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """`(..., 4)` x0, y0, x1, y1 -> cx, cy, w, h."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], -1)


def giou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU (Rezatofighi et al., CVPR 2019) of `(n, 4)` and `(m, 4)` xyxy boxes -> `(n, m)`."""
    return generalized_box_iou(boxes1, boxes2)


def hungarian_match(cost: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment of `cost: (num_preds, num_gts)`: matched (pred rows, gt cols)."""
    cost = cost.detach().cpu().numpy() if isinstance(cost, Tensor) else np.asarray(cost)
    rows, cols = linear_sum_assignment(cost)
    return rows.astype(np.int64), cols.astype(np.int64)


def one_to_many_assign(
    cost: Tensor, iou_cost: Tensor, *, match_num: int = 10, base_match_num: int = 1,
    iou_loss_threshold: float = 0.05, max_matches: int = 100,
) -> Tensor:
    """SpecDETR's dynamic one-to-many Hungarian assignment; returns the matched gt of each query (-1: background).

    Round 1 (and every round up to `base_match_num`) is a Hungarian match on `cost`; every later
    round, up to `match_num`, is a Hungarian match on `iou_cost` (1 - IoU) among the queries not yet
    matched, keeping only pairs with `1 - IoU < iou_loss_threshold`, and stops when none is kept.
    At most `max_matches` queries are matched in all.

    Args:
        cost: `(num_preds, num_gts)` weighted focal + L1 + GIoU cost.
        iou_cost: `(num_preds, num_gts)` 1 - IoU.
    """
    num_preds, num_gts = cost.shape
    assigned = torch.full((num_preds,), -1, dtype=torch.long)
    if num_gts == 0 or num_preds == 0:
        return assigned
    cost = cost.detach().cpu().double().clone()
    iou_cost = iou_cost.detach().cpu().double().clone()
    high, high_iou = cost.max(), iou_cost.max()
    rows, cols = hungarian_match(cost)
    assigned[rows] = torch.from_numpy(cols)
    total = len(rows)
    for round_index in range(2, match_num + 1):
        if total >= max_matches:
            break
        cost[rows, :] = high  # a matched query is out of the later rounds
        iou_cost[rows, :] = high_iou
        if round_index > base_match_num:
            rows, cols = hungarian_match(iou_cost)
            keep = iou_cost[rows, cols].numpy() < iou_loss_threshold
            rows, cols = rows[keep], cols[keep]
            if len(rows) == 0:
                break
        else:
            rows, cols = hungarian_match(cost)
        rows, cols = rows[: max_matches - total], cols[: max_matches - total]
        assigned[rows] = torch.from_numpy(cols)
        total += len(rows)
    return assigned


def focal_cost(logits: Tensor, labels: Tensor, alpha: float = 0.25, gamma: float = 2.0, eps: float = 1e-12) -> Tensor:
    """The focal-loss matching cost (Deformable DETR): `(num_preds, classes)` logits, `(num_gts,)` labels -> `(num_preds, num_gts)`."""
    p = logits.sigmoid()
    neg = -(1 - p + eps).log() * (1 - alpha) * p.pow(gamma)
    pos = -(p + eps).log() * alpha * (1 - p).pow(gamma)
    return (pos - neg)[:, labels]


@dataclass
class SetCriterion:
    """SpecDETR's training loss: matched focal + L1 + GIoU on every decoder layer, the encoder proposals and denoising queries.

    Per prediction set (each decoder layer's matching queries, and the encoder's top-k proposals)
    the queries are assigned by `one_to_many_assign` on the cost
    `cost_class * focal + cost_bbox * L1(cxcywh) + cost_giou * (-GIoU)`; the loss is the sigmoid
    focal loss over all queries and classes (unmatched queries learn background) divided by the
    number of matched queries, plus `weight_bbox` x L1 and `weight_giou` x (1 - GIoU) over the
    matched ones. Denoising queries have fixed targets: the positive query of each group
    regresses and classifies its ground truth, the negative one learns background.

    Attributes:
        num_classes: object classes.
        weight_class, weight_bbox, weight_giou: loss weights (paper: 1, 5, 2).
        cost_class, cost_bbox, cost_giou: matching cost weights (paper: 2, 5, 2).
        match_num: rounds of the one-to-many assignment (paper: 10; 1 is DETR's one-to-one).
        base_match_num: rounds matched on the full cost before the IoU-only rounds (paper: 1).
        iou_loss_threshold: extra matches need 1 - IoU below this (paper: 0.05).
        max_matches: cap on matched queries per image (paper: 100).
        alpha, gamma: focal loss parameters (0.25, 2).
    """

    num_classes: int
    weight_class: float = 1.0
    weight_bbox: float = 5.0
    weight_giou: float = 2.0
    cost_class: float = 2.0
    cost_bbox: float = 5.0
    cost_giou: float = 2.0
    match_num: int = 10
    base_match_num: int = 1
    iou_loss_threshold: float = 0.05
    max_matches: int = 100
    alpha: float = 0.25
    gamma: float = 2.0

    def __call__(self, outputs, targets: Sequence[dict[str, Tensor]], image_size: tuple[int, int]) -> dict[str, Tensor]:
        """All loss terms of one batch (their sum is the training loss).

        Args:
            outputs: a `vision.models.specdetr.DETROutput` (logits/boxes per decoder layer, encoder
                proposals, denoising split).
            targets: per image `boxes (n, 4)` x0 y0 x1 y1 pixels and `labels (n,)`.
            image_size: `(height, width)` of the input (boxes are normalized by it).
        """
        h, w = image_size
        scale = outputs.boxes.new_tensor([w, h, w, h])
        gt_boxes = [box_xyxy_to_cxcywh(t["boxes"].to(scale) / scale) for t in targets]
        gt_labels = [t["labels"].long().to(scale.device) for t in targets]
        num_dn = outputs.num_denoising
        losses: dict[str, Tensor] = {}
        layers = outputs.logits.shape[0]
        for layer in range(layers):
            name = "" if layer == layers - 1 else f"d{layer}."
            part = self.matched_loss(outputs.logits[layer, :, num_dn:], outputs.boxes[layer, :, num_dn:], gt_boxes, gt_labels, scale)
            losses.update({f"{name}{k}": v for k, v in part.items()})
            if num_dn:
                part = self.denoising_loss(outputs.logits[layer, :, :num_dn], outputs.boxes[layer, :, :num_dn],
                                           gt_boxes, gt_labels, outputs.denoising_groups, scale)
                losses.update({f"{name}dn_{k}": v for k, v in part.items()})
        if outputs.enc_logits is not None:
            part = self.matched_loss(outputs.enc_logits, outputs.enc_boxes, gt_boxes, gt_labels, scale)
            losses.update({f"enc_{k}": v for k, v in part.items()})
        return losses

    @torch.no_grad()
    def assign(self, logits: Tensor, boxes: Tensor, gt_boxes: Tensor, gt_labels: Tensor, scale: Tensor) -> Tensor:
        """The gt index of each query of one image (-1: background): `logits (q, k)`, `boxes (q, 4)` cxcywh normalized."""
        if len(gt_labels) == 0:
            return torch.full((len(logits),), -1, dtype=torch.long)
        pred_xyxy = box_cxcywh_to_xyxy(boxes) * scale
        gt_xyxy = box_cxcywh_to_xyxy(gt_boxes) * scale
        cost = (self.cost_class * focal_cost(logits, gt_labels, self.alpha, self.gamma)
                + self.cost_bbox * torch.cdist(boxes, gt_boxes, p=1)
                - self.cost_giou * giou(pred_xyxy, gt_xyxy))
        return one_to_many_assign(
            cost, 1 - box_iou(pred_xyxy, gt_xyxy), match_num=self.match_num, base_match_num=self.base_match_num,
            iou_loss_threshold=self.iou_loss_threshold, max_matches=self.max_matches,
        )

    def matched_loss(
        self, logits: Tensor, boxes: Tensor, gt_boxes: list[Tensor], gt_labels: list[Tensor], scale: Tensor,
    ) -> dict[str, Tensor]:
        """Focal / L1 / GIoU losses of one prediction set `logits (b, q, k)`, `boxes (b, q, 4)` after assignment."""
        assigned = [self.assign(lg, bx, gb, gl, scale).to(logits.device)
                    for lg, bx, gb, gl in zip(logits, boxes, gt_boxes, gt_labels, strict=True)]
        return self._losses(logits, boxes, gt_boxes, gt_labels, assigned, scale)

    def denoising_loss(self, logits: Tensor, boxes: Tensor, gt_boxes: list[Tensor], gt_labels: list[Tensor],
                       groups: int, scale: Tensor) -> dict[str, Tensor]:
        """Losses of the denoising queries: group g holds `[positives of every gt, padding, negatives, padding]`."""
        per_group = logits.shape[1] // groups
        assigned = []
        for gl in gt_labels:
            a = torch.full((logits.shape[1],), -1, dtype=torch.long, device=logits.device)
            n = len(gl)
            for g in range(groups):
                a[g * per_group: g * per_group + n] = torch.arange(n, device=logits.device)
            assigned.append(a)
        return self._losses(logits, boxes, gt_boxes, gt_labels, assigned, scale)

    def _losses(self, logits: Tensor, boxes: Tensor, gt_boxes: list[Tensor], gt_labels: list[Tensor],
                assigned: list[Tensor], scale: Tensor) -> dict[str, Tensor]:
        target = torch.zeros_like(logits)
        matched_pred, matched_gt = [], []
        for b, a in enumerate(assigned):
            pos = torch.nonzero(a >= 0).squeeze(1)
            target[b, pos, gt_labels[b][a[pos]]] = 1.0
            matched_pred.append(boxes[b, pos])
            matched_gt.append(gt_boxes[b][a[pos]])
        num_pos = max(float(sum(len(p) for p in matched_pred)), 1.0)
        loss_class = sigmoid_focal_loss(logits, target, alpha=self.alpha, gamma=self.gamma, reduction="sum") / num_pos
        pred, gt = torch.cat(matched_pred), torch.cat(matched_gt)
        loss_bbox = F.l1_loss(pred, gt, reduction="sum") / num_pos
        pred_xyxy, gt_xyxy = box_cxcywh_to_xyxy(pred) * scale, box_cxcywh_to_xyxy(gt) * scale
        loss_giou = (1 - torch.diag(giou(pred_xyxy, gt_xyxy))).sum() / num_pos if len(pred) else pred.sum()
        return {"loss_class": self.weight_class * loss_class, "loss_bbox": self.weight_bbox * loss_bbox,
                "loss_giou": self.weight_giou * loss_giou}


def dense_focal_loss(logits: Tensor, mask: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Per-pixel sigmoid focal loss of `logits (b, k, h, w)` against `mask (b, h, w)` (0 background, c+1 class c), per target pixel."""
    target = F.one_hot(mask.long(), logits.shape[1] + 1)[..., 1:].permute(0, 3, 1, 2).to(logits.dtype)
    return sigmoid_focal_loss(logits, target, alpha=alpha, gamma=gamma, reduction="sum") / target.sum().clamp(min=1.0)


def boxes_from_mask(mask: np.ndarray, scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of the 8-connected components of a binary `mask (H, W)`: `(n, 4)` x0 y0 x1 y1 and each component's peak score.

    A component covering pixels rows `r0..r1`, columns `c0..c1` gets the box `(c0, r0, c1 + 1, r1 + 1)`.
    Components come in `scipy.ndimage.label` order (raster order of their first pixel).
    """
    labelled, count = ndimage.label(np.asarray(mask, dtype=bool), structure=EIGHT_CONNECTED)
    boxes = np.zeros((count, 4), np.float32)
    for i, (rows, cols) in enumerate(ndimage.find_objects(labelled)):
        boxes[i] = (cols.start, rows.start, cols.stop, rows.stop)
    if scores is None or count == 0:
        return boxes, np.ones(count, np.float32)
    peaks = ndimage.maximum(scores, labelled, index=np.arange(1, count + 1))
    return boxes, np.asarray(peaks, np.float32).reshape(count)


def detections_from_score_maps(scores: Tensor, thresholds: Tensor) -> list[Detections]:
    """Boxes per class from dense `scores (b, k, h, w)`: pixels above `thresholds (b, k)`, connected components, peak scores."""
    out = []
    array = scores.detach().float().cpu().numpy()
    limits = thresholds.detach().float().cpu().numpy()
    for b in range(array.shape[0]):
        boxes, values, labels = [], [], []
        for k in range(array.shape[1]):
            found, peak = boxes_from_mask(array[b, k] > limits[b, k], array[b, k])
            boxes.append(found)
            values.append(peak)
            labels.append(np.full(len(found), k, np.int64))
        out.append(Detections(torch.from_numpy(np.concatenate(boxes)), torch.from_numpy(np.concatenate(values)),
                              torch.from_numpy(np.concatenate(labels))))
    return out


def coco_metrics(
    predictions: Sequence[Detections], targets: Sequence[dict[str, Tensor]], num_classes: int, max_detections: int = 100,
) -> dict[str, float]:
    """COCO box AP with pycocotools: `map` (IoU 0.5:0.95), `map50`, and `map25` (IoU 0.25) over images and classes.

    Boxes are pixel `x0 y0 x1 y1`; each class's AP is the 101-point interpolated precision
    averaged over recall (pycocotools' protocol), classes without ground truth are left out, and
    each image keeps its `max_detections` best-scored detections. No predictions at all give 0.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for i, (pred, target) in enumerate(zip(predictions, targets, strict=True)):
        images.append({"id": i})
        for box, label in zip(target["boxes"].tolist(), target["labels"].tolist(), strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label),
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
        for box, score, label in zip(pred.boxes.tolist(), pred.scores.tolist(), pred.labels.tolist(), strict=True):
            results.append({"image_id": i, "category_id": int(label), "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                            "score": float(score)})
    if not annotations or not results:
        return {"map": 0.0, "map50": 0.0, "map25": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and tables
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": k} for k in range(num_classes)]}
        gt.createIndex()
        dt = gt.loadRes(results)
        out = {}
        for name, thresholds in (("coco", None), ("map25", np.array([0.25]))):
            evaluator = COCOeval(gt, dt, iouType="bbox")
            evaluator.params.maxDets = [1, 10, max_detections]
            if thresholds is not None:
                evaluator.params.iouThrs = thresholds
            evaluator.evaluate()
            evaluator.accumulate()
            precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (iou, recall, class) at area "all", max dets
            if name == "coco":
                out["map"] = _mean_valid(precision)
                out["map50"] = _mean_valid(precision[list(evaluator.params.iouThrs).index(0.5)])
            else:
                out["map25"] = _mean_valid(precision)
    return out


def _mean_valid(precision: np.ndarray) -> float:
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else 0.0


def pixel_roc_auc(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """Per-pixel ROC-AUC of a score map against a binary truth map (None when the truth has one value only)."""
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(truth).reshape(-1).astype(bool)
    if truth.all() or not truth.any():
        return None
    return float(roc_auc_score(truth, np.asarray(scores, np.float64).reshape(-1)))
