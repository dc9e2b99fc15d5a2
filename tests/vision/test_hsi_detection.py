"""vision.detection: Hungarian matching, GIoU, box extraction, COCO mAP against brute force / hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from vision.detection import (
    Detections,
    SetCriterion,
    boxes_from_mask,
    coco_metrics,
    giou,
    hungarian_match,
    one_to_many_assign,
    pixel_roc_auc,
)


@pytest.mark.parametrize("shape", [(3, 3), (5, 3), (6, 2), (4, 4)])
def test_hungarian_match_equals_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        cost = rng.random(shape)
        rows, cols = hungarian_match(torch.from_numpy(cost))
        n_pred, n_gt = shape
        best = min(sum(cost[p, g] for g, p in enumerate(perm)) for perm in itertools.permutations(range(n_pred), n_gt))
        assert len(set(rows.tolist())) == n_gt and sorted(cols.tolist()) == list(range(n_gt))
        assert cost[rows, cols].sum() == pytest.approx(best, abs=1e-12)


def test_one_to_many_assign_adds_only_close_boxes():
    # 4 queries, 2 gts: round 1 matches query 0 -> gt 0 and query 1 -> gt 1 (lowest cost); in round 2
    # query 2 overlaps gt 0 with IoU 0.97 (kept), query 3 overlaps gt 1 with IoU 0.5 (dropped)
    cost = torch.tensor([[0.0, 9.0], [9.0, 0.0], [1.0, 9.0], [9.0, 1.0]])
    iou_cost = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.03, 1.0], [1.0, 0.5]])
    assigned = one_to_many_assign(cost, iou_cost, match_num=10, iou_loss_threshold=0.05)
    assert assigned.tolist() == [0, 1, 0, -1]
    one_to_one = one_to_many_assign(cost, iou_cost, match_num=1)
    assert one_to_one.tolist() == [0, 1, -1, -1]


def test_giou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0]])
    g = giou(a, b)
    # overlap 1 of union 7, hull 9: 1/7 - 2/9; disjoint unit squares, union 2, hull 3: 0 - 1/3
    assert g[0, 0].item() == pytest.approx(1 / 7 - 2 / 9, abs=1e-6)
    assert g[1, 1].item() == pytest.approx(-1 / 3, abs=1e-6)
    assert giou(a, a).diagonal().tolist() == pytest.approx([1.0, 1.0])


def test_boxes_from_mask_known_components():
    mask = np.zeros((6, 7), bool)
    mask[0, 0] = True                      # a single pixel
    mask[2:4, 3:6] = True                  # a 2 x 3 block
    mask[5, 0] = mask[4, 1] = True         # diagonal neighbours: one 8-connected component
    scores = np.arange(42, dtype=np.float32).reshape(6, 7)
    boxes, peaks = boxes_from_mask(mask, scores)
    assert boxes.tolist() == [[0, 0, 1, 1], [3, 2, 6, 4], [0, 4, 2, 6]]
    assert peaks.tolist() == [0.0, 26.0, 35.0]


def test_coco_map_equals_hand_computed_value():
    # one image, two class-0 objects; ranked detections: hit (0.9), miss (0.8), hit (0.7).
    # precision/recall: (1, .5), (.5, .5), (2/3, 1); COCO's 101-point interpolation gives 1 at the
    # 51 recall points <= 0.5 and 2/3 at the 50 above: AP = (51 + 50 * 2/3) / 101 at every IoU
    # threshold (the hits are exact).
    target = {"boxes": torch.tensor([[2.0, 2.0, 3.0, 3.0], [10.0, 10.0, 12.0, 12.0]]), "labels": torch.tensor([0, 0])}
    pred = Detections(
        boxes=torch.tensor([[2.0, 2.0, 3.0, 3.0], [20.0, 20.0, 21.0, 21.0], [10.0, 10.0, 12.0, 12.0]]),
        scores=torch.tensor([0.9, 0.8, 0.7]), labels=torch.tensor([0, 0, 0]),
    )
    expected = (51 + 50 * 2 / 3) / 101
    metrics = coco_metrics([pred], [target], num_classes=2)  # class 1 has no ground truth: left out
    assert metrics["map"] == pytest.approx(expected, abs=1e-6)
    assert metrics["map50"] == pytest.approx(expected, abs=1e-6)
    assert metrics["map25"] == pytest.approx(expected, abs=1e-6)


def test_coco_map_iou_thresholds():
    # a 2 x 2 object found by a 2 x 1 box (IoU 0.5): a hit at 0.25 and 0.5, a miss at 0.55 .. 0.95
    target = {"boxes": torch.tensor([[0.0, 0.0, 2.0, 2.0]]), "labels": torch.tensor([0])}
    pred = Detections(torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.tensor([0.5]), torch.tensor([0]))
    metrics = coco_metrics([pred], [target], num_classes=1)
    assert metrics["map25"] == pytest.approx(1.0) and metrics["map50"] == pytest.approx(1.0)
    assert metrics["map"] == pytest.approx(0.1, abs=1e-6)  # 1 of the 10 thresholds


def test_pixel_roc_auc_against_ranks():
    truth = np.array([[0, 1], [0, 1]], bool)
    assert pixel_roc_auc(np.array([[0.1, 0.9], [0.2, 0.8]]), truth) == pytest.approx(1.0)
    assert pixel_roc_auc(np.array([[0.1, 0.15], [0.2, 0.8]]), truth) == pytest.approx(0.75)
    assert pixel_roc_auc(np.zeros((2, 2)), np.zeros((2, 2), bool)) is None


def test_set_criterion_is_zero_focal_free_for_perfect_boxes():
    # boxes exactly on the ground truth give zero L1 and GIoU losses on the matched queries
    criterion = SetCriterion(num_classes=2, match_num=1)
    gt = torch.tensor([[0.25, 0.25, 0.125, 0.125]])
    logits = torch.full((1, 3, 2), -5.0)
    logits[0, 1, 1] = 5.0
    boxes = torch.tensor([[[0.7, 0.7, 0.1, 0.1], [0.25, 0.25, 0.125, 0.125], [0.5, 0.5, 0.2, 0.2]]])
    losses = criterion.matched_loss(logits, boxes, [gt], [torch.tensor([1])], torch.tensor([16.0, 16, 16, 16]))
    assert losses["loss_bbox"].item() == pytest.approx(0.0, abs=1e-7)
    assert losses["loss_giou"].item() == pytest.approx(0.0, abs=1e-6)
    assert 0 < losses["loss_class"].item() < 0.01
