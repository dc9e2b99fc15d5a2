"""R-MAT: Relative Molecule Self-Attention Transformer.

Maziarka, Majchrowski, Danel, Gaiński, Tabor, Podolak, Morkisz, Jastrzębski, "Relative Molecule
Self-Attention Transformer", arXiv 2110.05841 (2021); J. Cheminformatics 16, 3 (2024).

Every atom pair (i, j) carries a relative feature vector a_ij: the neighbourhood order one-hot,
the bond features, and the 3D distance expanded in envelope-damped Bessel radial basis functions
(`BesselRBF`, from DimeNet). Two small MLPs map a_ij to per-head key and value terms
b^K_ij, b^V_ij (hidden layer shared by the heads, output layer per head). With q_i = x_i W^Q,
k_j = x_j W^K, v_j = x_j W^V in one head of width d, the paper's relative self-attention is

    e_ij = (q_i k_j + q_i b^K_ij + k_j b^K_ij) / sqrt(d) + u k_j + w b^K_ij
    z_i  = sum_j softmax_j(e_ij) (v_j + b^V_ij)

with learned per-head vectors u, w (the paper's u, v): content-dependent relative terms q_i b^K_ij
and k_j b^K_ij (the key-side term of Huang et al. 2020, method 4), a global content bias u k_j and
a global relative bias w b^K_ij, Transformer-XL's terms (Dai et al. 2019) with b^K_ij in place of
its sinusoidal relative positions. The logits are `core.attention.attention_probs(q, k,
bias=...)` with every relative term in `bias`; the relative value term needs the weights
themselves, so `z` is formed from those weights with einsums here (the functional
`attention()` returns only the weighted sum of v). With `relative=False` the layer is plain
multi-head attention over the same atoms through `core.attention.attention()` (the ablation).

So the relative layers always run the `math` softmax, whatever `kernel` says: the value term
`sum_j p_ij b^V_ij` pools per-pair vectors (b^V_ij differs for every i), which no kernel of
`attention()` returns, and computing it there would mean expanding the keys and values per query
row, i.e. building the `(batch, n, n, dim)` tensors this layer avoids. `kernel` drives the
self-attentive pooling (and the ablation's plain attention). The model's `kernel` attribute, which
becomes the MLflow tag `kernel`, says that: `math+<kernel>` for relative attention (`math` when
`kernel="math"`), `<kernel>` for the ablation.

The encoder embeds each atom linearly (no activation, as in MAT and the official code), then
stacks pre-LayerNorm residual blocks (attention, then a LeakyReLU feed-forward) as MAT does; the
readout is GROVER's self-attentive pooling (Li et al. 2020) used by R-MAT, a set of learned
queries attending over the atoms (through `core.attention.attention()`), flattened and fed to
the prediction MLP.

Differences from the official code (gmum/huggingmolecules, `models/models_rmat.py`):

- Its `RMatAttention` computes `(query + key)` per row i before the product with b^K_ij, i.e.
  `(q_i + k_i) b^K_ij / sqrt(d)`, and `u k_i`, where the paper has k_j. `u k_i` is constant along
  each softmax row, so the official u has no effect on the attention weights. Here the paper's
  form is the default; `relative_form="official"` gives the official logits
  `(q_i k_j + (q_i + k_i) b^K_ij) / sqrt(d) + u k_i + w b^K_ij` (same parameters).
- Its Bessel basis omits DimeNet's sqrt(2/c) and divides by d/c instead of d: its features are
  ours times c^1.5 / sqrt(2) (about 63 at c = 20 angstrom). We keep DimeNet's normalized form
  (see `BesselRBF` for why).
- Initialization: it applies Xavier-uniform to every parameter with more than one dimension
  (u and w included, so they start non-zero); here layers keep PyTorch's defaults and u, w start
  at zero. Its q, k, v are three `Linear` layers; here one fused `Linear` (the same function).
- With `head_hidden > 0` its prediction MLP has a LayerNorm after each hidden activation; ours
  does not (the configs use `head_hidden=0`, a single linear layer, its default too).
- Its atom and pair features (featurization) differ in detail from `molecules.data.featurize`.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from core.attention import Kernel, attention, attention_probs, merge_heads, split_qkv
from molecules.data.featurize import ATOM_DIM, PAIR_DIM


class BesselRBF(nn.Module):
    """Envelope-damped Bessel radial basis of distances (DimeNet, Klicpera et al. 2020).

    `e_n(d) = sqrt(2 / c) * sin(n pi d / c) / d * u(d / c)` for n = 1..num_radial: DimeNet's
    normalized basis (its Eq. 7) times its polynomial envelope u of exponent p, zero beyond the
    cutoff c (so the dummy node's huge distance maps to zeros). The normalization matters: without
    it (the common `sin(n pi x) / x` form in units of c, which the official R-MAT code uses) the
    self pair d = 0 gives values up to n pi ~ 100 and bonded pairs ~ 13, which saturate the
    relative attention logits at initialization; on ESOL that form gave test RMSE 0.689 against
    0.624 (3 seeds each).

    Args:
        num_radial: number of basis functions (R-MAT: 32).
        cutoff: cutoff distance in angstrom (R-MAT: 20).
        exponent: envelope exponent p (R-MAT: 5).
    """

    def __init__(self, num_radial: int = 32, cutoff: float = 20.0, exponent: int = 5) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.scale = math.sqrt(2 / cutoff) / cutoff  # sqrt(2/c) and 1/d = 1/(x c)
        p = exponent + 1
        self.p, self.a, self.b, self.c = p, -(p + 1) * (p + 2) / 2, p * (p + 2), -p * (p + 1) / 2
        self.register_buffer("frequencies", math.pi * torch.arange(1, num_radial + 1, dtype=torch.float32))

    def forward(self, distances: Tensor) -> Tensor:
        """`distances: (...)` -> `(..., num_radial)`."""
        x = (distances.unsqueeze(-1) + 1e-6) / self.cutoff
        envelope = 1 / x + self.a * x ** (self.p - 1) + self.b * x ** self.p + self.c * x ** (self.p + 1)  # u(x) / x
        return torch.where(x < 1, self.scale * envelope * torch.sin(self.frequencies * x), torch.zeros_like(x))


class RelativeMoleculeAttention(nn.Module):
    """R-MAT's relative self-attention over atoms (see the module docstring for the formula).

    The relative key/value MLPs are `a_ij -> LeakyReLU(W1 a_ij) = g_ij (width r) -> W2 g_ij + c`
    (r = head width, as in the authors' code). Both are evaluated without materializing the
    `(batch, n, n, dim)` tensors b^K, b^V: the head-wise `W2` is folded into q, k, u, w and into
    the pooled hidden values instead (`q_i . (W2 g_ij) = (W2^T q_i) . g_ij`), the same function at
    about a quarter of the cost (checked against the direct form, `tests/molecules/rmat_reference.py`).

    Args:
        dim: model width.
        heads: attention heads (`dim` divisible by it).
        relative_dim: width of the relative features a_ij.
        relative: False gives plain multi-head attention (pair features ignored).
        dropout: dropout on the attention weights and inside the relative MLPs.
        kernel: attention kernel for the plain (`relative=False`) path.
        relative_form: `"paper"`: the paper's logits, `k_j b^K_ij` and `u k_j`; `"official"`: the
            official code's `k_i b^K_ij` and `u k_i` (the module docstring has both).
    """

    def __init__(
        self, dim: int, heads: int, relative_dim: int, *, relative: bool = True, dropout: float = 0.0,
        kernel: Kernel = "auto", relative_form: Literal["paper", "official"] = "paper",
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"rmat.py: dim {dim} is not divisible by heads {heads}")
        if relative_form not in ("paper", "official"):
            raise ValueError(f"rmat.py: relative_form must be 'paper' or 'official', got {relative_form!r}")
        self.heads, self.head_dim, self.relative, self.dropout, self.kernel = heads, dim // heads, relative, dropout, kernel
        self.relative_form = relative_form
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        if relative:
            r = self.head_dim
            self.key_hidden = nn.Sequential(nn.Linear(relative_dim, r), nn.LeakyReLU(0.1), nn.Dropout(dropout))
            self.value_hidden = nn.Sequential(nn.Linear(relative_dim, r), nn.LeakyReLU(0.1), nn.Dropout(dropout))
            self.key_out = nn.Linear(r, dim)  # W2 of b^K: per head (head_dim, r)
            self.value_out = nn.Linear(r, dim)  # W2 of b^V
            self.u = nn.Parameter(torch.zeros(heads, self.head_dim))
            self.w = nn.Parameter(torch.zeros(heads, self.head_dim))

    def _per_head(self, linear: nn.Linear) -> tuple[Tensor, Tensor]:
        """`W2 (heads, head_dim, r)` and bias `(heads, head_dim)` of an output layer."""
        return linear.weight.view(self.heads, self.head_dim, -1), linear.bias.view(self.heads, self.head_dim)

    def _logit_bias(self, q: Tensor, k: Tensor, g: Tensor) -> Tensor:
        """All relative logit terms `(b, h, n, n)` from the key MLP's hidden `g: (b, n, n, r)`."""
        scale = self.head_dim ** -0.5
        w2, c = self._per_head(self.key_out)
        official = self.relative_form == "official"
        rows = (q + k if official else q) * scale  # every vector that meets b^K_ij from row i's side
        q_r = torch.einsum("bhid,hdr->bhir", rows, w2) + torch.einsum("hd,hdr->hr", self.w, w2)[None, :, None]
        pair = torch.einsum("bhir,bijr->bhij", q_r, g)
        # terms of the constant c (and the official u k_i) are constant along a row: kept for exact logits
        row = (rows * c[None, :, None]).sum(-1, keepdim=True) + (self.w * c).sum(-1)[None, :, None, None]
        if official:
            return pair + row + torch.einsum("bhid,hd->bhi", k, self.u).unsqueeze(-1)
        k_r = torch.einsum("bhjd,hdr->bhjr", k * scale, w2)
        pair = pair + torch.einsum("bhjr,bijr->bhij", k_r, g)
        col = ((k * scale * c[None, :, None]).sum(-1) + torch.einsum("bhjd,hd->bhj", k, self.u)).unsqueeze(2)
        return pair + row + col

    def _relative_values(self, probs: Tensor, h: Tensor) -> Tensor:
        """`sum_j p_ij b^V_ij`: `(b, heads, n, head_dim)` from the value MLP's hidden `h: (b, n, n, r)`."""
        w2, c = self._per_head(self.value_out)
        pooled = torch.einsum("bhij,bijr->bhir", probs, h)
        return torch.einsum("bhir,hdr->bhid", pooled, w2) + probs.sum(-1, keepdim=True) * c[None, :, None]

    def forward(self, x: Tensor, relative: Tensor, mask: Tensor) -> Tensor:
        """`x: (b, n, dim)`, `relative: (b, n, n, relative_dim)`, `mask: (b, n)` bool -> `(b, n, dim)`."""
        q, k, v = split_qkv(self.qkv(x), self.heads)
        key_mask = mask[:, None, None, :]
        if not self.relative:
            out = attention(q, k, v, mask=key_mask, dropout_p=self.dropout if self.training else 0.0, kernel=self.kernel)
        else:
            probs = attention_probs(q, k, mask=key_mask, bias=self._logit_bias(q, k, self.key_hidden(relative)))
            probs = nn.functional.dropout(probs, self.dropout, self.training)
            out = torch.matmul(probs, v) + self._relative_values(probs, self.value_hidden(relative))
        return self.out(merge_heads(out))

    def attention_weights(self, x: Tensor, relative: Tensor, mask: Tensor) -> Tensor:
        """Attention weights `(b, heads, n, n)` of `forward`'s inputs (for plots)."""
        q, k, _ = split_qkv(self.qkv(x), self.heads)
        bias = self._logit_bias(q, k, self.key_hidden(relative)) if self.relative else None
        return attention_probs(q, k, mask=mask[:, None, None, :], bias=bias)


class RMATLayer(nn.Module):
    """Pre-LayerNorm residual block: relative attention, then a LeakyReLU feed-forward."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, relative_dim: int, *, relative: bool, dropout: float,
                 kernel: Kernel, relative_form: Literal["paper", "official"] = "paper") -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = RelativeMoleculeAttention(dim, heads, relative_dim, relative=relative, dropout=dropout, kernel=kernel,
                                              relative_form=relative_form)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.LeakyReLU(0.1), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, relative: Tensor, mask: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), relative, mask))
        return x + self.drop(self.ffn(self.norm2(x)))


class SelfAttentivePooling(nn.Module):
    """GROVER's self-attentive readout: `heads` learned queries attend over the atoms.

    Weights `softmax_i(w_r . tanh(W h_i))` = attention with query w_r, key tanh(W h_i), value h_i
    and scale 1, through `core.attention.attention()`; the `heads` pooled vectors are flattened.

    Args:
        dim: atom state width.
        hidden: width of the tanh projection (GROVER: 128).
        heads: number of pooled vectors (GROVER: 4).
    """

    def __init__(self, dim: int, hidden: int = 128, heads: int = 4, kernel: Kernel = "auto") -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden, bias=False)
        self.queries = nn.Parameter(torch.randn(heads, hidden) / math.sqrt(hidden))
        self.heads, self.kernel = heads, kernel

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """`x: (b, n, dim)`, `mask: (b, n)` -> `(b, heads * dim)`."""
        b = x.shape[0]
        keys = torch.tanh(self.proj(x)).unsqueeze(1)  # one kv head shared by every query
        q = self.queries.unsqueeze(0).unsqueeze(2).expand(b, -1, -1, -1)
        pooled = attention(q, keys, x.unsqueeze(1), mask=mask[:, None, None, :], scale=1.0, kernel=self.kernel)
        return pooled.flatten(1)


class RMAT(nn.Module):
    """Relative Molecule Attention Transformer for molecular property prediction.

    Input: batches of `molecules.data.MoleculeDataModule` (dummy node at index 0).

    Args:
        outputs: predicted targets (tasks).
        atom_dim: atom feature width (`molecules.data.ATOM_DIM`).
        pair_dim: width of the discrete pair features (`molecules.data.PAIR_DIM`).
        dim: model width (paper: 768).
        depth: encoder layers (paper: 10).
        heads: attention heads (paper: 12).
        ffn_dim: feed-forward hidden width (paper: 2 * dim = 1536).
        dropout: dropout everywhere (paper's fine-tuning grid: 0.0 / 0.1 / 0.2; default 0.0).
        num_radial: Bessel basis functions of the 3D distance (paper: 32).
        cutoff: distance cutoff in angstrom (paper: 20).
        envelope_exponent: envelope exponent (paper: 5).
        relative: False replaces relative attention by plain attention over the same atom
            features (the ablation); pair features and distances are then unused.
        pool_hidden: self-attentive pooling projection width (GROVER: 128).
        pool_heads: pooled vectors (GROVER: 4).
        head_hidden: hidden width of the prediction MLP (0 = one linear layer).
        kernel: attention kernel of the plain attention path and the pooling; the relative layers
            always use explicit `math` weights (module docstring), so the `kernel` attribute (the
            MLflow tag) is `math+<kernel>` with `relative=True` (`math` for `kernel="math"`).
        relative_form: `"paper"` (default) or `"official"`: which key and u terms the relative
            logits use (see the module docstring).
    """

    role: ClassVar[str] = "model"

    def __init__(
        self,
        outputs: int = 1,
        atom_dim: int = ATOM_DIM,
        pair_dim: int = PAIR_DIM,
        dim: int = 768,
        depth: int = 10,
        heads: int = 12,
        ffn_dim: int = 1536,
        dropout: float = 0.0,
        num_radial: int = 32,
        cutoff: float = 20.0,
        envelope_exponent: int = 5,
        relative: bool = True,
        pool_hidden: int = 128,
        pool_heads: int = 4,
        head_hidden: int = 0,
        kernel: Kernel = "auto",
        relative_form: Literal["paper", "official"] = "paper",
    ) -> None:
        super().__init__()
        # the kernels that run (module docstring): the relative layers' explicit math softmax, then the pooling's
        self.relative = relative
        self.kernel = kernel if not relative else ("math" if kernel == "math" else f"math+{kernel}")
        self.embed = nn.Sequential(nn.Linear(atom_dim, dim), nn.Dropout(dropout))
        self.rbf = BesselRBF(num_radial, cutoff, envelope_exponent)
        relative_dim = pair_dim + num_radial
        self.layers = nn.ModuleList(
            RMATLayer(dim, heads, ffn_dim, relative_dim, relative=relative, dropout=dropout, kernel=kernel,
                      relative_form=relative_form)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.pool = SelfAttentivePooling(dim, pool_hidden, pool_heads, kernel=kernel)
        pooled = dim * pool_heads
        self.head = (
            nn.Sequential(nn.Linear(pooled, head_hidden), nn.LeakyReLU(0.1), nn.Dropout(dropout), nn.Linear(head_hidden, outputs))
            if head_hidden else nn.Linear(pooled, outputs)
        )

    def relative_features(self, pairs: Tensor, distances: Tensor) -> Tensor:
        """a_ij: `(b, n, n, pair_dim + num_radial)` from the pair features and the RBF distances."""
        return torch.cat([pairs, self.rbf(distances)], dim=-1)

    def encode(self, atoms: Tensor, pairs: Tensor, distances: Tensor, mask: Tensor) -> Tensor:
        """Atom states `(b, n, dim)` after the encoder."""
        relative = self.relative_features(pairs, distances)
        x = self.embed(atoms)
        for layer in self.layers:
            x = layer(x, relative, mask)
        return self.norm(x)

    def forward(self, atoms: Tensor, pairs: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> Tensor:
        """`atoms: (b, n, atom_dim)`, `pairs: (b, n, n, pair_dim)`, `distances`/`adjacency: (b, n, n)`,
        `mask: (b, n)` -> predictions `(b, outputs)`. `adjacency` is unused (its bonds are in `pairs`)."""
        return self.head(self.pool(self.encode(atoms, pairs, distances, mask), mask))

    @torch.no_grad()
    def attention_maps(self, atoms: Tensor, pairs: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> list[Tensor]:
        """Per-layer attention weights `(b, heads, n, n)` for the inputs of `forward`."""
        relative = self.relative_features(pairs, distances)
        x, maps = self.embed(atoms), []
        for layer in self.layers:
            maps.append(layer.attn.attention_weights(layer.norm1(x), relative, mask))
            x = layer(x, relative, mask)
        return maps
