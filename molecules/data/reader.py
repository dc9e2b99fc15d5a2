"""Readers for MoleculeNet-style CSVs (one SMILES column and one or more target columns), and for the
molecules a user predicts on (a CSV with a SMILES column, or a text file of SMILES)."""

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


def read_smiles_file(path: Path | str, smiles_column: str = "smiles") -> tuple[list[int], list[str]]:
    """The molecules of a file to predict on: `(positions, smiles)`, one entry per molecule.

    A `.csv` file is read by its header: the column `smiles_column`, else one named `smiles` in any
    case; positions are the data rows (from 0, the header and blank lines not counted) and empty
    cells are kept (as "", an invalid SMILES for the caller to report). Any other file is text, one SMILES per line
    (the first whitespace-separated token, as in `.smi` files, so a name may follow it); positions
    are the line numbers (from 0) and blank lines are no molecule. Raises naming the file and the fix
    when it cannot be read or has no SMILES column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (a CSV with a SMILES column or a text file of SMILES is expected)")
    if path.suffix.lower() == ".csv":
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise ValueError(f"{path}: not a readable CSV ({type(err).__name__}: {str(err).strip()[:120]}); give a "
                             f"CSV with a {smiles_column!r} column or a text file of SMILES, one per line") from None
        columns = list(frame.columns)
        found = smiles_column if smiles_column in columns else next((c for c in columns if c.lower() == "smiles"), None)
        if found is None:
            raise ValueError(f"{path}: no SMILES column {smiles_column!r}; found {columns}; name yours with "
                             "--data.init_args.smiles_column=NAME (or give a text file of SMILES, one per line)")
        return list(range(len(frame))), [str(s).strip() for s in frame[found].tolist()]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file of SMILES (not UTF-8 text); give one SMILES per line, or a .csv "
                         "with a SMILES column") from None
    positions, smiles = [], []
    for number, line in enumerate(lines):
        if line.strip():
            positions.append(number)
            smiles.append(line.split()[0])
    return positions, smiles
