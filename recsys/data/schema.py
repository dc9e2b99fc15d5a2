"""Declarative feature schema and the preprocessing fitted on the training split.

`FeatureSchema` names the label and the categorical, numeric and multi-valued columns (the
multi-valued ones with their separator). `Preprocessor.fit(train_frame)` builds, from the training
rows only:

* categorical vocabularies: values seen at least `min_count` times get ids 1.. (most frequent
  first); id 0 is the out-of-vocabulary bucket, shared by unseen, rare and missing values;
* multi-valued vocabularies: tokens after splitting on the separator, ids 2.. (0 = padding,
  1 = OOV), at most `max_values` tokens per row are kept;
* numeric features: missing values are filled with the training median (and counted), then
  `log` (`sign(x) log(1 + |x|)`, standardized with the training mean and std) or `bucketize`
  (training quantile edges; the bucket id becomes a categorical field, with missing values in
  their own bucket 0).

`state_dict()` is plain data (lists, dicts, strings, numbers), so it travels inside a Lightning
checkpoint loaded with `torch.load(weights_only=True)`; `Preprocessor.from_state_dict` restores
it, so new rows at predict time are mapped with the training vocabulary.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from recsys.models.embedding import FieldLayout

log = logging.getLogger(__name__)

NumericTransform = Literal["log", "bucketize"]


@dataclass
class FeatureSchema:
    """Which columns are what.

    Args:
        label: the binary label column (0/1).
        categorical: columns with one categorical value per row.
        numeric: columns with a number (or missing) per row.
        multi_valued: columns holding several values joined by a separator: `{column: separator}`.
        numeric_transform: `log` (standardized log) or `bucketize` (quantile buckets -> categorical).
        num_buckets: quantile buckets of `bucketize`.
        min_count: categorical values (and tokens) seen fewer times in train go to the OOV bucket.
        max_values: tokens kept per multi-valued cell.
    """

    label: str = "label"
    categorical: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    multi_valued: dict[str, str] = field(default_factory=dict)
    numeric_transform: NumericTransform = "log"
    num_buckets: int = 10
    min_count: int = 1
    max_values: int = 8

    def __post_init__(self) -> None:
        if self.numeric_transform not in ("log", "bucketize"):
            raise ValueError(f"FeatureSchema: numeric_transform must be 'log' or 'bucketize'; got {self.numeric_transform!r}")
        if self.min_count < 1 or self.num_buckets < 1 or self.max_values < 1:
            raise ValueError("FeatureSchema: min_count, num_buckets and max_values must be >= 1")
        columns = self.columns
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise ValueError(f"FeatureSchema: columns listed twice: {duplicates}")
        if self.label in columns:
            raise ValueError(f"FeatureSchema: label {self.label!r} is also listed as a feature")
        if not columns:
            raise ValueError("FeatureSchema: no feature columns")

    @property
    def columns(self) -> list[str]:
        """Feature columns (without the label)."""
        return [*self.categorical, *self.numeric, *self.multi_valued]

    def check_frame(self, frame: pd.DataFrame, source: str) -> None:
        """Raise naming `source` when the label or a schema column is missing."""
        missing = [c for c in [self.label, *self.columns] if c not in frame.columns]
        if missing:
            raise ValueError(f"{source}: column(s) {missing} of the schema missing; found {list(frame.columns)}")


def check_binary_labels(values: pd.Series, source: str) -> np.ndarray:
    """The label column as float32 0/1; raise naming `source` when it is missing or not binary."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        first = int(np.flatnonzero(numbers.isna().to_numpy())[0])
        raise ValueError(f"{source}: label missing or not a number in {int(numbers.isna().sum())} row(s), first at row {first}: {values.iloc[first]!r}")
    unique = set(np.unique(numbers.to_numpy()).tolist())
    if not unique <= {0, 1}:
        raise ValueError(f"{source}: label must be binary 0/1; found values {sorted(unique)[:10]}")
    return numbers.to_numpy(dtype=np.float32)


