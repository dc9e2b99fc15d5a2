"""Attention modules: shapes, masks, and equality to references gathered by hand with `math`."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest
import torch

import core.attention
from core.attention import (
    AxialAttention,
    ChannelAttention,
    MultiHeadAttention,
    RotaryEmbedding,
    WindowAttention,
    alibi_bias,
    alibi_slopes,
    shift_window_mask,
    window_partition,
    window_reverse,
)
from core.attention.math_kernel import math_attention

TOL = dict(atol=1e-5, rtol=1e-4)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def heads(x, n):
    b, length, c = x.shape
    return x.view(b, length, n, c // n).transpose(1, 2)


def test_mha_self_attention_equals_explicit_projection_math():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, kernel="sdpa").eval()
    x = rand(2, 7, 16)
    q, k, v = heads(mha.q_proj(x), 4), heads(mha.k_proj(x), 4), heads(mha.v_proj(x), 4)
    ref = mha.out_proj(math_attention(q, k, v).transpose(1, 2).flatten(2))
    torch.testing.assert_close(mha(x), ref, **TOL)


@pytest.mark.parametrize("kernel", ["math", "sdpa", "chunked"])
def test_key_padding_mask_equals_dropping_the_padded_keys(kernel):
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, kdim=6, kernel=kernel).eval()
    query, memory = rand(1, 4, 8), rand(1, 9, 6, seed=1)
    pad = torch.zeros(1, 9, dtype=torch.bool)
    pad[:, 6:] = True
    torch.testing.assert_close(mha(query, memory, key_padding_mask=pad), mha(query, memory[:, :6]), **TOL)


def test_mha_gqa_and_cross_attention_shapes():
    mha = MultiHeadAttention(32, 8, num_kv_heads=2, kdim=12)
    assert mha(rand(3, 5, 32), rand(3, 11, 12, seed=1)).shape == (3, 5, 32)
    assert mha.k_proj.out_features == 2 * 4


def test_mha_bad_padding_mask_shape():
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match="key_padding_mask must be"):
        mha(rand(2, 5, 8), key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))


def test_rotary_scores_depend_only_on_relative_position():
    rope = RotaryEmbedding(8)
    q, k = rand(1, 1, 1, 8), rand(1, 1, 1, 8, seed=1)

    def score(m, n):
        qm = rope(q, torch.tensor([m]))
        kn = rope(k, torch.tensor([n]))
        return (qm * kn).sum()

    torch.testing.assert_close(score(3, 1), score(10, 8))
    torch.testing.assert_close(score(0, 5), score(20, 25))
    assert not torch.allclose(score(3, 1), score(3, 2))
    torch.testing.assert_close(rope(q, torch.tensor([0])), q)  # position 0 is the identity


def test_alibi_slopes_and_bias():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    bias = alibi_bias(8, 3, 3)
    assert bias.shape == (1, 8, 3, 3)
    assert bias[0, 0, 2, 0] == pytest.approx(-0.5 * 2)
    assert len(alibi_slopes(6)) == 6


@pytest.mark.parametrize("position", ["rotary", "alibi", "relative"])
def test_positional_modes_run_with_grads(position):
    mha = MultiHeadAttention(16, 4, position=position, kernel="chunked")
    x = rand(2, 6, 16).requires_grad_()
    mha(x, causal=True).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_window_partition_round_trip():
    x = rand(2, 8, 12, 3)
    w = window_partition(x, 4)
    assert w.shape == (2 * 2 * 3, 16, 3)
    torch.testing.assert_close(window_reverse(w, 4, 8, 12), x)
    torch.testing.assert_close(w[1], x[0, 0:4, 4:8].reshape(16, 3))


def test_shift_mask_separates_regions():
    mask = shift_window_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert mask[0].all()  # top-left window holds one region
    # bottom-right window mixes four regions: token (0,0) and (3,3) of that window come from different ones
    assert not mask[3, 0, 15] and mask[3, 0, 1]


def region_labels(size, window, shift):
    """Region id of each pixel of the shifted grid, written directly from the Swin rule."""
    def band(i):
        return 0 if i < size - window else (1 if i < size - shift else 2)
    return torch.tensor([[band(i) * 3 + band(j) for j in range(size)] for i in range(size)])


@pytest.mark.parametrize("shift", [0, 2])
def test_window_attention_equals_gathered_reference(shift):
    torch.manual_seed(0)
    size, ws, dim, nh = 8, 4, 8, 2
    attn = WindowAttention(dim, nh, window_size=ws, shift_size=shift, kernel="sdpa").eval()
    with torch.no_grad():
        attn.relative_bias.table.normal_()
    x = rand(1, size, size, dim)
    rolled = torch.roll(x, (-shift, -shift), (1, 2))
    labels = region_labels(size, ws, shift) if shift else torch.zeros(size, size, dtype=torch.long)
    table = attn.relative_bias.table
    out = torch.zeros_like(x)
    for wy in range(0, size, ws):
        for wx in range(0, size, ws):
            coords = [(wy + i, wx + j) for i in range(ws) for j in range(ws)]
            tokens = torch.stack([rolled[0, y, xx] for y, xx in coords])[None]
            q, k, v = (heads(t, nh) for t in attn.qkv(tokens).chunk(3, dim=-1))
            bias = torch.stack([
                torch.stack([table[(y1 - y2 + ws - 1) * (2 * ws - 1) + (x1 - x2 + ws - 1)] for (y2, x2) in coords])
                for (y1, x1) in coords
            ]).permute(2, 0, 1)[None]
            keep = torch.tensor([[labels[a] == labels[b] for b in coords] for a in coords])
            o = attn.proj(math_attention(q, k, v, bias=bias, mask=keep).transpose(1, 2).flatten(2))[0]
            for n, (y, xx) in enumerate(coords):
                out[0, y, xx] = o[n]
    ref = torch.roll(out, (shift, shift), (1, 2))
    torch.testing.assert_close(attn(x), ref, **TOL)


def test_window_attention_pads_and_crops_odd_sizes():
    attn = WindowAttention(8, 2, window_size=4, shift_size=2)
    assert attn(rand(2, 6, 9, 8)).shape == (2, 6, 9, 8)


def test_axial_attention_equals_per_column_then_per_row_reference():
    torch.manual_seed(0)
    attn = AxialAttention(8, 2, kernel="chunked").eval()
    x = rand(2, 5, 6, 8)
    mid = torch.stack([torch.stack([attn.height(x[b, :, j][None])[0] for j in range(6)], dim=1) for b in range(2)])
    ref = torch.stack([torch.stack([attn.width(mid[b, i][None])[0] for i in range(5)]) for b in range(2)])
    torch.testing.assert_close(attn(x), ref, **TOL)


def test_channel_attention_equals_formula():
    torch.manual_seed(0)
    attn = ChannelAttention(8, 2).eval()
    with torch.no_grad():
        attn.temperature.copy_(torch.tensor([[[0.7]], [[1.9]]]))
    x = rand(2, 10, 8)
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    outs = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        qh = torch.nn.functional.normalize(q[..., sl].transpose(1, 2), dim=-1)
        kh = torch.nn.functional.normalize(k[..., sl].transpose(1, 2), dim=-1)
        a = torch.softmax(qh @ kh.transpose(1, 2) * attn.temperature[h], dim=-1)  # (b, 4, 4)
        outs.append(a @ v[..., sl].transpose(1, 2))
    ref = attn.proj(torch.cat(outs, dim=1).transpose(1, 2))
    torch.testing.assert_close(attn(x), ref, **TOL)
    assert attn.attention_weights(x).shape == (2, 2, 4, 4)


@pytest.mark.parametrize("module", ["mha", "window", "axial", "channel"])
def test_kernel_switch_keeps_outputs(module):
    torch.manual_seed(0)
    make = {
        "mha": lambda k: MultiHeadAttention(8, 2, kernel=k),
        "window": lambda k: WindowAttention(8, 2, window_size=4, shift_size=2, kernel=k),
        "axial": lambda k: AxialAttention(8, 2, kernel=k),
        "channel": lambda k: ChannelAttention(8, 2, kernel=k),
    }[module]
    ref = make("math").eval()
    x = rand(1, 8, 8, 8) if module in ("window", "axial") else rand(2, 8, 8)
    for kernel in ("sdpa", "chunked"):
        other = make(kernel).eval()
        other.load_state_dict(ref.state_dict())
        torch.testing.assert_close(other(x), ref(x), **TOL)


def test_package_exports_resolve_and_leave_every_submodule_reachable():
    for name in core.attention.__all__:
        assert getattr(core.attention, name) is not None, name
    for info in pkgutil.iter_modules(core.attention.__path__):
        module = importlib.import_module(f"core.attention.{info.name}")
        # an export named like its submodule would replace the module as a package attribute
        assert isinstance(getattr(core.attention, info.name), ModuleType) and getattr(core.attention, info.name) is module
