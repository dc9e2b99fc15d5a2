"""`TaggingTask`: multi-label music tagging (binary cross-entropy per tag) with whole-split macro ROC-AUC / PR-AUC.

Training: one random window per clip, BCE with logits over every tag. Validation and test: each
clip's `eval_windows` windows are scored, their sigmoid outputs averaged (the authors' evaluation),
and the clip scores of the whole split give `roc_auc` (macro ROC-AUC over tags) and `pr_auc` (macro
average precision), exactly scikit-learn's `roc_auc_score(..., average="macro")` and
`average_precision_score(..., average="macro")` over the tags that have both a positive and a
negative clip in the split. A tag absent from a split (or present on every clip) has no ROC-AUC
and is left out of both means (scikit-learn refuses it for ROC-AUC); how many tags were scored is
logged as `<stage>/tags_scored`.

After testing, a model with `attention_maps` (the self-attention tagger) logs heat maps of its
[CLS] attention over time for the first `attention_clips` test clips (`attention/clip_<k>.png`) and,
per tag, the most-attended segment of the test clips it scored highest (`attention/top_segments.json`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_auroc, binary_average_precision
from torchmetrics.utilities import dim_zero_cat

from core.task import BaseTask
from core.tracking import log_dict, log_figure

Batch = dict[str, Tensor]


class MacroTagScores(Metric):
    """Macro ROC-AUC and PR-AUC (average precision) over tags, on every score of the split.

    `update(scores, labels)`: `(batch, tags)` probabilities and 0/1 labels. `compute()` returns
    `{"roc_auc", "pr_auc", "tags_scored"}`; tags with a single class in the split are left out
    (NaN for both scores when no tag remains).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, labels: Tensor) -> None:
        if scores.ndim != 2 or scores.shape != labels.shape:
            raise ValueError(f"MacroTagScores: scores {tuple(scores.shape)} and labels {tuple(labels.shape)} must both be (batch, tags)")
        self.scores.append(scores.detach().to(torch.float64))
        self.labels.append((labels.detach() > 0.5).to(torch.float64))

    def compute(self) -> dict[str, Tensor]:
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        if isinstance(self.scores, list) and not self.scores:
            return {"roc_auc": nan, "pr_auc": nan, "tags_scored": torch.tensor(0.0)}
        scores, labels = dim_zero_cat(self.scores), dim_zero_cat(self.labels)
        roc, pr = [], []
        for t in range(scores.shape[1]):
            y = labels[:, t]
            if 0 < y.sum() < y.numel():
                roc.append(binary_auroc(scores[:, t], y.long(), validate_args=False))
                pr.append(binary_average_precision(scores[:, t], y.long(), validate_args=False))
        if not roc:
            return {"roc_auc": nan, "pr_auc": nan, "tags_scored": torch.tensor(0.0)}
        return {"roc_auc": torch.stack(roc).mean(), "pr_auc": torch.stack(pr).mean(),
                "tags_scored": torch.tensor(float(len(roc)))}


def macro_tag_scores(scores: np.ndarray | Tensor, labels: np.ndarray | Tensor) -> dict[str, float]:
    """`MacroTagScores` of one whole split at once (e.g. the logistic regression's test scores)."""
    metric = MacroTagScores()
    metric.update(torch.as_tensor(np.asarray(scores)), torch.as_tensor(np.asarray(labels)))
    return {name: float(value) for name, value in metric.compute().items()}


