"""Atom and pair features against hand-computed values; conformers; the featurization cache."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from rdkit import Chem

from molecules.data.featurize import (
    ATOM_DIM,
    DUMMY_DISTANCE,
    PAIR_DIM,
    UNREACHABLE,
    FeaturizerSettings,
    featurize,
    featurize_many,
)

# the package re-exports a function named `featurize`; the module itself is patched below
featurize_module = importlib.import_module("molecules.data.featurize")

# column offsets of the atom feature blocks (see featurize.py's module docstring)
ELEMENT, DEGREE, HS, CHARGE, HYBRID, RING, AROMATIC, DUMMY = 0, 11, 17, 22, 25, 30, 31, 32


def expected_atom(element: int, degree: int, hs: int, charge: int, hybrid: int, ring: bool, aromatic: bool) -> np.ndarray:
    v = np.zeros(ATOM_DIM, dtype=np.float32)
    v[ELEMENT + element] = v[DEGREE + degree] = v[HS + hs] = v[CHARGE + charge + 1] = v[HYBRID + hybrid] = 1
    v[RING], v[AROMATIC] = float(ring), float(aromatic)
    return v


def test_ethanol_atoms_and_pairs():
    f = featurize("CCO")
    assert f.atoms.shape == (4, ATOM_DIM) and f.conformer == "etkdg+mmff"
    dummy = np.zeros(ATOM_DIM, dtype=np.float32)
    dummy[DUMMY] = 1
    np.testing.assert_array_equal(f.atoms[0], dummy)
    # CH3: carbon (index 1 of B C N ...), 1 heavy neighbour, 3 H, neutral, sp3 (index 2)
    np.testing.assert_array_equal(f.atoms[1], expected_atom(1, 1, 3, 0, 2, False, False))
    np.testing.assert_array_equal(f.atoms[2], expected_atom(1, 2, 2, 0, 2, False, False))
    np.testing.assert_array_equal(f.atoms[3], expected_atom(3, 1, 1, 0, 2, False, False))
    np.testing.assert_array_equal(
        f.topology, [[0, UNREACHABLE, UNREACHABLE, UNREACHABLE], [UNREACHABLE, 0, 1, 2], [UNREACHABLE, 1, 0, 1],
                     [UNREACHABLE, 2, 1, 0]])
    pairs = f.pair_features()
    assert pairs.shape == (4, 4, PAIR_DIM)
    # C-C: 1 hop, single bond, not aromatic / conjugated / ring
    np.testing.assert_array_equal(pairs[1, 2], [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    # C...O: 2 hops, no bond
    np.testing.assert_array_equal(pairs[1, 3], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    # dummy to an atom: unreachable
    np.testing.assert_array_equal(pairs[0, 1], [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(pairs[2, 2], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])


def test_benzene_aromatic_ring():
    f = featurize("c1ccccc1")
    for i in range(1, 7):  # aromatic carbon: 2 heavy neighbours, 1 H, sp2 (index 1), ring, aromatic
        np.testing.assert_array_equal(f.atoms[i], expected_atom(1, 2, 1, 0, 1, True, True))
    pairs = f.pair_features()
    # ring bond: aromatic type, aromatic, conjugated, in ring
    np.testing.assert_array_equal(pairs[1, 2, 6:], [0, 1, 0, 0, 1, 1, 1])
    assert f.topology[1, 4] == 3 and pairs[1, 4, 3] == 1  # para carbons: three hops
    bonded = f.distances[1:, 1:][f.topology[1:, 1:] == 1]
    np.testing.assert_allclose(bonded, 1.39, atol=0.03)  # aromatic C-C bond length in angstrom


def test_charged_atom():
    f = featurize("C[N+](C)(C)C")  # tetramethylammonium
    np.testing.assert_array_equal(f.atoms[2], expected_atom(2, 4, 0, 1, 2, False, False))
    acetate = featurize("CC(=O)[O-]")
    np.testing.assert_array_equal(acetate.atoms[4], expected_atom(3, 1, 0, -1, 1, False, False))
    np.testing.assert_array_equal(acetate.pair_features()[2, 3, 6:], [0, 0, 1, 0, 0, 1, 0])  # C=O, conjugated


@pytest.mark.parametrize("smiles", ["CC(C)Cc1ccc(cc1)C(C)C(=O)O", "OCC1OC(O)C(O)C(O)C1O", "CCO.Cl"])
def test_topological_distances_equal_rdkit(smiles):
    f = featurize(smiles)
    reference = Chem.GetDistanceMatrix(Chem.MolFromSmiles(smiles))
    reference = np.where(reference > 1e6, UNREACHABLE, reference)
    np.testing.assert_array_equal(f.topology[1:, 1:], reference)


def test_conformer_distances_symmetric_zero_diagonal():
    f = featurize("CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    np.testing.assert_allclose(f.distances, f.distances.T)
    np.testing.assert_array_equal(np.diag(f.distances), 0.0)
    assert (f.distances[0, 1:] == DUMMY_DISTANCE).all()
    real = f.distances[1:, 1:]
    assert (real[~np.eye(len(real), dtype=bool)] > 0.9).all()  # no two heavy atoms closer than 0.9 A


def test_fixed_seed_reproducible_and_fallback(monkeypatch):
    a, b = featurize("CCCCO"), featurize("CCCCO")
    np.testing.assert_array_equal(a.distances, b.distances)
    monkeypatch.setattr(featurize_module.AllChem, "EmbedMolecule", lambda *args, **kwargs: -1)
    flat = featurize("CCCCO")
    assert flat.conformer == "2d"
    np.testing.assert_allclose(flat.distances, flat.distances.T)
    np.testing.assert_array_equal(np.diag(flat.distances), 0.0)


def test_invalid_smiles_returns_none():
    assert featurize("C1CC") is None and featurize("xyz") is None and featurize("") is None


def test_cache_hit_on_second_call(cache_dir, monkeypatch):
    smiles = ["CCO", "c1ccccc1", "bad(", "CC(=O)O"]
    first, stats = featurize_many(smiles, cache_dir=cache_dir, workers=1, progress=False)
    assert (stats.computed, stats.cached, stats.invalid) == (3, 0, 1)
    assert first[2] is None

    def no_embedding(*args, **kwargs):
        raise AssertionError("conformer embedded again despite the cache")

    monkeypatch.setattr(featurize_module, "conformer_coordinates", no_embedding)
    second, stats = featurize_many([s for s in smiles if s != "bad("], cache_dir=cache_dir, workers=1, progress=False)
    assert (stats.computed, stats.cached) == (0, 3)
    for a, b in zip([f for f in first if f is not None], second, strict=True):
        np.testing.assert_array_equal(a.distances, b.distances)
        np.testing.assert_array_equal(a.atoms, b.atoms)
    # other settings are another key: a different conformer seed misses the cache
    monkeypatch.undo()
    _, stats = featurize_many(["CCO"], settings=FeaturizerSettings(conformer_seed=7), cache_dir=cache_dir,
                              workers=1, progress=False)
    assert stats.computed == 1 and stats.cached == 0


def test_parallel_workers_match_serial(cache_dir):
    smiles = ["CCO", "c1ccccc1", "CC(=O)O", "CCN"]
    serial, _ = featurize_many(smiles, workers=1, progress=False)
    parallel, stats = featurize_many(smiles, workers=2, progress=False)
    assert stats.computed == 4
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a.distances, b.distances)
