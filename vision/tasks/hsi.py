"""`HSIDetectionTask`: hyperspectral point-object detection (SpecDETR, the dense CNN, the classical detectors).

MLflow experiment `vision/hsi_detection/<dataset>`. Training: SpecDETR minimizes
`vision.detection.SetCriterion` (one-to-many Hungarian matching; focal, L1 and GIoU losses on every
decoder layer, the encoder's proposals and the denoising queries); the dense CNN a per-pixel focal
loss; the classical detectors (CEM, ACE, SMF, RX) have no parameters and are only evaluated, with
the data's target library as their signatures.

Evaluation, the same for every model: each model's `detect` gives boxes, scores and classes per
scene, scored by COCO mAP over IoU 0.5:0.95, AP at IoU 0.25 and 0.5 (pycocotools over all scenes
of the split): `map`, `map25`, `map50`; its `pixel_scores` map (the highest class score at each
pixel) is scored by per-pixel ROC-AUC against the implanted target pixels, averaged over scenes
(`pixel_roc_auc`). When the data holds real scenes (`HSISimulationDataModule(test_path=...)`),
each one's real map is scored too (`real_pixel_roc_auc` and `real_pixel_roc_auc_<scene>`): learned
models see the whole scene in tiles of the training size (the highest score where tiles overlap);
classical detectors see it whole, with the mean spectrum of the scene's labelled pixels as their
one signature (an oracle signature; RX needs none). Score maps and detections over a false-colour
image are logged as artifacts (`images/test_detections.png`, `images/real_<scene>.png`).

Prediction (`attn predict --ckpt_path CKPT --predict_path PATH --output DIR`) on a user's cubes
(`HSISimulationDataModule.predict_path`) sees each whole cube as the test sees a real scene:
learned models in tiles of the training size (`_starts`: every `tile` pixels, the last one flush
with the edge), classical detectors whole, with the training target library as signatures (the
model's `signatures` buffer, saved in the checkpoint). A detection is kept from the tile that owns
its box centre (overlapping tiles split their overlap in the middle), so no target is reported
twice; the score map takes the highest score where tiles overlap. Written to DIR
(`write_predictions`): `detections.csv`, one row per detection (`PREDICTION_COLUMNS`), and per cube
`<stem>_detections.png` (band mean and score map with the best detections) and `<stem>_scores.npy`
(the score map, `(H, W)` float32). The served model (`core.serving`) takes one cube as a numpy
array `(height, width, bands)` in the file's units and answers the rows of `detections.csv`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor, nn

from core.task import BaseTask
from core.tracking import log_figure
from vision.detection import Detections, SetCriterion, coco_metrics, dense_focal_loss, pixel_roc_auc
from vision.models.specdetr import SpecDETR
from vision.models.target_detectors import TargetDetector

Batch = tuple[Tensor, list[dict[str, Tensor]]]
# detections.csv: the cube's file name; the box centre as 0-based column / row (a one-pixel detection at row r,
# column c has x = c, y = r); the score; the class index and name; the box edges x0 y0 x1 y1 in pixels
PREDICTION_COLUMNS = ("cube", "x", "y", "score", "label", "class", "x0", "y0", "x1", "y1")
FIGURE_DETECTIONS = 20  # the best detections drawn in each prediction figure


class HSIDetectionTask(BaseTask):
    """Train and evaluate a hyperspectral point-object detector.

    Args:
        model: `vision.models.specdetr.SpecDETR`, `vision.models.hsi_cnn.DensePixelCNN`, or a
            classical detector of `vision.models.target_detectors`; its `in_channels` and
            `num_classes` must equal the data's `bands` and classes.
        weight_class, weight_bbox, weight_giou: SpecDETR's loss weights (paper: 1, 5, 2).
        cost_class, cost_bbox, cost_giou: its matching cost weights (paper: 2, 5, 2).
        match_num: rounds of the one-to-many assignment (paper: 10; 1 = one-to-one).
        iou_loss_threshold: extra matches need 1 - IoU below this (paper: 0.05).
        figure_scenes: test scenes drawn in the detection figure.
        **kwargs: `BaseTask`'s optimizer (paper: AdamW, lr 1e-4, weight decay 1e-4; gradient norm
            clipped at 0.1 by the trainer), lr_scheduler, scheduler_interval and role.
    """

    domain = "vision"
    task_name = "hsi_detection"

    def __init__(
        self, model: nn.Module, weight_class: float = 1.0, weight_bbox: float = 5.0, weight_giou: float = 2.0,
        cost_class: float = 2.0, cost_bbox: float = 5.0, cost_giou: float = 2.0, match_num: int = 10,
        iou_loss_threshold: float = 0.05, figure_scenes: int = 3, **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.criterion = SetCriterion(
            num_classes=int(getattr(model, "num_classes", 1)), weight_class=weight_class, weight_bbox=weight_bbox,
            weight_giou=weight_giou, cost_class=cost_class, cost_bbox=cost_bbox, cost_giou=cost_giou,
            match_num=match_num, iou_loss_threshold=iou_loss_threshold,
        )
        self.figure_scenes = figure_scenes
        self._eval: dict[str, list] = {}

    def on_data_ready(self) -> None:
        data = getattr(self.trainer, "datamodule", None)
        if data is None:
            return
        for name, have in (("in_channels", getattr(data, "bands", None)), ("num_classes", getattr(data, "num_classes", None))):
            want = getattr(self.model, name, None)
            if want is not None and have is not None and want != have:
                raise ValueError(
                    f"{type(self.model).__name__} was built with {name}={want} but {type(data).__name__} gives {have} "
                    f"({'bands' if name == 'in_channels' else 'classes of its target library'}); set "
                    f"model.init_args.model.init_args.{name}={have}"
                )
        library = getattr(data, "library", None)
        if isinstance(self.model, TargetDetector) and library is not None:
            self.model.set_signatures(torch.from_numpy(library.spectra))
        if library is not None:
            params = {f"data.class_{i}": f"{name}: {source}" for i, (name, source) in
                      enumerate(zip(library.names, library.sources, strict=True))}
            params.update({f"data.{k}_tiles": " ".join(v) for k, v in getattr(data, "split_tiles", {}).items()})
            self.log_run_params(params)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        cube, targets = batch
        if isinstance(self.model, SpecDETR):
            losses = self.criterion(self.model(cube, targets), targets, tuple(cube.shape[-2:]))
            loss = sum(losses.values())
            self.log_metrics("train", {"loss": loss, "loss_class": losses["loss_class"], "loss_giou": losses["loss_giou"]},
                             batch_size=cube.shape[0])
            return loss
        scores = self.model(cube)
        if not scores.requires_grad:  # classical detectors: nothing to optimize
            return None
        loss = dense_focal_loss(scores, torch.stack([t["mask"] for t in targets]))
        self.log_metrics("train", {"loss": loss}, batch_size=cube.shape[0])
        return loss

    def infer(self, cube: Tensor) -> tuple[list[Detections], Tensor]:
        """Detections and the per-pixel score map `(b, H, W)` of `cube (b, bands, H, W)`."""
        out = self.model(cube)
        return self.model.detect(out, cube), self.model.pixel_scores(out)

    def on_validation_epoch_start(self) -> None:
        self._eval = {}

    def on_test_epoch_start(self) -> None:
        self._eval = {}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch)

    def on_predict_start(self) -> None:
        library = getattr(getattr(self._trainer, "datamodule", None), "library", None)
        if isinstance(self.model, TargetDetector) and not self.model.signatures.any():
            if library is None:
                raise ValueError(f"{type(self.model).__name__} has no target signatures: predict with --ckpt_path of an "
                                 "`attn fit` run (its checkpoint carries them)")
            self.model.set_signatures(torch.from_numpy(library.spectra))  # built without a checkpoint

    def predict_step(self, batch: Batch, batch_idx: int) -> list[dict[str, Any]]:
        """Per cube of the batch: its `file`, `detections` (pixel boxes of the whole cube, best first, scoring at
        least the data's `predict_score_threshold`), the score map `scores (H, W)` and the band mean `band_mean (H, W)`."""
        cube, infos = batch
        data = getattr(self._trainer, "datamodule", None)
        tile, threshold = int(getattr(data, "tile", 32)), getattr(data, "predict_score_threshold", None)
        out = []
        for x, info in zip(cube, infos, strict=True):
            detections, scores = self.detect_scene(x, tile)
            if threshold is not None:
                keep = detections.scores >= threshold
                detections = Detections(detections.boxes[keep], detections.scores[keep], detections.labels[keep])
            out.append({"file": info["file"], "detections": detections, "scores": scores,
                        "band_mean": x.float().mean(0).cpu().numpy()})
        return out

    @torch.no_grad()
    def detect_scene(self, cube: Tensor, tile: int) -> tuple[Detections, np.ndarray]:
        """Detections (best first) and the score map `(H, W)` of a whole prepared cube `(bands, H, W)` (module docstring)."""
        x = cube[None].to(self.device)
        if isinstance(self.model, TargetDetector):  # background statistics of the whole scene
            out = self.model(x)
            found, scores = self.model.detect(out, x)[0], self.model.pixel_scores(out)[0].float().cpu().numpy()
        else:
            h, w = x.shape[-2:]
            rows, cols = _owned(_starts(h, tile), tile), _owned(_starts(w, tile), tile)
            scores = np.full((h, w), -np.inf, np.float32)
            parts = []
            for r, c, out in self._tile_outputs(x, tile):
                part = self.model.pixel_scores(out)[0].float().cpu().numpy()
                scores[r:r + tile, c:c + tile] = np.maximum(scores[r:r + tile, c:c + tile], part)
                det = self.model.detect(out, x[:, :, r:r + tile, c:c + tile])[0]
                boxes = det.boxes + det.boxes.new_tensor([c, r, c, r])
                cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
                (top, bottom), (left, right) = rows[r], cols[c]
                keep = (cy >= top) & (cy < bottom) & (cx >= left) & (cx < right)
                parts.append(Detections(boxes[keep], det.scores[keep], det.labels[keep]))
            found = Detections(*(torch.cat([getattr(p, k) for p in parts]) for k in ("boxes", "scores", "labels")))
        order = torch.sort(found.scores, descending=True, stable=True).indices
        return Detections(found.boxes[order], found.scores[order], found.labels[order]), scores

    def _tile_outputs(self, x: Tensor, tile: int) -> Iterator[tuple[int, int, Any]]:
        """The model's output on each tile of `x (1, bands, H, W)`, with the tile's top-left row and column."""
        h, w = x.shape[-2:]
        for r in _starts(h, tile):
            for c in _starts(w, tile):
                yield r, c, self.model(x[:, :, r:r + tile, c:c + tile])

    def write_predictions(self, predictions: list[list[dict[str, Any]]], datamodule: L.LightningDataModule,
                          output: Path) -> list[Path]:
        """`detections.csv` (one row per detection, `PREDICTION_COLUMNS`), and per cube `<stem>_detections.png` and
        `<stem>_scores.npy` (module docstring)."""
        library = getattr(datamodule, "library", None)
        names = list(library.names) if library is not None else []
        rows, written, stems = [], [], set()
        for item in (item for batch in predictions for item in batch):
            det = item["detections"]
            for (x0, y0, x1, y1), score, label in zip(det.boxes.tolist(), det.scores.tolist(), det.labels.tolist(), strict=True):
                rows.append((item["file"], (x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5, score, label,
                             names[label] if label < len(names) else f"class_{label}", x0, y0, x1, y1))
            path = Path(item["file"])
            stem = path.stem if path.stem not in stems else f"{path.stem}_{path.suffix.lstrip('.')}"
            stems.add(stem)
            np.save(output / f"{stem}_scores.npy", item["scores"])
            prediction_figure(item["band_mean"], item["scores"], det, item["file"]).savefig(output / f"{stem}_detections.png", dpi=120)
            written += [output / f"{stem}_detections.png", output / f"{stem}_scores.npy"]
        table = output / "detections.csv"
        pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS)).to_csv(table, index=False)
        return [table, *written]

    @classmethod
    def serving_input(cls, model_input: Any, folder: Path) -> Path:
        """One cube, a numeric array `(height, width, bands)` in the file's units, as `cube.npy` in `folder`."""
        cube = np.asarray(model_input)
        if cube.ndim != 3 or not np.issubdtype(cube.dtype, np.number):
            raise ValueError(f"{cls.__name__} serves one hyperspectral cube: a numeric array (height, width, bands); "
                             f"got {cube.dtype} of shape {cube.shape}")
        path = folder / "cube.npy"
        np.save(path, cube)
        return path

    @classmethod
    def serving_output(cls, paths: list[Path]) -> pd.DataFrame:
        """The rows of `detections.csv`."""
        return pd.read_csv(next(p for p in paths if p.name == "detections.csv"))

    def serving_example(self, datamodule: L.LightningDataModule) -> np.ndarray | None:
        """A test tile of a training scene in its file's units (`HSISimulationDataModule.raw_example`)."""
        example = getattr(datamodule, "raw_example", None)
        return None if example is None else np.array(example, np.float32)

    def serving_signature(self, example: np.ndarray, output: pd.DataFrame) -> Any:
        """The served model's MLflow signature: a float32 cube `(height, width, bands)` of any size in, the
        `detections.csv` columns out (the signature inferred from one example would fix its width and band count)."""
        from mlflow.models import ModelSignature, infer_signature
        from mlflow.types.schema import Schema, TensorSpec

        return ModelSignature(Schema([TensorSpec(np.dtype(np.float32), (-1, -1, -1))]), infer_signature(example, output).outputs)

    def _evaluate(self, batch: Batch) -> None:
        cube, targets = batch
        detections, pixels = self.infer(cube)
        store = self._eval
        store.setdefault("detections", []).extend(detections)
        store.setdefault("targets", []).extend({k: v.cpu() for k, v in t.items()} for t in targets)
        for scores, target in zip(pixels.float().cpu().numpy(), targets, strict=True):
            auc = pixel_roc_auc(scores, target["mask"].cpu().numpy() > 0)
            if auc is not None:
                store.setdefault("auc", []).append(auc)
        if len(store.setdefault("figure", [])) < self.figure_scenes:
            for i in range(min(len(cube), self.figure_scenes - len(store["figure"]))):
                store["figure"].append((cube[i].cpu(), pixels[i].float().cpu(), detections[i], targets[i]))

    def on_validation_epoch_end(self) -> None:
        self._log_split("val")

    def on_test_epoch_end(self) -> None:
        self._log_split("test")
        if self._eval.get("figure"):
            log_figure(self.trainer, detection_figure(self._eval["figure"]), "images/test_detections.png")
        data = getattr(self.trainer, "datamodule", None)
        real = {}
        for scene in getattr(data, "real_scenes", []):
            scores = self.real_scene_scores(scene.cube, scene.map, getattr(data, "tile", 32))
            auc = pixel_roc_auc(scores, scene.map)
            if auc is not None:
                real[scene.name] = auc
            log_figure(self.trainer, real_scene_figure(scene.cube, scores, scene.map, scene.name), f"images/real_{scene.name}.png")
        if real:
            metrics = {"real_pixel_roc_auc": float(np.mean(list(real.values())))}
            metrics.update({f"real_pixel_roc_auc_{name}": value for name, value in real.items()})
            self.log_metrics("test", metrics)

    def _log_split(self, stage: str) -> None:
        store = self._eval
        if not store.get("targets"):
            return
        metrics = coco_metrics(store["detections"], store["targets"], num_classes=self.criterion.num_classes)
        metrics["pixel_roc_auc"] = float(np.mean(store["auc"])) if store.get("auc") else float("nan")
        self.log_metrics(stage, metrics)

    @torch.no_grad()
    def real_scene_scores(self, cube: np.ndarray, target_map: np.ndarray, tile: int) -> np.ndarray:
        """The per-pixel score map `(H, W)` of a whole prepared real scene `cube (H, W, bands)` (module docstring)."""
        x = torch.from_numpy(np.ascontiguousarray(cube.transpose(2, 0, 1)))[None].to(self.device)
        if isinstance(self.model, TargetDetector):
            signature = x[0, :, torch.from_numpy(target_map).to(self.device)].mean(1)[None]
            scores = self.model.score(x, signature)  # RX ignores the signature
            return scores[0].amax(0).float().cpu().numpy()
        h, w = cube.shape[:2]
        out = np.full((h, w), -np.inf, np.float32)
        for r, c, output in self._tile_outputs(x, tile):
            part = self.model.pixel_scores(output)[0].float().cpu().numpy()
            out[r:r + tile, c:c + tile] = np.maximum(out[r:r + tile, c:c + tile], part)
        return out


