"""`MoleculeDataModule`: a MoleculeNet-style CSV featurized for MAT / R-MAT, split and batched.

Batches are dicts of tensors, padded to the largest molecule of the batch (index 0 of every
molecule is the dummy node):

    atoms      (batch, nodes, ATOM_DIM)       float
    pairs      (batch, nodes, nodes, PAIR_DIM) float   neighbourhood order + bond features
    distances  (batch, nodes, nodes)          float   3D distances (angstrom), 0 on padding
    adjacency  (batch, nodes, nodes)          float   1 for bonded pairs
    mask       (batch, nodes)                 bool    True for the dummy node and real atoms
    y          (batch, tasks)                 float   NaN-free targets (0 where missing)
    y_mask     (batch, tasks)                 bool    True where the label exists

Molecules to predict on (`predict_path`, `attn predict`) are every row of a CSV with a SMILES
column or every line of a text file of SMILES (`molecules.data.reader.read_smiles_file`), never
split, featurized with the settings the model was trained with (kept in the checkpoint's
DataModule state). Invalid SMILES are not predicted: they are counted in `predict_skipped`, named
on stderr, and listed in `predict_table` (which the task writes out) with `valid` False and the
`error`, so no input row is dropped silently.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from rdkit import Chem, RDLogger
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from molecules.data.featurize import (
    ATOM_DIM,
    PAIR_DIM,
    Featurized,
    FeaturizerSettings,
    FeaturizeStats,
    featurize_many,
)
from molecules.data.reader import read_molecule_csv, read_smiles_file
from molecules.data.splits import random_split, scaffold_split


def heavy_atoms(smiles: str) -> int | None:
    """Node count (heavy atoms + the dummy node) of a SMILES, None when RDKit cannot parse it."""
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    return None if mol is None or mol.GetNumAtoms() == 0 else mol.GetNumAtoms() + 1


EMBEDDED_ESOL = Path(__file__).resolve().parent / "ESOL.csv"
ESOL_TARGET = "measured log solubility in mols per litre"
DEFAULT_CACHE = Path.home() / ".cache" / "attn-suite" / "molecules"


class MoleculeDataset(Dataset):
    """Molecules with their `(tasks,)` targets (NaN = missing).

    `items` holds the precomputed features; when it is None each molecule is featurized on first
    access through the on-disk cache (`settings`, `cache_dir`), so a short run touches only the
    molecules it uses.
    """

    def __init__(self, smiles: Sequence[str], targets: np.ndarray, items: Sequence[Featurized] | None = None, *,
                 sizes: Sequence[int] | None = None, settings: FeaturizerSettings | None = None,
                 cache_dir: Path | None = None) -> None:
        self.smiles, self.targets = list(smiles), targets
        self.items: list[Featurized | None] = list(items) if items is not None else [None] * len(self.smiles)
        self.sizes = [item.num_nodes for item in self.items] if items is not None else list(sizes or [])
        self.settings, self.cache_dir = settings or FeaturizerSettings(), cache_dir

    def __len__(self) -> int:
        return len(self.smiles)

    def __getitem__(self, index: int) -> tuple[Featurized, np.ndarray, np.ndarray]:
        item = self.items[index]
        if item is None:
            (item,), _ = featurize_many([self.smiles[index]], settings=self.settings, cache_dir=self.cache_dir,
                                        workers=1, progress=False)
            if item is None:
                raise ValueError(f"MoleculeDataset: invalid SMILES {self.smiles[index]!r} at index {index}")
            self.items[index] = item
        return item, item.pair_features(), self.targets[index]

    def num_nodes(self) -> list[int]:
        return self.sizes


def collate_molecules(samples: Sequence[tuple[Featurized, np.ndarray, np.ndarray]]) -> dict[str, Tensor]:
    """Pad a list of `(Featurized, pairs, targets)` into one batch dict (see the module doc)."""
    b = len(samples)
    n = max(item.num_nodes for item, _, _ in samples)
    tasks = samples[0][2].shape[0]
    atoms = torch.zeros(b, n, ATOM_DIM)
    pairs = torch.zeros(b, n, n, PAIR_DIM)
    distances = torch.zeros(b, n, n)
    adjacency = torch.zeros(b, n, n)
    mask = torch.zeros(b, n, dtype=torch.bool)
    y = torch.zeros(b, tasks)
    for row, (item, pair, target) in enumerate(samples):
        m = item.num_nodes
        atoms[row, :m] = torch.from_numpy(item.atoms)
        pairs[row, :m, :m] = torch.from_numpy(pair)
        distances[row, :m, :m] = torch.from_numpy(item.distances)
        adjacency[row, :m, :m] = torch.from_numpy(item.topology == 1).float()
        mask[row, :m] = True
        y[row] = torch.from_numpy(np.nan_to_num(target, nan=0.0))
    y_mask = torch.from_numpy(~np.isnan(np.stack([t for _, _, t in samples])))
    return {"atoms": atoms, "pairs": pairs, "distances": distances, "adjacency": adjacency,
            "mask": mask, "y": y, "y_mask": y_mask}


class SizeBucketSampler(Sampler[list[int]]):
    """Shuffled batches of molecules of similar size, so padding stays small.

    Each epoch shuffles the indices, sorts pools of `pool` batches by atom count, cuts them into
    batches and shuffles the batches.
    """

    def __init__(self, sizes: Sequence[int], batch_size: int, seed: int = 0, pool: int = 16) -> None:
        self.sizes, self.batch_size, self.seed, self.pool = np.asarray(sizes), batch_size, seed, pool
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        order = rng.permutation(len(self.sizes))
        span = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), span):
            chunk = order[start:start + span]
            chunk = chunk[np.argsort(self.sizes[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        for i in rng.permutation(len(batches)):
            yield batches[i]

    def __len__(self) -> int:
        return -(-len(self.sizes) // self.batch_size)


class MoleculeDataModule(L.LightningDataModule):
    """A MoleculeNet-style CSV (SMILES + targets) for MAT / R-MAT and the fingerprint baselines.

    Invalid SMILES are skipped with a warning naming the row; their count is `skipped_rows`
    (logged to MLflow by the task). Featurization is cached on disk (see
    `molecules.data.featurize`). Regression targets are reported on their own scale; the task
    standardizes them with `target_mean` / `target_std` of the training split. `split_protocol`
    (after `setup`) says which split rule made the splits, of which file.

    The featurization settings and the training targets' statistics are this DataModule's state
    (`state_dict`, saved in every checkpoint), so molecules to predict on (`predict_path`, see the
    module docstring) are featurized as the training ones were; `setup("predict")` with a
    `predict_path` reads no training data.

    Args:
        path: the CSV; default the embedded ESOL (`molecules/data/ESOL.csv`).
        dataset_name: names the MLflow experiment `molecules/property/<dataset_name>`; default the
            file's stem (`ESOL` for the embedded file), so another file never runs under ESOL's name.
        smiles_column: column holding SMILES.
        target_columns: one or more target columns (missing labels allowed: NaN/empty).
        task_type: `regression` or `classification` (binary labels, one per target column).
        split: `random` or `scaffold` (balanced Bemis-Murcko, no scaffold in two splits).
        split_sizes: train/val/test fractions.
        seed: seed of the split and of the batch order.
        batch_size: molecules per batch.
        featurize_workers: processes featurizing cache misses.
        cache_dir: featurization cache (default `~/.cache/attn-suite/molecules`; "" disables it).
        conformer_seed: ETKDG seed (part of the cache key).
        num_workers: DataLoader workers.
        precompute: featurize every molecule in `setup` (in `featurize_workers` processes); False
            featurizes each molecule when a batch first needs it (through the same cache), which
            keeps short runs (`fast_dev_run`, smoke tests) from embedding thousands of conformers.
        predict_path: molecules to predict on with `attn predict`: a `.csv` with a SMILES column
            (`smiles_column`, else one named `smiles`) or a text file of SMILES, one per line.
    """

    def __init__(
        self,
        path: str | None = None,
        dataset_name: str | None = None,
        smiles_column: str = "smiles",
        target_columns: list[str] | None = None,
        task_type: Literal["regression", "classification"] = "regression",
        split: Literal["random", "scaffold"] = "random",
        split_sizes: tuple[float, float, float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        batch_size: int = 32,
        featurize_workers: int = 2,
        cache_dir: str | None = None,
        conformer_seed: int = 42,
        num_workers: int = 0,
        precompute: bool = True,
        predict_path: str | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path) if path else EMBEDDED_ESOL
        self.dataset_name = dataset_name or self.path.stem
        self.smiles_column = smiles_column
        self.target_columns = list(target_columns) if target_columns else [ESOL_TARGET]
        self.task_type = task_type
        self.split = split
        self.split_sizes = tuple(split_sizes)
        self.seed = seed
        self.batch_size = batch_size
        self.featurize_workers = featurize_workers
        self.cache_dir = DEFAULT_CACHE if cache_dir is None else (Path(cache_dir) if cache_dir else None)
        self.settings = FeaturizerSettings(conformer_seed=conformer_seed)
        self.num_workers = num_workers
        self.precompute = precompute
        self.atom_dim, self.pair_dim = ATOM_DIM, PAIR_DIM
        self.num_tasks = len(self.target_columns)
        self.skipped_rows = 0
        self.featurize_seconds = 0.0
        self.featurize_stats = FeaturizeStats()
        self.target_mean: list[float] | None = None
        self.target_std: list[float] | None = None
        self.train_set: MoleculeDataset | None = None
        self.val_set: MoleculeDataset | None = None
        self.test_set: MoleculeDataset | None = None
        self.split_protocol = ""
        self.predict_path = predict_path
        self.trained_settings: FeaturizerSettings | None = None  # from the checkpoint (`load_state_dict`)
        self.predict_table: dict[str, list] = {}
        self.predict_skipped = 0

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None or (stage == "predict" and self.predict_path is not None):
            return  # molecules to predict on are read in `predict_dataloader`, after the checkpoint's state
        smiles, targets = read_molecule_csv(self.path, self.smiles_column, self.target_columns)
        if self.task_type == "classification":
            labels = targets[~np.isnan(targets)]
            if not np.isin(labels, (0.0, 1.0)).all():
                raise ValueError(f"{self.path}: classification targets must be 0/1; found {np.unique(labels)[:10]}")
        start = time.perf_counter()
        if self.precompute:
            items, self.featurize_stats = featurize_many(
                smiles, settings=self.settings, cache_dir=self.cache_dir, workers=self.featurize_workers
            )
            sizes = [None if item is None else item.num_nodes for item in items]
        else:
            items, sizes = None, [heavy_atoms(s) for s in smiles]
        self.featurize_seconds = time.perf_counter() - start
        keep = []
        for row, (s, size) in enumerate(zip(smiles, sizes, strict=True)):
            if size is None:
                warnings.warn(f"{self.path}: row {row}: invalid SMILES {s!r} skipped", stacklevel=2)
            elif np.isnan(targets[row]).all():
                warnings.warn(f"{self.path}: row {row}: no target value; skipped", stacklevel=2)
            else:
                keep.append(row)
        self.skipped_rows = len(smiles) - len(keep)
        if len(keep) < 3:
            raise ValueError(f"{self.path}: only {len(keep)} usable molecule(s); need at least 3 to split")
        smiles = [smiles[i] for i in keep]
        sizes = [sizes[i] for i in keep]
        items = [items[i] for i in keep] if items is not None else None
        targets = targets[keep]
        if self.split == "scaffold":
            parts = scaffold_split(smiles, self.split_sizes, self.seed)
        else:
            parts = random_split(len(smiles), self.split_sizes, self.seed)
        rule = "balanced Bemis-Murcko scaffold" if self.split == "scaffold" else "random"
        name = "the embedded ESOL.csv" if self.path == EMBEDDED_ESOL else self.path.name
        self.split_protocol = (f"seeded: {rule} {'/'.join(f'{f:g}' for f in self.split_sizes)} split of {name} "
                               f"({len(smiles)} usable molecules), seed {self.seed}")
        self.split_smiles = [[smiles[i] for i in part] for part in parts]
        self.split_targets = [targets[part] for part in parts]
        self.train_set, self.val_set, self.test_set = (
            MoleculeDataset(
                [smiles[i] for i in part], targets[part], [items[i] for i in part] if items is not None else None,
                sizes=[sizes[i] for i in part], settings=self.settings, cache_dir=self.cache_dir,
            )
            for part in parts
        )
        if self.task_type == "regression":
            train = self.train_set.targets
            self.target_mean = np.nanmean(train, axis=0).astype(float).tolist()
            self.target_std = np.maximum(np.nanstd(train, axis=0), 1e-6).astype(float).tolist()

    def train_dataloader(self) -> DataLoader:
        sampler = SizeBucketSampler(self.train_set.num_nodes(), self.batch_size, seed=self.seed)
        return DataLoader(self.train_set, batch_sampler=sampler, collate_fn=collate_molecules,
                          num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        """Every molecule of `predict_path` (invalid ones left out and reported), else the test split."""
        if self.predict_path is None:
            return self._eval_loader(self.test_set)
        return self._eval_loader(self.read_predict_molecules())

    def read_predict_molecules(self) -> MoleculeDataset:
        """The valid molecules of `predict_path`, featurized with the training settings; fills `predict_table`."""
        path = Path(str(self.predict_path))
        positions, smiles = read_smiles_file(path, self.smiles_column)
        if not smiles:
            raise ValueError(f"{path}: no molecule in it; give a CSV with a SMILES column or one SMILES per line")
        items, _ = featurize_many(smiles, settings=self.trained_settings or self.settings, cache_dir=self.cache_dir,
                                  workers=self.featurize_workers, progress=False)
        errors = ["" if item is not None else ("empty SMILES" if not s else "invalid SMILES: RDKit cannot parse it")
                  for s, item in zip(smiles, items, strict=True)]
        self.predict_table = {"index": positions, "smiles": smiles, "valid": [not e for e in errors], "error": errors}
        bad = [f"{where} {s!r}" for where, s, e in zip(positions, smiles, errors, strict=True) if e]
        self.predict_skipped = len(bad)
        if len(bad) == len(smiles):
            raise ValueError(f"{path}: none of its {len(smiles)} SMILES is valid (first: {bad[0]}); give SMILES that "
                             "RDKit parses, in the column named by --data.init_args.smiles_column")
        if bad:
            unit = "row" if path.suffix.lower() == ".csv" else "line"
            named = ", ".join(bad[:10]) + (", ..." if len(bad) > 10 else "")
            print(f"{path}: {len(bad)} invalid SMILES not predicted ({unit}s from 0: {named}); listed in the output "
                  "with valid=False", file=sys.stderr)
        kept = [item for item in items if item is not None]
        return MoleculeDataset([s for s, e in zip(smiles, errors, strict=True) if not e],
                               np.full((len(kept), self.num_tasks), np.nan, dtype=np.float32), kept,
                               settings=self.trained_settings or self.settings, cache_dir=self.cache_dir)

    # ---- checkpoint state: what predicting on new molecules needs from training ----------------------
    def state_dict(self) -> dict:
        """Featurization settings, target columns and statistics (plain data: `weights_only` loading)."""
        return {"featurizer": asdict(self.settings), "smiles_column": self.smiles_column,
                "target_columns": list(self.target_columns), "task_type": self.task_type,
                "target_mean": self.target_mean, "target_std": self.target_std}

    def load_state_dict(self, state_dict: dict) -> None:
        if "featurizer" in state_dict:
            settings = dict(state_dict["featurizer"])
            version, current = settings.pop("version", FeaturizerSettings.version), FeaturizerSettings.version
            if version != current:  # the feature definitions changed since: the model would see other features
                raise ValueError(f"the checkpoint's model was trained on featurization version {version}, this code "
                                 f"computes version {current} (molecules/data/featurize.py); use the code it was trained with")
            self.trained_settings = FeaturizerSettings(**settings)
        if self.target_mean is None and state_dict.get("target_mean") is not None:
            self.target_mean, self.target_std = list(state_dict["target_mean"]), list(state_dict["target_std"])

    def _eval_loader(self, dataset: MoleculeDataset) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, collate_fn=collate_molecules,
                          num_workers=self.num_workers)
