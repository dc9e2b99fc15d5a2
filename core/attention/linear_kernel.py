"""The `linear` kernel: linear attention with the elu+1 feature map, and its recurrent form.

Katharopoulos et al. 2020, "Transformers are RNNs: Fast Autoregressive Transformers with Linear
Attention", ICML, arXiv:2006.16236. `linear_attention` is the `linear` kernel of
`core.attention.attention`; `linear_attention_step` decodes one token at a time from a
`LinearAttentionState`. It approximates softmax attention, so it is tested against its own
explicit quadratic form rather than against `math`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

CHUNK_SIZE = 128
"""Sequence chunk of the causal prefix sum: cost per token grows with it, Python overhead shrinks."""

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def feature_map(x: Tensor) -> Tensor:
    """phi(x) = elu(x) + 1 (Katharopoulos et al. 2020, eq. 7): positive, so normalisers are > 0."""
    # In place on elu's fresh output saves a full-size allocation; elu's backward reads its input.
    return F.elu(x).add_(1.0)


def linear_attention(
    q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, bias: Tensor | None = None,
    causal: bool = False, scale: float | None = None, dropout_p: float = 0.0,
) -> Tensor:
    """Linear attention with the elu+1 feature map (Katharopoulos et al. 2020, eqs. 4-9).

    `out_i = phi(q_i)^T S / phi(q_i)^T z` with `S = sum_j phi(k_j) v_j^T` and `z = sum_j phi(k_j)`,
    over all keys, or with `causal` over keys `j <= i + k_len - q_len` (the last query aligns with
    the last key, as in the other kernels). The causal form runs a prefix sum chunk by chunk
    (`CHUNK_SIZE` tokens) with a running `(batch, heads, head_dim, v_dim)` state, so time and
    memory grow linearly with the sequence. This is an approximation of softmax attention, not
    equal to it. fp16/bf16 inputs are accumulated in fp32 and the output cast back.

    Args:
        q: `(batch, heads, q_len, head_dim)`.
        k: `(batch, heads, k_len, head_dim)`; heads equal to q's (the dispatcher expands groups).
        v: `(batch, heads, k_len, v_dim)`.
        mask: only a boolean key-padding mask (True = attend) broadcastable to
            `(batch, 1 or heads, 1, k_len)`; masked keys get phi(k) = 0. A mask of size `q_len`
            on the query axis is accepted when all its rows are equal.
        bias, dropout_p: unsupported (no score matrix is ever formed): ValueError unless None / 0.
        causal: prefix form, see above.
        scale: ignored. The similarity is `phi(q) . phi(k)`, which replaces `exp(scale * q . k)`;
            the paper applies no logit scale (a learned projection before phi can absorb one).

    Returns:
        `(batch, heads, q_len, v_dim)` in q's dtype. Rows that see no key are zero.
    """
    _check_qkv(q, k, v)
    if bias is not None:
        raise ValueError(
            f"attention kernel 'linear' does not support bias (got shape {tuple(bias.shape)}): "
            "linear attention never forms the score matrix a bias would be added to"
        )
    if dropout_p > 0.0:
        raise ValueError(
            f"attention kernel 'linear' does not support dropout_p > 0 (got {dropout_p}): "
            "there are no attention weights to drop"
        )
    keep = _key_padding(mask, q, k)
    work_dtype = torch.float32 if q.dtype in _LOW_PRECISION else q.dtype
    phi_q = feature_map(q.to(work_dtype))
    phi_k = feature_map(k.to(work_dtype))
    if keep is not None:
        phi_k = phi_k * keep.to(work_dtype)
    v = v.to(work_dtype)
    if causal:
        out = _causal_prefix(phi_q, phi_k, v, CHUNK_SIZE)
    else:
        s, z = phi_k.transpose(-2, -1) @ v, phi_k.sum(dim=-2).unsqueeze(-1)
        # Freed before the output is allocated: peak memory stays at two (seq, head_dim) tensors
        # in inference.
        del phi_k
        out = _normalise(phi_q @ s, phi_q @ z)
    return out.to(q.dtype)


def _causal_prefix(phi_q: Tensor, phi_k: Tensor, v: Tensor, chunk_size: int) -> Tensor:
    """Normalised causal linear attention over keys `j <= i + k_len - q_len`, chunk by chunk.

    Within a chunk the pairwise products `phi_q_i . phi_k_j` are masked lower-triangular
    (chunk x chunk); earlier chunks enter through the running state `S = sum phi_k v^T`
    `(batch, heads, head_dim, v_dim)` and `z = sum phi_k` `(batch, heads, head_dim, 1)`.

    Args:
        phi_q: `(batch, heads, q_len, head_dim)` features of the queries.
        phi_k: `(batch, heads, k_len, head_dim)` features of the keys.
        v: `(batch, heads, k_len, v_dim)`.
        chunk_size: tokens per chunk.

    Returns:
        `(batch, heads, q_len, v_dim)`.
    """
    batch, heads, q_len = phi_q.shape[:3]
    k_len, v_dim = v.shape[-2], v.shape[-1]
    offset = k_len - q_len
    # Keys before the first query's position are seen by every query; queries before the first
    # key's position see nothing. The rest pair up one query per key.
    lead_keys, dead_queries = max(offset, 0), max(-offset, 0)
    s = phi_k[:, :, :lead_keys].transpose(-2, -1) @ v[:, :, :lead_keys]
    z = phi_k[:, :, :lead_keys].sum(dim=-2).unsqueeze(-1)
    outs = [v.new_zeros(batch, heads, dead_queries, v_dim)]
    for start in range(0, min(q_len, k_len), chunk_size):
        qc = phi_q[:, :, dead_queries + start:dead_queries + start + chunk_size]
        kc = phi_k[:, :, lead_keys + start:lead_keys + start + chunk_size]
        vc = v[:, :, lead_keys + start:lead_keys + start + chunk_size]
        pairs = torch.tril(qc @ kc.transpose(-2, -1))
        outs.append(_normalise(qc @ s + pairs @ vc, qc @ z + pairs.sum(dim=-1, keepdim=True)))
        s = s + kc.transpose(-2, -1) @ vc
        z = z + kc.sum(dim=-2).unsqueeze(-1)
    return torch.cat(outs, dim=-2)


def _normalise(num: Tensor, den: Tensor) -> Tensor:
    """`num / den` computed in num's buffer (a fresh product), 0 where `den` is 0 (no key seen)."""
    # The numerator is zero wherever the normaliser is, so dividing by 1 there yields 0 and
    # keeps the backward pass free of 0/0.
    return num.div_(torch.where(den > 0, den, torch.ones_like(den)))


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"attention kernel 'linear' expects (batch, heads, seq, head_dim) tensors; got {shapes}")
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3]:
        raise ValueError(
            f"attention kernel 'linear': q, k, v must share batch and heads, k and v their length; got {shapes}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention kernel 'linear': q and k head_dim differ; got {shapes}")
    if not (q.is_floating_point() and q.dtype == k.dtype == v.dtype):
        raise ValueError(
            f"attention kernel 'linear': q, k, v must share one floating dtype; got {q.dtype}, {k.dtype}, {v.dtype}"
        )


