"""Shared fixtures of the audio tests: a tiny rendered set (rendered once per session) and small audio files."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = {"num_clips": 40, "max_compositions": 10, "clip_seconds": 4.0, "seed": 0}


@pytest.fixture(scope="session")
def audio_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session: the ten scores are parsed and the tiny set rendered once."""
    return tmp_path_factory.mktemp("audio-cache")


@pytest.fixture(scope="session")
def tiny_rendered(audio_cache: Path):
    """40 clips of 4 s from the first ten Bach chorales of the music21 corpus, with stems."""
    from audio.data.render import render_dataset

    return render_dataset(**TINY, stems=True, cache_dir=audio_cache, workers=1, progress=False)


@pytest.fixture(autouse=True)
def _single_thread(one_torch_thread: None) -> None:
    """Every audio test runs on one torch thread (`one_torch_thread` in tests/conftest.py)."""
