"""Seeded random and Bemis-Murcko scaffold splits (80/10/10 by default)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem.Scaffolds import MurckoScaffold

Split = tuple[list[int], list[int], list[int]]


def _sizes(n: int, fractions: Sequence[float]) -> tuple[int, int]:
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1; got {list(fractions)}")
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return n_train, n_val


def random_split(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Shuffle `range(n)` with `seed` and cut it into train/val/test."""
    n_train, n_val = _sizes(n, fractions)
    order = np.random.default_rng(seed).permutation(n).tolist()
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


def murcko_scaffold(smiles: str) -> str:
    """Canonical Bemis-Murcko scaffold SMILES (empty for acyclic molecules)."""
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"murcko_scaffold: invalid SMILES {smiles!r}")
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffold_split(smiles: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Balanced, seeded Bemis-Murcko scaffold split: no scaffold is in two splits.

    As chemprop's `scaffold_balanced`: scaffold sets larger than half the test size go first (in a
    seeded random order), then the rest shuffled; each set fills train, else val, else test.
    """
    n_train, n_val = _sizes(len(smiles), fractions)
    n_test = len(smiles) - n_train - n_val
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(smiles):
        groups[murcko_scaffold(s)].append(i)
    sets = list(groups.values())
    rng = np.random.default_rng(seed)
    big = [s for s in sets if len(s) > max(n_val, n_test) / 2]
    small = [s for s in sets if len(s) <= max(n_val, n_test) / 2]
    rng.shuffle(big)
    rng.shuffle(small)
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    for group in big + small:
        if len(train) + len(group) <= n_train:
            train += group
        elif len(val) + len(group) <= n_val:
            val += group
        else:
            test += group
    return train, val, test
