"""`kernel="auto"`: which exact kernel runs a call, decided in this one place.

The rule (CPU; measured by `attn-bench attention --dispatch` on the shapes the suite's models use,
`SUITE_SHAPES`, side by side with every exact candidate; the measured table is in the README, "core"):

1. CUDA: `sdpa` (torch's flash / memory-efficient kernels).
2. A mask or bias over more than `CHUNK_SCORE_BYTES` of scores: `chunked`, whose memory grows
   with seq x block instead of seq^2 (torch's CPU kernel materializes such scores).
3. Gradients needed through a bias: `math`. torch's CPU sdpa has no fused kernel for a bias that
   needs gradients and falls back to its own math backend, which costs more than ours (HAT's
   window attention with its trained relative-position table: 4.6 against 6.4 ms; its shifted
   windows, bias and mask, 5.6 against 7.3 ms, since `math` adds a bool mask as 0/-inf in training
   and so skips a masked_fill's backward pass; R-MAT 1.34 against 1.58 ms).
   A mask alone (MAT's key padding) needs no gradient and trains faster fused (0.73 against 1.33 ms).
4. No gradients, and many rows (`batch x heads >= MANY_ROWS`), heads of at least `WIDE_HEAD`
   channels, or small scores (at most `SMALL_SCORE_BYTES`) with a mask or bias: `math`. For small
   attention maps two batched matmuls beat the fused kernel's per-(batch, head) blocking and its
   mask conversion (MAT inference 0.20 against 0.28 ms, R-MAT 0.21 against 0.31, Hiformer 0.37
   against 0.46). Many rows win even when the scores are large, because `math` then runs the
   batch in slices of at most `math_kernel.SLICE_SCORE_BYTES` (PatchTST inference, 25 MB of
   scores: 6.5 against 10.4 ms; whole, 8.6 ms in the allocator's steady state and up to 20 ms
   outside it). Wide heads: LLFormer's fusion attention, whose tokens are whole feature maps
   (3 tokens of 32,768 channels), 0.175 against 0.189 ms. Larger maps of few rows and ordinary
   heads stay fused (HAT's windows at inference: 4.3 against 6.9 ms).
5. Otherwise `sdpa`: the fused flash kernel wins forward passes and training of ordinary heads,
   tiny heads included (PatchTST's head size 4 trains in 25 against 40 ms).

`linear` is an approximation and `triton` a GPU kernel chosen explicitly; `auto` never picks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from core.attention.math_kernel import needs_grad

CHUNK_SCORE_BYTES = 512 * 2**20
SMALL_SCORE_BYTES = 4 * 2**20
MANY_ROWS = 512
WIDE_HEAD = 1024


def auto_kernel(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, bias: Tensor | None, dropout_p: float = 0.0
) -> str:
    """The kernel `auto` runs for this call (see the module docstring for the rule)."""
    if q.is_cuda:
        return "sdpa"
    has_mask = mask is not None or bias is not None
    score_bytes = q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.element_size()
    if has_mask and score_bytes > CHUNK_SCORE_BYTES:
        return "chunked"
    if needs_grad(q, k, v, bias):
        return "math" if bias is not None and bias.requires_grad else "sdpa"
    if q.shape[0] * q.shape[1] >= MANY_ROWS or q.shape[-1] >= WIDE_HEAD or (has_mask and score_bytes <= SMALL_SCORE_BYTES):
        return "math"
    return "sdpa"


@dataclass(frozen=True)
class AttentionShape:
    """One attention call of a suite model at its config's size (as recorded from a forward pass).

    Attributes:
        name: `<model>-<which attention>`.
        q, k: `(batch, heads, length, head_dim)` of queries and keys (values as keys).
        mask: `None`, `"key"` (bool key-padding mask `(batch, 1, 1, k_len)`) or `"full"` (bool
            `(batch, 1, q_len, k_len)`, e.g. HAT's shifted-window mask).
        bias: shape of the additive bias (relative positions), or None.
        bias_grad: whether the bias is trained (needs gradients in training).
        causal: causal masking.
    """

    name: str
    q: tuple[int, int, int, int]
    k: tuple[int, int, int, int]
    mask: str | None = None
    bias: tuple[int, ...] | None = None
    bias_grad: bool = False
    causal: bool = False

    def tensors(self, train: bool, seed: int = 0) -> dict[str, Tensor | bool | None]:
        """Seeded random inputs for `attention(**...)`; leaves require grad when `train`."""
        g = torch.Generator().manual_seed(seed)
        q, k, v = (torch.randn(s, generator=g).requires_grad_(train) for s in (self.q, self.k, self.k))
        bias = None
        if self.bias is not None:
            bias = (0.1 * torch.randn(self.bias, generator=g)).requires_grad_(train and self.bias_grad)
        mask = None
        if self.mask == "key":
            mask = torch.rand(self.q[0], 1, 1, self.k[2], generator=g) > 0.2
            mask[..., 0] = True
        elif self.mask == "full":
            mask = torch.rand(self.q[0], 1, self.q[2], self.k[2], generator=g) > 0.3
            mask[..., 0] = True
        return {"q": q, "k": k, "v": v, "mask": mask, "bias": bias, "causal": self.causal}


# Recorded from one training forward of each config (batch as configured; HAT and LLFormer on
# their training crops; R-MAT/MAT on a batch of 32 ESOL molecules, padded to ~28 atoms).
SUITE_SHAPES: tuple[AttentionShape, ...] = (
    AttentionShape("patchtst_etth1", (896, 4, 42, 4), (896, 4, 42, 4)),
    AttentionShape("transformer_etth1-encoder", (32, 8, 96, 64), (32, 8, 96, 64)),
    AttentionShape("transformer_etth1-decoder", (32, 8, 144, 64), (32, 8, 144, 64), causal=True),
    AttentionShape("transformer_etth1-cross", (32, 8, 144, 64), (32, 8, 96, 64)),
    AttentionShape("hat_small-window", (72, 4, 64, 8), (72, 4, 64, 8), bias=(1, 4, 64, 64), bias_grad=True),
    AttentionShape("hat_small-shifted", (72, 4, 64, 8), (72, 4, 64, 8), mask="full", bias=(1, 4, 64, 64), bias_grad=True),
    AttentionShape("hat_small-overlap", (72, 4, 64, 8), (72, 4, 144, 8), bias=(1, 4, 64, 144), bias_grad=True),
    AttentionShape("hat-window", (16, 6, 256, 30), (16, 6, 256, 30), bias=(1, 6, 256, 256), bias_grad=True),
    AttentionShape("hat-overlap", (16, 6, 256, 30), (16, 6, 576, 30), bias=(1, 6, 256, 576), bias_grad=True),
    AttentionShape("llformer-axis", (128, 1, 128, 16), (128, 1, 128, 16)),
    AttentionShape("llformer-level4", (16, 8, 16, 16), (16, 8, 16, 16)),
    AttentionShape("llformer_small-fusion", (4, 1, 3, 32768), (4, 1, 3, 32768)),
    AttentionShape("lytnet-channel", (1, 4, 1024, 4), (1, 4, 1024, 4)),
    AttentionShape("hiformer_synthetic", (512, 2, 16, 16), (512, 2, 16, 16)),
    AttentionShape("mat_esol", (32, 4, 28, 16), (32, 4, 28, 16), mask="key"),
    AttentionShape("rmat_esol-relative", (32, 4, 28, 16), (32, 4, 28, 16), mask="key", bias=(32, 4, 28, 28), bias_grad=True),
)


__all__ = ["CHUNK_SCORE_BYTES", "MANY_ROWS", "SMALL_SCORE_BYTES", "SUITE_SHAPES", "WIDE_HEAD", "AttentionShape", "auto_kernel"]
