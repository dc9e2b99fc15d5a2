"""HAT: windows, masks and attention against `core`'s math reference, parameter counts, overfitting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.attention import WindowAttention, shift_window_mask, window_partition, window_reverse
from core.attention.math_kernel import math_attention
from core.attention.overlapping_window import OverlappingWindowAttention
from core.profiling import count_parameters
from vision.models.hat import HAT, ChannelAttentionBlock, HybridAttentionBlock
from vision.tasks.sr import SRTask

TINY = {"embed_dim": 24, "depths": (2,), "num_heads": (2,), "window_size": 4, "compress_ratio": 3, "squeeze_factor": 4}



def test_window_partition_reverse_round_trip():
    x = torch.randn(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 3, 16, 5)
    torch.testing.assert_close(windows[1].view(4, 4, 5), x[0, 0:4, 4:8])  # second window of the first row
    torch.testing.assert_close(window_reverse(windows, 4, 8, 12), x)


def test_shift_mask_separates_regions_of_the_cyclic_shift():
    mask = shift_window_mask(8, 8, window=4, shift=2)
    assert mask.shape == (4, 16, 16) and mask.dtype == torch.bool
    assert mask[0].all()  # the top-left window holds one region
    # After rolling by -2, the top-right window's columns 0-1 come from x = 6..7 and columns 2-3
    # wrapped around from x = 0..1: two regions, attending only within themselves.
    cols = torch.arange(16) % 4
    left = cols < 2
    torch.testing.assert_close(mask[1], left[:, None] == left[None, :])
    rows = torch.arange(16) // 4
    top, left = rows < 2, cols < 2
    region = top.long() * 2 + left.long()
    torch.testing.assert_close(mask[3], region[:, None] == region[None, :])


@pytest.mark.parametrize("shift", [0, 2])
def test_window_attention_equals_math_on_gathered_windows(shift):
    torch.manual_seed(0)
    attn = WindowAttention(16, 2, window_size=4, shift_size=shift, kernel="sdpa").eval()
    x = torch.randn(2, 8, 8, 16)
    rolled = torch.roll(x, (-shift, -shift), dims=(1, 2))
    windows = window_partition(rolled, 4)  # (2*4, 16, 16)
    q, k, v = attn.qkv(windows).view(8, 16, 3, 2, 8).permute(2, 0, 3, 1, 4)
    mask = shift_window_mask(8, 8, 4, shift).repeat(2, 1, 1)[:, None] if shift else None
    out = math_attention(q, k, v, mask=mask, bias=attn.relative_bias())
    out = attn.proj(out.transpose(1, 2).reshape(8, 16, 16))
    expected = torch.roll(window_reverse(out, 4, 8, 8), (shift, shift), dims=(1, 2))
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-4)


def test_overlapping_attention_equals_math_on_gathered_windows():
    torch.manual_seed(0)
    attn = OverlappingWindowAttention(8, 2, window_size=4, overlap_ratio=0.5, kernel="sdpa").eval()
    assert attn.overlap_size == 6
    x = torch.randn(1, 8, 8, 8)
    qkv = attn.qkv(x)  # (1, 8, 8, 24)
    padded = torch.nn.functional.pad(qkv, (0, 0, 1, 1, 1, 1))  # keys/values zero-padded by (6 - 4) / 2
    heads = lambda t: t.reshape(t.shape[0], 2, 4).transpose(0, 1)[None]  # noqa: E731 - (1, 2, n, 4)
    outputs = torch.zeros(1, 8, 8, 8)
    for wy in range(2):
        for wx in range(2):
            q = qkv[0, 4 * wy:4 * wy + 4, 4 * wx:4 * wx + 4, :8].reshape(16, 8)
            kv = padded[0, 4 * wy:4 * wy + 6, 4 * wx:4 * wx + 6].reshape(36, 24)
            # bias of the key at window offset (ky, kx) for the query at (qy, qx): table[(ky-qy+3)*9 + (kx-qx+3)]
            qy, qx = torch.arange(16) // 4, torch.arange(16) % 4
            ky, kx = torch.arange(36) // 6, torch.arange(36) % 6
            index = (ky[None] - qy[:, None] + 3) * 9 + (kx[None] - qx[:, None] + 3)
            bias = attn.relative_bias.table[index].permute(2, 0, 1)[None]
            out = math_attention(heads(q), heads(kv[:, 8:16]), heads(kv[:, 16:]), bias=bias)
            outputs[0, 4 * wy:4 * wy + 4, 4 * wx:4 * wx + 4] = out[0].transpose(0, 1).reshape(4, 4, 8)
    torch.testing.assert_close(attn(x), attn.proj(outputs), atol=1e-5, rtol=1e-4)
    assert attn.attention_weights(x).shape == (4, 2, 16, 36)


def test_hybrid_block_adds_scaled_channel_branch():
    torch.manual_seed(0)
    block = HybridAttentionBlock(12, 2, 4, 0, 3, 4, 0.01, 2.0, True, 0.0, "math").eval()
    x = torch.randn(1, 8, 8, 12)
    y = block.norm1(x)
    conv = block.cab(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    h = x + block.attn(y) + 0.01 * conv
    torch.testing.assert_close(block(x), h + block.mlp(block.norm2(h)))


@pytest.mark.parametrize(
    ("config", "scale", "paper"),
    [({}, 4, 9.6e6), ({"embed_dim": 180, "compress_ratio": 3, "squeeze_factor": 30}, 4, 20.8e6)],
    ids=["HAT-S", "HAT"],
)
def test_parameter_counts_match_the_paper(config, scale, paper):
    n = count_parameters(HAT(scale=scale, **config))
    assert abs(n - paper) / paper < 0.01, n


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_task_pads_any_input_size_once_with_reflection(scale):
    torch.manual_seed(scale)
    model = HAT(scale=scale, **TINY).eval()
    assert model.size_multiple == 4
    x = torch.rand(1, 3, 7, 10)
    with pytest.raises(ValueError, match="multiples of the window 4"):
        model(x)
    seen = []
    model.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        expected = model(F.pad(x, (0, 2, 0, 1), mode="reflect"))[..., : 7 * scale, : 10 * scale]
        out = SRTask(model).super_resolve(x)
    assert seen[1:] == [(1, 3, 8, 12)]  # the task pads, the model runs once on the padded image
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_channel_attention_is_squeeze_excitation_with_sigmoid():
    torch.manual_seed(0)
    cab = ChannelAttentionBlock(12, compress_ratio=3, squeeze_factor=4)
    se = cab.excite
    assert (se.fc1.in_channels, se.fc1.out_channels, se.fc2.out_channels) == (12, 3, 12)
    x = torch.randn(2, 12, 5, 6)
    w1, b1 = se.fc1.weight.view(3, 12), se.fc1.bias
    w2, b2 = se.fc2.weight.view(12, 3), se.fc2.bias
    gate = torch.sigmoid(torch.relu(x.mean(dim=(2, 3)) @ w1.T + b1) @ w2.T + b2)
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])
    h = cab.conv2(F.gelu(cab.conv1(x)))
    torch.testing.assert_close(cab(x), se(h))


def test_state_dict_keys_of_the_squeeze_excitation_and_upsampler():
    keys = set(HAT(scale=4, **TINY).state_dict())
    assert {"groups.0.blocks.0.cab.excite.fc1.weight", "groups.0.blocks.1.cab.excite.fc2.bias"} <= keys
    assert not any(".excite.reduce." in k or ".excite.expand." in k for k in keys)
    assert {"upsample.0.weight", "upsample.2.weight", "conv_last.weight"} <= keys
    assert "mean" not in keys  # the DIV2K mean is a constant, not a weight


def test_kernels_agree():
    torch.manual_seed(0)
    model = HAT(scale=2, kernel="math", **TINY).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        ref = model(x)
        for block in model.modules():
            if hasattr(block, "kernel") and isinstance(block.kernel, str):
                block.kernel = "sdpa"
        torch.testing.assert_close(model(x), ref, atol=1e-5, rtol=1e-4)


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = HAT(scale=2, drop_path_rate=0.0, **TINY)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    for _ in range(60):
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first, (first, loss.item())


def test_direct_upsampler_of_the_small_config():
    model = HAT(scale=3, upsampler="pixelshuffledirect", **TINY).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 8, 12)).shape == (1, 3, 24, 36)
        assert SRTask(model).super_resolve(torch.rand(1, 3, 6, 9)).shape == (1, 3, 18, 27)
    conv = model.upsample[0]
    assert (conv.in_channels, conv.out_channels) == (24, 3 * 9)
    with pytest.raises(ValueError, match="unknown upsampler"):
        HAT(upsampler="nearest", **TINY)
