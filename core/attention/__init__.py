"""Attention for the whole suite: one functional entry, pluggable kernels, modules built on it."""

from core.attention.axial import AxialAttention
from core.attention.channel import ChannelAttention
from core.attention.functional import KERNELS, Kernel, attention, repeat_kv
from core.attention.linear import FourierMixer, LinformerAttention, NystromAttention
from core.attention.linear_kernel import (
    LinearAttentionState,
    linear_attention,
    linear_attention_step,
)
from core.attention.math_kernel import attention_probs
from core.attention.multihead import MultiHeadAttention
from core.attention.position import (
    RelativePositionBias,
    RotaryEmbedding,
    WindowRelativePositionBias,
    alibi_bias,
    alibi_slopes,
)
from core.attention.window import (
    WindowAttention,
    shift_window_mask,
    window_partition,
    window_reverse,
)

__all__ = [
    "KERNELS",
    "AxialAttention",
    "ChannelAttention",
    "FourierMixer",
    "Kernel",
    "LinearAttentionState",
    "LinformerAttention",
    "MultiHeadAttention",
    "NystromAttention",
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
    "repeat_kv",
    "shift_window_mask",
    "window_partition",
    "window_reverse",
]
