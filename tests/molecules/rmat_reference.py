"""R-MAT's relative attention written term by term: the reference `RelativeMoleculeAttention` is tested against.

The model folds the head-wise output layers of the relative key/value MLPs into q, k, u, w and the
pooled hidden values; this reference materializes b^K, b^V `(batch, heads, n, n, head_dim)` and
evaluates the formulas directly, reading the layer's own parameters. The paper's form
(arXiv 2110.05841, `relative_form="paper"`):

    e_ij = (q_i k_j + q_i b^K_ij + k_j b^K_ij) / sqrt(d) + u k_j + w b^K_ij
    z_i  = sum_j softmax_j(e_ij) (v_j + b^V_ij)

and the official code's (gmum/huggingmolecules `RMatAttention`, `relative_form="official"`), whose
key-relative and u terms take the key of row i:

    e_ij = (q_i k_j + (q_i + k_i) b^K_ij) / sqrt(d) + u k_i + w b^K_ij
"""

from __future__ import annotations

import torch
from torch import Tensor

from molecules.models.rmat import RelativeMoleculeAttention


def naive_forward(layer: RelativeMoleculeAttention, x: Tensor, relative: Tensor, mask: Tensor) -> Tensor:
    """`layer.forward(x, relative, mask)` with b^K, b^V materialized.

    `x: (b, n, dim)`, `relative: (b, n, n, relative_dim)`, `mask: (b, n)` bool -> `(b, n, dim)`.
    """
    b, n, dim = x.shape
    heads, head_dim = layer.heads, layer.head_dim
    # the head layout of a fused qkv projection, spelled out: [q | k | v], head h owns channels h*d..(h+1)*d-1
    q, k, v = layer.qkv(x).view(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    rv = layer.value_out(layer.value_hidden(relative)).view(b, n, n, heads, head_dim).permute(0, 3, 1, 2, 4)
    probs = naive_weights(layer, x, relative, mask)
    out = torch.einsum("bhij,bhjd->bhid", probs, v) + torch.einsum("bhij,bhijd->bhid", probs, rv)
    return layer.out(out.transpose(1, 2).reshape(b, n, dim))


def naive_weights(layer: RelativeMoleculeAttention, x: Tensor, relative: Tensor, mask: Tensor) -> Tensor:
    """softmax_j(e_ij) `(b, heads, n, n)` of `layer.relative_form`'s formula, masked keys excluded."""
    b, n, _ = x.shape
    heads, head_dim = layer.heads, layer.head_dim
    q, k, _ = layer.qkv(x).view(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    rk = layer.key_out(layer.key_hidden(relative)).view(b, n, n, heads, head_dim).permute(0, 3, 1, 2, 4)
    scale = head_dim ** -0.5
    logits = torch.einsum("bhid,bhjd->bhij", q, k) * scale + torch.einsum("bhid,bhijd->bhij", q, rk) * scale
    logits = logits + torch.einsum("bhijd,hd->bhij", rk, layer.w)
    if layer.relative_form == "paper":
        logits = logits + torch.einsum("bhjd,bhijd->bhij", k, rk) * scale
        logits = logits + torch.einsum("bhjd,hd->bhj", k, layer.u)[:, :, None, :]  # u k_j: one value per column j
    else:
        logits = logits + torch.einsum("bhid,bhijd->bhij", k, rk) * scale
        logits = logits + torch.einsum("bhid,hd->bhi", k, layer.u)[:, :, :, None]  # u k_i: one value per row i
    return torch.softmax(logits.masked_fill(~mask[:, None, None, :], float("-inf")), dim=-1)
