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

Predicting (`attn predict --ckpt_path CKPT --predict_path SONG_OR_FOLDER --output DIR`): each song is
separated as `python -m audio.separate` does (`audio.separate.separate_song`: the model's segments,
cross-faded, one at a time) and written as `DIR/<song>/<source>.wav` (32-bit float, the song's rate
and channels), with `DIR/stems.csv` listing them. Each song's stems go to disk as soon as it is done,
so a folder of songs is never held in memory. Served through MLflow, the model takes a float32 array
`(channels, samples)` at the model's sample rate and answers `(sources, channels, samples)`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio.data.io import decoded_predictions, save_served_samples
from audio.separate import apply_model, separate_song, write_stems
from audio.separation_metrics import source_metrics
from core.predict import PredictionWriter
from core.task import BaseTask
from core.tracking import log_figure

Batch = dict[str, Tensor]
STEMS_CSV = "stems.csv"
STEMS_COLUMNS = ("file", "seconds", "sample_rate", "channels")  # then one column per source: its WAV


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
        self.overlap, self.spectrogram_tracks = overlap, spectrogram_tracks
        self._scores: dict[str, list[dict[str, float]]] = {"val": [], "test": []}
        self._spool: Path | None = None
        self._spool_owned = False

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

    # ---- predicting your own songs (module docstring) ---------------------------------------------
    def on_predict_start(self) -> None:
        # the stems of each song wait here until write_predictions moves them: inside the output folder of
        # `attn predict` (so moving is a rename), else in a temporary folder that is left for the caller
        output = next((c.output for c in self.trainer.callbacks if isinstance(c, PredictionWriter)), None)
        if output is not None:
            Path(output).mkdir(parents=True, exist_ok=True)
        self._spool = Path(tempfile.mkdtemp(prefix=".separating-", dir=output))
        self._spool_owned = output is not None

    def on_predict_end(self) -> None:
        if self._spool is not None and self._spool_owned:
            shutil.rmtree(self._spool, ignore_errors=True)
        self._spool = None

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """One song -> its stems written as WAVs to a spool folder (a whole folder of songs is never held in
        memory); `{"index", "files", "seconds", "sample_rate", "channels"}`, or the song's `{"index", "error"}`
        when it could not be decoded. Under a plain `Trainer.predict` (no `attn predict` writer) `files` stay
        in a temporary folder for the caller."""
        if "error" in batch:
            return {"index": int(batch["index"]), "error": str(batch["error"])}
        if getattr(self.model, "uses_references", False):
            raise ValueError(f"{type(self.model).__name__} is an oracle that needs the true sources; it cannot "
                             "separate a song (predict with a checkpoint of HTDemucs or HDemucs)")
        if self._spool is None:
            self._spool = Path(tempfile.mkdtemp(prefix=".separating-"))
        mixture, index = batch["mixture"], int(batch["index"])
        rate = int(batch["rate"] or self.model.sample_rate)
        stems = separate_song(self.model, mixture, batch["rate"], self.overlap)
        files = write_stems(stems, rate,
                            [self._spool / str(index) / f"{source}.wav" for source in self.model.sources])
        return {"index": index, "files": files, "seconds": mixture.shape[-1] / rate, "sample_rate": rate,
                "channels": int(mixture.shape[0])}

    def write_predictions(self, predictions: list[dict[str, Any]], datamodule: L.LightningDataModule,
                          output: Path) -> list[Path]:
        """`output/<song>/<source>.wav` per song and `output/stems.csv` (one row per song, the WAV of each
        source); songs that failed to decode are named on stderr and added to `datamodule.predict_skipped`."""
        output, sources = Path(output), list(self.model.sources)
        done = decoded_predictions(predictions, datamodule)
        rows, written = [], []
        for p in done:
            folder = output / datamodule.predict_folders[p["index"]]
            folder.mkdir(parents=True, exist_ok=True)
            targets = [folder / Path(f).name for f in p["files"]]
            for source_file, target in zip(p["files"], targets, strict=True):
                shutil.move(source_file, target)
            written += targets
            rows.append({"file": datamodule.predict_names[p["index"]], "seconds": round(p["seconds"], 3),
                         "sample_rate": p["sample_rate"], "channels": p["channels"],
                         **{s: t.relative_to(output).as_posix() for s, t in zip(sources, targets, strict=True)}})
        manifest = output / STEMS_CSV
        pd.DataFrame(rows).to_csv(manifest, index=False)
        return [manifest, *written]

    @classmethod
    def serving_input(cls, model_input: Any, folder: Path) -> Path:
        """Raw samples `(channels, samples)` (or mono `(samples,)`) at the model's sample rate, saved as the
        `.npy` array `predict_path` reads."""
        return save_served_samples(model_input, folder, "song", "separation")

    @classmethod
    def serving_output(cls, paths: list[Path]) -> np.ndarray:
        """The stems of the (first) song in `stems.csv`: float32 `(sources, channels, samples)`."""
        manifest = next(Path(p) for p in paths if Path(p).name == STEMS_CSV)
        row = pd.read_csv(manifest).iloc[0]
        sources = [c for c in row.index if c not in STEMS_COLUMNS]
        return np.stack([sf.read(str(manifest.parent / row[s]), dtype="float32", always_2d=True)[0].T for s in sources])

    def serving_example(self, datamodule: L.LightningDataModule) -> np.ndarray | None:
        """The first second of a test track's mixture (else a validation track's), float32 `(2, samples)`."""
        if getattr(self.model, "uses_references", False):
            return None  # the IRM oracle needs the true sources: it cannot serve a mixture
        layout = getattr(datamodule, "layout", None)
        track = next((t[0] for t in (layout.splits.get("test"), layout.splits.get("valid")) if t), None) if layout else None
        if track is None:
            return None
        rate, _ = track.info()
        mixture, _ = track.read(int(self.model.sample_rate), 0, rate)
        return mixture.numpy().astype(np.float32)

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
