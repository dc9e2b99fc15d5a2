"""Head split/merge helpers against explicit view/permute and channel slicing."""

from __future__ import annotations

import pytest
import torch

from core.attention import merge_heads, split_heads, split_qkv


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_split_heads_equals_view_transpose_and_head_h_owns_its_channel_block():
    x = rand(2, 5, 12)
    out = split_heads(x, 3)
    assert out.shape == (2, 3, 5, 4)
    torch.testing.assert_close(out, x.view(2, 5, 3, 4).transpose(1, 2), rtol=0, atol=0)
    for h in range(3):
        torch.testing.assert_close(out[:, h], x[..., 4 * h : 4 * h + 4], rtol=0, atol=0)


def test_merge_heads_inverts_split_heads_both_ways():
    x = rand(2, 5, 12)
    torch.testing.assert_close(merge_heads(split_heads(x, 4)), x, rtol=0, atol=0)
    y = rand(2, 4, 5, 3, seed=1)
    torch.testing.assert_close(split_heads(merge_heads(y), 4), y, rtol=0, atol=0)
    torch.testing.assert_close(merge_heads(y), y.permute(0, 2, 1, 3).reshape(2, 5, 12), rtol=0, atol=0)


def test_split_qkv_equals_fused_view_permute_and_per_part_split():
    x = rand(2, 7, 3 * 4 * 2)
    q, k, v = split_qkv(x, 4)
    ref = x.view(2, 7, 3, 4, 2).permute(2, 0, 3, 1, 4)
    for got, want in zip((q, k, v), ref, strict=True):
        assert got.shape == (2, 4, 7, 2)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for got, part in zip((q, k, v), x.chunk(3, dim=-1), strict=True):  # layout [q | k | v]
        torch.testing.assert_close(got, split_heads(part, 4), rtol=0, atol=0)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "expanded"])
def test_non_contiguous_inputs_give_the_values_of_their_contiguous_copy(layout):
    base = rand(2, 12, 6)
    x = {
        "transposed": base.transpose(1, 2),  # (2, 6, 12), last-axis stride 6
        "sliced": rand(2, 6, 20)[..., 3:15],
        "expanded": rand(1, 6, 12).expand(2, -1, -1),
    }[layout]
    assert not x.is_contiguous()
    torch.testing.assert_close(split_heads(x, 3), split_heads(x.contiguous(), 3), rtol=0, atol=0)
    q, k, v = split_qkv(x, 2)
    for got, want in zip((q, k, v), split_qkv(x.contiguous(), 2), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    out = rand(2, 3, 4, 6).transpose(2, 3)  # (2, 3, 6, 4), non-contiguous like a transposed attention output
    torch.testing.assert_close(merge_heads(out), merge_heads(out.contiguous()), rtol=0, atol=0)


def test_split_heads_is_a_view_and_gradients_reach_the_input():
    x = rand(2, 5, 8).requires_grad_()
    out = split_heads(x, 2)
    assert out.data_ptr() == x.data_ptr()
    weight = rand(2, 2, 5, 4, seed=3)
    (out * weight).sum().backward()
    torch.testing.assert_close(x.grad, merge_heads(weight), rtol=0, atol=0)


def test_bad_shapes_raise_value_errors_naming_the_shape():
    with pytest.raises(ValueError, match=r"split_heads expects \(batch, seq, heads \* head_dim\) with heads=3; got \(2, 5, 8\)"):
        split_heads(rand(2, 5, 8), 3)
    with pytest.raises(ValueError, match=r"split_heads .* got \(5, 8\)"):
        split_heads(rand(5, 8), 2)
    with pytest.raises(ValueError, match=r"split_qkv expects \(batch, seq, 3 \* heads \* head_dim\) with heads=2; got \(2, 5, 8\)"):
        split_qkv(rand(2, 5, 8), 2)
    with pytest.raises(ValueError, match=r"merge_heads expects .* got \(2, 5, 8\)"):
        merge_heads(rand(2, 5, 8))
