"""`kernel="auto"`: the dispatch rule's choices, and that what it runs equals the reference."""

import pytest
import torch

import core.attention.dispatch as dispatch
import core.attention.functional as functional
from core.attention import attention
from core.attention.dispatch import SUITE_SHAPES, auto_kernel
from core.attention.math_kernel import math_attention


def rand(*shape, seed=0, grad=False):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).requires_grad_(grad)


def test_inference_takes_the_fused_kernel_unless_the_map_is_small():
    q = rand(2, 4, 64, 8)  # 128 KiB of scores
    with torch.inference_mode():
        assert auto_kernel(q, q, q, None, None) == "sdpa"  # few rows, no mask
        assert auto_kernel(q, q, q, torch.ones(64, 64, dtype=torch.bool), rand(1, 4, 64, 64)) == "math"
        big = rand(2, 4, 1024, 8)  # 32 MiB of scores: fused, mask or not
        assert auto_kernel(big, big, big, torch.ones(1024, 1024, dtype=torch.bool), None) == "sdpa"


def test_training_through_a_trained_bias_takes_math_and_a_mask_alone_stays_fused():
    q = rand(2, 4, 16, 32, grad=True)
    bias = rand(1, 4, 16, 16, grad=True)
    assert auto_kernel(q, q, q, None, bias) == "math"
    assert auto_kernel(q, q, q, torch.ones(1, 1, 1, 16, dtype=torch.bool), None) == "sdpa"
    assert auto_kernel(q, q, q, None, bias.detach()) == "sdpa"  # a fixed bias needs no gradient
    assert auto_kernel(q, q, q, None, None) == "sdpa"


def test_inference_with_very_wide_heads_takes_math():
    q = rand(4, 1, 3, dispatch.WIDE_HEAD)
    with torch.no_grad():
        assert auto_kernel(q, q, q, None, None) == "math"
        assert auto_kernel(q[..., :-1], q[..., :-1], q[..., :-1], None, None) == "sdpa"
    assert auto_kernel(q.requires_grad_(), q, q, None, None) == "sdpa"  # training: fused


def test_tiny_heads_train_fused():
    q4 = rand(8, 4, 42, 4, grad=True)
    assert auto_kernel(q4, q4, q4, None, None) == "sdpa"


def test_inference_of_many_small_maps_takes_math():
    rows = dispatch.MANY_ROWS // 4
    small = rand(rows, 4, 16, 4)
    with torch.no_grad():
        assert auto_kernel(small, small, small, None, None) == "math"
        few = rand(rows // 2 - 1, 2, 16, 4)
        assert auto_kernel(few, few, few, None, None) == "sdpa"
        side = int((dispatch.SMALL_SCORE_BYTES / (rows * 4 * 4)) ** 0.5) + 1  # just over the small-map size
        large = rand(rows, 4, side, 4)
        assert auto_kernel(large, large, large, None, None) == "math"  # many rows: math runs it in slices
    assert auto_kernel(small.requires_grad_(), small, small, None, None) == "sdpa"  # training: fused


def test_math_slices_a_large_batch_without_changing_the_result(monkeypatch):
    import core.attention.math_kernel as math_kernel

    q, k, v = rand(6, 2, 5, 4, seed=1), rand(6, 2, 7, 4, seed=2), rand(6, 2, 7, 3, seed=3)
    mask = torch.rand(6, 1, 5, 7, generator=torch.Generator().manual_seed(4)) > 0.4
    mask[1] = False  # one batch item with no attendable key at all
    bias = rand(1, 2, 5, 7, seed=5)
    with torch.no_grad():
        whole = math_attention(q, k, v, mask=mask, bias=bias)
        seen = []
        real = math_kernel._attend
        monkeypatch.setattr(math_kernel, "_attend", lambda q, *a: seen.append(q.shape[0]) or real(q, *a))
        monkeypatch.setattr(math_kernel, "SLICE_SCORE_BYTES", 2 * 5 * 7 * 4 * 4)  # four items a slice
        monkeypatch.setattr(math_kernel, "SLICE_MIN_ROWS", 6 * 2)
        sliced = math_attention(q, k, v, mask=mask, bias=bias)
    assert seen == [4, 2]
    torch.testing.assert_close(sliced, whole, atol=0, rtol=0)
    seen.clear()
    monkeypatch.setattr(math_kernel, "SLICE_MIN_ROWS", 6 * 2 + 1)  # fewer maps than that: whole
    with torch.no_grad():
        math_attention(q, k, v, mask=mask, bias=bias)
    assert seen == [6]
    assert sliced[1].abs().max() == 0
    seen.clear()
    math_attention(q.requires_grad_(), k, v, mask=mask, bias=bias).sum().backward()
    assert seen == [6]  # with gradients the batch stays whole (autograd keeps every slice's scores anyway)


def test_large_masked_calls_take_the_blocked_kernel(monkeypatch):
    monkeypatch.setattr(dispatch, "CHUNK_SCORE_BYTES", 16)
    q = rand(1, 1, 8, 4)
    assert auto_kernel(q, q, q, torch.ones(1, 1, 8, 8, dtype=torch.bool), None) == "chunked"
    assert auto_kernel(q, q, q, None, None) == "sdpa"  # no mask: the fused kernel never materializes scores
    called = []
    monkeypatch.setitem(functional._KERNELS, "chunked", lambda *a, **kw: called.append(1) or math_attention(*a, **kw))
    attention(q, q, q, mask=torch.ones(8, 8, dtype=torch.bool))
    assert called


@pytest.mark.parametrize("shape", SUITE_SHAPES, ids=lambda s: s.name)
def test_auto_equals_math_on_each_suite_call_at_small_scale(shape):
    """Each suite shape cut to batch 1 (and short sequences): auto's output and gradients equal math's."""
    small = dispatch.AttentionShape(
        shape.name, (1, shape.q[1], min(shape.q[2], 24), min(shape.q[3], 64)),
        (1, shape.k[1], min(shape.k[2], 24), min(shape.k[3], 64)), shape.mask,
        None if shape.bias is None else (1, shape.bias[1], min(shape.q[2], 24), min(shape.k[2], 24)),
        shape.bias_grad, shape.causal,
    )
    inputs = small.tensors(train=True)
    out = attention(**inputs, kernel="auto")
    ref_inputs = small.tensors(train=True)
    ref = attention(**ref_inputs, kernel="math")
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    out.square().sum().backward()
    ref.square().sum().backward()
    for name in ("q", "k", "v", "bias"):
        a, b = inputs[name], ref_inputs[name]
        if a is not None and a.requires_grad:
            torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4)


def test_dispatch_bench_times_every_candidate_and_names_autos_pick(tmp_path, capsys):
    import json

    from core.bench import main as bench_main

    out = tmp_path / "dispatch.json"
    bench_main(["attention", "--dispatch-only", "--rounds", "1", "--shapes", "rmat_esol-relative", "--no-mlflow", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [(r["model"], r["settings"]["mode"]) for r in rows] == [("rmat_esol-relative", "train"), ("rmat_esol-relative", "infer")]
    assert [r["settings"]["auto"] for r in rows] == ["math", "math"]  # trained bias; a small masked map
    for r in rows:
        assert all(r["measures"][f"{n}_ms"] > 0 for n in ("math", "sdpa", "chunked", "plain"))
        assert r["measures"]["auto_vs_best"] > 0
    assert "auto vs the best exact kernel" in capsys.readouterr().out
