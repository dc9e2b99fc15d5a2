"""Linear-complexity attention modules and Fourier token mixing.

(The `linear` kernel itself, Katharopoulos et al. 2020, lives in `linear_kernel.py`.)
- `LinformerAttention`: keys and values compressed along the sequence axis. Wang et al. 2020,
  "Linformer: Self-Attention with Linear Complexity", arXiv:2006.04768.
- `NystromAttention`: softmax attention approximated through landmarks. Xiong et al. 2021,
  "Nystromformer: A Nystrom-Based Algorithm for Approximating Self-Attention", AAAI,
  arXiv:2102.03902.
- `FourierMixer`: parameter-free token mixing by a 2-D DFT. Lee-Thorp et al. 2021/2022, "FNet:
  Mixing Tokens with Fourier Transforms", NAACL 2022, arXiv:2105.03824.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.attention.functional import Kernel, attention
from core.attention.heads import merge_heads, split_qkv
from core.attention.linear_kernel import _LOW_PRECISION


def _check_tokens(x: Tensor, embed_dim: int, owner: str) -> None:
    if x.dim() != 3 or x.shape[-1] != embed_dim or not x.is_floating_point():
        raise ValueError(
            f"{owner} expects a floating (batch, seq, {embed_dim}) tensor; got {tuple(x.shape)} {x.dtype}"
        )


def _check_padding_mask(mask: Tensor | None, x: Tensor, owner: str) -> Tensor | None:
    """Return the keep-mask `(batch, seq)` (True = real token) of a `(batch, seq)` padding mask."""
    if mask is None:
        return None
    if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(
            f"{owner}: key_padding_mask must be bool (batch, seq) = {tuple(x.shape[:2])}, True = padding; "
            f"got {tuple(mask.shape)} {mask.dtype}"
        )
    return ~mask


class LinformerAttention(nn.Module):
    """Multi-head self-attention with keys and values compressed along the sequence (Linformer).

    Wang et al. 2020, "Linformer: Self-Attention with Linear Complexity", arXiv:2006.04768: head i
    attends `softmax(Q_i (E K_i)^T / sqrt(d)) (F V_i)` where `E, F: (proj_len, seq_len)` are learned,
    so the score matrix is `seq x proj_len`. E and F are shared across heads (the paper's
    "headwise sharing"); `share_kv` also ties F = E ("key-value sharing"). They start as Gaussian
    random projections with variance 1 / proj_len, the Johnson-Lindenstrauss construction of the
    paper's Theorem 1, so E^T E is close to the identity. The compressed attention runs through
    `core.attention.attention` with the chosen kernel.

    Inputs shorter than `seq_len` use the first columns of E and F; padded tokens are zeroed
    before the projection, so they add nothing to the compressed keys and values.

    Args:
        embed_dim: model width; the output has this width.
        num_heads: heads; `embed_dim` must divide by it.
        seq_len: the longest input `n`; E and F have this many columns.
        proj_len: the compressed length `k` (the paper uses 128-256; 256 by default).
        share_kv: use one projection for keys and values (F = E).
        dropout: dropout on the compressed attention weights during training.
        kernel: attention kernel name (see `core.attention.attention`).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        seq_len: int,
        proj_len: int = 256,
        share_kv: bool = False,
        dropout: float = 0.0,
        kernel: Kernel = "auto",
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"LinformerAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if seq_len < 1 or proj_len < 1:
            raise ValueError(f"LinformerAttention: seq_len and proj_len must be positive; got {seq_len}, {proj_len}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.seq_len, self.proj_len = seq_len, proj_len
        self.dropout = dropout
        self.kernel = kernel
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.key_seq_proj = nn.Parameter(torch.randn(proj_len, seq_len) / math.sqrt(proj_len))
        self.value_seq_proj = (
            None if share_kv else nn.Parameter(torch.randn(proj_len, seq_len) / math.sqrt(proj_len))
        )

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """Self-attend `x: (batch, seq, embed_dim)` with `seq <= seq_len`.

        `key_padding_mask: (batch, seq)` bool, True marks padding. Returns `(batch, seq, embed_dim)`.
        """
        _check_tokens(x, self.embed_dim, "LinformerAttention")
        n = x.shape[1]
        if n > self.seq_len:
            raise ValueError(
                f"LinformerAttention: input length {n} (x {tuple(x.shape)}) exceeds seq_len {self.seq_len}"
            )
        keep = _check_padding_mask(key_padding_mask, x, "LinformerAttention")
        q, k, v = split_qkv(self.qkv(x), self.num_heads)
        if keep is not None:
            k = k * keep[:, None, :, None].to(k.dtype)
            v = v * keep[:, None, :, None].to(v.dtype)
        e = self.key_seq_proj[:, :n]
        f = e if self.value_seq_proj is None else self.value_seq_proj[:, :n]
        k, v = torch.matmul(e.to(k.dtype), k), torch.matmul(f.to(v.dtype), v)
        out = attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, kernel=self.kernel)
        return self.out_proj(merge_heads(out))


