"""`CTRDataModule`: a click log (file or the planted-interaction generator) as model batches."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from recsys.data.readers import Format, read_click_log
from recsys.data.schema import FeatureSchema, NumericTransform, Preprocessor
from recsys.data.synthetic import make_click_log, synthetic_schema_columns
from recsys.models.embedding import FieldLayout

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class ClickTensors(Dataset):
    """Preprocessed rows; indexed by a list of row ids (a whole batch at once, no per-row collate)."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors["categorical"])

    def __getitem__(self, rows: list[int]) -> dict[str, Tensor]:
        index = torch.as_tensor(rows, dtype=torch.long)
        return {name: t[index] for name, t in self.tensors.items()}


class CTRDataModule(L.LightningDataModule):
    """Click-log rows, split, with vocabularies and numeric transforms fitted on the train split.

    The rows are split at random, stratified by label (each split keeps the file's click rate), with
    `seed`. The fitted `Preprocessor` is this DataModule's state: Lightning stores it in every
    checkpoint (key `CTRDataModule`), and `preprocessor_from=<checkpoint>` reuses a training run's
    vocabulary for new rows (`predict_path`).

    Args:
        format: `synthetic` (the embedded generator, `recsys.data.synthetic`) or a file format:
            `criteo`, `avazu`, `movielens`, `libfm`, `csv` (see `recsys.data.readers`).
        path: the file (or MovieLens folder); not used with `synthetic`.
        dataset_name: MLflow experiment `recsys/ctr/<dataset_name>`; default `synthetic` or the file stem.
        label: label column (default: the format's).
        categorical, numeric: feature columns (default: the format's schema).
        multi_valued: `{column: separator}` of multi-valued columns (default: the format's).
        numeric_transform: `log` or `bucketize`.
        num_buckets: quantile buckets of `bucketize`.
        min_count: rarer categorical values (in train) map to the OOV bucket.
        max_values: tokens kept per multi-valued cell.
        split: train / validation / test fractions.
        max_bad_fraction: unparseable lines above this fraction raise an error (below: skipped, logged).
        rating_threshold: MovieLens click label is `rating >= rating_threshold`.
        synthetic_rows: rows drawn from the generator.
        synthetic_strength: weight of the planted 3-way interaction.
        preprocessor_from: a checkpoint whose fitted preprocessing is used instead of fitting on train.
        predict_path: rows to score with `attn predict` (same format; the label may be absent).
        batch_size: training batch size.
        eval_batch_size: validation / test / predict batch size (default 4 x `batch_size`).
        seed: split and shuffling seed (and the generator's).
    """

    def __init__(
        self,
        format: Format = "synthetic",
        path: str | None = None,
        dataset_name: str | None = None,
        label: str | None = None,
        categorical: list[str] | None = None,
        numeric: list[str] | None = None,
        multi_valued: dict[str, str] | None = None,
        numeric_transform: NumericTransform = "log",
        num_buckets: int = 10,
        min_count: int = 1,
        max_values: int = 8,
        split: tuple[float, float, float] = (0.8, 0.1, 0.1),
        max_bad_fraction: float = 0.01,
        rating_threshold: float = 4.0,
        synthetic_rows: int = 60_000,
        synthetic_strength: float = 2.0,
        preprocessor_from: str | None = None,
        predict_path: str | None = None,
        batch_size: int = 512,
        eval_batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if format != "synthetic" and path is None:
            raise ValueError(f"CTRDataModule: format {format!r} needs a path")
        if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1.0) > 1e-6:
            raise ValueError(f"CTRDataModule: split must be three positive fractions summing to 1; got {split}")
        self.format, self.path = format, path
        self.dataset_name = dataset_name or ("synthetic" if format == "synthetic" else Path(str(path)).stem)
        self.label, self.categorical, self.numeric, self.multi_valued = label, categorical, numeric, multi_valued
        self.numeric_transform, self.num_buckets = numeric_transform, num_buckets
        self.min_count, self.max_values = min_count, max_values
        self.split, self.max_bad_fraction, self.rating_threshold = tuple(split), max_bad_fraction, rating_threshold
        self.synthetic_rows, self.synthetic_strength = synthetic_rows, synthetic_strength
        self.preprocessor_from, self.predict_path = preprocessor_from, predict_path
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or 4 * batch_size
        self.seed = seed
        self.preprocessor: Preprocessor | None = None
        self.frames: dict[str, pd.DataFrame] = {}
        self.datasets: dict[str, ClickTensors] = {}
        self.skipped_lines = 0

    # ---- reading and preprocessing (all I/O happens in setup) ------------------------------------
    @property
    def source(self) -> str:
        return "synthetic click log" if self.format == "synthetic" else str(self.path)

    def read(self, path: str | None = None) -> tuple[pd.DataFrame, FeatureSchema]:
        """Rows of `path` (default: this DataModule's data) and the schema to apply."""
        if self.format == "synthetic" and path is None:
            frame = make_click_log(self.synthetic_rows, self.seed, self.synthetic_strength)
            defaults = synthetic_schema_columns()
            schema = FeatureSchema(**defaults)  # type: ignore[arg-type]
        else:
            fmt = self.format if self.format != "synthetic" else "csv"
            clicks = read_click_log(
                path or self.path, fmt, label=self.label, rating_threshold=self.rating_threshold,
                max_bad_fraction=self.max_bad_fraction,
            )
            self.skipped_lines = clicks.bad_lines
            frame, schema = clicks.frame, clicks.schema
        schema = FeatureSchema(
            label=self.label or schema.label,
            categorical=list(self.categorical if self.categorical is not None else schema.categorical),
            numeric=list(self.numeric if self.numeric is not None else schema.numeric),
            multi_valued=dict(self.multi_valued if self.multi_valued is not None else schema.multi_valued),
            numeric_transform=self.numeric_transform, num_buckets=self.num_buckets,
            min_count=self.min_count, max_values=self.max_values,
        )
        schema.check_frame(frame, path or self.source)
        return frame, schema

    def setup(self, stage: str | None = None) -> None:
        if not self.frames:
            frame, schema = self.read()
            self.frames = split_frame(frame, schema.label, self.split, self.seed, self.source)
            if self.preprocessor is None:
                if self.preprocessor_from is not None:
                    self.preprocessor = load_preprocessor(self.preprocessor_from)
                else:
                    self.preprocessor = Preprocessor(schema).fit(self.frames["train"], f"{self.source} (train split)")
            self._transform()
        if stage == "predict" and self.predict_path is not None and "predict" not in self.datasets:
            fmt = self.format if self.format != "synthetic" else "csv"
            clicks = read_click_log(
                self.predict_path, fmt, label=self.preprocessor.schema.label, rating_threshold=self.rating_threshold,
                max_bad_fraction=self.max_bad_fraction, require_label=False,
            )
            self.datasets["predict"] = ClickTensors(self.preprocessor.transform(clicks.frame, self.predict_path))

    def _transform(self) -> None:
        assert self.preprocessor is not None
        filled = 0
        for split in SPLITS:
            self.datasets[split] = ClickTensors(self.preprocessor.transform(self.frames[split], f"{self.source} ({split} split)"))
            filled += self.preprocessor.filled_values
        self.filled_values = filled
        log.info(
            "%s: rows train/val/test = %s, fields %d, skipped lines %d, filled numeric values %d",
            self.source, "/".join(str(len(self.datasets[s])) for s in SPLITS), self.layout.num_fields,
            self.skipped_lines, filled,
        )

    @property
    def layout(self) -> FieldLayout:
        """The model input sizes (after `setup`)."""
        if self.preprocessor is None:
            raise RuntimeError("CTRDataModule: call setup() first")
        return self.preprocessor.layout

    # ---- checkpoint state: the fitted preprocessing ----------------------------------------------
    def state_dict(self) -> dict:
        return {"preprocessor": self.preprocessor.state_dict()} if self.preprocessor is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if "preprocessor" not in state_dict:
            return
        restored = Preprocessor.from_state_dict(state_dict["preprocessor"])
        changed = self.preprocessor is None or restored.state_dict() != self.preprocessor.state_dict()
        self.preprocessor = restored
        if changed and self.frames:
            self._transform()

    # ---- loaders -----------------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"CTRDataModule: no {split} data (call setup(); for predict set predict_path)")
        dataset = self.datasets[split]
        if shuffle:
            sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(self.seed))
            batches = BatchSampler(sampler, self.batch_size, drop_last=False)
        else:
            batches = BatchSampler(SequentialSampler(dataset), self.eval_batch_size, drop_last=False)
        return DataLoader(dataset, sampler=batches, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict" if self.predict_path else "test", shuffle=False)


def split_frame(
    frame: pd.DataFrame, label: str, fractions: tuple[float, ...], seed: int, source: str
) -> dict[str, pd.DataFrame]:
    """Random split stratified by label; raises naming `source` when a split would be empty."""
    if len(frame) == 0:
        raise ValueError(f"{source}: no rows")
    labels = frame[label].to_numpy()
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for value in sorted(pd.unique(labels).tolist(), key=str):
        rows = rng.permutation(np.flatnonzero(labels == value))
        cut1 = int(round(fractions[0] * len(rows)))
        cut2 = cut1 + int(round(fractions[1] * len(rows)))
        for split, chunk in zip(SPLITS, (rows[:cut1], rows[cut1:cut2], rows[cut2:]), strict=True):
            parts[split].append(chunk)
    out = {}
    for split in SPLITS:
        rows = np.sort(np.concatenate(parts[split]))
        if len(rows) == 0:
            raise ValueError(f"{source}: the {split} split is empty ({len(frame)} rows, split {fractions})")
        out[split] = frame.iloc[rows].reset_index(drop=True)
    return out


def load_preprocessor(checkpoint: str | Path) -> Preprocessor:
    """The fitted preprocessing stored in a Lightning checkpoint by `CTRDataModule`."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    data = state.get(CTRDataModule.__qualname__)
    if not data or "preprocessor" not in data:
        raise ValueError(f"{checkpoint}: no CTRDataModule preprocessing state in this checkpoint; keys {sorted(state)}")
    return Preprocessor.from_state_dict(data["preprocessor"])
