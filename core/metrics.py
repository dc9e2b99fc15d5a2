"""Metrics torchmetrics lacks, written as torchmetrics `Metric`s (accumulated per batch, synced under DDP).

`MaskedMultilabelAUROC` is the MoleculeNet classification score: the mean over targets of each
target's exact ROC-AUC over the whole split, counting only rows where that target's label exists
and leaving out targets whose present labels hold a single class. torchmetrics'
`MultilabelAUROC(ignore_index=...)` masks per target too, but scores a one-class target 0.0 and
averages it in (tested), where scikit-learn refuses such a target and the papers leave it out.
`MaskedMultilabelScores` adds the macro average precision (PR-AUC) beside it, the music-tagging
pair (`audio.tasks`: ROC-AUC and PR-AUC over tags).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_auroc, binary_average_precision
from torchmetrics.utilities import dim_zero_cat


class MaskedMultilabelScores(Metric):
    """Macro ROC-AUC and average precision over targets, each on the whole split's present labels.

    Equals `mean_t sklearn.metrics.roc_auc_score(labels[present[:, t], t], scores[present[:, t], t])`
    (and `average_precision_score` alike) over the targets `t` whose present labels hold both
    classes, NaN when none does. Every score is kept until `compute`, so the values are exact (ties
    count 1/2) and never means of batch values.

    `update(scores, labels, present=None)`:
        scores: `(batch, targets)` probabilities or logits (only their order per target matters).
        labels: `(batch, targets)` 0/1, NaN where missing; values where `present` is False are ignored.
        present: `(batch, targets)` bool, True where the label exists (default: where it is not NaN).

    `compute()` returns `{"roc_auc", "pr_auc", "targets_scored", "roc_auc_per_target"}`, the last
    `(targets,)` with NaN for a target without both classes (where a macro mean hides which targets fail).

    Args:
        average_precision: also compute the PR-AUC (False: `pr_auc` is NaN, for the ROC-AUC alone).
        kwargs: passed to `torchmetrics.Metric` (e.g. `process_group`).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, average_precision: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.average_precision = average_precision
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        # missing labels are stored as NaN: one float state gathers under every DDP backend
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, labels: Tensor, present: Tensor | None = None) -> None:
        """Add one batch (shapes in the class docstring)."""
        if scores.ndim != 2 or scores.shape != labels.shape or (present is not None and present.shape != scores.shape):
            found = None if present is None else tuple(present.shape)
            raise ValueError(
                f"{type(self).__name__}: scores {tuple(scores.shape)}, labels {tuple(labels.shape)} and present "
                f"{found} must all be (batch, targets)"
            )
        labels = labels.detach().to(torch.float64)
        missing = labels.isnan() if present is None else labels.isnan() | ~present.bool()
        labels = (labels > 0.5).to(torch.float64).masked_fill(missing, float("nan"))
        self.scores.append(scores.detach().to(torch.float64))
        self.labels.append(labels)

    def compute(self) -> dict[str, Tensor]:
        """The macro scores over targets with both classes present (NaN when there is none)."""
        nan = torch.tensor(float("nan"), dtype=torch.float64, device=self.device)
        if isinstance(self.scores, list) and not self.scores:
            return {"roc_auc": nan, "pr_auc": nan, "targets_scored": torch.tensor(0.0), "roc_auc_per_target": torch.empty(0, dtype=torch.float64)}
        scores, labels = dim_zero_cat(self.scores), dim_zero_cat(self.labels)
        per_target = torch.full((scores.shape[1],), float("nan"), dtype=torch.float64, device=self.device)
        roc, pr = [], []
        for t in range(scores.shape[1]):
            present = ~labels[:, t].isnan()
            y = labels[present, t]
            if 0 < y.sum() < y.numel():
                ranks, y = _dense_ranks(scores[present, t]), y.long()
                roc.append(binary_auroc(ranks, y, validate_args=False))
                per_target[t] = roc[-1]
                if self.average_precision:
                    pr.append(binary_average_precision(ranks, y, validate_args=False))
        if not roc:
            return {"roc_auc": nan, "pr_auc": nan, "targets_scored": torch.tensor(0.0), "roc_auc_per_target": per_target}
        return {"roc_auc": torch.stack(roc).mean(), "pr_auc": torch.stack(pr).mean() if pr else nan,
                "targets_scored": torch.tensor(float(len(roc))), "roc_auc_per_target": per_target}


class MaskedMultilabelAUROC(MaskedMultilabelScores):
    """The mean over targets of the whole-split ROC-AUC of each target's present labels (the
    MoleculeNet score): `MaskedMultilabelScores`' `roc_auc` alone, as one tensor.

    Args:
        kwargs: passed to `torchmetrics.Metric` (e.g. `process_group`).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(average_precision=False, **kwargs)

    def compute(self) -> Tensor:
        """The mean ROC-AUC over targets with both classes present (NaN when there is none)."""
        return super().compute()["roc_auc"]


def _dense_ranks(scores: Tensor) -> Tensor:
    """`scores` mapped order- and tie-preservingly into [0, 1].

    torchmetrics squashes scores outside [0, 1] with a sigmoid, which rounds distinct large logits
    to the same 1.0; ranks keep the AUC exactly that of the raw scores.
    """
    distinct, ranks = torch.unique(scores, return_inverse=True)
    return ranks.to(torch.float64) / max(distinct.numel() - 1, 1)
