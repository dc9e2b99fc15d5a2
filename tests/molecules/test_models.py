"""R-MAT and MAT: reference equivalence, permutation invariance, overfitting a tiny batch; RF baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molecules.data import ATOM_DIM, collate_molecules, featurize
from molecules.models.descriptor_rf import DescriptorRF, rdkit_descriptors
from molecules.models.fingerprint_rf import FingerprintRF, ecfp
from molecules.models.mat import MAT
from molecules.models.rmat import RMAT, BesselRBF, RelativeMoleculeAttention

from .conftest import TINY_LOGS, TINY_SMILES
from .rmat_reference import naive_forward, naive_weights


@pytest.fixture(scope="module")
def tiny_batch() -> dict[str, torch.Tensor]:
    samples = []
    for s, y in zip(TINY_SMILES[:4], TINY_LOGS[:4], strict=True):
        f = featurize(s)
        samples.append((f, f.pair_features(), np.array([y], dtype=np.float32)))
    return collate_molecules(samples)


def inputs(batch):
    return batch["atoms"], batch["pairs"], batch["distances"], batch["adjacency"], batch["mask"]


@pytest.mark.parametrize("form", ["paper", "official"])
def test_relative_attention_equals_direct_formula(form):
    torch.manual_seed(0)
    layer = RelativeMoleculeAttention(32, 4, 20, relative_form=form)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x, rel = torch.randn(2, 6, 32), torch.rand(2, 6, 6, 20)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    torch.testing.assert_close(layer(x, rel, mask)[mask], naive_forward(layer, x, rel, mask)[mask], atol=1e-5, rtol=1e-4)
    weights = layer.attention_weights(x, rel, mask)
    torch.testing.assert_close(weights, naive_weights(layer, x, rel, mask), atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 6))
    assert (weights[1, :, :, 4:] == 0).all()


def hand_layer(form: str, u: list[float]) -> RelativeMoleculeAttention:
    """One head of width 2 whose logits reduce to k . b^K_ij / sqrt(2) + u . k: q = 0, k = x, w = 0 and
    b^K_ij = a_ij (identity relative MLP, exact for a_ij >= 0 where LeakyReLU is the identity)."""
    layer = RelativeMoleculeAttention(2, 1, 2, relative_form=form)
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.qkv.weight[2:4] = torch.eye(2)  # rows of k
        layer.key_hidden[0].weight.copy_(torch.eye(2))
        layer.key_out.weight.copy_(torch.eye(2))
        layer.u.copy_(torch.tensor([u]))
    return layer.eval()


@pytest.mark.parametrize("form", ["paper", "official"])
def test_relative_key_and_u_terms_hand_computed(form):
    # paper: e_ij = k_j . a_ij / sqrt(2) + u . k_j; official: e_ij = k_i . a_ij / sqrt(2) + u . k_i
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    a = np.array([[[0.5, 0.0], [1.0, 2.0], [0.0, 1.5]],
                  [[2.0, 1.0], [0.0, 0.0], [1.0, 0.5]],
                  [[0.0, 3.0], [1.0, 1.0], [2.0, 0.0]]])
    u = [1.0, -2.0]
    expected = np.zeros((3, 3))
    for i in range(3):
        keys = [x[j] if form == "paper" else x[i] for j in range(3)]
        logits = np.array([keys[j] @ a[i, j] / np.sqrt(2) + np.dot(u, keys[j]) for j in range(3)])
        expected[i] = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    mask = torch.ones(1, 3, dtype=torch.bool)
    xt, at = torch.tensor(x, dtype=torch.float32)[None], torch.tensor(a, dtype=torch.float32)[None]
    weights = hand_layer(form, u).attention_weights(xt, at, mask)[0, 0].detach().numpy()
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    # the official u k_i is constant along a softmax row: its u leaves the weights unchanged, the paper's does not
    without_u = hand_layer(form, [0.0, 0.0]).attention_weights(xt, at, mask)[0, 0].detach().numpy()
    assert (np.abs(weights - without_u).max() < 1e-6) == (form == "official")


def test_rmat_atom_embedding_is_linear():
    # no activation after the atom embedding (MAT and the official R-MAT code): embed(-x) - embed(0) = -(embed(x) - embed(0))
    torch.manual_seed(0)
    embed = RMAT(dim=32, depth=1, heads=4, ffn_dim=64).eval().embed
    x = torch.randn(5, ATOM_DIM)
    zero = embed(torch.zeros(1, ATOM_DIM))
    torch.testing.assert_close(embed(-x) - zero, -(embed(x) - zero), atol=1e-5, rtol=1e-5)


def test_bessel_rbf_reference_and_cutoff():
    rbf = BesselRBF(num_radial=3, cutoff=5.0, exponent=5)
    d = torch.tensor([1.0, 4.0, 6.0, 1e6])
    out = rbf(d)
    x = (1.0 + 1e-6) / 5.0
    p = 6
    envelope = 1 / x - (p + 1) * (p + 2) / 2 * x ** (p - 1) + p * (p + 2) * x ** p - p * (p + 1) / 2 * x ** (p + 1)
    # DimeNet Eq. 7 in angstrom: sqrt(2/c) sin(n pi d / c) / d, times the polynomial envelope u(x) = x * envelope
    d0 = 1.0 + 1e-6
    expected = [np.sqrt(2 / 5.0) * np.sin(n * np.pi * d0 / 5.0) / d0 * (x * envelope) for n in (1, 2, 3)]
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-4)
    assert (out[2:] == 0).all()  # beyond the cutoff, and the dummy node's distance


def permute(batch, order):
    out = dict(batch)
    out["atoms"] = batch["atoms"][:, order]
    for key in ("pairs", "distances", "adjacency"):
        out[key] = batch[key][:, order][:, :, order]
    out["mask"] = batch["mask"][:, order]
    return out


@pytest.mark.parametrize("relative", [True, False])
def test_rmat_permutation_invariant(tiny_batch, relative):
    torch.manual_seed(0)
    model = RMAT(dim=32, depth=2, heads=4, ffn_dim=64, relative=relative).eval()
    n = tiny_batch["mask"].shape[1]
    order = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(n - 1, generator=torch.Generator().manual_seed(3))])
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs(permute(tiny_batch, order))), model(*inputs(tiny_batch)), atol=1e-5, rtol=1e-5)


def test_renumbered_molecule_features_are_permuted():
    from rdkit import Chem

    smiles = "CC(=O)Nc1ccc(O)cc1"
    mol = Chem.MolFromSmiles(smiles)
    renumbered = Chem.MolToSmiles(mol, rootedAtAtom=7, canonical=False)  # another atom order
    assert renumbered != smiles
    match = Chem.MolFromSmiles(renumbered).GetSubstructMatch(mol)  # atom i of mol is atom match[i]
    a, b = featurize(smiles), featurize(renumbered)
    index = np.zeros(len(match) + 1, dtype=int)
    index[1 + np.array(match)] = 1 + np.arange(len(match))  # b's node j is a's node index[j]
    np.testing.assert_array_equal(b.atoms, a.atoms[index])
    np.testing.assert_array_equal(b.pair_features(), a.pair_features()[index][:, index])


def test_mat_permutation_invariant_and_structure_rows(tiny_batch):
    torch.manual_seed(0)
    model = MAT(dim=32, depth=2, heads=4, ffn_dim=32).eval()
    n = tiny_batch["mask"].shape[1]
    order = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(n - 1, 0, -1)])
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs(permute(tiny_batch, order))), model(*inputs(tiny_batch)), atol=1e-5, rtol=1e-5)
        maps = model.attention_maps(*inputs(tiny_batch))
    mask = tiny_batch["mask"]
    rows = maps[0].sum(-1)[:, 0][mask]  # rows of real atoms with bonds sum to 1 (dummy row has no bonds)
    assert torch.allclose(rows[rows > 0.9], torch.ones_like(rows[rows > 0.9]), atol=1e-4)


@pytest.mark.parametrize("make", [
    lambda: RMAT(dim=32, depth=2, heads=4, ffn_dim=64),
    lambda: RMAT(dim=32, depth=2, heads=4, ffn_dim=64, relative=False),
    lambda: MAT(dim=32, depth=2, heads=4, ffn_dim=32),
], ids=["rmat", "rmat_plain", "mat"])
def test_model_overfits_tiny_batch(tiny_batch, make):
    torch.manual_seed(0)
    model = make()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    y = tiny_batch["y"]
    start = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(model(*inputs(tiny_batch)), y)
        start = start if start is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01 * start and loss.item() < 0.02


def test_ecfp_and_descriptors_reference():
    from rdkit.Chem import Crippen, Descriptors, Lipinski, MolFromSmiles

    fp = ecfp(["CCO", "c1ccccc1"])
    assert fp.shape == (2, 2048) and fp.dtype == np.uint8
    assert 0 < fp[1].sum() < fp[0].sum() + 5  # benzene has few distinct environments (symmetry)
    names = [name for name, _ in Descriptors.descList]
    values = rdkit_descriptors(["CCO"])[0]
    mol = MolFromSmiles("CCO")
    assert abs(values[names.index("MolLogP")] - Crippen.MolLogP(mol)) < 1e-5
    assert values[names.index("NumHDonors")] == Lipinski.NumHDonors(mol)


@pytest.mark.parametrize("cls", [FingerprintRF, DescriptorRF])
def test_forests_fit_training_data(cls):
    forest = cls(n_estimators=50, seed=0, n_jobs=1).fit(TINY_SMILES, np.array(TINY_LOGS)[:, None])
    prediction = forest.predict(TINY_SMILES)[:, 0]
    assert np.corrcoef(prediction, TINY_LOGS)[0, 1] > 0.9
    labels = np.array([[1, np.nan], [0, 1], [1, 0], [0, 1], [1, 0], [0, np.nan], [1, 1], [0, 0]], dtype=float)
    proba = cls(task_type="classification", n_estimators=50, seed=0, n_jobs=1).fit(TINY_SMILES, labels).predict(TINY_SMILES)
    assert proba.shape == (8, 2) and ((proba >= 0) & (proba <= 1)).all()
    assert (proba[labels[:, 0] == 1, 0].mean() > proba[labels[:, 0] == 0, 0].mean())
