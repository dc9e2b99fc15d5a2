"""Flash attention in Triton: softmax(q k^T * scale + bias) v without materializing the scores.

Shapes: `q (batch, heads, q_len, head_dim)`, `k` and `v (batch, heads, k_len, head_dim)`, an
optional additive `bias` broadcastable to `(batch, heads, q_len, k_len)` (masks are folded into it
as -inf by the caller). Any strides are accepted, so expanded (stride-0) heads or a bias shared
across the batch are read in place.

Forward: one program per block of `BLOCK_M` queries walks the keys in blocks of `BLOCK_N` with an
online softmax and stores the output and two softmax statistics per row. Backward recomputes the
probabilities from them: one kernel per key block accumulates dk and dv, one per query block
accumulates dq (and writes the logit gradient, which is dbias, when asked).

Conventions shared with the `math` reference:
- causal: query i attends key j iff j <= i + k_len - q_len (the last query sees the last key);
- a query row with no attendable key outputs 0 and passes no gradient; its stored row max is
  +inf, which makes every recomputed probability of the row exactly 0 in the backward pass.

Per query row the forward stores the logit max m and log(l), l = sum_j exp(s_j - m), apart rather
than summed into a log-sum-exp: with a finite mask value such as `torch.finfo(torch.float32).min`
a fully masked row has |m| ~ 3e38, where m + log(l) rounds back to m and the backward pass would
lose the 1/l normalization.

Under Triton's interpreter (`TRITON_INTERPRET=1`), bfloat16 inputs are computed in float32:
Triton 3.6's interpreter multiplies bfloat16 tiles as their raw uint16 bits.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

# `triton.jit` decides at decoration time whether a kernel is compiled or interpreted, so this
# module-level flag is what the kernels below really are, whatever the environment says later.
INTERPRETED: bool = bool(triton.knobs.runtime.interpret)

MAX_HEAD_DIM = 128
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@triton.jit
def _logits(
    q, k, Bias, offs_m, offs_n, q_len, k_len, stride_bm, stride_bn, scale,
    HAS_BIAS: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
):
    """(BLOCK_M, BLOCK_N) logits q k^T * scale + bias; keys past k_len or hidden by causality
    are -inf."""
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale
    if HAS_BIAS:
        in_range = (offs_m[:, None] < q_len) & (offs_n[None, :] < k_len)
        bias_ptrs = Bias + offs_m[:, None] * stride_bm + offs_n[None, :] * stride_bn
        s += tl.load(bias_ptrs, mask=in_range, other=0.0).to(tl.float32)
    keep = offs_n[None, :] < k_len
    if CAUSAL:
        keep = keep & (offs_n[None, :] <= offs_m[:, None] + (k_len - q_len))
    return tl.where(keep, s, float("-inf"))


@triton.jit
def _flash_forward_kernel(
    Q, K, V, Bias, Out, RowMax, RowLogSum,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_ob, stride_oh, stride_om, stride_od,
    num_heads, q_len, k_len, head_dim, scale,
    HAS_BIAS: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # A flat grid, query blocks fastest: batch * heads may exceed the 65535 limit of grid axis 1.
    num_m_blocks = tl.cdiv(q_len, BLOCK_M)
    pid_bh = tl.program_id(0) // num_m_blocks
    start_m = (tl.program_id(0) % num_m_blocks) * BLOCK_M
    batch = (pid_bh // num_heads).to(tl.int64)
    head = (pid_bh % num_heads).to(tl.int64)

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m[:, None] < q_len
    dim_ok = offs_d[None, :] < head_dim

    Q += batch * stride_qb + head * stride_qh
    K += batch * stride_kb + head * stride_kh
    V += batch * stride_vb + head * stride_vh
    Bias += batch * stride_bb + head * stride_bh
    q = tl.load(Q + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd, mask=row_ok & dim_ok, other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    hi = k_len
    if CAUSAL:
        hi = tl.minimum(hi, start_m + BLOCK_M + k_len - q_len)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + offs_n0
        kv_ok = (offs_n[:, None] < k_len) & dim_ok
        k = tl.load(K + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd, mask=kv_ok, other=0.0)
        v = tl.load(V + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd, mask=kv_ok, other=0.0)
        s = _logits(q, k, Bias, offs_m, offs_n, q_len, k_len, stride_bm, stride_bn, scale,
                    HAS_BIAS, CAUSAL, PRECISION)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # While a row has seen only -inf, subtract 0 instead of -inf so that exp gives 0, not NaN.
        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp(s - m_ref[:, None])
        alpha = tl.exp(m_i - m_ref)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new

    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    row_max = tl.where(empty, float("inf"), m_i)
    Out += batch * stride_ob + head * stride_oh
    tl.store(Out + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od,
             out.to(Out.dtype.element_ty), mask=row_ok & dim_ok)
    stats_offs = pid_bh.to(tl.int64) * q_len + offs_m
    tl.store(RowMax + stats_offs, row_max, mask=offs_m < q_len)
    tl.store(RowLogSum + stats_offs, tl.log(l_safe), mask=offs_m < q_len)


@triton.jit
def _flash_backward_delta_kernel(
    Out, DOut, Delta,
    stride_ob, stride_oh, stride_om, stride_od,
    stride_gb, stride_gh, stride_gm, stride_gd,
    num_heads, q_len, head_dim,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """delta_i = sum_d dOut_id * Out_id, the softmax-backward row term, in fp32."""
    num_m_blocks = tl.cdiv(q_len, BLOCK_M)
    pid_bh = tl.program_id(0) // num_m_blocks
    start_m = (tl.program_id(0) % num_m_blocks) * BLOCK_M
    batch = (pid_bh // num_heads).to(tl.int64)
    head = (pid_bh % num_heads).to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    ok = (offs_m[:, None] < q_len) & (offs_d[None, :] < head_dim)
    o = tl.load(Out + batch * stride_ob + head * stride_oh + offs_m[:, None] * stride_om
                + offs_d[None, :] * stride_od, mask=ok, other=0.0)
    do = tl.load(DOut + batch * stride_gb + head * stride_gh + offs_m[:, None] * stride_gm
                 + offs_d[None, :] * stride_gd, mask=ok, other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    tl.store(Delta + pid_bh.to(tl.int64) * q_len + offs_m, delta, mask=offs_m < q_len)


@triton.jit
def _flash_backward_dkdv_kernel(
    Q, K, V, Bias, DOut, RowMax, RowLogSum, Delta, DK, DV,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_gb, stride_gh, stride_gm, stride_gd,
    num_heads, q_len, k_len, head_dim, scale,
    HAS_BIAS: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """dk, dv for one block of keys, summed over all query blocks; DK, DV are contiguous."""
    num_n_blocks = tl.cdiv(k_len, BLOCK_N)
    pid_bh = tl.program_id(0) // num_n_blocks
    start_n = (tl.program_id(0) % num_n_blocks) * BLOCK_N
    batch = (pid_bh // num_heads).to(tl.int64)
    head = (pid_bh % num_heads).to(tl.int64)

    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    dim_ok = offs_d[None, :] < head_dim
    kv_ok = (offs_n[:, None] < k_len) & dim_ok

    Q += batch * stride_qb + head * stride_qh
    K += batch * stride_kb + head * stride_kh
    V += batch * stride_vb + head * stride_vh
    Bias += batch * stride_bb + head * stride_bh
    DOut += batch * stride_gb + head * stride_gh
    RowMax += pid_bh.to(tl.int64) * q_len
    RowLogSum += pid_bh.to(tl.int64) * q_len
    Delta += pid_bh.to(tl.int64) * q_len
    k = tl.load(K + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd, mask=kv_ok, other=0.0)
    v = tl.load(V + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd, mask=kv_ok, other=0.0)

    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    lo = 0
    if CAUSAL:
        # The first query that sees key start_n is start_n - (k_len - q_len); start at its block.
        lo = tl.maximum(start_n - (k_len - q_len), 0) // BLOCK_M * BLOCK_M
    for start_m in range(lo, q_len, BLOCK_M):
        offs_m = start_m + offs_m0
        q_ok = (offs_m[:, None] < q_len) & dim_ok
        q = tl.load(Q + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd, mask=q_ok, other=0.0)
        do = tl.load(DOut + offs_m[:, None] * stride_gm + offs_d[None, :] * stride_gd, mask=q_ok, other=0.0)
        # Rows past q_len get row max +inf, hence p = 0: they add nothing.
        row_max = tl.load(RowMax + offs_m, mask=offs_m < q_len, other=float("inf"))
        row_log_sum = tl.load(RowLogSum + offs_m, mask=offs_m < q_len, other=0.0)
        delta = tl.load(Delta + offs_m, mask=offs_m < q_len, other=0.0)
        s = _logits(q, k, Bias, offs_m, offs_n, q_len, k_len, stride_bm, stride_bn, scale,
                    HAS_BIAS, CAUSAL, PRECISION)
        p = tl.exp(s - row_max[:, None] - row_log_sum[:, None])
        dv += tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q, input_precision=PRECISION)

    out_offs = pid_bh.to(tl.int64) * k_len * head_dim + offs_n[:, None] * head_dim + offs_d[None, :]
    tl.store(DK + out_offs, (dk * scale).to(DK.dtype.element_ty), mask=kv_ok)
    tl.store(DV + out_offs, dv.to(DV.dtype.element_ty), mask=kv_ok)


@triton.jit
def _flash_backward_dq_kernel(
    Q, K, V, Bias, DOut, RowMax, RowLogSum, Delta, DQ, DBias,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_bb, stride_bh, stride_bm, stride_bn,
    stride_gb, stride_gh, stride_gm, stride_gd,
    num_heads, q_len, k_len, head_dim, scale,
    HAS_BIAS: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr, WRITE_DBIAS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """dq for one block of queries; with WRITE_DBIAS also the logit gradient into a contiguous,
    zero-filled fp32 DBias of shape (batch, heads, q_len, k_len) (causally hidden blocks stay 0)."""
    num_m_blocks = tl.cdiv(q_len, BLOCK_M)
    pid_bh = tl.program_id(0) // num_m_blocks
    start_m = (tl.program_id(0) % num_m_blocks) * BLOCK_M
    batch = (pid_bh // num_heads).to(tl.int64)
    head = (pid_bh % num_heads).to(tl.int64)

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m[:, None] < q_len
    dim_ok = offs_d[None, :] < head_dim
    q_ok = row_ok & dim_ok

    Q += batch * stride_qb + head * stride_qh
    K += batch * stride_kb + head * stride_kh
    V += batch * stride_vb + head * stride_vh
    Bias += batch * stride_bb + head * stride_bh
    DOut += batch * stride_gb + head * stride_gh
    DBias += pid_bh.to(tl.int64) * q_len * k_len
    q = tl.load(Q + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd, mask=q_ok, other=0.0)
    do = tl.load(DOut + offs_m[:, None] * stride_gm + offs_d[None, :] * stride_gd, mask=q_ok, other=0.0)
    stats_offs = pid_bh.to(tl.int64) * q_len + offs_m
    row_max = tl.load(RowMax + stats_offs, mask=offs_m < q_len, other=float("inf"))
    row_log_sum = tl.load(RowLogSum + stats_offs, mask=offs_m < q_len, other=0.0)
    delta = tl.load(Delta + stats_offs, mask=offs_m < q_len, other=0.0)

    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    hi = k_len
    if CAUSAL:
        hi = tl.minimum(hi, start_m + BLOCK_M + k_len - q_len)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + offs_n0
        kv_ok = (offs_n[:, None] < k_len) & dim_ok
        k = tl.load(K + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd, mask=kv_ok, other=0.0)
        v = tl.load(V + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd, mask=kv_ok, other=0.0)
        s = _logits(q, k, Bias, offs_m, offs_n, q_len, k_len, stride_bm, stride_bn, scale,
                    HAS_BIAS, CAUSAL, PRECISION)
        p = tl.exp(s - row_max[:, None] - row_log_sum[:, None])
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
        if WRITE_DBIAS:
            tl.store(DBias + offs_m[:, None] * k_len + offs_n[None, :], ds,
                     mask=row_ok & (offs_n[None, :] < k_len))

    dq_offs = pid_bh.to(tl.int64) * q_len * head_dim + offs_m[:, None] * head_dim + offs_d[None, :]
    tl.store(DQ + dq_offs, (dq * scale).to(DQ.dtype.element_ty), mask=q_ok)


def flash_attention_forward(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None, *, causal: bool = False,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Attention output and the per-row softmax statistics the backward pass needs.

    Args:
        q: `(batch, heads, q_len, head_dim)`, float32, float16 or bfloat16; head_dim <= 128.
        k, v: `(batch, heads, k_len, head_dim)`, q's dtype and device.
        bias: additive logits (use -inf to mask) broadcastable to `(batch, heads, q_len, k_len)`.
        causal: query i attends key j iff j <= i + k_len - q_len.
        scale: logit scale, default `head_dim ** -0.5`.

    Returns:
        `out (batch, heads, q_len, head_dim)` in q's dtype, and `stats (2, batch, heads, q_len)`
        in float32: `stats[0]` the row max m of the logits s (+inf for a row with no attendable
        key, whose output is 0), `stats[1]` log(sum_j exp(s_j - m)) (0 for such a row). The
        log-sum-exp of a row is their sum.
    """
    _check_inputs("flash_attention_forward", q, k, v, bias)
    if INTERPRETED and q.dtype == torch.bfloat16:
        out, stats = flash_attention_forward(q.float(), k.float(), v.float(), bias, causal=causal, scale=scale)
        return out.to(q.dtype), stats
    batch, heads, q_len, head_dim = q.shape
    k_len = k.shape[2]
    scale = head_dim**-0.5 if scale is None else float(scale)
    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    stats = torch.empty((2, batch, heads, q_len), device=q.device, dtype=torch.float32)
    if out.numel() == 0:
        return out, stats
    bias_arg, bias_strides = _bias_args(bias, q, k_len)
    block_m, block_n, num_warps, num_stages = _forward_config(head_dim, q.element_size())
    grid = (batch * heads * triton.cdiv(q_len, block_m),)
    _flash_forward_kernel[grid](
        q, k, v, bias_arg, out, stats[0], stats[1],
        *q.stride(), *k.stride(), *v.stride(), *bias_strides, *out.stride(),
        heads, q_len, k_len, head_dim, scale,
        HAS_BIAS=bias is not None, CAUSAL=causal, PRECISION=_dot_precision(q),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=_block_d(head_dim),
        num_warps=num_warps, num_stages=num_stages,
    )
    return out, stats