def _key_padding(mask: Tensor | None, q: Tensor, k: Tensor) -> Tensor | None:
    """Validate a key-padding mask and return it as `(batch or 1, heads or 1, k_len or 1, 1)`."""
    if mask is None:
        return None
    if mask.dtype != torch.bool:
        raise ValueError(
            f"attention kernel 'linear' supports only a boolean key-padding mask; got dtype {mask.dtype} "
            "(an additive mask needs the score matrix, which linear attention never forms)"
        )
    if mask.dim() > 4:
        raise ValueError(f"attention kernel 'linear': mask must have at most 4 dims; got {tuple(mask.shape)}")
    mask = mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))
    batch, heads, q_len, k_len = mask.shape
    if batch not in (1, q.shape[0]) or heads not in (1, q.shape[1]) or k_len not in (1, k.shape[2]):
        raise ValueError(
            f"attention kernel 'linear': mask {tuple(mask.shape)} does not broadcast to "
            f"(batch, heads, 1, k_len) = ({q.shape[0]}, {q.shape[1]}, 1, {k.shape[2]})"
        )
    if q_len != 1:
        if q_len != q.shape[2] or not bool((mask == mask[:, :, :1]).all()):
            raise ValueError(
                f"attention kernel 'linear' supports only key-padding masks; mask {tuple(mask.shape)} "
                "varies over queries (causal structure goes through causal=True)"
            )
        mask = mask[:, :, :1]
    return mask.transpose(-2, -1)


