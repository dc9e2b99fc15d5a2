"""Test-wide setup.

Triton decides between compiling and interpreting when `core.kernels.flash_attention` is
imported, so the interpreter switch must be set before any test imports `core`: kernels run in
the CPU interpreter without CUDA, compiled on a GPU.

CLI tests share one MLflow setup: `mlflow_uri` (a fresh SQLite store, the test running in its
`tmp_path`) and `store` (a client on it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

os.environ.setdefault("TRITON_INTERPRET", "0" if torch.cuda.is_available() else "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` skip without CUDA."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture()
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point `MLFLOW_TRACKING_URI` at a fresh SQLite store in `tmp_path` and run the test there.

    The working directory moves too because the CLI writes checkpoints (and, without the variable,
    its default `mlflow/` store) relative to it; nothing a test runs may land in the repository.
    """
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture()
def store(mlflow_uri: str) -> MlflowClient:
    """An MLflow client on the `mlflow_uri` store, to read back the runs a CLI test logged."""
    # imported here so that tests which never touch MLflow do not pay its one-second import
    from mlflow.tracking import MlflowClient

    return MlflowClient(mlflow_uri)


@pytest.fixture()
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for the test: tiny tensors on a shared 2-core machine otherwise
    spend their time in OpenMP barriers (two threads ran ~10x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