class TaggingTask(BaseTask):
    """Train and evaluate `model(mel: (batch, n_mels, frames)) -> (batch, tags)` logits.

    Batches come from `audio.data.TaggingDataModule`.

    Args:
        model: `audio.models.self_attention_tagger.SelfAttentionTagger`, `audio.models.fcn.FCN` or
            `audio.models.short_chunk_cnn.ShortChunkCNN` (`class_path`); its `num_tags` must equal the data's.
        attention_clips: test clips whose attention heat maps are logged (0: none).
        top_segments: per tag, the test clips scored highest whose most-attended segment is listed.
        **kwargs: `BaseTask`'s optimizer, lr_scheduler, scheduler_interval and role.
    """

    domain = "audio"
    task_name = "tagging"

    def __init__(self, model: nn.Module, attention_clips: int = 4, top_segments: int = 3, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        # under the CLI this stores the config (class paths and arguments), so a checkpoint rebuilds its
        # model without YAML (`audio.tag`) and still loads with `torch.load(weights_only=True)`
        self.save_hyperparameters(logger=False)
        self.attention_clips, self.top_segments = attention_clips, top_segments
        self.val_metrics, self.test_metrics = MacroTagScores(), MacroTagScores()
        self._test_scores: list[tuple[Tensor, Tensor]] = []

    def clip_scores(self, mel: Tensor) -> Tensor:
        """`mel: (batch, windows, n_mels, frames)` -> `(batch, tags)`: sigmoid outputs averaged over windows."""
        batch, windows = mel.shape[:2]
        probs = torch.sigmoid(self.model(mel.flatten(0, 1)).float())
        return probs.view(batch, windows, -1).mean(dim=1)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        logits = self.model(batch["mel"])
        loss = F.binary_cross_entropy_with_logits(logits.float(), batch["labels"])
        self.log_metrics("train", {"loss": loss}, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        scores = self.clip_scores(batch["mel"])
        self.val_metrics.update(scores, batch["labels"])
        loss = F.binary_cross_entropy(scores.clamp(1e-7, 1 - 1e-7), batch["labels"])
        self.log_metrics("val", {"bce": loss}, batch_size=scores.shape[0])

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        scores = self.clip_scores(batch["mel"])
        self.test_metrics.update(scores, batch["labels"])
        self._test_scores.append((batch["index"].cpu(), scores.detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        metrics = self._split_metrics(self.val_metrics)
        if metrics:
            loss = 1.0 - metrics["roc_auc"]  # checkpoint.monitor on val/loss or val/roc_auc alike
            self.log_metrics("val", {**metrics, "loss": 0.0 if math.isnan(loss) else loss})

    def on_test_epoch_start(self) -> None:
        self._test_scores = []

    def on_test_epoch_end(self) -> None:
        metrics = self._split_metrics(self.test_metrics)
        if metrics:
            self.log_metrics("test", metrics)
        self._log_attention()

    @staticmethod
    def _split_metrics(metric: MacroTagScores) -> dict[str, float]:
        values = {name: float(v) for name, v in metric.compute().items()} if metric.update_called else {}
        metric.reset()
        return values

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the tag names in the checkpoint (plain strings) for `audio.tag`."""
        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if data is not None and hasattr(data, "tags"):
            checkpoint["tags"] = list(data.tags)

    # ---- data checks and tracking ---------------------------------------------------------------
    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        want = getattr(self.model, "num_tags", None)
        if data is None or want is None or not hasattr(data, "num_tags"):
            return
        if data.num_tags != want:
            raise ValueError(
                f"audio.tasks: the model predicts {want} tags but {data.dataset_name} has {data.num_tags}; "
                f"set model.init_args.model.init_args.num_tags: {data.num_tags}"
            )

    def on_data_ready(self) -> None:
        """Log the split sizes, the tags and the skipped / missing / padded file counts."""
        data = getattr(self.trainer, "datamodule", None)
        if data is None or not hasattr(data, "data_counts"):
            return
        counts = data.data_counts()
        params = {**counts, "tags": ",".join(data.tags)[:500], "num_tags": data.num_tags}
        metrics = {f"data/{k}": float(counts[k]) for k in ("skipped_files", "missing_files", "padded_clips")}
        self.log_run_params(params, metrics)

    def _log_attention(self) -> None:
        """Heat maps of the [CLS] attention over time and the most-attended segment per tag (test split)."""
        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if data is None or not hasattr(self.model, "attention_maps") or not self.loggers or not self._test_scores:
            return
        if self.trainer.sanity_checking or self.attention_clips <= 0 and self.top_segments <= 0:
            return
        from audio.plots import attention_figure, clip_attention

        dataset = data.test_set
        index = torch.cat([i for i, _ in self._test_scores]).numpy()
        scores = torch.cat([s for _, s in self._test_scores]).numpy()
        order = np.argsort(index)
        index, scores = index[order], scores[order]
        seconds_per_frame = data.mel_settings["hop_length"] / data.mel_settings["sample_rate"]
        name = type(self.model).__name__
        was_training = self.model.training
        self.model.eval()
        for k in index[: self.attention_clips]:
            mel = dataset.full(int(k))
            curve, window_scores = clip_attention(self.model, mel, dataset.input_frames, dataset.windows, self.device)
            tags = [data.tags[t] for t in np.argsort(-scores[k])[:3]]
            figure = attention_figure(mel, curve, seconds_per_frame, title=f"{name}: test clip {k} "
                                      f"(top tags: {', '.join(tags)})")
            log_figure(self.trainer, figure, f"attention/clip_{k}.png")
        segments = {}
        for t, tag in enumerate(data.tags):
            best = []
            for k in index[np.argsort(-scores[:, t])][: self.top_segments]:
                mel = dataset.full(int(k))
                curve, _ = clip_attention(self.model, mel, dataset.input_frames, dataset.windows, self.device)
                token = self.model.time_stride
                peak = int(np.argmax(curve)) // token * token
                best.append({
                    "clip": int(k), "file": str(data.clip_files["test"][int(k)]), "score": float(scores[k, t]),
                    "start_s": round(peak * seconds_per_frame, 3), "end_s": round((peak + token) * seconds_per_frame, 3),
                    "attention": float(curve[peak]),
                })
            segments[tag] = best
        log_dict(self.trainer, segments, "attention/top_segments.json")
        self.model.train(was_training)