def _starts(size: int, tile: int) -> list[int]:
    """Tile starts covering `size`: every `tile` pixels, the last one flush with the end (overlapping)."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile + 1, tile))
    return starts if starts[-1] == size - tile else [*starts, size - tile]


def _owned(starts: list[int], tile: int) -> dict[int, tuple[float, float]]:
    """The span of centres each tile start owns: overlapping neighbours split their overlap in the middle."""
    bounds = [-np.inf, *((prev + tile + start) / 2 for prev, start in zip(starts, starts[1:], strict=False)), np.inf]
    return {start: (bounds[i], bounds[i + 1]) for i, start in enumerate(starts)}


def false_colour(cube: Tensor | np.ndarray) -> np.ndarray:
    """An RGB picture `(H, W, 3)` of `cube (bands, H, W)`.

    The bands at 50%, 25% and 5% of the band axis, each stretched to its 2-98 percentiles.
    """
    array = cube.numpy() if isinstance(cube, Tensor) else np.asarray(cube)
    bands = array.shape[0]
    channels = [array[min(bands - 1, int(f * bands))] for f in (0.5, 0.25, 0.05)]
    out = []
    for ch in channels:
        lo, hi = np.percentile(ch, [2, 98])
        out.append(np.clip((ch - lo) / max(hi - lo, 1e-12), 0, 1))
    return np.stack(out, -1)


def detection_figure(scenes: list[tuple[Tensor, Tensor, Detections, dict[str, Tensor]]], min_score: float = 0.3) -> Figure:
    """Per scene: false colour with ground truth (green) and detections scoring above `min_score` (red), and the score map."""
    fig = Figure(figsize=(6.4, 3.2 * len(scenes)))
    axes = fig.subplots(len(scenes), 2, squeeze=False)
    for row, (cube, scores, det, target) in enumerate(scenes):
        left, right = axes[row]
        left.imshow(false_colour(cube))
        for x0, y0, x1, y1 in target["boxes"].tolist():
            left.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="lime", linewidth=1))
        keep = det.scores >= min_score
        for (x0, y0, x1, y1), s in zip(det.boxes[keep].tolist(), det.scores[keep].tolist(), strict=True):
            left.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="red", linewidth=1))
            left.text(x0, y0 - 1, f"{s:.2f}", color="red", fontsize=5)
        right.imshow(scores.numpy(), cmap="magma")
        left.set_title("false colour: truth (green), detections (red)", fontsize="small")
        right.set_title("per-pixel score", fontsize="small")
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def real_scene_figure(cube: np.ndarray, scores: np.ndarray, target_map: np.ndarray, name: str) -> Figure:
    """A real scene: false colour with its labelled map outlined, and the detector's per-pixel score map."""
    fig = Figure(figsize=(6.4, 3.4))
    left, right = fig.subplots(1, 2)
    left.imshow(false_colour(cube.transpose(2, 0, 1)))
    left.contour(target_map.astype(float), levels=[0.5], colors="lime", linewidths=0.8)
    right.imshow(scores, cmap="magma")
    left.set_title(f"{name}: labelled map (green)", fontsize="small")
    right.set_title("per-pixel score", fontsize="small")
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def prediction_figure(band_mean: np.ndarray, scores: np.ndarray, det: Detections, name: str) -> Figure:
    """A predicted cube: its band mean and its score map, each with the `FIGURE_DETECTIONS` best detections (red)."""
    fig = Figure(figsize=(8.0, 4.0))
    left, right = fig.subplots(1, 2)
    lo, hi = np.percentile(band_mean, [2, 98])
    left.imshow(np.clip((band_mean - lo) / max(hi - lo, 1e-12), 0, 1), cmap="gray")
    right.imshow(np.where(np.isfinite(scores), scores, np.nan), cmap="magma")
    shown = min(len(det.scores), FIGURE_DETECTIONS)
    for ax in (left, right):
        for (x0, y0, x1, y1), s in zip(det.boxes[:shown].tolist(), det.scores[:shown].tolist(), strict=True):
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="red", linewidth=1))
            ax.text(x0 - 0.5, y0 - 1, f"{s:.2g}", color="red", fontsize=5)
        ax.set_xticks([])
        ax.set_yticks([])
    left.set_title(f"{name}: band mean, best {shown} of {len(det.scores)} detections", fontsize="small")
    right.set_title("per-pixel score", fontsize="small")
    fig.tight_layout()
    return fig
