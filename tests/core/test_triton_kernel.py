"""The Triton flash-attention kernel against an explicit softmax(q k^T * scale + bias + mask) v.

On CPU the kernels run in Triton's interpreter, which `triton.jit` selects when it decorates them,
so TRITON_INTERPRET=1 must be set before `core.kernels` is first imported (tests/conftest.py does
it for the whole suite; the line below covers running this file alone). Shapes stay tiny because
the interpreter is slow. When the kernels are compiled (a CUDA machine without TRITON_INTERPRET),
the same tests run on the GPU.

Tolerances: float32 values and gradients within 1e-4 (absolute and relative) of a float64
reference; float16/bfloat16 errors against that reference at most twice the error of torch's own
`scaled_dot_product_attention` in the same dtype (plus 1e-5 of slack for the error measure itself).
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from core.attention import triton_kernel  # noqa: E402
from core.attention.triton_kernel import triton_attention, triton_available  # noqa: E402
from core.kernels.flash_attention import INTERPRETED, flash_attention_forward  # noqa: E402

TOL = 1e-4
DEVICE = "cpu" if INTERPRETED else ("cuda" if torch.cuda.is_available() else None)


@pytest.fixture
def device() -> str:
    if DEVICE is None:
        pytest.fail("the Triton kernels were compiled for CUDA but there is no GPU: set "
                    "TRITON_INTERPRET=1 before core is first imported (tests/conftest.py)")
    return DEVICE


def reference_attention(q, k, v, *, mask=None, bias=None, causal=False, scale=None):
    """softmax(q k^T * scale + bias + mask) v; a row with no attendable key gives 0."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    if causal:
        q_len, k_len = q.shape[-2], k.shape[-2]
        allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=q.device).tril(k_len - q_len)
        scores = scores.masked_fill(~allowed, float("-inf"))
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
    probs = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    return probs @ v


def _outputs_and_grads(fn, tensors, grad_out, **kwargs):
    """fn's output and its gradients w.r.t. every tensor (None entries are passed through)."""
    leaves = [None if t is None else t.detach().requires_grad_() for t in tensors]
    q, k, v, bias = leaves
    out = fn(q, k, v, bias=bias, **kwargs)
    grads = torch.autograd.grad(out, [t for t in leaves if t is not None], grad_out.to(out.dtype))
    return [out.detach(), *grads]


def _assert_matches_reference(q, k, v, bias=None, **kwargs):
    grad_out = torch.randn(q.shape[:3] + v.shape[3:], device=q.device)
    ours = _outputs_and_grads(triton_attention, (q, k, v, bias), grad_out, **kwargs)
    double = lambda t: None if t is None else t.double()  # noqa: E731
    kwargs = {key: double(val) if isinstance(val, torch.Tensor) and val.is_floating_point() else val
              for key, val in kwargs.items()}
    ref = _outputs_and_grads(
        reference_attention, [double(t) for t in (q, k, v, bias)], grad_out.double(), **kwargs
    )
    names = ["out", "dq", "dk", "dv", "dbias"]
    for name, a, b in zip(names, ours, ref, strict=False):
        assert a.shape == b.shape, f"{name}: shape {tuple(a.shape)} vs reference {tuple(b.shape)}"
        assert torch.isfinite(a).all(), f"{name} has non-finite values"
        torch.testing.assert_close(
            a, b.float(), atol=TOL, rtol=TOL, msg=lambda m, name=name: f"{name}: {m}"
        )


def _randn(*shape, device):
    return torch.randn(*shape, device=device)


