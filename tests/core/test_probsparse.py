"""ProbSparse attention (Informer) against the `math` kernel and the lazy-query rule."""

from __future__ import annotations

import math

import pytest
import torch

from core.attention import MultiHeadAttention, ProbSparseAttention, probsparse_attention
from core.attention.math_kernel import math_attention


@pytest.mark.parametrize("causal", [False, True])
def test_equals_full_attention_when_every_query_is_active(causal):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 12, 8) for _ in range(3))
    # factor * ceil(ln 12) = 30 >= 12: all queries active
    out = probsparse_attention(q, k, v, factor=10, causal=causal, kernel="math")
    torch.testing.assert_close(out, math_attention(q, k, v, causal=causal), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_lazy_queries_get_the_uniform_average_and_active_ones_full_attention(causal):
    torch.manual_seed(1)
    length = 64
    q, k, v = (torch.randn(1, 2, length, 8) for _ in range(3))
    out = probsparse_attention(q, k, v, factor=1, causal=causal, kernel="math", generator=torch.Generator().manual_seed(0))
    full = math_attention(q, k, v, causal=causal)
    if causal:
        uniform = v.cumsum(2) / torch.arange(1, length + 1, dtype=v.dtype)[:, None]
    else:
        uniform = v.mean(2, keepdim=True).expand_as(v)
    is_full = torch.isclose(out, full, atol=1e-5).all(-1)
    is_uniform = torch.isclose(out, uniform, atol=1e-5).all(-1)
    assert (is_full | is_uniform).all()  # every row is one or the other
    n_top = math.ceil(math.log(length))  # factor 1
    assert ((is_full & ~is_uniform).sum(-1) <= n_top).all()
    assert ((is_full & ~is_uniform).sum(-1) >= n_top - 1).all()


def test_the_most_peaked_query_is_active():
    torch.manual_seed(0)
    length = 40
    q, k, v = 0.01 * torch.randn(1, 1, length, 8), torch.randn(1, 1, length, 8), torch.randn(1, 1, length, 8)
    q[0, 0, 7] = 10.0 * torch.randn(8)  # scores spread widely: max - mean is largest on any key sample
    full = math_attention(q, k, v)
    for seed in range(5):
        out = probsparse_attention(q, k, v, factor=1, kernel="math", generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(out[0, 0, 7], full[0, 0, 7], atol=1e-5, rtol=1e-4)


def test_kernels_agree_and_gradients_flow():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 30, 8, requires_grad=True) for _ in range(3))
    a = probsparse_attention(q, k, v, factor=2, kernel="math", generator=torch.Generator().manual_seed(3))
    b = probsparse_attention(q, k, v, factor=2, kernel="sdpa", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    a.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


def test_module_and_errors():
    layer = ProbSparseAttention(16, 4, factor=2, kernel="math")
    x, memory = torch.randn(2, 20, 16), torch.randn(2, 30, 16)
    assert layer(x).shape == (2, 20, 16)
    assert layer(x, causal=True).shape == (2, 20, 16)
    assert layer(x, memory).shape == (2, 20, 16)
    with pytest.raises(ValueError, match="q_len == k_len"):
        probsparse_attention(torch.randn(1, 1, 4, 2), torch.randn(1, 1, 5, 2), torch.randn(1, 1, 5, 2), causal=True)
    with pytest.raises(ValueError, match="not divisible"):
        ProbSparseAttention(10, 4)
    with pytest.raises(ValueError, match=r"\(batch, heads, seq, head_dim\)"):
        probsparse_attention(torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2))


@pytest.mark.parametrize("causal", [False, True])
def test_module_with_every_query_active_equals_multihead_attention_with_its_weights(causal):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, kernel="math").eval()
    layer = ProbSparseAttention(16, 4, factor=10, kernel="math").eval()  # 10 * ceil(ln 12) >= 12: all active
    layer.load_state_dict(mha.state_dict())  # the same projections, under the same names
    x = torch.randn(2, 12, 16)
    torch.testing.assert_close(layer(x, causal=causal), mha(x, causal=causal), atol=1e-5, rtol=1e-4)
    memory = torch.randn(2, 9, 16)
    torch.testing.assert_close(layer(x, memory), mha(x, memory), atol=1e-5, rtol=1e-4)
