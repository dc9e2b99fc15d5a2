"""Masked multi-task loss and metrics against references."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from molecules.tasks import masked_loss, mean_roc_auc, regression_metrics


def test_masked_classification_loss_ignores_missing_labels():
    logits = torch.tensor([[0.3, -1.0], [2.0, 0.5], [-0.7, 1.2]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    present = torch.tensor([[True, False], [True, True], [False, True]])
    loss = masked_loss(logits, labels, present, "classification")
    reference = F.binary_cross_entropy_with_logits(logits[present], labels[present])
    torch.testing.assert_close(loss, reference)
    flipped = labels.clone()
    flipped[~present] = 1 - flipped[~present]  # changing missing labels changes nothing
    torch.testing.assert_close(masked_loss(logits, flipped, present, "classification"), loss)
    logits.requires_grad_(True)
    masked_loss(logits, labels, present, "classification").backward()
    assert (logits.grad[~present] == 0).all()


def test_masked_regression_loss():
    prediction = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[1.5, 100.0], [2.0, 4.0]])
    present = torch.tensor([[True, False], [True, True]])
    torch.testing.assert_close(masked_loss(prediction, target, present, "regression"), torch.tensor((0.25 + 1.0) / 3))


def test_mean_roc_auc_skips_single_class_tasks_and_missing():
    rng = np.random.default_rng(0)
    scores = rng.random((20, 3))
    labels = (rng.random((20, 3)) > 0.5).astype(float)
    present = rng.random((20, 3)) > 0.2
    labels[:, 2] = 1.0  # one class only: left out
    expected = np.mean([roc_auc_score(labels[present[:, t], t], scores[present[:, t], t]) for t in range(2)])
    assert abs(mean_roc_auc(scores, labels, present) - expected) < 1e-12


def test_regression_metrics():
    metrics = regression_metrics(np.array([[1.0], [2.0], [5.0]]), np.array([[1.0], [4.0], [0.0]]),
                                 np.array([[True], [True], [False]]))
    assert abs(metrics["rmse"] - np.sqrt(2.0)) < 1e-12 and abs(metrics["mae"] - 1.0) < 1e-12
