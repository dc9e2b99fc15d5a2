"""Splitting the feature axis into attention heads and merging it back.

Every module that projects tokens and then attends per head reshapes the same way: the
projection's features are `heads` blocks of `head_dim` channels, head h owning channels
`h * head_dim .. (h + 1) * head_dim - 1`. One implementation here keeps that layout, and with it
the meaning of every checkpoint's projection weights, identical across modules.
"""

from __future__ import annotations

from torch import Tensor


def split_heads(x: Tensor, heads: int) -> Tensor:
    """`x: (batch, seq, heads * head_dim)` -> `(batch, heads, seq, head_dim)`, a view of `x`.

    Works on non-contiguous `x` (a slice or a transpose): splitting one axis never copies.
    """
    _check(x, heads, 1, "split_heads")
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """Inverse of `split_heads`: `x: (batch, heads, seq, head_dim)` -> `(batch, seq, heads * head_dim)`."""
    if x.dim() != 4:
        raise ValueError(f"merge_heads expects (batch, heads, seq, head_dim); got {tuple(x.shape)}")
    return x.transpose(1, 2).flatten(2)


def split_qkv(x: Tensor, heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """Split a fused projection `x: (batch, seq, 3 * heads * head_dim)` into q, k, v.

    The features are laid out `[q | k | v]`, each `heads * head_dim` wide (what one
    `nn.Linear(dim, 3 * dim)` gives); each of the returned q, k, v is `(batch, heads, seq, head_dim)`.
    """
    _check(x, heads, 3, "split_qkv")
    q, k, v = x.unflatten(-1, (3, heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
    return q, k, v


def _check(x: Tensor, heads: int, parts: int, owner: str) -> None:
    width = f"{parts} * heads * head_dim" if parts > 1 else "heads * head_dim"
    if heads < 1 or x.dim() != 3 or x.shape[-1] % (parts * heads):
        raise ValueError(f"{owner} expects (batch, seq, {width}) with heads={heads}; got {tuple(x.shape)}")
