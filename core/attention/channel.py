"""Channel (transposed, cross-covariance) attention: channels attend to channels.

Ali et al. 2021, "XCiT: Cross-Covariance Image Transformers", arXiv:2106.09681; Zamir et al.
2022, "Restormer" (MDTA), which LLFormer also builds on. Queries and keys are L2-normalized
along the tokens and scaled by a learned per-head temperature, so the attention map is
`(C/h x C/h)` per head and the cost is linear in the number of tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.attention.functional import Kernel, attention
from core.attention.heads import merge_heads, split_qkv
from core.attention.math_kernel import attention_probs


class ChannelAttention(nn.Module):
    """Transposed multi-head attention over channels.

    Args:
        dim: channels.
        num_heads: heads; each attends among `dim / num_heads` channels.
        qkv_bias: bias in the projections.
        kernel: attention kernel name (the "sequence" is channels, the "head_dim" is tokens).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, kernel: Kernel = "auto") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.kernel = num_heads, kernel
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (batch, tokens, dim)` -> same shape."""
        q, k, v = self._prepare(x)
        out = attention(q, k, v, scale=1.0, kernel=self.kernel)  # (b, heads, c/h, tokens)
        return self.proj(merge_heads(out.transpose(-2, -1)))

    def attention_weights(self, x: Tensor) -> Tensor:
        """Channel-to-channel probabilities `(batch, heads, C/h, C/h)`."""
        q, k, _ = self._prepare(x)
        return attention_probs(q, k, scale=1.0)

    def _prepare(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if x.dim() != 3:
            raise ValueError(f"ChannelAttention expects (batch, tokens, dim); got {tuple(x.shape)}")
        # transposed: the channels of a head are its "sequence", the tokens its features
        q, k, v = (t.transpose(-2, -1) for t in split_qkv(self.qkv(x), self.num_heads))  # (b, heads, c/h, tokens)
        q = F.normalize(q, dim=-1) * self.temperature
        k = F.normalize(k, dim=-1)
        return q, k, v
