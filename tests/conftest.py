"""Test-wide setup.

Triton decides between compiling and interpreting when `core.kernels.flash_attention` is
imported, so the interpreter switch must be set before any test imports `core`: kernels run in
the CPU interpreter without CUDA, compiled on a GPU.
"""

import os

import pytest
import torch

os.environ.setdefault("TRITON_INTERPRET", "0" if torch.cuda.is_available() else "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` skip without CUDA."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
