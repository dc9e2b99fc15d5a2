"""Test-time flip ensemble: views map boxes back exactly, weighted box fusion by hand, SpecDETR's fused output is equivariant."""

from __future__ import annotations

import pytest
import torch

from vision.detection import Detections
from vision.flip_ensemble import apply_view, flip_ensemble, fuse_detections, invert_boxes, views
from vision.models.specdetr import SpecDETR


def test_views_are_the_eight_of_d4_and_invert_boxes_maps_a_pixel_back():
    h, w = 5, 7
    image = torch.zeros(1, 1, h, w)
    image[0, 0, 1, 4] = 1.0  # the pixel's box: x0 4, y0 1, x1 5, y1 2
    seen = set()
    for view in views():
        viewed = apply_view(image, view)[0, 0]
        seen.add(tuple(viewed.flatten().nonzero()[0].tolist()) + tuple(viewed.shape))
        row, col = (viewed == 1).nonzero()[0].tolist()
        back = invert_boxes(torch.tensor([[col, row, col + 1, row + 1]], dtype=torch.float32), view, (h, w))
        assert back.tolist() == [[4.0, 1.0, 5.0, 2.0]]
    assert len(seen) == 8  # every view puts the pixel somewhere else


def test_fuse_detections_by_hand():
    a = Detections(torch.tensor([[0.0, 0.0, 2.0, 2.0], [10.0, 10.0, 11.0, 11.0]]), torch.tensor([0.8, 0.5]), torch.tensor([1, 0]))
    b = Detections(torch.tensor([[0.5, 0.0, 2.5, 2.0], [0.0, 0.0, 2.0, 2.0]]), torch.tensor([0.4, 0.6]), torch.tensor([1, 2]))
    fused = fuse_detections([a, b], count=2)
    got = {(int(lbl), round(float(s), 6)): bx.tolist() for bx, s, lbl in zip(fused.boxes, fused.scores, fused.labels, strict=True)}
    # class 1: boxes IoU 1.5 / 2.5 = 0.6 > 0.3, fused score (0.8 + 0.4) / 2, box weighted 2:1
    assert got.keys() == {(1, 0.6), (2, 0.3), (0, 0.25)}
    assert got[(1, 0.6)] == pytest.approx([(0.8 * 0.0 + 0.4 * 0.5) / 1.2, 0.0, (0.8 * 2.0 + 0.4 * 2.5) / 1.2, 2.0])
    assert got[(2, 0.3)] == [0.0, 0.0, 2.0, 2.0]  # same place, other class: its own cluster
    assert got[(0, 0.25)] == [10.0, 10.0, 11.0, 11.0]


def test_fuse_detections_of_nothing_is_empty():
    empty = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))
    assert len(fuse_detections([empty, empty], count=2).scores) == 0


def test_specdetr_flip_ensemble_is_equivariant():
    torch.manual_seed(0)
    model = SpecDETR(in_channels=6, num_classes=3, embed_dim=16, num_encoder_layers=1, num_decoder_layers=1, num_heads=2,
                     ffn_ratio=2, num_queries=20, max_detections=20, test_time_augment=True).eval()
    cube = torch.rand(1, 6, 8, 10)
    found = model.detect(model(cube), cube)[0]
    assert len(found.scores) > 0 and (found.boxes[:, [0, 2]] <= 10 + 1e-4).all() and (found.boxes[:, [1, 3]] <= 8 + 1e-4).all()
    flipped = cube.flip(-1)
    mirrored = model.detect(model(flipped), flipped)[0]
    expected = invert_boxes(found.boxes, (False, True, False), (8, 10))  # a left-right flip is its own inverse

    order, mirrored_order = found.scores.argsort(), mirrored.scores.argsort()
    assert torch.allclose(mirrored.scores[mirrored_order], found.scores[order], atol=1e-5)
    assert torch.allclose(mirrored.boxes[mirrored_order], expected[order], atol=1e-3)
    # without the flag, detect is the last layer's top scores after class-agnostic NMS, unchanged
    model.test_time_augment = False
    plain = model.detect(model(cube), cube)[0]
    assert len(plain.scores) <= 20
    assert torch.equal(flip_ensemble(lambda x: model.top_detections(model(x), suppress=False), cube)[0].scores, found.scores)
