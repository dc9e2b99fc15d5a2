"""`attn predict` on the user's own input: the checkpoint that carries its config, and the prediction writer.

    attn predict --ckpt_path CKPT --predict_path PATH [--output DIR]

The contract between `core` and a domain (every task that predicts follows it):

- The DataModule takes `predict_path` (a file or folder of the user's raw input, in the domain's
  format) and reads it in `predict_dataloader()`, which Lightning calls after restoring the
  checkpoint, so preprocessing fitted on the training data (scalers, vocabularies) is available:
  the DataModule keeps it in `state_dict()` / `load_state_dict()` (plain numbers, strings and
  tensors, so the checkpoint loads with `weights_only=True`). Bad input raises a `ValueError`
  naming the file and the fix; rows or files that can be skipped are skipped and counted.
- The task's `predict_step` returns its outputs in the data's original units, and its
  `write_predictions(predictions, datamodule, output)` writes them under `output` (CSV for
  tabular outputs, one row per input row or step; images, audio, JSON otherwise) and returns the
  paths it wrote.
- `PredictionWriter` (added by `AttnCLI` to every `predict`) calls `write_predictions` once the
  epoch ends, prints where the files went, and logs a small sample of them as artifacts of the
  predict run (named `... predict`, tagged `checkpoint_run` with the training run).

Every checkpoint written by `attn fit` carries the resolved config as YAML text under the key
`attn_config` (`ConfigInCheckpoint`), so `attn predict|test|validate --ckpt_path CKPT` runs without
the YAML (`core.cli` passes it as `--config`), and every task saves its hyper-parameters, so
`Task.load_from_checkpoint(CKPT)` works in Python.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import BasePredictionWriter

from core.tracking import log_file

CONFIG_KEY = "attn_config"
# the predict run logs at most this many of the files written, and none larger than this
SAMPLE_FILES, SAMPLE_BYTES = 8, 4 * 2**20


class ConfigInCheckpoint(L.Callback):
    """Stores the resolved config of a fit in every checkpoint it writes (key `attn_config`).

    Args:
        config_text: the YAML of the fit's config as `attn fit --print_config` shows it.
        config_name: the stem of the fit's `--config` file (`patchtst_etth1`), which names its runs.
    """

    def __init__(self, config_text: str, config_name: str = "") -> None:
        self.config_text, self.config_name = config_text, config_name

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config_text
        checkpoint[CONFIG_KEY + "_name"] = self.config_name


# keys of a fit config that are no argument of test/validate/predict, or must not be replayed there
_FIT_ONLY_KEYS = ("ckpt_path", "test_after_fit", "log_model")


def config_from_checkpoint(path: str | Path) -> tuple[str, str]:
    """The config YAML a checkpoint of `attn fit` carries, ready for `--config` of test/validate/predict,
    and the name of the fit's config file ("" if it had none).

    Raises a ValueError naming the file when it is no checkpoint or one written before configs
    were stored (then the run's `config.yaml` artifact is the config to give).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--ckpt_path {path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"--ckpt_path {path}: not a readable Lightning checkpoint ({type(err).__name__}); "
                         "give a .ckpt written by `attn fit`") from None
    text = checkpoint.get(CONFIG_KEY) if isinstance(checkpoint, dict) else None
    if not text:
        raise ValueError(f"--ckpt_path {path}: this checkpoint carries no config (written before configs were "
                         "stored in checkpoints); add --config with its run's config.yaml artifact")
    config = yaml.safe_load(text)
    for key in _FIT_ONLY_KEYS:
        config.pop(key, None)
    return yaml.safe_dump(config, sort_keys=False), str(checkpoint.get(CONFIG_KEY + "_name") or "")


def with_preprocessor_from(text: str, ckpt: str | Path) -> str:
    """The config `text` with `data.init_args.preprocessor_from` set to `ckpt`, where the DataModule takes it.

    Sizes the CLI reads from the data while parsing (`ETTDataModule.channels`) then come from the
    checkpoint, not from the training file, so predicting needs only the checkpoint and the input.
    """
    import inspect

    from jsonargparse.typing import import_object

    config = yaml.safe_load(text)
    data = config.get("data") or {}
    if data.get("class_path") and "preprocessor_from" in inspect.signature(import_object(data["class_path"])).parameters:
        data["init_args"] = data.get("init_args") or {}
        data["init_args"]["preprocessor_from"] = data["init_args"].get("preprocessor_from") or str(ckpt)
    return yaml.safe_dump(config, sort_keys=False)


def default_output(ckpt_path: str | None) -> Path:
    """Where predictions go without `--output`: `predictions/<checkpoint stem>-<time>` in the working directory."""
    stem = Path(ckpt_path).stem if ckpt_path else "model"
    return Path("predictions") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


class PredictionWriter(BasePredictionWriter):
    """Writes a predict run's outputs with the task's `write_predictions` and logs a sample to MLflow.

    Args:
        output: the folder the files go to (created; existing files of the same name are replaced).
    """

    def __init__(self, output: str | Path) -> None:
        super().__init__(write_interval="epoch")
        self.output = Path(output)
        self.written: list[Path] = []

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any,
    ) -> None:
        writer = getattr(pl_module, "write_predictions", None)
        if writer is None:
            raise ValueError(f"{type(pl_module).__name__} does not write predictions; `attn predict` needs a task "
                             "with write_predictions (core.predict)")
        if len(trainer.num_predict_batches) != 1:
            raise ValueError("attn predict: predicts from one dataloader (the DataModule's predict_dataloader)")
        self.output.mkdir(parents=True, exist_ok=True)
        self.written = [Path(p) for p in writer(predictions, trainer.datamodule, self.output)]
        skipped = getattr(trainer.datamodule, "predict_skipped", None)
        note = f"; {skipped} input(s) skipped (see the messages above)" if skipped else ""
        print(f"attn predict: wrote {len(self.written)} file(s) to {self.output}{note}", file=sys.stderr)
        self._log_sample(trainer)

    def _log_sample(self, trainer: L.Trainer) -> None:
        """The first few small files written, as artifacts `predictions/` of the predict run."""
        sample = [p for p in self.written if p.is_file() and p.stat().st_size <= SAMPLE_BYTES][:SAMPLE_FILES]
        for path in sample:
            log_file(trainer, path, "predictions")
