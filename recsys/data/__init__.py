"""Click-log data: declarative schema, train-fitted preprocessing, format readers, generator, DataModule."""

from recsys.data.datamodule import (
    ClickTensors,
    CTRDataModule,
    find_split_files,
    load_preprocessor,
    split_frame,
)
from recsys.data.readers import FORMATS, ClickLog, Format, LibfmLayout, read_click_log
from recsys.data.schema import FeatureSchema, Preprocessor, check_binary_labels
from recsys.data.synthetic import make_click_log

__all__ = [
    "FORMATS",
    "CTRDataModule",
    "ClickLog",
    "ClickTensors",
    "FeatureSchema",
    "Format",
    "LibfmLayout",
    "Preprocessor",
    "check_binary_labels",
    "find_split_files",
    "load_preprocessor",
    "make_click_log",
    "read_click_log",
    "split_frame",
]
