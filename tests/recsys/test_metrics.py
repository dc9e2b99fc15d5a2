"""Whole-split AUC and log loss against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from recsys.metrics import log_loss, roc_auc


def test_auc_and_logloss_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.clip(0.5 + 0.2 * (labels - 0.5) + 0.2 * rng.standard_normal(500), 0.01, 0.99)
    scores[:50] = np.round(scores[:50], 1)  # ties
    s, y = torch.tensor(scores, dtype=torch.float32), torch.tensor(labels, dtype=torch.float32)
    assert roc_auc(s, y) == pytest.approx(roc_auc_score(labels, scores.astype(np.float32)), abs=1e-12)
    assert log_loss(s, y) == pytest.approx(sk_log_loss(labels, scores.astype(np.float32)), abs=1e-6)


def test_auc_all_ties_is_half_and_single_class_is_nan():
    assert roc_auc(torch.ones(6), torch.tensor([0, 1, 0, 1, 1, 0.0])) == pytest.approx(0.5)
    assert roc_auc(torch.tensor([0.2, 0.9, 0.4]), torch.tensor([0.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert math.isnan(roc_auc(torch.rand(5), torch.ones(5)))


def test_logloss_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="3 probabilities and 2 labels"):
        log_loss(torch.rand(3), torch.ones(2))
