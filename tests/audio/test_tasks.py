"""The tagging metrics equal scikit-learn's macro ROC-AUC and average precision over the whole split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from audio.tasks import macro_tag_scores, tag_metrics
from core.metrics import MaskedMultilabelScores


def test_batched_macro_scores_equal_scikit_learn():
    # torchmetrics computes the curves in float32: equal to scikit-learn within 1e-6 (ties or a wrong
    # averaging would differ by more than 1e-3)
    rng = np.random.default_rng(0)
    labels = (rng.random((60, 5)) < 0.3).astype(np.float32)
    scores = np.clip(labels * 0.3 + rng.random((60, 5)) * 0.7, 0, 1)
    scores[:10] = np.round(scores[:10], 1)  # ties
    metric = MaskedMultilabelScores()
    for k in range(0, 60, 16):  # batch by batch, as validation and test do
        metric.update(torch.from_numpy(scores[k:k + 16]), torch.from_numpy(labels[k:k + 16]))
    out = tag_metrics(metric)
    assert float(out["roc_auc"]) == pytest.approx(roc_auc_score(labels, scores, average="macro"), abs=1e-6)
    assert float(out["pr_auc"]) == pytest.approx(average_precision_score(labels, scores, average="macro"), abs=1e-6)
    assert float(out["tags_scored"]) == 5


def test_tags_with_one_class_are_left_out():
    rng = np.random.default_rng(1)
    labels = (rng.random((40, 4)) < 0.5).astype(np.float32)
    labels[:, 1] = 0.0  # absent from the split
    labels[:, 3] = 1.0  # on every clip
    scores = rng.random((40, 4))
    out = macro_tag_scores(scores, labels)
    kept = [0, 2]
    assert out["roc_auc"] == pytest.approx(roc_auc_score(labels[:, kept], scores[:, kept], average="macro"), abs=1e-6)
    assert out["pr_auc"] == pytest.approx(average_precision_score(labels[:, kept], scores[:, kept], average="macro"), abs=1e-6)
    assert out["tags_scored"] == 2
    named = macro_tag_scores(scores, labels, ["a", "b", "c", "d"])  # per tag where both classes exist, as scikit-learn
    assert {k for k in named if k.startswith("roc_auc_")} == {"roc_auc_a", "roc_auc_c"}
    for tag, t in (("a", 0), ("c", 2)):
        assert named[f"roc_auc_{tag}"] == pytest.approx(roc_auc_score(labels[:, t], scores[:, t]), abs=1e-6)
    assert np.isnan(macro_tag_scores(scores[:, [1, 3]], labels[:, [1, 3]])["roc_auc"])


def test_perfect_and_reversed_rankings():
    labels = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=np.float32)
    assert macro_tag_scores(labels * 0.9 + 0.05, labels)["roc_auc"] == 1.0
    assert macro_tag_scores(1 - labels, labels)["roc_auc"] == 0.0
