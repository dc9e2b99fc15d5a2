"""Random forest on RDKit 2D descriptors (the descriptor baseline of MoleculeNet-style benchmarks).

Every descriptor of `rdkit.Chem.Descriptors.descList` (about 210: logP, TPSA, molecular weight,
counts, topological indices, ...); non-finite values become 0 and magnitudes are clipped to 1e6,
as chemprop does for its RDKit-2D features. Forests as in `molecules.models.fingerprint_rf`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import Descriptors

from molecules.models.fingerprint_rf import ForestOnFeatures


def rdkit_descriptors(smiles: Sequence[str]) -> np.ndarray:
    """`(molecules, descriptors)` float32 RDKit 2D descriptors."""
    RDLogger.DisableLog("rdApp.*")
    rows = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            raise ValueError(f"descriptor_rf.py: invalid SMILES {s!r}")
        rows.append([fn(mol) for _, fn in Descriptors.descList])
    values = np.asarray(rows, dtype=np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(values, -1e6, 1e6).astype(np.float32)


class DescriptorRF(ForestOnFeatures):
    """Random forest on RDKit 2D descriptors; arguments as `ForestOnFeatures`."""

    def featurize(self, smiles: Sequence[str]) -> np.ndarray:
        return rdkit_descriptors(smiles)
