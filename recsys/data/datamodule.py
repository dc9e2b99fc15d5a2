"""`CTRDataModule`: a click log (a file, a folder of split files, or the planted-interaction generator) as model batches.

Public CTR benchmarks ship predefined splits: FuxiCTR's `train.csv` / `valid.csv` / `test.csv`, NFM's
`frappe.train.libfm` / `frappe.validation.libfm` / `frappe.test.libfm`. A folder `path` is read as
such a split (`find_split_files`), used as given; a single file is split at random with `seed`.
`split_protocol` says which, in the log, the benchmark table and its MLflow rows.

Rows to score (`predict_path`, `attn predict`) are read in the training format without a label (or
with one, ignored), mapped with the checkpoint's vocabularies and numeric statistics
(`preprocessor_from`, which `attn predict` sets to its `--ckpt_path`, so the training data is not
needed): values outside the training vocabulary go to the OOV bucket (counted on stderr), rows that
do not parse (a line pandas cannot split, a numeric cell that is no number) are skipped, counted in
`predict_skipped` and named on stderr, and a column the model was trained on that the file lacks is
an error naming it.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from recsys.data.readers import ClickLog, Format, LibfmLayout, libfm_layout_of, read_click_log
from recsys.data.schema import FeatureSchema, NumericTransform, Preprocessor
from recsys.data.synthetic import make_click_log, synthetic_schema_columns
from recsys.models.embedding import FieldLayout

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# a split file's name has one of these words (words: runs of letters, `frappe.validation.libfm` -> frappe, validation)
SPLIT_WORDS = {"train": ("train",), "val": ("valid", "validation", "val"), "test": ("test",)}
# suffixes of the files each format reads in a folder of splits ("" = no suffix, as Avazu's `train`)
SPLIT_SUFFIXES = {
    "criteo": ("", ".txt", ".tsv", ".csv"), "avazu": ("", ".csv", ".txt"), "movielens": ("", ".csv", ".txt"),
    "libfm": ("", ".libfm", ".libffm", ".ffm", ".svm", ".libsvm", ".txt"), "csv": ("", ".csv", ".txt"),
}


class ClickTensors(Dataset):
    """Preprocessed rows; indexed by a list of row ids (a whole batch at once, no per-row collate)."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors["categorical"])

    def __getitem__(self, rows: list[int]) -> dict[str, Tensor]:
        index = torch.as_tensor(rows, dtype=torch.long)
        return {name: t[index] for name, t in self.tensors.items()}

    # a DataLoader with a `batch_sampler` hands the whole batch's ids here (the predict loader)
    __getitems__ = __getitem__


