"""CSV reading, bad input, seeded random / scaffold splits and the data module's batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molecules.data import (
    MoleculeDataModule,
    murcko_scaffold,
    random_split,
    read_molecule_csv,
    scaffold_split,
)
from molecules.data.featurize import ATOM_DIM, PAIR_DIM

from .conftest import SHARED, TINY_SMILES


def test_missing_column_names_columns_present(tiny_csv):
    with pytest.raises(ValueError, match=r"tiny.csv: column\(s\) \['target'\] missing; found \['smiles', 'logS'\]"):
        read_molecule_csv(tiny_csv, "smiles", ["target"])
    with pytest.raises(ValueError, match=r"column\(s\) \['SMILES'\] missing"):
        read_molecule_csv(tiny_csv, "SMILES", ["logS"])


def test_non_numeric_target_is_an_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("smiles,y\nCCO,1.0\nCCC,abc\n")
    with pytest.raises(ValueError, match="row 1 is not a number: 'abc'"):
        read_molecule_csv(path, "smiles", ["y"])


def test_invalid_smiles_skipped_with_row_named(tiny_csv, cache_dir):
    data = MoleculeDataModule(path=str(tiny_csv), dataset_name="tiny", target_columns=["logS"], cache_dir=str(cache_dir),
                              featurize_workers=1, split_sizes=(0.5, 0.25, 0.25))
    with pytest.warns(UserWarning, match=r"tiny.csv: row 3: invalid SMILES 'not_a_smiles' skipped"):
        data.setup()
    assert data.skipped_rows == 1
    assert len(data.train_set) + len(data.val_set) + len(data.test_set) == len(TINY_SMILES)
    assert "not_a_smiles" not in sum(data.split_smiles, [])


def test_batches_padded_and_masked(tiny_csv, cache_dir):
    data = MoleculeDataModule(path=str(tiny_csv), dataset_name="tiny", target_columns=["logS"], cache_dir=str(cache_dir),
                              featurize_workers=1, batch_size=4, split_sizes=(0.5, 0.25, 0.25), precompute=False)
    with pytest.warns(UserWarning):
        data.setup()
    batch = next(iter(data.val_dataloader()))
    b, n = batch["mask"].shape
    assert batch["atoms"].shape == (b, n, ATOM_DIM) and batch["pairs"].shape == (b, n, n, PAIR_DIM)
    sizes = batch["mask"].sum(1)
    for row, smiles in enumerate(data.val_set.smiles):
        from rdkit import Chem

        assert sizes[row] == Chem.MolFromSmiles(smiles).GetNumAtoms() + 1
        assert batch["atoms"][row, sizes[row]:].abs().sum() == 0  # padding is zero
    assert torch.equal(batch["adjacency"], batch["adjacency"].transpose(1, 2))
    np.testing.assert_allclose(data.target_mean, [np.mean(data.train_set.targets)], rtol=1e-6)


def test_random_split_seeded_disjoint():
    a, b = random_split(100, seed=1), random_split(100, seed=1)
    assert a == b and random_split(100, seed=2) != a
    train, val, test = a
    assert (len(train), len(val), len(test)) == (80, 10, 10)
    assert sorted(train + val + test) == list(range(100))


def test_scaffold_split_no_scaffold_in_two_splits():
    import pandas as pd

    path = SHARED / "delaney-processed.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    smiles = pd.read_csv(path)["smiles"].str.strip().tolist()[:300]
    for seed in (0, 1):
        parts = scaffold_split(smiles, seed=seed)
        assert sorted(sum(parts, [])) == list(range(len(smiles)))
        scaffolds = [{murcko_scaffold(smiles[i]) for i in part} for part in parts]
        assert not (scaffolds[0] & scaffolds[1] or scaffolds[0] & scaffolds[2] or scaffolds[1] & scaffolds[2])
        assert abs(len(parts[0]) - 240) <= 15
    assert scaffold_split(smiles, seed=0) != scaffold_split(smiles, seed=1)


def test_murcko_scaffold_reference_values():
    assert murcko_scaffold("Cc1ccccc1") == "c1ccccc1"
    assert murcko_scaffold("CCO") == ""
    assert murcko_scaffold("OC1CCCCC1") == "C1CCCCC1"