class NystromAttention(nn.Module):
    """Multi-head self-attention approximated with Nystrom landmarks (Nystromformer).

    Xiong et al. 2021, "Nystromformer: A Nystrom-Based Algorithm for Approximating Self-Attention",
    AAAI, arXiv:2102.03902, eq. 14: with landmarks `Q~, K~` (means of contiguous segments of Q and
    K), `softmax(Q K^T) V ~ softmax(Q K~^T) pinv(softmax(Q~ K~^T)) softmax(Q~ K^T) V`, all logits
    scaled by `1 / sqrt(head_dim)`. The pseudo-inverse is the paper's iteration (their eq. 16),
    started from `Z0 = A^T / (||A||_1 ||A||_inf)` per (batch, head) and run in fp32.

    The three kernels are `seq x m`, `m x m` and `m x seq` matrices computed with a plain
    softmax rather than through `core.attention.attention`: they are not full attention (their
    size is linear in seq), the middle one must exist as a matrix for the pseudo-inverse, and
    landmarks that cover only padding must become exact zero rows and columns.

    Lengths not divisible by the landmark count: the segment length is
    `ceil(seq / num_landmarks)` and the sequence is right-padded to a multiple of it, so there
    are `ceil(seq / segment)` <= `num_landmarks` landmarks and only the last segment holds padding.
    Padding (added or given by `key_padding_mask`) is excluded from the segment means and from
    the keys; a landmark with no real token is removed (zero column in the first kernel, identity
    block in the middle one), which equals running without it.

    Args:
        embed_dim: model width; the output has this width.
        num_heads: heads; `embed_dim` must divide by it.
        num_landmarks: landmark count `m` (the paper uses 32-64; 64 by default).
        pinv_iterations: iterations of the pseudo-inverse (6 in the paper).
        residual_conv: add a depthwise convolution of V along the sequence (one kernel per
            head), the paper's skip connection.
        conv_kernel_size: that convolution's kernel length (33 in the paper).
        dropout: dropout on the `seq x m` kernel during training.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        num_landmarks: int = 64,
        pinv_iterations: int = 6,
        residual_conv: bool = True,
        conv_kernel_size: int = 33,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"NystromAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if num_landmarks < 1 or pinv_iterations < 1 or conv_kernel_size < 1 or conv_kernel_size % 2 == 0:
            raise ValueError(
                "NystromAttention: num_landmarks and pinv_iterations must be positive and conv_kernel_size "
                f"odd; got {num_landmarks}, {pinv_iterations}, {conv_kernel_size}"
            )
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.num_landmarks, self.pinv_iterations = num_landmarks, pinv_iterations
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.attn_drop = nn.Dropout(dropout)
        self.conv = (
            nn.Conv2d(
                num_heads, num_heads, (conv_kernel_size, 1), padding=(conv_kernel_size // 2, 0),
                groups=num_heads, bias=False,
            )
            if residual_conv
            else None
        )

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """Self-attend `x: (batch, seq, embed_dim)`.

        `key_padding_mask: (batch, seq)` bool, True marks padding. Returns `(batch, seq, embed_dim)`.
        """
        _check_tokens(x, self.embed_dim, "NystromAttention")
        batch, n, _ = x.shape
        keep = _check_padding_mask(key_padding_mask, x, "NystromAttention")
        if keep is None:
            keep = torch.ones(batch, n, dtype=torch.bool, device=x.device)
        segment = math.ceil(n / self.num_landmarks)
        landmarks = math.ceil(n / segment)
        pad = landmarks * segment - n
        keep = F.pad(keep, (0, pad), value=False)[:, None, :, None]
        q, k, v = split_qkv(self.qkv(x), self.num_heads)
        q, k, v = (F.pad(t, (0, 0, 0, pad)) * keep.to(t.dtype) for t in (q, k, v))
        q = q * self.head_dim**-0.5

        counts = keep.view(batch, 1, landmarks, segment).sum(-1, keepdim=True)
        q_land = q.view(*q.shape[:2], landmarks, segment, -1).sum(-2) / counts.clamp(min=1).to(q.dtype)
        k_land = k.view(*k.shape[:2], landmarks, segment, -1).sum(-2) / counts.clamp(min=1).to(k.dtype)
        land_keep = (counts > 0).transpose(-2, -1)

        kernel_1 = _masked_softmax(q @ k_land.transpose(-2, -1), land_keep)
        kernel_2 = _masked_softmax(q_land @ k_land.transpose(-2, -1), land_keep)
        # Empty landmarks get an identity block, so the inverse of the real block is untouched.
        eye = torch.eye(landmarks, dtype=kernel_2.dtype, device=x.device)
        kernel_2 = torch.where(land_keep.transpose(-2, -1), kernel_2, eye)
        kernel_3 = _masked_softmax(q_land @ k.transpose(-2, -1), keep.transpose(-2, -1))
        pinv = iterative_pinv(kernel_2, self.pinv_iterations)
        out = self.attn_drop(kernel_1) @ (pinv @ (kernel_3 @ v))
        if self.conv is not None:
            out = out + self.conv(v)
        return self.out_proj(merge_heads(out[:, :, :n]))


def _masked_softmax(scores: Tensor, keep: Tensor) -> Tensor:
    """Softmax over the last axis restricted to `keep`; rows with nothing kept are zero."""
    low = torch.finfo(scores.dtype).min
    return torch.softmax(scores.masked_fill(~keep, low), dim=-1) * keep.to(scores.dtype)


def iterative_pinv(a: Tensor, iterations: int = 6) -> Tensor:
    """Moore-Penrose pseudo-inverse of `a: (..., m, m)` by the Nystromformer iteration.

    Xiong et al. 2021, eq. 16 (from Razavi et al. 2014):
    `Z_{j+1} = Z_j (13 I - A Z_j (15 I - A Z_j (7 I - A Z_j))) / 4`, from
    `Z_0 = A^T / (||A||_1 ||A||_inf)` per matrix. Runs in fp32 for fp16/bf16 input.
    """
    dtype = a.dtype
    a = a.float() if dtype in _LOW_PRECISION else a
    abs_a = a.abs()
    norm_1 = abs_a.sum(-2).amax(-1)[..., None, None]
    norm_inf = abs_a.sum(-1).amax(-1)[..., None, None]
    z = a.transpose(-2, -1) / (norm_1 * norm_inf)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    for _ in range(iterations):
        az = a @ z
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return z.to(dtype)


class FourierMixer(nn.Module):
    """FNet token mixing: `y = Re(FFT_seq(FFT_hidden(x)))`, no parameters.

    Lee-Thorp et al., "FNet: Mixing Tokens with Fourier Transforms", NAACL 2022, arXiv:2105.03824:
    a drop-in replacement for the self-attention sublayer. fp16/bf16 inputs are transformed in fp32.
    """

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, seq, dim)` -> `(batch, seq, dim)`, same dtype."""
        if x.dim() != 3 or not x.is_floating_point():
            raise ValueError(f"FourierMixer expects a floating (batch, seq, dim) tensor; got {tuple(x.shape)} {x.dtype}")
        y = torch.fft.fft2(x.float() if x.dtype in _LOW_PRECISION else x, dim=(-2, -1)).real
        return y.to(x.dtype)