@dataclass(frozen=True)
class LinearAttentionState:
    """Recurrent state of causal linear attention (Katharopoulos et al. 2020, eqs. 18-19).

    Attributes:
        s: `(batch, heads, head_dim, v_dim)`, `S = sum_j phi(k_j) v_j^T` over the keys seen so far.
        z: `(batch, heads, head_dim)`, `z = sum_j phi(k_j)`.
    """

    s: Tensor
    z: Tensor

    @classmethod
    def zeros(
        cls, batch: int, heads: int, head_dim: int, v_dim: int, *,
        dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
    ) -> LinearAttentionState:
        """The empty state (no key seen)."""
        return cls(
            s=torch.zeros(batch, heads, head_dim, v_dim, dtype=dtype, device=device),
            z=torch.zeros(batch, heads, head_dim, dtype=dtype, device=device),
        )

    @classmethod
    def from_keys(cls, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None = None) -> LinearAttentionState:
        """The state after a prompt, to continue decoding with `linear_attention_step`.

        Args:
            k: `(batch, heads, k_len, head_dim)`.
            v: `(batch, heads, k_len, v_dim)`.
            key_padding_mask: optional bool `(batch, k_len)`, True marks padding to skip.
        """
        if k.dim() != 4 or v.dim() != 4 or k.shape[:3] != v.shape[:3]:
            raise ValueError(
                f"LinearAttentionState.from_keys expects k (batch, heads, k_len, head_dim) and v "
                f"(batch, heads, k_len, v_dim); got k {tuple(k.shape)}, v {tuple(v.shape)}"
            )
        work_dtype = torch.float32 if k.dtype in _LOW_PRECISION else k.dtype
        phi_k = feature_map(k.to(work_dtype))
        if key_padding_mask is not None:
            if key_padding_mask.shape != (k.shape[0], k.shape[2]):
                raise ValueError(
                    f"key_padding_mask must be (batch, k_len) = {(k.shape[0], k.shape[2])}; "
                    f"got {tuple(key_padding_mask.shape)}"
                )
            phi_k = phi_k * (~key_padding_mask.bool())[:, None, :, None].to(work_dtype)
        return cls(s=phi_k.transpose(-2, -1) @ v.to(work_dtype), z=phi_k.sum(dim=-2))


def linear_attention_step(
    q_t: Tensor, k_t: Tensor, v_t: Tensor, state: LinearAttentionState | None = None,
) -> tuple[Tensor, LinearAttentionState]:
    """One autoregressive step of causal linear attention (Katharopoulos et al. 2020, eqs. 18-20).

    Adds token t's key and value to the state, then reads it with token t's query, so stepping
    through a sequence reproduces `linear_attention(..., causal=True)`. The state is not mutated.

    Args:
        q_t: `(batch, heads, head_dim)` or `(batch, heads, 1, head_dim)`.
        k_t: same shape as `q_t`.
        v_t: `(batch, heads, v_dim)` or `(batch, heads, 1, v_dim)`.
        state: the state before token t; None means empty. Its dtype is the accumulation dtype.

    Returns:
        `out_t` with q_t's rank and dtype (`v_dim` last), and the new state.
    """
    shapes = f"q_t {tuple(q_t.shape)}, k_t {tuple(k_t.shape)}, v_t {tuple(v_t.shape)}"
    squeeze = q_t.dim() == 4
    if squeeze:
        if not (q_t.shape[2] == 1 and k_t.dim() == 4 and v_t.dim() == 4 and k_t.shape[2] == v_t.shape[2] == 1):
            raise ValueError(f"linear_attention_step expects one token (seq axis of size 1); got {shapes}")
        q_t, k_t, v_t = q_t[:, :, 0], k_t[:, :, 0], v_t[:, :, 0]
    if q_t.dim() != 3 or q_t.shape != k_t.shape or v_t.dim() != 3 or v_t.shape[:2] != q_t.shape[:2]:
        raise ValueError(
            f"linear_attention_step expects q_t, k_t (batch, heads, head_dim), v_t (batch, heads, v_dim); got {shapes}"
        )
    if not (q_t.is_floating_point() and q_t.dtype == k_t.dtype == v_t.dtype):
        raise ValueError(f"linear_attention_step: q_t, k_t, v_t must share one floating dtype; got {shapes}")
    batch, heads, dim = q_t.shape
    if state is None:
        work_dtype = torch.float32 if q_t.dtype in _LOW_PRECISION else q_t.dtype
        state = LinearAttentionState.zeros(batch, heads, dim, v_t.shape[-1], dtype=work_dtype, device=q_t.device)
    if state.s.shape != (batch, heads, dim, v_t.shape[-1]) or state.z.shape != (batch, heads, dim):
        raise ValueError(
            f"linear_attention_step: state s {tuple(state.s.shape)}, z {tuple(state.z.shape)} "
            f"does not match {shapes}"
        )
    work_dtype = state.s.dtype
    phi_q = feature_map(q_t.to(work_dtype))
    phi_k = feature_map(k_t.to(work_dtype))
    s = state.s + phi_k[..., :, None] * v_t.to(work_dtype)[..., None, :]
    z = state.z + phi_k
    num = (phi_q[..., None, :] @ s)[..., 0, :]
    out = _normalise(num, (phi_q * z).sum(dim=-1, keepdim=True)).to(q_t.dtype)
    return (out[:, :, None] if squeeze else out), LinearAttentionState(s=s, z=z)
