"""SMILES to the atom and atom-pair features of MAT and R-MAT, with an on-disk cache.

Atom features follow MAT (Maziarka et al. 2020, arXiv 2002.08264) and R-MAT (Maziarka et al.,
"Relative Molecule Self-Attention Transformer", arXiv 2110.05841), which adds hybridization:

    element one-hot  B C N O F P S Cl Br I other           11
    heavy-atom degree 0..5                                   6
    total hydrogens 0..4                                     5
    formal charge -1, 0, +1                                  3
    hybridization sp, sp2, sp3, sp3d, sp3d2                  5
    in a ring, aromatic                                      2
    dummy-node flag                                          1   -> ATOM_DIM = 33

Index 0 of every molecule is MAT's dummy (virtual) node: its only feature is the flag; it is
bonded to nothing and sits "far away" from every atom (distance `DUMMY_DISTANCE`).

Pair features (R-MAT's relative features, without the 3D part) for every (i, j):

    neighbourhood order one-hot: 0 (self), 1, 2, 3, >=4 hops, unreachable/dummy   6
    bond type one-hot single, aromatic, double, triple                            4
    bond is aromatic, conjugated, in a ring                                       3   -> PAIR_DIM = 13

The 3D distance of every pair comes from one RDKit conformer: ETKDG (v3) embedding with
hydrogens and a fixed random seed, then MMFF94 optimization. Fallbacks, recorded per molecule in
`Featurized.conformer`: `etkdg` when MMFF has no parameters for the molecule, `etkdg-random`
when ETKDG fails and embedding from random coordinates succeeds, and `2d` (RDKit's 2D depiction
coordinates, z = 0) when every embedding fails. Models expand distances with radial basis
functions (`molecules.models.rmat.BesselRBF`).

`featurize_many` caches each molecule as one `.npz` keyed by SHA-1 of the SMILES and the
settings, and featurizes cache misses in a process pool.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem
from tqdm.auto import tqdm

ELEMENTS = (5, 6, 7, 8, 9, 15, 16, 17, 35, 53)
HYBRIDIZATIONS = (
    Chem.HybridizationType.SP, Chem.HybridizationType.SP2, Chem.HybridizationType.SP3,
    Chem.HybridizationType.SP3D, Chem.HybridizationType.SP3D2,
)
BOND_TYPES = (Chem.BondType.SINGLE, Chem.BondType.AROMATIC, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE)
ATOM_DIM = len(ELEMENTS) + 1 + 6 + 5 + 3 + len(HYBRIDIZATIONS) + 2 + 1
MAX_ORDER = 4
PAIR_DIM = MAX_ORDER + 2 + len(BOND_TYPES) + 3
DUMMY_DISTANCE = 1e6  # MAT's distance from the dummy node to every atom
UNREACHABLE = -1  # topological distance between disconnected fragments and to the dummy node


@dataclass(frozen=True)
class FeaturizerSettings:
    """Settings that change the features; part of the cache key.

    Args:
        conformer_seed: random seed of the ETKDG embedding.
        mmff_iterations: maximum MMFF94 optimization steps (0 keeps the ETKDG geometry).
        max_attempts: ETKDG embedding attempts before the random-coordinate fallback.
    """

    conformer_seed: int = 42
    mmff_iterations: int = 200
    max_attempts: int = 10
    version: int = 1  # bump when the feature definitions change

    def key(self, smiles: str) -> str:
        """Cache key of one molecule: SHA-1 of the SMILES and these settings."""
        payload = json.dumps({"smiles": smiles, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()


@dataclass
class Featurized:
    """One molecule with its dummy node at index 0; `n` = heavy atoms + 1.

    Attributes:
        atoms: `(n, ATOM_DIM)` float32 atom features.
        topology: `(n, n)` int16 shortest-path hop counts, `UNREACHABLE` for no path.
        bonds: `(n, n, 7)` uint8 bond features (type one-hot, aromatic, conjugated, ring).
        distances: `(n, n)` float32 3D distances in angstrom (`DUMMY_DISTANCE` to the dummy).
        conformer: how the coordinates were made (`etkdg+mmff`, `etkdg`, `etkdg-random`, `2d`).
    """

    atoms: np.ndarray
    topology: np.ndarray
    bonds: np.ndarray
    distances: np.ndarray
    conformer: str

    @property
    def num_nodes(self) -> int:
        return self.atoms.shape[0]

    def pair_features(self) -> np.ndarray:
        """`(n, n, PAIR_DIM)` float32: neighbourhood order one-hot and bond features."""
        return pair_features(self.topology, self.bonds)


def one_hot(value: object, choices: Sequence[object], other: bool = False) -> list[float]:
    """One-hot of `value` over `choices` (plus a trailing "other" slot when `other`)."""
    out = [float(value == c) for c in choices]
    if other:
        out.append(float(value not in choices))
    return out


def atom_features(atom: Chem.Atom) -> np.ndarray:
    """`(ATOM_DIM,)` features of one heavy atom (the dummy flag is 0)."""
    features = (
        one_hot(atom.GetAtomicNum(), ELEMENTS, other=True)
        + one_hot(atom.GetDegree(), range(6))
        + one_hot(atom.GetTotalNumHs(), range(5))
        + one_hot(atom.GetFormalCharge(), (-1, 0, 1))
        + one_hot(atom.GetHybridization(), HYBRIDIZATIONS)
        + [float(atom.IsInRing()), float(atom.GetIsAromatic()), 0.0]
    )
    return np.asarray(features, dtype=np.float32)


def bond_features(bond: Chem.Bond) -> np.ndarray:
    """`(7,)`: bond type one-hot (single, aromatic, double, triple), aromatic, conjugated, in ring."""
    features = one_hot(bond.GetBondType(), BOND_TYPES) + [
        float(bond.GetIsAromatic()), float(bond.GetIsConjugated()), float(bond.IsInRing())
    ]
    return np.asarray(features, dtype=np.uint8)


def pair_features(topology: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    """Neighbourhood order one-hot `(0, 1, 2, 3, >=MAX_ORDER, unreachable)` beside the bond features."""
    order = np.zeros(topology.shape + (MAX_ORDER + 2,), dtype=np.float32)
    for hops in range(MAX_ORDER):
        order[..., hops] = topology == hops
    order[..., MAX_ORDER] = topology >= MAX_ORDER
    order[..., MAX_ORDER + 1] = topology == UNREACHABLE
    return np.concatenate([order, bonds.astype(np.float32)], axis=-1)


def conformer_coordinates(mol: Chem.Mol, settings: FeaturizerSettings) -> tuple[np.ndarray, str]:
    """Heavy-atom coordinates `(atoms, 3)` of one conformer and how they were made (see module doc)."""
    with_h = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = settings.conformer_seed
    method = "etkdg"
    status = -1
    for _ in range(max(1, settings.max_attempts // 5)):
        status = AllChem.EmbedMolecule(with_h, params)
        if status == 0:
            break
    if status != 0:
        params.useRandomCoords = True
        status = AllChem.EmbedMolecule(with_h, params)
        method = "etkdg-random"
    if status != 0:
        flat = Chem.Mol(mol)
        AllChem.Compute2DCoords(flat)
        return np.asarray(flat.GetConformer().GetPositions(), dtype=np.float64), "2d"
    if settings.mmff_iterations > 0 and AllChem.MMFFHasAllMoleculeParams(with_h):
        AllChem.MMFFOptimizeMolecule(with_h, maxIters=settings.mmff_iterations)
        method = "etkdg+mmff" if method == "etkdg" else method
    positions = with_h.GetConformer().GetPositions()
    return np.asarray(positions[: mol.GetNumAtoms()], dtype=np.float64), method


def featurize(smiles: str, settings: FeaturizerSettings | None = None) -> Featurized | None:
    """Features of one SMILES, or None when RDKit cannot parse it (or it has no atom)."""
    settings = settings or FeaturizerSettings()
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    n = mol.GetNumAtoms() + 1
    atoms = np.zeros((n, ATOM_DIM), dtype=np.float32)
    atoms[0, -1] = 1.0
    atoms[1:] = np.stack([atom_features(a) for a in mol.GetAtoms()])
    hops = Chem.GetDistanceMatrix(mol)  # 1e8 between disconnected fragments
    topology = np.full((n, n), UNREACHABLE, dtype=np.int16)
    topology[0, 0] = 0
    topology[1:, 1:] = np.where(hops < 1e6, hops, UNREACHABLE).astype(np.int16)
    bonds = np.zeros((n, n, 7), dtype=np.uint8)
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx() + 1, bond.GetEndAtomIdx() + 1
        bonds[i, j] = bonds[j, i] = bond_features(bond)
    coords, method = conformer_coordinates(mol, settings)
    distances = np.full((n, n), DUMMY_DISTANCE, dtype=np.float32)
    distances[0, 0] = 0.0
    distances[1:, 1:] = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    return Featurized(atoms, topology, bonds, distances, method)


def _save(path: Path, item: Featurized) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, atoms=item.atoms, topology=item.topology, bonds=item.bonds,
             distances=item.distances, conformer=np.asarray(item.conformer))
    os.replace(tmp, path)


def _load(path: Path) -> Featurized:
    with np.load(path) as f:
        return Featurized(f["atoms"], f["topology"], f["bonds"], f["distances"], str(f["conformer"]))


def _featurize_job(job: tuple[str, FeaturizerSettings]) -> Featurized | None:
    return featurize(*job)


@dataclass
class FeaturizeStats:
    """What one `featurize_many` call did."""

    computed: int = 0
    cached: int = 0
    invalid: int = 0
    fallbacks: int = 0  # molecules whose coordinates are not ETKDG+MMFF


def featurize_many(
    smiles: Sequence[str], *, settings: FeaturizerSettings | None = None, cache_dir: Path | str | None = None,
    workers: int = 2, progress: bool = True,
) -> tuple[list[Featurized | None], FeaturizeStats]:
    """Featurize `smiles` (None for each invalid one), reading and filling the on-disk cache.

    Cache misses run in `workers` processes (1 = in this process). Invalid SMILES are never cached.
    """
    settings = settings or FeaturizerSettings()
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    out: list[Featurized | None] = [None] * len(smiles)
    stats = FeaturizeStats()
    todo: list[int] = []
    for i, s in enumerate(smiles):
        path = cache / f"{settings.key(s)}.npz" if cache is not None else None
        if path is not None and path.exists():
            try:
                out[i] = _load(path)
                stats.cached += 1
                continue
            except (OSError, ValueError, KeyError) as err:  # a torn file: recompute it
                warnings.warn(f"{path}: unreadable cache entry ({err}); featurizing again", stacklevel=2)
        todo.append(i)
    jobs = [(smiles[i], settings) for i in todo]
    bar = dict(total=len(jobs), desc="featurizing molecules", disable=not progress or not jobs)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(tqdm(pool.map(_featurize_job, jobs, chunksize=8), **bar))
    else:
        results = [_featurize_job(job) for job in tqdm(jobs, **bar)]
    for i, item in zip(todo, results, strict=True):
        out[i] = item
        if item is None:
            stats.invalid += 1
            continue
        stats.computed += 1
        if cache is not None:
            _save(cache / f"{settings.key(smiles[i])}.npz", item)
    stats.fallbacks = sum(1 for item in out if item is not None and item.conformer != "etkdg+mmff")
    return out, stats
