"""Logistic regression on clip-level mel / MFCC statistics: the linear baseline of music tagging.

Each clip becomes one fixed vector: the mean and standard deviation over time of every log-mel band
and of `n_mfcc` MFCCs (the DCT-II, orthonormal, of the log-mel frames, as torchaudio's MFCC), the
bag-of-frames summary of early tagging work (e.g. Tzanetakis & Cook 2002). Features are standardized
on the training clips and one scikit-learn `LogisticRegression` (L2, lbfgs) is fitted per tag; a tag
with a single class among the training clips predicts that class' frequency.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torchaudio.functional as AF
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def clip_statistics(mel: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """`mel: (n_mels, frames)` log-mel dB -> `(2 * n_mels + 2 * n_mfcc,)`: means then standard deviations over time."""
    mel = np.asarray(mel, dtype=np.float64)
    dct = AF.create_dct(n_mfcc, mel.shape[0], norm="ortho").double().numpy()  # (n_mels, n_mfcc)
    mfcc = dct.T @ mel
    return np.concatenate([mel.mean(axis=1), mfcc.mean(axis=1), mel.std(axis=1), mfcc.std(axis=1)])


class LogisticRegressionTagger:
    """One L2 logistic regression per tag on standardized clip statistics.

    Args:
        C: inverse regularization strength of scikit-learn's `LogisticRegression`.
        max_iter: lbfgs iterations.
        n_mfcc: MFCCs in the clip statistics.
        seed: random state of the solver.
    """

    role: ClassVar[str] = "baseline"
    kernel: ClassVar[str] = "none"

    def __init__(self, C: float = 1.0, max_iter: int = 2000, n_mfcc: int = 20, seed: int = 0) -> None:
        self.C, self.max_iter, self.n_mfcc, self.seed = C, max_iter, n_mfcc, seed
        self.scaler: StandardScaler | None = None
        self.models: list[LogisticRegression | float] = []

    def features(self, mels: list[np.ndarray]) -> np.ndarray:
        """`(clips, features)` statistics of each clip's `(n_mels, frames)` log-mel."""
        return np.stack([clip_statistics(m, self.n_mfcc) for m in mels])

    def fit(self, features: np.ndarray, labels: np.ndarray) -> LogisticRegressionTagger:
        """Fit on `features: (clips, features)` and multi-hot `labels: (clips, tags)`."""
        self.scaler = StandardScaler().fit(features)
        x = self.scaler.transform(features)
        self.models = []
        for t in range(labels.shape[1]):
            y = labels[:, t].astype(int)
            if y.min() == y.max():
                self.models.append(float(y.mean()))
            else:
                self.models.append(LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed).fit(x, y))
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """`(clips, tags)` probability of each tag."""
        if self.scaler is None:
            raise ValueError("LogisticRegressionTagger: call fit before predict_proba")
        x = self.scaler.transform(features)
        columns = [np.full(len(x), m) if isinstance(m, float) else m.predict_proba(x)[:, 1] for m in self.models]
        return np.stack(columns, axis=1)

    def num_parameters(self) -> int:
        """Weights and biases of the fitted regressions."""
        return sum(m.coef_.size + m.intercept_.size for m in self.models if not isinstance(m, float))