def flash_attention_backward(
    grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, stats: Tensor,
    bias: Tensor | None = None, *, causal: bool = False, scale: float | None = None,
    bias_grad: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Gradients of `flash_attention_forward` with respect to q, k, v and (if `bias_grad`) bias.

    Args:
        grad_out: `(batch, heads, q_len, head_dim)`, gradient of `out`.
        q, k, v, bias, causal, scale: as given to `flash_attention_forward`.
        out, stats: what `flash_attention_forward` returned.
        bias_grad: also return the bias gradient, summed over the dims where bias broadcasts.
            This materializes a float32 `(batch, heads, q_len, k_len)` buffer.

    Returns:
        `(dq, dk, dv, dbias)`: dq, dk, dv contiguous in q's dtype; dbias in bias's shape and dtype,
        or None unless `bias_grad`.
    """
    name = "flash_attention_backward"
    _check_inputs(name, q, k, v, bias)
    expected = (("grad_out", grad_out, q.shape), ("out", out, q.shape), ("stats", stats, (2, *q.shape[:3])))
    for label, t, shape in expected:
        if t.shape != shape:
            raise ValueError(f"{name}: {label} has shape {tuple(t.shape)}; expected {tuple(shape)}")
    if grad_out.dtype != q.dtype or out.dtype != q.dtype or stats.dtype != torch.float32:
        raise ValueError(f"{name}: grad_out and out must be {q.dtype} and stats float32; got "
                         f"{grad_out.dtype}, {out.dtype}, {stats.dtype}")
    if bias_grad and bias is None:
        raise ValueError(f"{name}: bias_grad=True needs a bias")
    if INTERPRETED and q.dtype == torch.bfloat16:
        grads = flash_attention_backward(
            grad_out.float(), q.float(), k.float(), v.float(), out.float(), stats, bias,
            causal=causal, scale=scale, bias_grad=bias_grad,
        )
        return (*(g.to(q.dtype) for g in grads[:3]), grads[3])
    batch, heads, q_len, head_dim = q.shape
    k_len = k.shape[2]
    scale = head_dim**-0.5 if scale is None else float(scale)
    dbias_full = None
    if bias_grad:
        dbias_full = torch.zeros((batch, heads, q_len, k_len), device=q.device, dtype=torch.float32)
    if q.numel() == 0 or k.numel() == 0:
        dq, dk, dv = (torch.zeros(t.shape, device=q.device, dtype=q.dtype) for t in (q, k, v))
        return dq, dk, dv, None if dbias_full is None else _reduce_dbias(dbias_full, bias)
    # Every element of dq, dk, dv is written by a kernel (all query and key blocks are launched).
    dq, dk, dv = (torch.empty(t.shape, device=q.device, dtype=q.dtype) for t in (q, k, v))

    stats = stats.contiguous()
    delta = torch.empty_like(stats[0])
    bias_arg, bias_strides = _bias_args(bias, q, k_len)
    block_m, block_n, num_warps, num_stages = _backward_config(head_dim, q.element_size())
    block_d = _block_d(head_dim)
    common = dict(HAS_BIAS=bias is not None, CAUSAL=causal, PRECISION=_dot_precision(q),
                  BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d,
                  num_warps=num_warps, num_stages=num_stages)
    strides = (*q.stride(), *k.stride(), *v.stride(), *bias_strides, *grad_out.stride())

    _flash_backward_delta_kernel[(batch * heads * triton.cdiv(q_len, block_m),)](
        out, grad_out, delta, *out.stride(), *grad_out.stride(), heads, q_len, head_dim,
        BLOCK_M=block_m, BLOCK_D=block_d, num_warps=num_warps,
    )
    _flash_backward_dkdv_kernel[(batch * heads * triton.cdiv(k_len, block_n),)](
        q, k, v, bias_arg, grad_out, stats[0], stats[1], delta, dk, dv, *strides,
        heads, q_len, k_len, head_dim, scale, **common,
    )
    # Without bias_grad, q stands in for the DBias pointer, which is then never written.
    _flash_backward_dq_kernel[(batch * heads * triton.cdiv(q_len, block_m),)](
        q, k, v, bias_arg, grad_out, stats[0], stats[1], delta, dq,
        q if dbias_full is None else dbias_full, *strides,
        heads, q_len, k_len, head_dim, scale, WRITE_DBIAS=bias_grad, **common,
    )
    return dq, dk, dv, None if dbias_full is None else _reduce_dbias(dbias_full, bias)


def _reduce_dbias(dbias_full: Tensor, bias: Tensor) -> Tensor:
    return dbias_full.sum_to_size(bias.shape).to(bias.dtype)


def _check_inputs(name: str, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None) -> None:
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"{name}: expected (batch, heads, seq, head_dim) tensors; got {shapes}")
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3]:
        raise ValueError(f"{name}: batch and heads must match across q, k, v and k_len across k, v "
                         f"(expand grouped-query heads first); got {shapes}")
    if q.shape[3] != k.shape[3] or v.shape[3] != q.shape[3]:
        raise ValueError(f"{name}: q, k and v must share head_dim; got {shapes}")
    if not 1 <= q.shape[3] <= MAX_HEAD_DIM:
        raise ValueError(f"{name}: head_dim must be between 1 and {MAX_HEAD_DIM}; got {q.shape[3]} ({shapes})")
    if q.dtype not in _DTYPES or not q.dtype == k.dtype == v.dtype:
        raise ValueError(f"{name}: q, k, v must share one dtype among float32, float16, bfloat16; "
                         f"got {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"{name}: q, k, v must be on one device; got {q.device}, {k.device}, {v.device}")
    if bias is None:
        return
    target = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    if not bias.is_floating_point():
        raise ValueError(f"{name}: bias must be a float tensor; got {bias.dtype}")
    if bias.device != q.device:
        raise ValueError(f"{name}: bias is on {bias.device}, q on {q.device}")
    try:
        broadcasts = bias.dim() <= 4 and torch.broadcast_shapes(bias.shape, target) == target
    except RuntimeError:
        broadcasts = False
    if not broadcasts:
        raise ValueError(f"{name}: bias of shape {tuple(bias.shape)} does not broadcast to {target}")


def _bias_args(bias: Tensor | None, q: Tensor, k_len: int) -> tuple[Tensor, tuple[int, ...]]:
    """The bias pointer and its 4 strides; broadcast dims get stride 0. Without a bias, q stands
    in as a pointer that is never read."""
    if bias is None:
        return q, (0, 0, 0, 0)
    full = bias.expand(q.shape[0], q.shape[1], q.shape[2], k_len)
    return full, full.stride()


def _block_d(head_dim: int) -> int:
    # tl.dot needs every block dim >= 16; padded dims are masked to zero on load.
    return max(16, triton.next_power_of_2(head_dim))


def _dot_precision(q: Tensor) -> str:
    """fp32 inputs follow torch's matmul setting: exact unless the user allowed tf32."""
    if q.dtype == torch.float32 and torch.get_float32_matmul_precision() == "highest":
        return "ieee"
    return "tf32"


def _forward_config(head_dim: int, elem_size: int) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages): fixed and small for the interpreter; on a GPU,
    sized so q, k and v tiles fit shared memory of sm80+ also for fp32 and head_dim 128."""
    if INTERPRETED:
        return 16, 16, 4, 1
    wide = _block_d(head_dim) > 64
    if elem_size == 2:
        return 128, 64, 8 if wide else 4, 2 if wide else 3
    return 64, 32, 4, 2


def _backward_config(head_dim: int, elem_size: int) -> tuple[int, int, int, int]:
    if INTERPRETED:
        return 16, 16, 4, 1
    wide = _block_d(head_dim) > 64
    block = 32 if elem_size == 4 and wide else 64
    return block, block, 8 if wide else 4, 2
