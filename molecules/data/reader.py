"""Readers for MoleculeNet-style CSVs: one SMILES column and one or more target columns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def read_molecule_csv(
    path: Path | str, smiles_column: str, target_columns: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """SMILES strings and a `(molecules, targets)` float array (NaN = missing label).

    Raises `ValueError` naming the file and the columns it has when a column is missing or a
    target column holds text that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (a MoleculeNet-style CSV is expected)")
    frame = pd.read_csv(path)
    columns = list(frame.columns)
    missing = [c for c in [smiles_column, *target_columns] if c not in columns]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} missing; found {columns}")
    if not target_columns:
        raise ValueError(f"{path}: no target column given; found {columns}")
    targets = frame[list(target_columns)].apply(pd.to_numeric, errors="coerce")
    bad = targets.isna() & frame[list(target_columns)].notna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise ValueError(
            f"{path}: target column {target_columns[col]!r} row {row} is not a number: "
            f"{frame[target_columns[col]].iloc[row]!r}"
        )
    smiles = [s.strip() if isinstance(s, str) else "" for s in frame[smiles_column].tolist()]
    return smiles, targets.to_numpy(dtype=np.float32)
