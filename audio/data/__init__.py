"""Audio data: the rendered default (music21 corpus through tinysoundfont), MagnaTagATune, folders with tag CSVs."""

from audio.data.datamodule import MelWindows, TaggingDataModule
from audio.data.folder import read_folder
from audio.data.io import AudioReadError, load_audio
from audio.data.mtat import TagTable, read_mtat
from audio.data.render import render_dataset

__all__ = [
    "AudioReadError",
    "MelWindows",
    "TagTable",
    "TaggingDataModule",
    "load_audio",
    "read_folder",
    "read_mtat",
    "render_dataset",
]
