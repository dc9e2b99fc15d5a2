"""Shared fixtures of the molecules tests: tiny CSVs and an isolated featurization cache."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "molecules"

# eight small molecules with two scaffolds' worth of rings and a few acyclic ones
TINY_SMILES = ["CCO", "c1ccccc1", "Cc1ccccc1", "CC(=O)O", "C1CCCCC1", "OC1CCCCC1", "CCN", "c1ccncc1"]
TINY_LOGS = [1.1, -1.6, -2.2, 1.2, -3.1, -0.4, 1.0, 0.8]


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    """A MoleculeNet-style regression CSV with one invalid SMILES (row 3)."""
    rows = ["smiles,logS"]
    for i, (s, y) in enumerate(zip(TINY_SMILES, TINY_LOGS, strict=True)):
        rows.append(f"{s},{y}")
        if i == 2:
            rows.append("not_a_smiles,0.0")
    path = tmp_path / "tiny.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def _single_thread(one_torch_thread: None) -> None:
    """Every molecules test runs on one torch thread (`one_torch_thread` in tests/conftest.py)."""
