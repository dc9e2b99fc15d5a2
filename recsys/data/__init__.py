"""Click-log data: declarative schema, train-fitted preprocessing, format readers, generator, DataModule."""

from recsys.data.datamodule import ClickTensors, CTRDataModule, load_preprocessor, split_frame
from recsys.data.readers import FORMATS, ClickLog, Format, read_click_log
from recsys.data.schema import FeatureSchema, Preprocessor, check_binary_labels
from recsys.data.synthetic import make_click_log

__all__ = [
    "FORMATS",
    "CTRDataModule",
    "ClickLog",
    "ClickTensors",
    "FeatureSchema",
    "Format",
    "Preprocessor",
    "check_binary_labels",
    "load_preprocessor",
    "make_click_log",
    "read_click_log",
    "split_frame",
]
