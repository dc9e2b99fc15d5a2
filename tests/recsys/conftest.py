"""Fixtures of the recsys tests: the shared real samples, small hand-made click logs, and the Criteo
sample in NFM's libFM split format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.models import FieldLayout

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "recsys"


@pytest.fixture()
def shared_data() -> Path:
    return SHARED


@pytest.fixture()
def tiny_layout() -> FieldLayout:
    return FieldLayout(categorical=(5, 7, 3), multi_valued=(6,), numeric=2, names=("a", "b", "c", "tags", "x", "y"))


def tiny_batch(layout: FieldLayout, rows: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random valid ids and values for `layout`."""
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, n, (rows,), generator=g) for n in layout.categorical], 1)
    multi = torch.stack([torch.randint(0, n, (rows, 3), generator=g) for n in layout.multi_valued], 1)
    return {"categorical": cat, "multi_valued": multi, "numeric": torch.randn(rows, layout.numeric, generator=g),
            "label": torch.randint(0, 2, (rows,), generator=g).float()}


CRITEO_CATEGORICAL = [f"C{i}" for i in range(1, 27)]


def nfm_encode(sample: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The sample's categorical columns one-hot encoded as NFM does frappe: one globally unique index per
    (field, value), missing values included, fields in order; returns `indices: (rows, fields)` and lines."""
    codes = [pd.factorize(sample[c].fillna("<missing>"), sort=True)[0] for c in CRITEO_CATEGORICAL]
    offsets = np.cumsum([0] + [int(c.max()) + 1 for c in codes[:-1]])
    indices = np.stack([c + o for c, o in zip(codes, offsets, strict=True)], 1)
    labels = np.where(sample["label"].astype(int).to_numpy() == 1, "1", "-1")  # NFM labels are -1/1
    lines = [" ".join([label, *(f"{i}:1" for i in row)]) for label, row in zip(labels, indices.tolist(), strict=True)]
    return indices, lines


@pytest.fixture()
def criteo(shared_data: Path) -> pd.DataFrame:
    """The shared 200-row Criteo sample, as strings."""
    return pd.read_csv(shared_data / "criteo_sample.txt", dtype=str)


def write_nfm_folder(
    criteo: pd.DataFrame, folder: Path, sizes: tuple[int, ...] = (140, 40, 20),
    names: tuple[str, ...] = ("train", "validation", "test"),
) -> Path:
    """NFM's split layout (`criteo.train.libfm`, ...): consecutive chunks of `nfm_encode`'s lines."""
    folder.mkdir()
    _, lines = nfm_encode(criteo)
    start = 0
    for size, name in zip(sizes, names, strict=True):
        (folder / f"criteo.{name}.libfm").write_text("\n".join(lines[start:start + size]) + "\n")
        start += size
    return folder
