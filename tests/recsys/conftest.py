"""Fixtures of the recsys tests: the shared real samples and small hand-made click logs."""

from __future__ import annotations

from pathlib import Path

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
