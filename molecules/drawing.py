"""Attention weights drawn over a molecule's structure with RDKit."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D


def atom_attention(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Attention each real atom receives, averaged over layers, heads and querying atoms.

    `maps`: per layer `(heads, n, n)` for one molecule with the dummy node at index 0; returns
    `(n - 1,)` weights of the heavy atoms, normalized to sum to 1.
    """
    stacked = np.stack([np.asarray(m) for m in maps])  # (layers, heads, n, n)
    received = stacked[..., 1:, 1:].mean(axis=(0, 1, 2))
    total = received.sum()
    return received / total if total > 0 else received


def attention_figure(smiles: str, maps: Sequence[np.ndarray], title: str = "") -> Figure:
    """The molecule with atoms shaded by the attention they receive, beside the last layer's map."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"drawing.py: cannot draw invalid SMILES {smiles!r}")
    weights = atom_attention(maps)
    scaled = weights / weights.max() if weights.max() > 0 else weights
    cmap = plt.get_cmap("Reds")
    colors = {i: tuple(float(c) for c in cmap(0.15 + 0.85 * w)[:3]) for i, w in enumerate(scaled)}
    drawer = rdMolDraw2D.MolDraw2DCairo(500, 400)
    drawer.drawOptions().addAtomIndices = True
    rdMolDraw2D.PrepareAndDrawMolecule(
        drawer, mol, highlightAtoms=list(colors), highlightAtomColors=colors, highlightBonds=[],
    )
    drawer.FinishDrawing()
    image = Image.open(io.BytesIO(drawer.GetDrawingText()))
    fig = Figure(figsize=(11, 4.5))
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(image)
    ax.set_axis_off()
    ax.set_title(title or smiles, fontsize=9)
    ax = fig.add_subplot(1, 2, 2)
    last = np.asarray(maps[-1]).mean(axis=0)
    im = ax.imshow(last, cmap="viridis")
    labels = ["dummy", *[f"{a.GetSymbol()}{a.GetIdx()}" for a in mol.GetAtoms()]]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set_title("last layer, mean over heads (row = query atom)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
