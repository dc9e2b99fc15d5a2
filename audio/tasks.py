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

Predicting (`attn predict --ckpt_path CKPT --predict_path FILE_OR_FOLDER --output DIR`): each file's
windows (`TaggingDataModule.predict_dataloader`) are scored and their sigmoid outputs averaged, the
clip-level score of the test; `DIR/predicted_tags.csv` has one row per file with the probability of
every tag and the top tags (`audio.tag.tag_table`, the table of `python -m audio.tag --output`).
Served through MLflow, the model takes a float32 array of samples at the model's sample rate, mono
`(samples,)` as its logged example (`serving_input` also takes `(channels, samples)`), and answers a
one-row DataFrame of tag probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio.data.io import decoded_predictions, load_audio, save_served_samples
from audio.tag import PREDICTIONS_CSV, TABLE_COLUMNS, tag_table, window_probabilities
from core.metrics import MaskedMultilabelScores
from core.task import BaseTask
from core.tracking import log_dict, log_figure

SEGMENT_FRAMES = 8  # frames of the most-attended segment reported per tag (128 ms at 16 kHz, hop 256)

Batch = dict[str, Tensor]


def tag_metrics(metric: MaskedMultilabelScores, tags: Sequence[str] = ()) -> dict[str, float]:
    """The tagging metrics of an accumulated split: `roc_auc`, `pr_auc`, `tags_scored` (tags with both
    classes) and, for each name of `tags` (the metric's targets in order), `roc_auc_<tag>` where defined."""
    values = metric.compute()
    out = {"roc_auc": float(values["roc_auc"]), "pr_auc": float(values["pr_auc"]),
           "tags_scored": float(values["targets_scored"])}
    per_tag = values["roc_auc_per_target"].tolist()
    out.update({f"roc_auc_{tag}": auc for tag, auc in zip(tags, per_tag, strict=False) if not math.isnan(auc)})
    return out


def macro_tag_scores(scores: np.ndarray | Tensor, labels: np.ndarray | Tensor, tags: Sequence[str] = ()) -> dict[str, float]:
    """The tag scores of one whole split at once (e.g. the logistic regression's test scores); `tags` as `tag_metrics`."""
    metric = MaskedMultilabelScores()
    metric.update(torch.as_tensor(np.asarray(scores)), torch.as_tensor(np.asarray(labels)))
    return tag_metrics(metric, tags)


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
        self.attention_clips, self.top_segments = attention_clips, top_segments
        self.val_metrics, self.test_metrics = MaskedMultilabelScores(), MaskedMultilabelScores()
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
        data = getattr(self.trainer, "datamodule", None)
        metrics = self._split_metrics(self.test_metrics, getattr(data, "tags", ()))  # per tag: test/roc_auc_<tag>
        if metrics:
            self.log_metrics("test", metrics)
        self._log_attention()

    @staticmethod
    def _split_metrics(metric: MaskedMultilabelScores, tags: Sequence[str] = ()) -> dict[str, float]:
        values = tag_metrics(metric, tags) if metric.update_called else {}
        metric.reset()
        return values

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """One file's windows -> `{"index", "scores": (tags,), "windows", "seconds"}` (window-averaged
        probabilities), or the file's `{"index", "error"}` when it could not be decoded."""
        if "error" in batch:
            return {"index": int(batch["index"]), "error": str(batch["error"])}
        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        per_pass = int(getattr(data, "predict_window_batch", 16))
        probs = window_probabilities(self.model, batch["windows"], per_pass)
        return {"index": int(batch["index"]), "scores": probs.mean(dim=0).cpu(), "windows": len(probs),
                "seconds": float(batch["seconds"])}

    def write_predictions(self, predictions: list[dict[str, Any]], datamodule: L.LightningDataModule,
                          output: Path) -> list[Path]:
        """`output/predicted_tags.csv`: one row per file read (`audio.tag.tag_table`); files that failed to
        decode are named on stderr and added to `datamodule.predict_skipped`."""
        tags, names = list(datamodule.tags), datamodule.predict_names
        done = decoded_predictions(predictions, datamodule)
        if len(done[0]["scores"]) != len(tags):
            raise ValueError(f"audio.tasks: the model predicts {len(done[0]['scores'])} tags but its checkpoint names "
                             f"{len(tags)} ({', '.join(tags[:5])}, ...)")
        table = tag_table([names[p["index"]] for p in done], torch.stack([p["scores"] for p in done]).numpy(),
                          [p["windows"] for p in done], [p["seconds"] for p in done], tags)
        path = Path(output) / PREDICTIONS_CSV
        table.to_csv(path, index=False)
        return [path]

    @classmethod
    def serving_input(cls, model_input: Any, folder: Path) -> Path:
        """Raw samples at the model's sample rate, `(samples,)` or `(channels, samples)`, saved as the `.npy`
        array `predict_path` reads."""
        return save_served_samples(model_input, folder, "clip", "tagging")

    @classmethod
    def serving_output(cls, paths: list[Path]) -> pd.DataFrame:
        """The tag probabilities of `predicted_tags.csv` (one column per tag)."""
        table = pd.read_csv(next(Path(p) for p in paths if Path(p).name == PREDICTIONS_CSV), float_precision="round_trip")
        return table.drop(columns=list(TABLE_COLUMNS))

    def serving_example(self, datamodule: L.LightningDataModule) -> np.ndarray | None:
        """The first second of a test clip (else a training clip), mono float32 at the model's rate."""
        files = getattr(datamodule, "clip_files", None) or {}
        clip = next((names[0] for names in (files.get("test"), files.get("train")) if names), None)
        if clip is None:
            return None
        rate = int(datamodule.mel_settings["sample_rate"])
        return load_audio(clip, rate)[:rate].numpy().astype(np.float32)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the tag names in the checkpoint (plain strings) for `audio.tag`."""
        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if data is not None and hasattr(data, "tags"):
            checkpoint["tags"] = list(data.tags)

    # ---- data checks and tracking ---------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "predict":  # the tag names come with the checkpoint, restored after setup (write_predictions)
            return
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
                span = max(token, SEGMENT_FRAMES)  # per-frame tokens: the most attended 128 ms, not one 16-ms frame
                peak = int(np.argmax(np.convolve(curve, np.ones(span), "valid"))) // token * token
                best.append({
                    "clip": int(k), "file": str(data.clip_files["test"][int(k)]), "score": float(scores[k, t]),
                    "start_s": round(peak * seconds_per_frame, 3), "end_s": round((peak + span) * seconds_per_frame, 3),
                    "attention": float(curve[peak:peak + span].mean()),
                })
            segments[tag] = best
        log_dict(self.trainer, segments, "attention/top_segments.json")
        self.model.train(was_training)
