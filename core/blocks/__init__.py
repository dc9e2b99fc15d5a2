"""Transformer building blocks shared by every domain.

Norms and regularizers that timm or torch already provide are re-exported rather than rewritten:
`LayerNorm2d` (channels-first LayerNorm), `DropPath` (stochastic depth), `trunc_normal_`, and
torch's `nn.RMSNorm`.
"""

from timm.layers import DropPath, LayerNorm2d, trunc_normal_
from torch.nn import RMSNorm

from core.blocks.ffn import MLP, GatedFFN
from core.blocks.positional import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)
from core.blocks.transformer import (
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    make_ffn,
    make_norm,
)

__all__ = [
    "MLP",
    "DropPath",
    "GatedFFN",
    "LayerNorm2d",
    "LearnedPositionalEncoding",
    "RMSNorm",
    "SinusoidalPositionalEncoding",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "make_ffn",
    "make_norm",
    "sinusoidal_table",
    "trunc_normal_",
]
