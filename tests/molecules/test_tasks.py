"""Masked multi-task loss and metrics against references."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn
from torch.utils.data import DataLoader

from molecules.tasks import MoleculePropertyTask, evaluate_split, masked_loss


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
    assert abs(evaluate_split("classification", scores, labels, present)["roc_auc"] - expected) < 1e-6


def test_regression_metrics():
    metrics = evaluate_split("regression", np.array([[1.0], [2.0], [5.0]]), np.array([[1.0], [4.0], [0.0]]),
                             np.array([[True], [True], [False]]))
    assert abs(metrics["rmse"] - np.sqrt(2.0)) < 1e-12 and abs(metrics["mae"] - 1.0) < 1e-12


class GivenPredictions(nn.Module):
    """Returns the batch's `atoms` as its predictions, so a test chooses every output."""

    def __init__(self, tasks: int) -> None:
        super().__init__()
        self.head = nn.Linear(1, tasks)  # the task reads the number of targets from it

    def forward(self, atoms: Tensor, pairs: Tensor, distances: Tensor, adjacency: Tensor, mask: Tensor) -> Tensor:
        return atoms


def validate(task_type: str, prediction: np.ndarray, target: np.ndarray, present: np.ndarray, size: int) -> dict[str, float]:
    """`val/*` of a `MoleculePropertyTask` run by Lightning over batches of `size` molecules."""
    empty = torch.zeros(0)
    batches = [{"atoms": torch.tensor(prediction[i:i + size]), "pairs": empty, "distances": empty, "adjacency": empty,
                "mask": empty, "y": torch.tensor(target[i:i + size]), "y_mask": torch.tensor(present[i:i + size])}
               for i in range(0, len(target), size)]
    task = MoleculePropertyTask(GivenPredictions(target.shape[1]), task_type=task_type)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.validate(task, DataLoader(batches, batch_size=None), verbose=False)
    return metrics


def test_task_regression_metrics_are_over_the_whole_split():
    rng = np.random.default_rng(0)
    prediction, target = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    prediction[:5] *= 10  # one batch of large errors: a mean of batch RMSEs would differ
    present = rng.random((30, 2)) > 0.3
    metrics = validate("regression", prediction, target, present, size=5)
    error = (prediction - target)[present]
    assert metrics["val/rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)), rel=1e-6)
    assert metrics["val/mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-6)
    assert metrics["val/loss"] == pytest.approx(metrics["val/rmse"])
    batch_rmse = np.mean([np.sqrt(np.mean((prediction - target)[i:i + 5][present[i:i + 5]] ** 2)) for i in range(0, 30, 5)])
    assert abs(batch_rmse - metrics["val/rmse"]) > 0.1


def test_task_roc_auc_is_sklearns_mean_over_tasks_of_the_whole_split():
    rng = np.random.default_rng(1)
    labels = (rng.random((40, 3)) > 0.5).astype(float)
    logits = np.round(2 * (labels - 0.5) + rng.normal(size=(40, 3)), 0)  # ties
    present = rng.random((40, 3)) > 0.2
    labels[:, 2] = 0.0  # one class only: left out
    metrics = validate("classification", logits, labels, present, size=6)
    expected = np.mean([roc_auc_score(labels[present[:, t], t], logits[present[:, t], t]) for t in range(2)])
    assert metrics["val/roc_auc"] == pytest.approx(expected, abs=1e-6)
    assert metrics["val/loss"] == pytest.approx(1 - expected, abs=1e-6)
