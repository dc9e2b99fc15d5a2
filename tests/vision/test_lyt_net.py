"""LYT-Net: YUV conversion, parameter count, attention wiring, overfitting a tiny batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vision.models.lyt_net import LYTNet, PixelSelfAttention, rgb_to_yuv
from vision.tasks.lowlight import LowLightTask
from vision.tiling import pad_to_multiple


def test_yuv_matches_bt601_values():
    white, red = torch.ones(1, 3, 1, 1), torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
    torch.testing.assert_close(rgb_to_yuv(white).flatten(), torch.tensor([1.0, 0.5, 0.5]), atol=1e-4, rtol=0)
    torch.testing.assert_close(rgb_to_yuv(red).flatten(), torch.tensor([0.299, 0.5 - 0.14713, 0.5 + 0.615]))


def test_default_parameter_count_is_45k():
    n = sum(p.numel() for p in LYTNet().parameters())
    assert n == 44_923 and abs(n - 45_000) / 45_000 < 0.01


def test_pixel_attention_matches_per_pixel_tokens():
    torch.manual_seed(0)
    block = PixelSelfAttention(dim=8, num_heads=4)
    x = torch.randn(2, 8, 3, 4)
    mha = block.attn
    tokens = x.flatten(2).transpose(1, 2)  # (b, 12, 8)
    q = mha.q_proj(tokens).view(2, 12, 4, 2).transpose(1, 2)
    k = mha.k_proj(tokens).view(2, 12, 4, 2).transpose(1, 2)
    v = mha.v_proj(tokens).view(2, 12, 4, 2).transpose(1, 2)
    probs = torch.softmax(q @ k.transpose(-1, -2) / 2**0.5, dim=-1)
    expected = mha.out_proj((probs @ v).transpose(1, 2).reshape(2, 12, 8)).transpose(1, 2).reshape(x.shape)
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-4)


def test_output_in_unit_range_and_size_check():
    model = LYTNet()
    out = model(torch.rand(2, 3, 16, 24))
    assert out.shape == (2, 3, 16, 24) and float(out.detach().min()) > 0 and float(out.detach().max()) < 1
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 3, 20, 24))


@pytest.mark.parametrize(("pool", "multiple"), [(4, 8), (8, 8), (16, 16), (12, 24)])
def test_size_multiple_follows_the_pooling(pool, multiple):
    torch.manual_seed(0)
    model = LYTNet(filters=8, pool=pool).eval()
    assert model.size_multiple == multiple
    image = torch.rand(1, 3, 20, 28)
    padded, _ = pad_to_multiple(image, model.size_multiple)
    with torch.no_grad():
        assert model(padded).shape == padded.shape
        out = LowLightTask(model).enhance(image)  # the task's whole-image path
        torch.testing.assert_close(out, model(padded)[..., :20, :28].clamp(0, 1))
    if multiple > 8:
        with pytest.raises(ValueError, match=f"multiples of {multiple}"):
            model(torch.rand(1, 3, 8 * (multiple // 8 + 1), multiple))


def test_lyt_net_overfits_one_batch():
    torch.manual_seed(0)
    model = LYTNet(filters=16)
    low = torch.rand(2, 3, 16, 16) * 0.15
    high = (low * 3).clamp(0, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = F.l1_loss(model(low), high).item()
    for _ in range(480):  # a slow, steady descent: 120 steps left seed 7 at 0.32 of the first loss
        opt.zero_grad()
        loss = F.l1_loss(model(low), high)
        loss.backward()
        opt.step()
    assert loss.item() < 0.4 * first
