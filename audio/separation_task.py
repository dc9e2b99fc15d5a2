"""`SeparationTask`: music source separation (drums, bass, other, vocals) with per-track SDR and SI-SDR.

Training: L1 between the estimated and true source waveforms of random segments (Demucs' loss).
Validation and test: each whole track is separated in overlapping segments of the model's training
length with cross-faded overlap-add (`audio.separate.apply_model`, what users run), and scored per
track and source with the MDX SDR and SI-SDR (`audio.separation_metrics`); the split's metric is
the mean over tracks, per source (`test/sdr_drums`, ...) and over sources (`test/sdr`, `test/si_sdr`).
Parameter-free references run the same way: the mixture floor (`MixtureCopy`) and the IRM oracle,
which receives the true sources (`uses_references`). After testing, the first `spectrogram_tracks`
test tracks are logged as pictures of the mixture's, each estimate's and each reference's spectrogram
(`spectrograms/track_<k>.png`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio.separate import apply_model
from audio.separation_metrics import source_metrics
from core.task import BaseTask
from core.tracking import log_figure

Batch = dict[str, Tensor]


class SeparationTask(BaseTask):
    """Train and evaluate `model(mix: (batch, 2, length)) -> (batch, sources, 2, length)`.

    Batches come from `audio.data.separation.SeparationDataModule`.

    Args:
        model: `audio.models.htdemucs.HTDemucs`, `audio.models.hdemucs.HDemucs`, `MixtureCopy` or
            `IdealRatioMask` (`class_path`); its `sources` and `sample_rate` must equal the data's.
        overlap: overlap of consecutive evaluation segments (a fraction of one).
        spectrogram_tracks: test tracks whose spectrograms are logged (0: none).
        **kwargs: `BaseTask`'s optimizer, lr_scheduler, scheduler_interval and role.
    """

    domain = "audio"
    task_name = "separation"

    def __init__(self, model: nn.Module, overlap: float = 0.25, spectrogram_tracks: int = 1, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        # under the CLI this stores the config (class paths and arguments), so `audio.separate` rebuilds the
        # model from a checkpoint without YAML, and the checkpoint still loads with weights_only=True
        self.save_hyperparameters(logger=False)
        self.overlap, self.spectrogram_tracks = overlap, spectrogram_tracks
        self._scores: dict[str, list[dict[str, float]]] = {"val": [], "test": []}

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        if getattr(self.model, "uses_references", False):
            estimate = self.model(batch["mixture"], batch["sources"])
        else:
            estimate = self.model(batch["mixture"])
        loss = F.l1_loss(estimate.float(), batch["sources"])
        self.log_metrics("train", {"loss": loss}, batch_size=estimate.shape[0])
        if not loss.requires_grad:  # parameter-free references (mixture, IRM): nothing to optimize
            return None
        return loss

    def separate(self, mixture: Tensor, sources: Tensor) -> Tensor:
        """One track `mixture: (2, length)` -> estimates `(sources, 2, length)` in the model's segments."""
        segment = int(round(float(self.model.segment) * int(self.model.sample_rate)))
        references = sources if getattr(self.model, "uses_references", False) else None
        return apply_model(self.model, mixture, segment, self.overlap, references=references)

    def _evaluate(self, stage: str, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        mixture, sources = batch["mixture"][0], batch["sources"][0]
        estimate = self.separate(mixture, sources)
        self._scores[stage].append(source_metrics(estimate, sources, self.model.sources))
        return mixture, estimate, sources

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        mixture, estimate, sources = self._evaluate("test", batch)
        if batch_idx < self.spectrogram_tracks and self.loggers and not self.trainer.sanity_checking:
            name = type(self.model).__name__
            figure = spectrogram_figure(mixture, estimate, sources, self.model.sources, int(self.model.sample_rate),
                                        title=f"{name}: test track {batch_idx}")
            log_figure(self.trainer, figure, f"spectrograms/track_{batch_idx}.png")

    def on_validation_epoch_start(self) -> None:
        self._scores["val"] = []

    def on_test_epoch_start(self) -> None:
        self._scores["test"] = []

    def on_validation_epoch_end(self) -> None:
        self._log_split("val")

    def on_test_epoch_end(self) -> None:
        self._log_split("test")

    def _log_split(self, stage: str) -> None:
        scores = self._scores[stage]
        if not scores:
            return
        means = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        if stage == "val":
            means["loss"] = -means["sdr"]  # checkpoint.monitor on val/loss or val/sdr alike
        self.log_metrics(stage, means)

    # ---- data checks and tracking ---------------------------------------------------------------
    def on_data_ready(self) -> None:
        """Check the model against the data (sources, rate) and log the track counts."""
        data = getattr(self.trainer, "datamodule", None)
        if data is None or not hasattr(data, "sources"):
            return
        if list(self.model.sources) != list(data.sources):
            raise ValueError(f"audio.separation_task: the model separates {list(self.model.sources)} but "
                             f"{data.dataset_name} has {list(data.sources)}")
        if int(self.model.sample_rate) != int(data.sample_rate):
            raise ValueError(
                f"audio.separation_task: the model's sample_rate is {self.model.sample_rate} but the data is read at "
                f"{data.sample_rate}; set model.init_args.model.init_args.sample_rate: {data.sample_rate}"
            )
        counts = data.data_counts()
        self.log_run_params(counts, {"data/skipped_tracks": float(counts["skipped_tracks"])})


def spectrogram_figure(mixture: Tensor, estimate: Tensor, reference: Tensor, sources: list[str], sample_rate: int,
                       title: str = "", nfft: int = 1024):
    """A grid of log-magnitude spectrograms (channels averaged): the mixture, then per source estimate | reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = torch.hann_window(nfft)

    def db(x: Tensor) -> np.ndarray:
        spec = torch.stft(x.float().mean(0).cpu(), nfft, nfft // 4, window=window, return_complex=True).abs()
        return (20 * torch.log10(spec + 1e-5)).numpy()

    extent = [0, mixture.shape[-1] / sample_rate, 0, sample_rate / 2000]
    rows = len(sources) + 1
    figure, axes = plt.subplots(rows, 2, figsize=(10, 1.8 * rows), sharex=True, sharey=True, squeeze=False)
    style = {"origin": "lower", "aspect": "auto", "extent": extent, "vmin": -80, "vmax": 20, "cmap": "magma"}
    axes[0, 0].imshow(db(mixture), **style)
    axes[0, 0].set_title("mixture")
    axes[0, 1].axis("off")
    for row, name in enumerate(sources, start=1):
        axes[row, 0].imshow(db(estimate[row - 1]), **style)
        axes[row, 0].set_title(f"{name}: estimate")
        axes[row, 1].imshow(db(reference[row - 1]), **style)
        axes[row, 1].set_title(f"{name}: reference")
    for ax in axes[:, 0]:
        ax.set_ylabel("kHz")
    for ax in axes[-1]:
        ax.set_xlabel("s")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
