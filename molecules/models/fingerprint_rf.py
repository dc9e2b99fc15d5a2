"""Random forest on Morgan / ECFP4 fingerprints: the classical baseline of molecular property prediction.

ECFP (Rogers & Hahn, "Extended-Connectivity Fingerprints", J. Chem. Inf. Model. 2010) with radius 2
(ECFP4) folded to 2048 bits, as in MoleculeNet (Wu et al. 2018), which also uses random forests of
500 trees (Breiman 2001) from scikit-learn. One forest per target; molecules without a label for a
target are left out of that target's forest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdFingerprintGenerator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor


def ecfp(smiles: Sequence[str], radius: int = 2, bits: int = 2048) -> np.ndarray:
    """`(molecules, bits)` uint8 Morgan fingerprints (ECFP4 for radius 2)."""
    RDLogger.DisableLog("rdApp.*")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    rows = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            raise ValueError(f"fingerprint_rf.py: invalid SMILES {s!r}")
        rows.append(generator.GetFingerprintAsNumPy(mol))
    return np.stack(rows).astype(np.uint8)


class ForestOnFeatures(ABC):
    """One scikit-learn random forest per target on a fixed molecular featurization.

    Subclasses define `featurize(smiles) -> (molecules, features)`.

    Args:
        task_type: `regression` or `classification` (0/1 labels; `predict` returns P(1)).
        n_estimators: trees per forest (MoleculeNet: 500).
        seed: random state of the forests.
        n_jobs: parallel tree fitting.
    """

    role: ClassVar[str] = "baseline"
    kernel: ClassVar[str] = "none"

    def __init__(self, task_type: Literal["regression", "classification"] = "regression", n_estimators: int = 500,
                 seed: int = 0, n_jobs: int = 2) -> None:
        self.task_type, self.n_estimators, self.seed, self.n_jobs = task_type, n_estimators, seed, n_jobs
        self.forests: list = []

    @abstractmethod
    def featurize(self, smiles: Sequence[str]) -> np.ndarray:
        """`(molecules, features)` of the forest's input representation."""

    def fit(self, smiles: Sequence[str], targets: np.ndarray) -> ForestOnFeatures:
        """Fit on `targets: (molecules, tasks)`, NaN = missing label."""
        return self.fit_features(self.featurize(smiles), targets)

    def predict(self, smiles: Sequence[str]) -> np.ndarray:
        """`(molecules, tasks)`: values (regression) or probabilities of class 1."""
        return self.predict_features(self.featurize(smiles))

    def fit_features(self, features: np.ndarray, targets: np.ndarray) -> ForestOnFeatures:
        """`fit` on features already computed by `featurize` (reused across seeds by the benchmark)."""
        targets = np.asarray(targets, dtype=np.float64).reshape(len(features), -1)
        self.forests = []
        for t in range(targets.shape[1]):
            present = ~np.isnan(targets[:, t])
            cls = RandomForestRegressor if self.task_type == "regression" else RandomForestClassifier
            forest = cls(n_estimators=self.n_estimators, random_state=self.seed, n_jobs=self.n_jobs)
            y = targets[present, t] if self.task_type == "regression" else targets[present, t].astype(int)
            self.forests.append(forest.fit(features[present], y))
        return self

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """`predict` on features already computed by `featurize`."""
        if not self.forests:
            raise RuntimeError(f"{type(self).__name__}: predict() before fit()")
        columns = []
        for forest in self.forests:
            if self.task_type == "regression":
                columns.append(forest.predict(features))
            else:
                proba = forest.predict_proba(features)
                columns.append(proba[:, list(forest.classes_).index(1)] if 1 in forest.classes_ else np.zeros(len(features)))
        return np.stack(columns, axis=1)


class FingerprintRF(ForestOnFeatures):
    """Random forest on ECFP4 (Morgan radius 2, 2048 bits); see the module docstring.

    Args:
        radius: Morgan radius (2 = ECFP4).
        bits: fingerprint length.
        (the rest as `ForestOnFeatures`)
    """

    def __init__(self, task_type: Literal["regression", "classification"] = "regression", n_estimators: int = 500,
                 seed: int = 0, n_jobs: int = 2, radius: int = 2, bits: int = 2048) -> None:
        super().__init__(task_type, n_estimators, seed, n_jobs)
        self.radius, self.bits = radius, bits

    def featurize(self, smiles: Sequence[str]) -> np.ndarray:
        return ecfp(smiles, self.radius, self.bits)
