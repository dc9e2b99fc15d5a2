"""SpecDETR: grid_sample deformable sampling against a direct bilinear reference, denoising masks, and overfitting one tiny scene."""

from __future__ import annotations

import math

import pytest
import torch

from core.attention import MultiHeadAttention
from vision.detection import SetCriterion, coco_metrics
from vision.models.specdetr import SpecDETR, denoising_attention_mask
from vision.models.specdetr_blocks import box_position_code, deformable_sample


def _bilinear(image: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Direct bilinear read of `image (dim, h, w)` at normalized (x, y): pixel centres at (i + 0.5) / size, zeros outside."""
    dim, h, w = image.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(dim, dtype=image.dtype)
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * image[:, yy, xx]
    return out


def test_deformable_sample_matches_direct_bilinear_reference():
    torch.manual_seed(0)
    b, heads, dim, q, points = 2, 2, 3, 4, 3
    shapes = [(5, 6), (1, 1)]
    value = torch.randn(b, sum(h * w for h, w in shapes), heads, dim, dtype=torch.float64)
    locations = torch.rand(b, q, heads, len(shapes), points, 2, dtype=torch.float64) * 1.4 - 0.2  # some outside
    weights = torch.rand(b, q, heads, len(shapes), points, dtype=torch.float64)
    got = deformable_sample(value, shapes, locations, weights).view(b, q, heads, dim)
    starts = [0, shapes[0][0] * shapes[0][1]]
    for bi in range(b):
        for qi in range(q):
            for hd in range(heads):
                want = torch.zeros(dim, dtype=torch.float64)
                for lv, (h, w) in enumerate(shapes):
                    image = value[bi, starts[lv]:starts[lv] + h * w, hd].T.reshape(dim, h, w)
                    for p in range(points):
                        x, y = locations[bi, qi, hd, lv, p].tolist()
                        want += weights[bi, qi, hd, lv, p] * _bilinear(image, x, y)
                torch.testing.assert_close(got[bi, qi, hd], want, atol=1e-10, rtol=1e-10)


def test_box_position_code_layout():
    code = box_position_code(torch.tensor([[0.1, 0.2, 0.3, 0.4]]), num_feats=4)
    assert code.shape == (1, 16)
    # the y part comes first: sin(2 pi y / 1), cos(2 pi y / 1), sin(2 pi y / T^0.5), cos(...)
    assert code[0, 0].item() == pytest.approx(math.sin(2 * math.pi * 0.2), abs=1e-6)
    assert code[0, 4].item() == pytest.approx(math.sin(2 * math.pi * 0.1), abs=1e-6)


def test_denoising_mask_isolates_groups():
    attend = denoising_attention_mask(num_denoising=4, groups=2, num_queries=3, device=torch.device("cpu"))
    assert attend.shape == (7, 7)
    assert not attend[4:, :4].any() and attend[4:, 4:].all()            # matching queries never see denoising ones
    assert attend[:2, :2].all() and not attend[:2, 2:4].any() and attend[:2, 4:].all()
    assert attend[2:4, 2:4].all() and not attend[2:4, :2].any()


def test_decoder_self_attention_uses_core_attention_with_its_kernel():
    model = SpecDETR(in_channels=5, num_classes=2, embed_dim=16, num_encoder_layers=1, num_decoder_layers=1, num_heads=2,
                     ffn_ratio=2, num_queries=10, decoder_self_attention=True, kernel="math")
    layer = model.decoder[0]
    assert isinstance(layer.self_attn, MultiHeadAttention) and layer.self_attn.kernel == "math" and model.kernel == "math"
    targets = [{"boxes": torch.tensor([[1.0, 1.0, 2.0, 2.0]]), "labels": torch.tensor([1])}] * 2
    out = model.train()(torch.rand(2, 5, 6, 6), targets)
    assert out.num_denoising == 2 * out.denoising_groups and out.logits.shape == (1, 2, out.num_denoising + 10, 2)
    assert SpecDETR().__class__(num_classes=4).embed_dim == 256  # paper defaults


def test_paper_configuration_has_about_16m_parameters():
    model = SpecDETR(num_classes=8)
    assert 15.5e6 < sum(p.numel() for p in model.parameters()) < 16.5e6


@pytest.mark.slow
def test_specdetr_overfits_one_tiny_scene():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    cube = 0.3 + 0.05 * torch.rand(1, 6, 12, 12, generator=gen)
    cube[0, :, 2, 3] = torch.tensor([0.9, 0.1, 0.9, 0.1, 0.9, 0.1])      # class 0, one pixel
    cube[0, :, 7:9, 8:10] = torch.tensor([0.1, 0.9, 0.1, 0.9, 0.1, 0.9])[:, None, None]  # class 1, 2 x 2
    targets = [{"boxes": torch.tensor([[3.0, 2.0, 4.0, 3.0], [8.0, 7.0, 10.0, 9.0]]), "labels": torch.tensor([0, 1])}]
    model = SpecDETR(in_channels=6, num_classes=2, embed_dim=32, num_encoder_layers=1, num_decoder_layers=2, num_heads=2,
                     ffn_ratio=2, num_queries=20, num_denoising_queries=20, candidate_box_size=0.1, max_detections=20)
    criterion = SetCriterion(num_classes=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = None
    for _ in range(200):
        losses = criterion(model.train()(cube, targets), targets, (12, 12))
        loss = sum(losses.values())
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first
    detections = model.eval().detect(model(cube))
    metrics = coco_metrics(detections, targets, num_classes=2)
    assert metrics["map50"] > 0.99 and metrics["map"] > 0.5
