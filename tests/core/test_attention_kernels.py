"""Every kernel of `core.attention.attention` against the `math` reference (values and gradients).

fp32 on CPU (Triton through its interpreter, see tests/conftest.py); tolerance 1e-4 absolute and
relative for values and gradients. The `linear` kernel approximates softmax and is tested
against its own quadratic form in test_linear_attention.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from core.attention import attention
from core.attention.chunked_kernel import chunked_attention
from core.attention.math_kernel import math_attention

TOL = dict(atol=1e-4, rtol=1e-4)


def rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


def loop_reference(q, k, v, keep, scale):
    """Attention written out one query at a time, with an explicit keep-mask `(B, H, Lq, Lk)`."""
    b, h, lq, _ = q.shape
    out = torch.zeros(b, h, lq, v.shape[-1])
    for bi in range(b):
        for hi in range(h):
            for i in range(lq):
                idx = keep[bi, hi, i].nonzero().flatten()
                if len(idx) == 0:
                    continue
                s = torch.stack([q[bi, hi, i] @ k[bi, hi, j] * scale for j in idx])
                w = torch.exp(s - s.max())
                w = w / w.sum()
                out[bi, hi, i] = (w[:, None] * v[bi, hi, idx]).sum(0)
    return out


def test_math_kernel_equals_loop_reference_with_causal_offset_and_mask():
    q, k, v = rand(2, 2, 5, 4, seed=1), rand(2, 2, 7, 4, seed=2), rand(2, 2, 7, 3, seed=3)
    mask = rand(2, 1, 5, 7, seed=4) > -0.5
    out = math_attention(q, k, v, mask=mask, causal=True)
    rows = torch.arange(5)[:, None] + 2  # last query aligns with last key
    keep = mask.expand(2, 2, 5, 7) & (torch.arange(7)[None, :] <= rows)
    torch.testing.assert_close(out, loop_reference(q, k, v, keep, 0.5), **TOL)


def test_fully_masked_rows_are_zero_for_every_exact_kernel():
    q, k, v = rand(1, 2, 6, 8), rand(1, 2, 3, 8, seed=1), rand(1, 2, 3, 8, seed=2)
    for kernel in ("math", "sdpa", "chunked", "triton"):
        out = attention(q, k, v, causal=True, kernel=kernel)  # q_len > k_len: first 3 queries see nothing
        assert torch.all(out[:, :, :3] == 0), kernel
        assert torch.isfinite(out).all(), kernel


CASES = {
    "plain": dict(lq=9, lk=9),
    "causal": dict(lq=9, lk=9, causal=True),
    "causal_q_shorter": dict(lq=5, lk=11, causal=True),
    "causal_q_longer": dict(lq=11, lk=6, causal=True),
    "cross": dict(lq=7, lk=13),
    "bool_mask": dict(lq=8, lk=10, mask="bool"),
    "additive_mask": dict(lq=8, lk=10, mask="float"),
    "bias": dict(lq=8, lk=10, bias=True),
    "bias_mask_causal": dict(lq=10, lk=10, bias=True, mask="bool", causal=True),
    "gqa": dict(lq=8, lk=8, kv_heads=2, causal=True),
    "key_padding": dict(lq=6, lk=9, mask="padding"),
}


def make_case(lq, lk, causal=False, mask=None, bias=False, kv_heads=4, heads=4, d=16):
    q = rand(2, heads, lq, d, seed=10).requires_grad_()
    k = rand(2, kv_heads, lk, d, seed=11).requires_grad_()
    v = rand(2, kv_heads, lk, d, seed=12).requires_grad_()
    kwargs = {"causal": causal}
    if mask == "bool":
        m = rand(2, 1, lq, lk, seed=13) > -1.0
        m[..., -1] = True  # keep every row attendable so sdpa is compared on ordinary rows too
        kwargs["mask"] = m
    elif mask == "float":
        kwargs["mask"] = rand(1, heads, lq, lk, seed=14)
    elif mask == "padding":
        m = torch.ones(2, 1, 1, lk, dtype=torch.bool)
        m[1, ..., -3:] = False
        kwargs["mask"] = m
    if bias:
        kwargs["bias"] = (0.5 * rand(1, heads, lq, lk, seed=15)).requires_grad_()
    return q, k, v, kwargs


def grads(out, tensors):
    g = rand(*out.shape, seed=99)
    return torch.autograd.grad((out * g).sum(), tensors, allow_unused=True)


@pytest.mark.parametrize("kernel", ["sdpa", "chunked", "triton"])
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_matches_math_values_and_gradients(kernel, case):
    q, k, v, kwargs = make_case(**CASES[case])
    tensors = [q, k, v] + ([kwargs["bias"]] if "bias" in kwargs else [])
    ref = attention(q, k, v, kernel="math", **kwargs)
    out = attention(q, k, v, kernel=kernel, **kwargs)
    torch.testing.assert_close(out, ref, **TOL)
    for g_out, g_ref in zip(grads(out, tensors), grads(ref, tensors), strict=True):
        torch.testing.assert_close(g_out, g_ref, **TOL)


@pytest.mark.parametrize("case", ["causal_q_shorter", "causal_q_longer", "bias_mask_causal", "key_padding"])
def test_chunked_with_blocks_that_do_not_divide_lengths(case):
    q, k, v, kwargs = make_case(**CASES[case])
    tensors = [q, k, v] + ([kwargs["bias"]] if "bias" in kwargs else [])
    ref = math_attention(q, k, v, **kwargs)
    mask = kwargs.pop("mask", None)
    mask = mask if mask is None else mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))
    out = chunked_attention(q, k, v, mask=mask, block_q=4, block_k=3, **kwargs)
    torch.testing.assert_close(out, ref, **TOL)
    for g_out, g_ref in zip(grads(out, tensors), grads(ref, tensors), strict=True):
        torch.testing.assert_close(g_out, g_ref, **TOL)


def test_gqa_equals_explicit_head_repeat():
    q, k, v = rand(1, 6, 5, 8), rand(1, 2, 5, 8, seed=1), rand(1, 2, 5, 8, seed=2)
    out = attention(q, k, v, kernel="math")
    k_rep, v_rep = k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1)
    torch.testing.assert_close(out, math_attention(q, k_rep, v_rep), **TOL)


def test_default_scale_is_inverse_sqrt_head_dim():
    q, k, v = rand(1, 1, 4, 9), rand(1, 1, 4, 9, seed=1), rand(1, 1, 4, 9, seed=2)
    torch.testing.assert_close(attention(q, k, v, kernel="math"), attention(q, k, v, scale=1 / math.sqrt(9), kernel="math"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(q=rand(2, 4, 8), k=rand(2, 4, 8), v=rand(2, 4, 8)), r"\(batch, heads, seq, head_dim\)"),
        (dict(q=rand(1, 3, 4, 8), k=rand(1, 2, 4, 8), v=rand(1, 2, 4, 8)), "must divide query heads"),
        (dict(q=rand(1, 2, 4, 8), k=rand(1, 2, 4, 6), v=rand(1, 2, 4, 6)), "head_dim differ"),
        (dict(q=rand(1, 2, 4, 8), k=rand(1, 2, 5, 8), v=rand(1, 2, 4, 8)), "share heads and length"),
        (dict(q=rand(1, 2, 4, 8), k=rand(1, 2, 4, 8).double(), v=rand(1, 2, 4, 8)), "floating dtype"),
        (dict(q=rand(1, 2, 4, 8), k=rand(1, 2, 4, 8), v=rand(1, 2, 4, 8), mask=torch.ones(3, 4, dtype=torch.bool)), "does not broadcast"),
        (dict(q=rand(1, 2, 4, 8), k=rand(1, 2, 4, 8), v=rand(1, 2, 4, 8), bias=torch.ones(4, 4, dtype=torch.long)), "bias must be a float"),
        (dict(q=rand(1, 2, 4, 8), k=rand(1, 2, 4, 8), v=rand(1, 2, 4, 8), kernel="flash9"), "unknown attention kernel"),
    ],
)
def test_bad_inputs_raise_value_errors_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        attention(**kwargs)


def test_math_softmax_keeps_fully_masked_rows_zero_with_finite_gradients():
    """torch's fused softmax gives NaN on an all -inf row; the math kernel gives 0 and finite grads."""
    q, k, v = (rand(1, 2, n, 4, seed=s).requires_grad_() for n, s in ((3, 0), (5, 1), (5, 2)))
    additive = torch.zeros(1, 1, 3, 5)
    additive[..., 1, :] = float("-inf")  # row 1 attends nothing
    bias = rand(1, 2, 3, 5, seed=3).requires_grad_()
    out = math_attention(q, k, v, mask=additive, bias=bias)
    assert torch.equal(out[:, :, 1], torch.zeros(1, 2, 4))
    out.sum().backward()
    for t in (q, k, v, bias):
        assert torch.isfinite(t.grad).all()
    assert torch.equal(bias.grad[:, :, 1], torch.zeros(1, 2, 5))
    # the other rows are a plain softmax
    plain = torch.softmax((q @ k.transpose(-2, -1)) / 2 + bias, dim=-1) @ v
    torch.testing.assert_close(out[:, :, [0, 2]], plain[:, :, [0, 2]])
