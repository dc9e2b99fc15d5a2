"""Fixtures of every vision test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_thread(one_torch_thread: None) -> None:
    """Every vision test runs on one torch thread (`one_torch_thread` in tests/conftest.py)."""
