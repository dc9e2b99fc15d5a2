"""Triton kernels, one per file, each with launchers that validate their inputs.

`flash_attention`: fused softmax(q k^T * scale + bias) v, forward and backward, tested against the
pure-PyTorch `math` attention kernel. Under `TRITON_INTERPRET=1` (set before this package is
imported) the kernels run on CPU tensors through Triton's interpreter.
"""

from core.kernels.flash_attention import (
    INTERPRETED,
    flash_attention_backward,
    flash_attention_forward,
)

__all__ = ["INTERPRETED", "flash_attention_backward", "flash_attention_forward"]
