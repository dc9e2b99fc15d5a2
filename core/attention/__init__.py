"""Attention for the whole suite: one functional entry, pluggable kernels, modules built on it."""

from core.attention.autocorrelation import AutoCorrelationAttention
from core.attention.axial import AxialAttention
from core.attention.channel import ChannelAttention
from core.attention.functional import KERNELS, Kernel, attention, repeat_kv
from core.attention.heads import merge_heads, split_heads, split_qkv
from core.attention.linear import FourierMixer, LinformerAttention, NystromAttention
from core.attention.linear_kernel import (
    LinearAttentionState,
    linear_attention,
    linear_attention_step,
)
from core.attention.math_kernel import attention_probs
from core.attention.multihead import MultiHeadAttention, MultiHeadProjection, PositionMode
from core.attention.overlapping_window import OverlappingWindowAttention, OverlappingWindowBias
from core.attention.position import (
    RelativePositionBias,
    RotaryEmbedding,
    WindowRelativePositionBias,
    alibi_bias,
    alibi_slopes,
)
from core.attention.probsparse import ProbSparseAttention, probsparse_attention
from core.attention.window import (
    WindowAttention,
    shift_window_mask,
    window_partition,
    window_reverse,
)

# The functional `core.attention.autocorrelation.autocorrelation` is not re-exported: bound here it
# would replace the submodule `core.attention.autocorrelation` as an attribute of this package.

__all__ = [
    "KERNELS",
    "AutoCorrelationAttention",
    "AxialAttention",
    "ChannelAttention",
    "FourierMixer",
    "Kernel",
    "LinearAttentionState",
    "LinformerAttention",
    "MultiHeadAttention",
    "MultiHeadProjection",
    "NystromAttention",
    "OverlappingWindowAttention",
    "OverlappingWindowBias",
    "PositionMode",
    "ProbSparseAttention",
    "RelativePositionBias",
    "RotaryEmbedding",
    "WindowAttention",
    "WindowRelativePositionBias",
    "alibi_bias",
    "alibi_slopes",
    "attention",
    "attention_probs",
    "linear_attention",
    "linear_attention_step",
    "merge_heads",
    "probsparse_attention",
    "repeat_kv",
    "shift_window_mask",
    "split_heads",
    "split_qkv",
    "window_partition",
    "window_reverse",
]