# (batch, heads, q_len, k_len, head_dim, causal, bias shape or None, mask kind or None, scale)
CASES = {
    "noncausal-bias-over-batch-37x50-d32": (2, 1, 37, 50, 32, False, (1, 1, 37, 50), None, None),
    "causal-square-50-d16-scale": (1, 2, 50, 50, 16, True, None, None, 0.3),
    "causal-q<k-20x50-d64": (1, 2, 20, 50, 64, True, (1, 2, 20, 50), None, None),
    "causal-q>k-empty-rows-50x20-d16": (1, 2, 50, 20, 16, True, (50, 20), None, None),
    "bool-mask-37-d32": (1, 2, 37, 37, 32, False, None, "bool", None),
    "additive-padding-mask-and-bias-causal-37x50-d16": (2, 1, 37, 50, 16, True, (1, 1, 37, 50), "padding", None),
    "head-dim-24-zero-padded-37": (1, 2, 37, 37, 24, False, (2, 37, 37), None, None),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_matches_reference(case, device):
    batch, heads, q_len, k_len, head_dim, causal, bias_shape, mask_kind, scale = case
    torch.manual_seed(0)
    q = _randn(batch, heads, q_len, head_dim, device=device)
    k = _randn(batch, heads, k_len, head_dim, device=device)
    v = _randn(batch, heads, k_len, head_dim, device=device)
    bias = None if bias_shape is None else _randn(*bias_shape, device=device)
    mask = None
    if mask_kind == "bool":
        mask = torch.rand(batch, heads, q_len, k_len, device=device) > 0.3
        mask[0, 1, 5] = False  # one query that sees nothing
    elif mask_kind == "padding":
        # Additive key-padding mask (batch, 1, 1, k_len): the second sequence has 31 valid keys.
        mask = torch.zeros(batch, 1, 1, k_len, device=device)
        mask[1, ..., 31:] = float("-inf")
    _assert_matches_reference(q, k, v, bias, mask=mask, causal=causal, scale=scale)


def test_fully_masked_rows_are_exact_zeros(device):
    torch.manual_seed(1)
    q, k, v = (_randn(1, 2, 20, 16, device=device).requires_grad_() for _ in range(3))
    bias = _randn(1, 2, 20, 20, device=device).requires_grad_()
    mask = torch.ones(1, 2, 20, 20, dtype=torch.bool, device=device)
    mask[:, :, [3, 17]] = False
    out = triton_attention(q, k, v, mask=mask, bias=bias)
    out.backward(torch.randn_like(out))
    assert (out[:, :, [3, 17]] == 0).all()
    assert (q.grad[:, :, [3, 17]] == 0).all() and (bias.grad[:, :, [3, 17]] == 0).all()
    assert all(torch.isfinite(t).all() for t in (out, q.grad, k.grad, v.grad, bias.grad))


def test_finite_min_mask_matches_reference(device):
    """An additive mask of finfo.min (a common convention) is finite: a fully masked row then
    averages v uniformly, as in the reference, instead of being zeroed like a -inf row."""
    torch.manual_seed(4)
    q, k, v = (_randn(1, 2, 20, 16, device=device) for _ in range(3))
    mask = torch.zeros(1, 1, 20, 20, device=device)
    mask[..., 15:] = torch.finfo(torch.float32).min
    mask[..., 4, :] = torch.finfo(torch.float32).min
    _assert_matches_reference(q, k, v, _randn(1, 2, 20, 20, device=device), mask=mask)


def test_strided_and_expanded_inputs(device):
    """Views from a (batch, seq, heads, dim) projection and stride-0 (expanded) kv heads."""
    torch.manual_seed(2)
    q = _randn(1, 33, 2, 32, device=device).transpose(1, 2)
    k = _randn(1, 1, 40, 32, device=device).expand(1, 2, 40, 32)
    v = _randn(1, 1, 40, 32, device=device).expand(1, 2, 40, 32)
    assert not q.is_contiguous() and k.stride(1) == 0
    _assert_matches_reference(q, k, v, causal=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_error_within_twice_sdpa(dtype, device):
    _assert_low_precision_close(dtype, device, batch=1, heads=2, q_len=37, k_len=50, head_dim=32)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.skipif(
    INTERPRETED, reason="kernels are interpreted (TRITON_INTERPRET=1); unset it to test the compiled ones"
)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("head_dim", [64, 128])
def test_gpu_low_precision_error_within_twice_sdpa(dtype, head_dim):
    _assert_low_precision_close(
        dtype, "cuda", batch=2, heads=4, q_len=300, k_len=517, head_dim=head_dim
    )


def _assert_low_precision_close(dtype, device, *, batch, heads, q_len, k_len, head_dim):
    """Causal attention with a bias: each error against a float64 reference is at most twice
    that of torch's sdpa in `dtype` (which gets the causal alignment as an explicit mask)."""
    torch.manual_seed(3)
    q = _randn(batch, heads, q_len, head_dim, device=device)
    k = _randn(batch, heads, k_len, head_dim, device=device)
    v = _randn(batch, heads, k_len, head_dim, device=device)
    bias = _randn(1, heads, q_len, k_len, device=device)
    grad_out = torch.randn(batch, heads, q_len, head_dim, device=device)
    allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(k_len - q_len)
    causal_bias = torch.zeros(q_len, k_len, device=device).masked_fill(~allowed, float("-inf"))

    def sdpa(q, k, v, *, bias):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias + causal_bias.to(q.dtype))

    low = [t.to(dtype) for t in (q, k, v, bias)]
    ref = _outputs_and_grads(
        reference_attention, [t.double() for t in (q, k, v, bias)], grad_out.double(), causal=True
    )
    ours = _outputs_and_grads(triton_attention, low, grad_out, causal=True)
    torch_low = _outputs_and_grads(sdpa, low, grad_out)
    for name, a, b, r in zip(["out", "dq", "dk", "dv", "dbias"], ours, torch_low, ref, strict=True):
        ours_err = (a.double() - r).abs().max().item()
        torch_err = (b.double() - r).abs().max().item()
        assert ours_err <= 2 * torch_err + 1e-5, (
            f"{dtype} {name}: error {ours_err:.3g} vs sdpa {torch_err:.3g}"
        )


def _qkv(q_shape=(1, 2, 8, 16), k_shape=(1, 2, 8, 16), v_shape=None, dtype=torch.float32):
    return (torch.randn(q_shape, dtype=dtype), torch.randn(k_shape, dtype=dtype),
            torch.randn(v_shape or k_shape, dtype=dtype))


@pytest.mark.parametrize(
    ("tensors", "kwargs", "message"),
    [
        (_qkv((1, 2, 8, 256), (1, 2, 8, 256)), {}, r"head_dim must be between 1 and 128; got 256"),
        (_qkv(v_shape=(1, 2, 8, 32)), {}, r"share head_dim.*v \(1, 2, 8, 32\)"),
        (_qkv(k_shape=(1, 1, 8, 16)), {}, r"expand grouped-query heads"),
        ((torch.randn(1, 2, 8, 16), torch.randn(1, 2, 8, 16).half(), torch.randn(1, 2, 8, 16)), {},
         r"share one dtype.*torch.float32, torch.float16, torch.float32"),
        (_qkv(dtype=torch.float64), {}, r"float32, float16, bfloat16; got torch.float64"),
        (_qkv(), {"bias": torch.randn(1, 2, 8, 9)},
         r"bias of shape \(1, 2, 8, 9\) does not broadcast to \(1, 2, 8, 8\)"),
        (_qkv(), {"bias": torch.ones(1, 2, 8, 8, dtype=torch.int64)}, r"bias must be a float tensor"),
        (_qkv(), {"dropout_p": 0.1},
         r"triton kernel does not support dropout \(dropout_p=0.1\); use kernel='sdpa'"),
    ],
    ids=["head-dim-256", "v-head-dim", "unexpanded-kv-heads", "dtype-mismatch", "float64", "bias-shape",
         "bias-dtype", "dropout"],
)
def test_bad_inputs_raise_value_error(tensors, kwargs, message):
    with pytest.raises(ValueError, match=message):
        triton_attention(*tensors, **kwargs)


def test_launcher_validates_without_autograd():
    q, k, v = _qkv((2, 8, 16), (2, 8, 16))
    with pytest.raises(ValueError, match=r"expected \(batch, heads, seq, head_dim\).*q \(2, 8, 16\)"):
        flash_attention_forward(q, k, v)


def test_cpu_tensor_without_interpreter_raises(monkeypatch):
    monkeypatch.setattr(triton_kernel, "INTERPRETED", False)
    q, k, v = _qkv()
    assert not triton_available(q)
    with pytest.raises(RuntimeError, match=r"triton attention kernel cannot run on a cpu tensor"):
        triton_attention(q, k, v)
