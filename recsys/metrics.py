"""Whole-split ranking metrics of CTR prediction: ROC AUC and log loss.

Both take every prediction of a split at once (the task collects them), never a mean of per-batch
values. They match `sklearn.metrics.roc_auc_score` and `log_loss` (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve: P(score of a random positive > a random negative), ties count 1/2.

    Computed from average ranks (Mann-Whitney U). NaN when `labels` holds a single class.
    """
    scores, labels = scores.detach().double().flatten().cpu(), labels.detach().flatten().cpu()
    if scores.numel() != labels.numel():
        raise ValueError(f"roc_auc: {scores.numel()} scores but {labels.numel()} labels")
    positive = labels > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    # tied scores share the mean of their ranks
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts + 1
    mean_rank = first.double() + (counts.double() - 1) / 2
    ranks[order] = mean_rank[inverse]
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def log_loss(probabilities: Tensor, labels: Tensor, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of `probabilities` (clipped to `[eps, 1 - eps]`) against 0/1 `labels`."""
    p = probabilities.detach().double().flatten().cpu().clamp(eps, 1 - eps)
    y = labels.detach().double().flatten().cpu()
    if p.numel() != y.numel() or p.numel() == 0:
        raise ValueError(f"log_loss: {p.numel()} probabilities and {y.numel()} labels (need equal, non-zero)")
    return float(-(y * p.log() + (1 - y) * (1 - p).log()).mean())
