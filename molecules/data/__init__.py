"""Molecule data: RDKit featurization (MAT / R-MAT features), MoleculeNet CSV readers, splits."""

from molecules.data.datamodule import (
    EMBEDDED_ESOL,
    ESOL_TARGET,
    MoleculeDataModule,
    MoleculeDataset,
    collate_molecules,
)
from molecules.data.featurize import (
    ATOM_DIM,
    PAIR_DIM,
    Featurized,
    FeaturizerSettings,
    featurize,
    featurize_many,
)
from molecules.data.reader import read_molecule_csv, read_smiles_file
from molecules.data.splits import murcko_scaffold, random_split, scaffold_split

__all__ = [
    "ATOM_DIM",
    "EMBEDDED_ESOL",
    "ESOL_TARGET",
    "PAIR_DIM",
    "Featurized",
    "FeaturizerSettings",
    "MoleculeDataModule",
    "MoleculeDataset",
    "collate_molecules",
    "featurize",
    "featurize_many",
    "murcko_scaffold",
    "random_split",
    "read_molecule_csv",
    "read_smiles_file",
    "scaffold_split",
]