def _as_is(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The collate function of a batch `ClickTensors` already built."""
    return batch


class CTRDataModule(L.LightningDataModule):
    """Click-log rows, split, with vocabularies and numeric transforms fitted on the train split.

    A file's rows are split at random, stratified by label (each split keeps the file's click rate),
    with `seed`. A folder of split files (see `find_split_files`) is used as given; without a
    validation file, the validation split is carved from the train file (stratified, `seed`, the
    fraction `split[1] / (split[0] + split[1])`). `split_protocol` (after `setup`) says which.
    The fitted `Preprocessor` is this DataModule's state: Lightning stores it in every checkpoint
    (key `CTRDataModule`), and `preprocessor_from=<checkpoint>` reuses a training run's vocabulary
    for new rows (`predict_path`, see the module docstring): with both, `setup("predict")` reads no
    training data. After reading them, `predict_rows` holds each scored row's position among the
    file's data rows, `predict_ids` its `id` column (when the file has one), `predict_skipped` the
    count of rows skipped.

    Args:
        format: `synthetic` (the embedded generator, `recsys.data.synthetic`) or a file format:
            `criteo`, `avazu`, `movielens`, `libfm`, `csv` (see `recsys.data.readers`).
        path: the file, a folder of split files (`train` / `valid`, `validation` or `val` / `test` in
            the names, e.g. FuxiCTR's `train.csv`, NFM's `frappe.train.libfm`), or a MovieLens-1M
            folder; refused with `synthetic` (which reads no file: give the file's format).
        dataset_name: MLflow experiment `recsys/ctr/<dataset_name>`; default `synthetic` or the file stem.
        label: label column (default: the format's).
        categorical, numeric: feature columns (default: the format's schema).
        multi_valued: `{column: separator}` of multi-valued columns (default: the format's).
        numeric_transform: `log` or `bucketize`.
        num_buckets: quantile buckets of `bucketize`.
        min_count: rarer categorical values (in train) map to the OOV bucket.
        max_values: tokens kept per multi-valued cell (default: the format's; 8, or the longest line of a
            libFM file read as a bag of indices).
        libfm_layout: how `libfm` tokens become fields: `auto`, `positional`, `bag` or `fields` (see
            `recsys.data.readers`); the train file decides `auto` for every split and for predict rows.
        split: train / validation / test fractions of a single file (a folder's splits are its files).
        max_bad_fraction: unparseable lines above this fraction raise an error (below: skipped, logged).
        rating_threshold: MovieLens click label is `rating >= rating_threshold`.
        synthetic_rows: rows drawn from the generator.
        synthetic_strength: weight of the planted 3-way interaction.
        preprocessor_from: a checkpoint whose fitted preprocessing is used instead of fitting on train.
        predict_path: rows to score with `attn predict`: a file in the training format, the label
            column absent or ignored (module docstring); scored in `predict_dataloader`.
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
        max_values: int | None = None,
        libfm_layout: LibfmLayout = "auto",
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
        if format == "synthetic" and path is not None:  # the generator would run and be logged as `synthetic`
            raise ValueError(
                f"CTRDataModule: path={path!r} is given but format is 'synthetic' (the embedded generator reads no "
                "file); add --data.init_args.format=csv (or criteo, avazu, movielens, libfm) to read it"
            )
        if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1.0) > 1e-6:
            raise ValueError(f"CTRDataModule: split must be three positive fractions summing to 1; got {split}")
        self.format, self.path = format, path
        self.dataset_name = dataset_name or ("synthetic" if format == "synthetic" else Path(str(path)).stem)
        self.label, self.categorical, self.numeric, self.multi_valued = label, categorical, numeric, multi_valued
        self.numeric_transform, self.num_buckets = numeric_transform, num_buckets
        self.min_count, self.max_values, self.libfm_layout = min_count, max_values, libfm_layout
        self.split, self.max_bad_fraction, self.rating_threshold = tuple(split), max_bad_fraction, rating_threshold
        self.synthetic_rows, self.synthetic_strength = synthetic_rows, synthetic_strength
        self.preprocessor_from, self.predict_path = preprocessor_from, predict_path
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or 4 * batch_size
        self.seed = seed
        self.preprocessor: Preprocessor | None = None
        self.frames: dict[str, pd.DataFrame] = {}
        self.datasets: dict[str, ClickTensors] = {}
        self.skipped_lines = 0
        self.split_protocol = ""
        self.libfm_read: str | None = None  # the libFM layout the train file was read with
        self.predict_rows: list[int] = []
        self.predict_ids: list[str] | None = None
        self.predict_skipped = 0

    # ---- reading and preprocessing (all I/O happens in setup) ------------------------------------
    @property
    def source(self) -> str:
        return "synthetic click log" if self.format == "synthetic" else str(self.path)

    def read(self, path: str | None = None, libfm_layout: LibfmLayout | None = None) -> tuple[pd.DataFrame, FeatureSchema]:
        """Rows of the file `path` (default: this DataModule's data) and the schema to apply."""
        if self.format == "synthetic" and path is None:
            frame = make_click_log(self.synthetic_rows, self.seed, self.synthetic_strength)
            defaults = synthetic_schema_columns()
            schema = FeatureSchema(**defaults)  # type: ignore[arg-type]
        else:
            clicks = self._read_file(path or self.path, libfm_layout or self.libfm_layout)
            self.skipped_lines, self.libfm_read = clicks.bad_lines, clicks.layout
            frame, schema = clicks.frame, clicks.schema
        schema = FeatureSchema(
            label=self.label or schema.label,
            categorical=list(self.categorical if self.categorical is not None else schema.categorical),
            numeric=list(self.numeric if self.numeric is not None else schema.numeric),
            multi_valued=dict(self.multi_valued if self.multi_valued is not None else schema.multi_valued),
            numeric_transform=self.numeric_transform, num_buckets=self.num_buckets,
            min_count=self.min_count, max_values=self.max_values if self.max_values is not None else schema.max_values,
        )
        schema.check_frame(frame, path or self.source)
        return frame, schema

    def _read_file(self, path: str | Path, libfm_layout: LibfmLayout, require_label: bool = True) -> ClickLog:
        return read_click_log(
            path, self.format if self.format != "synthetic" else "csv", label=self.label,
            rating_threshold=self.rating_threshold, max_bad_fraction=self.max_bad_fraction,
            require_label=require_label, libfm_layout=libfm_layout,
        )

    def split_files(self) -> dict[str, Path] | None:
        """The split files when `path` is a folder of them (None for a file or a MovieLens-1M folder)."""
        if self.format == "synthetic" or self.path is None or not Path(self.path).is_dir():
            return None
        if self.format == "movielens" and (Path(self.path) / "ratings.dat").exists():
            return None
        return find_split_files(self.path, self.format)

    def read_splits(self) -> tuple[dict[str, pd.DataFrame], FeatureSchema]:
        """The train / val / test rows (a folder's files as given, or a seeded split of one file) and the schema."""
        files = self.split_files()
        if files is None:
            frame, schema = self.read()
            name = "the synthetic click log" if self.format == "synthetic" else Path(str(self.path)).name
            self.split_protocol = f"seeded: stratified {'/'.join(f'{f:g}' for f in self.split)} split of {name}, seed {self.seed}"
            return split_frame(frame, schema.label, self.split, self.seed, self.source), schema
        frames: dict[str, pd.DataFrame] = {}
        frames["train"], schema = self.read(str(files["train"]))
        skipped, layout = self.skipped_lines, self.libfm_read
        for split in ("val", "test"):
            if split in files:  # read as the train file was (the same libFM layout), checked against its schema
                frames[split], _ = self.read(str(files[split]), libfm_layout=layout)  # type: ignore[arg-type]
                schema.check_frame(frames[split], str(files[split]))
                skipped += self.skipped_lines
        self.skipped_lines, self.libfm_read = skipped, layout
        given = " ".join(f"{s}={p.name}" for s, p in files.items())
        self.split_protocol = f"predefined: {given}"
        if "val" not in files:
            fraction = self.split[1] / (self.split[0] + self.split[1])
            carved = split_frame(frames["train"], schema.label, (1 - fraction, fraction), self.seed, str(files["train"]), ("train", "val"))
            frames.update(carved)
            self.split_protocol += (f"; no validation file: val = {fraction:.1%} of {files['train'].name}, "
                                    f"stratified, seed {self.seed}")
        return {s: frames[s] for s in SPLITS}, schema

    def setup(self, stage: str | None = None) -> None:
        scoring = stage == "predict" and self.predict_path is not None
        if scoring and self.preprocessor is None and self.preprocessor_from is not None:
            self.preprocessor = load_preprocessor(self.preprocessor_from)  # no training data needed
        if not self.frames and not (scoring and self.preprocessor is not None):
            self.frames, schema = self.read_splits()
            if self.preprocessor is None:
                if self.preprocessor_from is not None:
                    self.preprocessor = load_preprocessor(self.preprocessor_from)
                else:
                    self.preprocessor = Preprocessor(schema).fit(self.frames["train"], f"{self.source} (train split)")
            self._transform()
        if scoring and "predict" not in self.datasets:
            self.datasets["predict"] = self.read_predict_rows()

    def read_predict_rows(self) -> ClickTensors:
        """The rows of `predict_path`, mapped with the fitted preprocessing (module docstring)."""
        if self.preprocessor is None:
            raise RuntimeError("CTRDataModule: no fitted preprocessing to score rows with (give preprocessor_from=CKPT)")
        path, schema = str(self.predict_path), self.preprocessor.schema
        fmt = self.format if self.format != "synthetic" else "csv"
        layout = self.libfm_layout if self.libfm_layout != "auto" else libfm_layout_of(schema)
        clicks = read_click_log(
            path, fmt, label=schema.label, rating_threshold=self.rating_threshold, max_bad_fraction=1.0,
            require_label=False, libfm_layout=layout,
        )
        frame, rows = clicks.frame, clicks.rows if clicks.rows is not None else np.arange(len(clicks.frame))
        total = max(clicks.total_lines, int(rows.max()) + 1 if len(rows) else 0)
        if len(frame) == 0:
            raise ValueError(f"{path}: no row to score could be read ({total} line(s)); give rows in the {fmt} "
                             "format the model was trained on (recsys/README.md, Predict on your own data)")
        missing = [c for c in schema.columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{path}: column(s) {missing} the model was trained on are missing; found {list(frame.columns)}; "
                "add them (empty cells are fine: they map to the OOV bucket or the training median)"
            )
        # numeric cells that are no number (the reader checks only its format's own numeric columns)
        garbled = np.zeros(len(frame), dtype=bool)
        for name in schema.numeric:
            cells = frame[name]
            garbled |= (cells.notna() & pd.to_numeric(cells, errors="coerce").isna()).to_numpy()
        frame, rows = frame[~garbled].reset_index(drop=True), rows[~garbled]
        if len(frame) == 0:
            raise ValueError(f"{path}: no row to score: every row has a numeric column ({schema.numeric}) that is no number")
        skipped = np.setdiff1d(np.arange(total), rows)
        self.predict_skipped = len(skipped)
        if len(skipped):
            named = ", ".join(str(r) for r in skipped[:10].tolist()) + (", ..." if len(skipped) > 10 else "")
            print(f"{path}: {len(skipped)} row(s) skipped as unparseable (rows {named}; counted from 0, header excluded); "
                  f"{len(frame)} scored", file=sys.stderr)
        unseen = self.preprocessor.out_of_vocabulary(frame)
        if unseen:
            listed = ", ".join(f"{column}: {n}" for column, n in unseen.items())
            print(f"{path}: {sum(unseen.values())} value(s) not in the training vocabulary mapped to the OOV bucket "
                  f"({listed})", file=sys.stderr)
        self.predict_rows = rows.tolist()
        self.predict_ids = frame["id"].astype(str).tolist() if "id" in frame.columns else None
        return ClickTensors(self.preprocessor.transform(frame.drop(columns=[schema.label], errors="ignore"), path))

    def _transform(self) -> None:
        assert self.preprocessor is not None
        filled = 0
        for split in SPLITS:
            self.datasets[split] = ClickTensors(self.preprocessor.transform(self.frames[split], f"{self.source} ({split} split)"))
            filled += self.preprocessor.filled_values
        self.filled_values = filled
        log.info(
            "%s: rows train/val/test = %s (%s), fields %d, skipped lines %d, filled numeric values %d",
            self.source, "/".join(str(len(self.datasets[s])) for s in SPLITS), self.split_protocol,
            self.layout.num_fields, self.skipped_lines, filled,
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
        if changed:
            self.datasets.pop("predict", None)  # read again, with the checkpoint's vocabularies
            if self.frames:
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
        """The rows of `predict_path` (read here if the checkpoint's state replaced the preprocessing), else the test split.

        Batches come from a `batch_sampler`, so that Lightning's prediction writer knows each batch's rows.
        """
        split = "predict" if self.predict_path else "test"
        if split == "predict" and split not in self.datasets:
            self.datasets[split] = self.read_predict_rows()
        if split not in self.datasets:
            raise RuntimeError(f"CTRDataModule: no {split} data (call setup())")
        dataset = self.datasets[split]
        batches = BatchSampler(SequentialSampler(dataset), self.eval_batch_size, drop_last=False)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=_as_is)


def split_frame(
    frame: pd.DataFrame, label: str, fractions: tuple[float, ...], seed: int, source: str,
    names: tuple[str, ...] = SPLITS,
) -> dict[str, pd.DataFrame]:
    """Random split into `names` (one fraction each; the last takes the rest) stratified by label.

    Raises naming `source` when a split would be empty.
    """
    if len(frame) == 0:
        raise ValueError(f"{source}: no rows")
    if len(fractions) != len(names):
        raise ValueError(f"split_frame: {len(fractions)} fractions for the splits {names}")
    labels = frame[label].to_numpy()
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in names}
    for value in sorted(pd.unique(labels).tolist(), key=str):
        rows = rng.permutation(np.flatnonzero(labels == value))
        cuts = np.cumsum([int(round(f * len(rows))) for f in fractions[:-1]]).tolist()
        for split, chunk in zip(names, np.split(rows, cuts), strict=True):
            parts[split].append(chunk)
    out = {}
    for split in names:
        rows = np.sort(np.concatenate(parts[split]))
        if len(rows) == 0:
            raise ValueError(f"{source}: the {split} split is empty ({len(frame)} rows, split {fractions})")
        out[split] = frame.iloc[rows].reset_index(drop=True)
    return out


def find_split_files(folder: str | Path, format: str) -> dict[str, Path]:
    """`{"train": ..., "val": ..., "test": ...}` of a folder of split files (`val` may be absent).

    A split file's name (without its suffix) has the word `train`, `valid` / `validation` / `val`, or
    `test` (`train.csv`, `frappe.validation.libfm`, `criteo_test.txt`) and a suffix `format` reads
    (`SPLIT_SUFFIXES`); other files (`feature_map.json`, `train.h5`, a README) are ignored. Raises
    naming the folder and listing its files when there is no train or no test file, or when a split
    has several files.
    """
    folder = Path(folder)
    entries = sorted(folder.iterdir())
    suffixes = SPLIT_SUFFIXES.get(format, ("", ".csv", ".txt"))
    found: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for entry in entries:
        if not entry.is_file() or entry.name.startswith(".") or entry.suffix.lower() not in suffixes:
            continue
        words = set(re.split(r"[^a-z]+", entry.stem.lower()))
        splits = [s for s, names in SPLIT_WORDS.items() if words & set(names)]
        if len(splits) == 1:  # a name with two split words (`train_test.csv`) says nothing
            found[splits[0]].append(entry)
    listing = [e.name for e in entries]
    for split, files in found.items():
        if len(files) > 1:
            raise ValueError(f"{folder}: several {split} files {[f.name for f in files]}; keep one per split")
    missing = [s for s in ("train", "test") if not found[s]]
    if missing:
        words = " / ".join(", ".join(w) for w in SPLIT_WORDS.values())
        movielens = " (or, for movielens, a MovieLens-1M folder with ratings.dat)" if format == "movielens" else ""
        raise ValueError(
            f"{folder}: a folder of split files needs a train and a test file (a name with the word {words} "
            f"and a suffix the {format} format reads: {', '.join(s or '(none)' for s in suffixes)}){movielens}; "
            f"no {' and no '.join(missing)} file among {listing}"
        )
    return {s: files[0] for s, files in found.items() if files}


def load_preprocessor(checkpoint: str | Path) -> Preprocessor:
    """The fitted preprocessing stored in a Lightning checkpoint by `CTRDataModule`."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    data = state.get(CTRDataModule.__qualname__)
    if not data or "preprocessor" not in data:
        raise ValueError(f"{checkpoint}: no CTRDataModule preprocessing state in this checkpoint; keys {sorted(state)}")
    return Preprocessor.from_state_dict(data["preprocessor"])
