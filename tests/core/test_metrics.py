"""`core.metrics.MaskedMultilabelAUROC` against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torchmetrics.classification import MultilabelAUROC

from core.metrics import MaskedMultilabelAUROC


def split(rows: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores with ties, 0/1 labels, a presence mask, and a third target holding one class only."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((rows, 3)) > 0.5).astype(float)
    scores = np.round(0.3 * labels + rng.random((rows, 3)), 1)  # rounding makes ties
    present = rng.random((rows, 3)) > 0.2
    labels[:, 2] = 1.0
    return scores, labels, present


def sklearn_mean(scores: np.ndarray, labels: np.ndarray, present: np.ndarray) -> float:
    values = [roc_auc_score(labels[present[:, t], t], scores[present[:, t], t])
              for t in range(labels.shape[1]) if len(np.unique(labels[present[:, t], t])) == 2]
    return float(np.mean(values))


@pytest.mark.filterwarnings("ignore:No negative samples")  # torchmetrics on the one-class target
def test_whole_split_over_batches_equals_sklearn_and_skips_one_class_targets():
    scores, labels, present = split()
    metric = MaskedMultilabelAUROC()
    for rows in np.array_split(np.arange(len(scores)), 7):
        metric.update(torch.tensor(scores[rows]), torch.tensor(labels[rows]), torch.tensor(present[rows]))
    expected = sklearn_mean(scores, labels, present)
    assert metric.compute().item() == pytest.approx(expected, abs=1e-6)
    # why the helper exists: torchmetrics scores the one-class target 0.0 and averages it in
    target = torch.tensor(labels).long().masked_fill(~torch.tensor(present), -1)
    torchmetrics_value = MultilabelAUROC(3, ignore_index=-1)(torch.tensor(scores), target).item()
    assert abs(torchmetrics_value - expected) > 0.1


def test_large_logits_rank_like_the_raw_scores():
    # a sigmoid would round these to 1.0 and tie them; the AUC must be that of the raw values
    scores = torch.tensor([[40.0], [41.0], [42.0], [43.0]])
    labels = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    metric = MaskedMultilabelAUROC()
    metric.update(scores, labels)
    assert metric.compute().item() == pytest.approx(roc_auc_score(labels[:, 0], scores[:, 0]))  # 0.75


def test_missing_labels_change_nothing_nan_labels_are_missing_and_no_two_class_target_is_nan():
    scores, labels, present = split(seed=1)
    flipped = labels.copy()
    flipped[~present] = 1 - flipped[~present]
    values = []
    for y in (labels, flipped):
        metric = MaskedMultilabelAUROC()
        metric.update(torch.tensor(scores), torch.tensor(y), torch.tensor(present))
        values.append(metric.compute().item())
    nan_labels = MaskedMultilabelAUROC()
    nan_labels.update(torch.tensor(scores), torch.tensor(np.where(present, labels, np.nan)))
    values.append(nan_labels.compute().item())
    assert values[0] == values[1] == values[2]
    one_class = MaskedMultilabelAUROC()
    one_class.update(torch.rand(5, 2), torch.ones(5, 2))
    assert math.isnan(one_class.compute().item())


@pytest.mark.filterwarnings("ignore:The ``compute`` method")  # merge_state does not count as an update
def test_shards_reduce_to_the_whole_split_not_a_mean_of_shards():
    # merge_state applies the states' dist_reduce_fx, the reduction DDP sync uses across ranks
    scores, labels, present = split(seed=2)
    halves = [np.arange(0, 20), np.arange(20, 60)]
    shards = []
    for rows in halves:
        shard = MaskedMultilabelAUROC()
        shard.update(torch.tensor(scores[rows]), torch.tensor(labels[rows]), torch.tensor(present[rows]))
        shards.append(shard)
    whole = MaskedMultilabelAUROC()
    for shard in shards:
        whole.merge_state(shard)
    expected = sklearn_mean(scores, labels, present)
    assert whole.compute().item() == pytest.approx(expected, abs=1e-6)
    shard_mean = np.mean([s.compute().item() for s in shards])
    assert abs(shard_mean - expected) > 1e-3


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"scores \(4, 2\), labels \(4, 3\)"):
        MaskedMultilabelAUROC().update(torch.rand(4, 2), torch.ones(4, 3))


def test_masked_scores_add_average_precision_over_present_labels():
    from sklearn.metrics import average_precision_score

    from core.metrics import MaskedMultilabelScores

    rng = np.random.default_rng(3)
    labels = (rng.random((50, 3)) < 0.4).astype(np.float64)
    scores = labels * 0.4 + rng.random((50, 3)) * 0.6
    present = rng.random((50, 3)) < 0.8
    metric = MaskedMultilabelScores()
    for k in range(0, 50, 20):
        metric.update(torch.from_numpy(scores[k:k + 20]), torch.from_numpy(labels[k:k + 20]), torch.from_numpy(present[k:k + 20]))
    out = metric.compute()
    expected_ap = np.mean([average_precision_score(labels[present[:, t], t], scores[present[:, t], t]) for t in range(3)])
    expected_roc = np.mean([roc_auc_score(labels[present[:, t], t], scores[present[:, t], t]) for t in range(3)])
    assert float(out["pr_auc"]) == pytest.approx(expected_ap, abs=1e-6)
    assert float(out["roc_auc"]) == pytest.approx(expected_roc, abs=1e-6)
    assert float(out["targets_scored"]) == 3
