"""`CTRTask`'s whole-split ROC-AUC and log loss against scikit-learn, through a Lightning run."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score
from torch import Tensor
from torch.utils.data import DataLoader

from recsys.models import FieldLayout
from recsys.models.base import CTRModel
from recsys.tasks import CTRTask, roc_figure


class GivenLogits(CTRModel):
    """Returns `batch["numeric"][:, 0]` as the logits, so a test chooses every score."""

    def _build(self, layout: FieldLayout) -> None:
        self.unused = torch.nn.Linear(1, 1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["numeric"][:, 0]


def tiny_split(rows: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits on a coarse grid (many ties, some across batches) and 0/1 labels related to them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    logits = np.round(1.5 * (labels - 0.5) + rng.standard_normal(rows), 0).astype(np.float32)
    logits[:3] = [20.0, -20.0, 20.0]  # probabilities clipped in the log loss
    labels[:3] = [0, 1, 1]
    return logits, labels


def batches(logits: np.ndarray, labels: np.ndarray, size: int) -> list[dict[str, Tensor]]:
    out = []
    for start in range(0, len(labels), size):
        x, y = torch.tensor(logits[start:start + size]), torch.tensor(labels[start:start + size], dtype=torch.float32)
        ids = torch.zeros(len(y), 1, dtype=torch.long)
        out.append({"categorical": ids, "multi_valued": ids[:, :0, None], "numeric": x[:, None], "label": y})
    return out


def run(stage: str, data: list[dict[str, Tensor]]) -> dict[str, float]:
    task = CTRTask(GivenLogits().build(FieldLayout(categorical=(2,), multi_valued=(), numeric=1, names=("c", "x"))))
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(data, batch_size=None)
    (metrics,) = trainer.validate(task, loader, verbose=False) if stage == "val" else trainer.test(task, loader, verbose=False)
    return metrics


@pytest.mark.parametrize("stage", ["val", "test"])
def test_task_auc_and_logloss_are_sklearns_over_the_whole_split(stage):
    logits, labels = tiny_split()
    probabilities = torch.sigmoid(torch.tensor(logits)).numpy()
    metrics = run(stage, batches(logits, labels, size=6))
    expected_auc = roc_auc_score(labels, probabilities)
    assert metrics[f"{stage}/roc_auc"] == pytest.approx(expected_auc, abs=1e-6)
    assert metrics[f"{stage}/logloss"] == pytest.approx(log_loss(labels, np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)), abs=1e-6)
    # the split is such that a mean of batch AUCs would differ
    batch_aucs = [roc_auc_score(labels[i:i + 6], probabilities[i:i + 6])
                  for i in range(0, len(labels), 6) if len(set(labels[i:i + 6])) == 2]
    assert abs(np.mean(batch_aucs) - expected_auc) > 1e-3


def test_all_tied_scores_give_half():
    labels = np.array([0, 1, 0, 1, 1, 0])
    metrics = run("val", batches(np.zeros(6, dtype=np.float32), labels, size=4))
    assert metrics["val/roc_auc"] == pytest.approx(0.5)


def test_roc_figure_labels_the_curve_with_the_auc():
    logits, labels = tiny_split(seed=1)
    probabilities = torch.sigmoid(torch.tensor(logits))
    figure = roc_figure(probabilities, torch.tensor(labels), "Model")
    (curve, _) = figure.axes[0].lines
    assert curve.get_label() == f"Model (AUC {roc_auc_score(labels, probabilities.numpy()):.4f})"
    assert (curve.get_xdata()[0], curve.get_ydata()[-1]) == (0.0, 1.0)