def _clean(values: pd.Series) -> pd.Series:
    """Categorical cell values as strings, missing (NaN or empty) as None."""
    missing = values.isna().to_numpy() | (values.astype(str) == "").to_numpy()
    out = values.astype(str).astype(object)
    out[missing] = None
    return out


def _lookup(values: pd.Series, vocab: dict[str, int]) -> np.ndarray:
    """Ids of `values` in `vocab`; unseen and missing values -> the OOV id 0."""
    keys = pd.Index(list(vocab), dtype=object)
    ids = np.asarray(list(vocab.values()), dtype=np.int64)
    position = keys.get_indexer(_clean(values))  # -1 where unseen
    return np.where(position >= 0, ids[np.maximum(position, 0)] if len(ids) else 0, 0).astype(np.int64)


class Preprocessor:
    """Vocabularies and numeric transforms fitted on the training split (see the module docstring)."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema
        self.vocab: dict[str, dict[str, int]] = {}
        self.multi_vocab: dict[str, dict[str, int]] = {}
        self.numeric_stats: dict[str, dict[str, float | list[float]]] = {}
        self.fitted = False
        self.filled_values = 0

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, source: str = "train split") -> Preprocessor:
        """Fit vocabularies and numeric statistics on the training rows `frame`."""
        schema = self.schema
        schema.check_frame(frame, source)
        if len(frame) == 0:
            raise ValueError(f"{source}: the training split is empty")
        for name in schema.categorical:
            counts = _clean(frame[name]).dropna().value_counts()
            self.vocab[name] = _vocabulary(counts, schema.min_count, first_id=1)
        for name, sep in schema.multi_valued.items():
            tokens = _clean(frame[name]).dropna().str.split(sep, regex=False).explode()
            counts = tokens[tokens != ""].value_counts()
            self.multi_vocab[name] = _vocabulary(counts, schema.min_count, first_id=2)
        for name in schema.numeric:
            x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            seen = x[~np.isnan(x)]
            median = float(np.median(seen)) if len(seen) else 0.0
            stats: dict[str, float | list[float]] = {"median": median}
            if schema.numeric_transform == "log":
                t = _signed_log(np.where(np.isnan(x), median, x))
                stats["mean"], stats["std"] = float(t.mean()), float(t.std()) or 1.0
            else:
                edges = np.unique(np.quantile(seen, np.linspace(0, 1, schema.num_buckets + 1)[1:-1])) if len(seen) else np.zeros(0)
                stats["edges"] = edges.tolist()
            self.numeric_stats[name] = stats
        self.fitted = True
        return self

    # ---- layout and transform --------------------------------------------------------------------
    @property
    def layout(self) -> FieldLayout:
        """Model input sizes: categorical fields (incl. bucketized numeric), multi-valued, numeric."""
        self._check_fitted()
        s = self.schema
        bucketized = s.numeric if s.numeric_transform == "bucketize" else []
        dense = s.numeric if s.numeric_transform == "log" else []
        cat_sizes = [len(self.vocab[c]) + 1 for c in s.categorical]
        cat_sizes += [len(self.numeric_stats[c]["edges"]) + 2 for c in bucketized]
        multi_sizes = [len(self.multi_vocab[c]) + 2 for c in s.multi_valued]
        names = (*s.categorical, *bucketized, *s.multi_valued, *dense)
        return FieldLayout(tuple(cat_sizes), tuple(multi_sizes), len(dense), tuple(names))

    def transform(self, frame: pd.DataFrame, source: str = "rows") -> dict[str, Tensor]:
        """Tensors of the model input (and `label` when the frame has the label column)."""
        self._check_fitted()
        s = self.schema
        missing = [c for c in s.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{source}: column(s) {missing} of the schema missing; found {list(frame.columns)}")
        n = len(frame)
        cat = [_lookup(frame[c], self.vocab[c]) for c in s.categorical]
        dense, filled = [], 0
        for name in s.numeric:
            stats = self.numeric_stats[name]
            x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            nan = np.isnan(x)
            filled += int(nan.sum())
            if s.numeric_transform == "log":
                t = (_signed_log(np.where(nan, stats["median"], x)) - stats["mean"]) / stats["std"]
                dense.append(t.astype(np.float32))
            else:  # bucket 0 = missing, 1.. = quantile buckets
                ids = np.searchsorted(np.asarray(stats["edges"]), np.where(nan, 0.0, x), side="right") + 1
                cat.append(np.where(nan, 0, ids).astype(np.int64))
        self.filled_values = filled
        multi = []
        for name, sep in s.multi_valued.items():
            vocab, rows = self.multi_vocab[name], np.zeros((n, s.max_values), dtype=np.int64)
            for r, cell in enumerate(_clean(frame[name]).tolist()):
                if cell is None:
                    continue
                ids = [vocab.get(tok, 1) for tok in cell.split(sep) if tok != ""][: s.max_values]
                rows[r, : len(ids)] = ids
            multi.append(rows)
        out = {
            "categorical": torch.from_numpy(np.stack(cat, 1) if cat else np.zeros((n, 0), np.int64)),
            "multi_valued": torch.from_numpy(np.stack(multi, 1) if multi else np.zeros((n, 0, 1), np.int64)),
            "numeric": torch.from_numpy(np.stack(dense, 1) if dense else np.zeros((n, 0), np.float32)),
        }
        if s.label in frame.columns:
            out["label"] = torch.from_numpy(check_binary_labels(frame[s.label], source))
        return out

    def out_of_vocabulary(self, frame: pd.DataFrame) -> dict[str, int]:
        """Per categorical or multi-valued column of `frame`, the values (tokens) present but not in the
        training vocabulary (unseen in train, or rarer than `min_count`): `transform` maps them to OOV."""
        self._check_fitted()
        counts: dict[str, int] = {}
        for name in self.schema.categorical:
            values = _clean(frame[name]).dropna()
            counts[name] = int((~values.isin(set(self.vocab[name]))).sum())
        for name, sep in self.schema.multi_valued.items():
            vocab, kept = self.multi_vocab[name], self.schema.max_values  # as `transform`: the first max_values tokens
            cells = _clean(frame[name]).dropna().tolist()
            counts[name] = sum(tok not in vocab for cell in cells for tok in [t for t in cell.split(sep) if t][:kept])
        return {name: n for name, n in counts.items() if n}

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain-data state: the schema, the vocabularies and the numeric statistics."""
        self._check_fitted()
        return {"schema": asdict(self.schema), "vocab": self.vocab, "multi_vocab": self.multi_vocab,
                "numeric_stats": self.numeric_stats}

    @classmethod
    def from_state_dict(cls, state: dict) -> Preprocessor:
        """Restore a fitted preprocessor (e.g. from `checkpoint["CTRDataModule"]["preprocessor"]`)."""
        pre = cls(FeatureSchema(**state["schema"]))
        pre.vocab = {k: dict(v) for k, v in state["vocab"].items()}
        pre.multi_vocab = {k: dict(v) for k, v in state["multi_vocab"].items()}
        pre.numeric_stats = {k: dict(v) for k, v in state["numeric_stats"].items()}
        pre.fitted = True
        return pre

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("Preprocessor: call fit(train_frame) first (or restore a fitted state)")


def _vocabulary(counts: pd.Series, min_count: int, first_id: int) -> dict[str, int]:
    """Values with `count >= min_count`, most frequent first (ties by value), numbered from `first_id`."""
    kept = counts[counts >= min_count]
    ordered = sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))
    return {value: i + first_id for i, (value, _) in enumerate(ordered)}


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))
