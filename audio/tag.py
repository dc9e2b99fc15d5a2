"""Tag your own audio files with a trained tagger: `python -m audio.tag --ckpt_path CKPT FILE [FILE ...]`.

    python -m audio.tag --ckpt_path checkpoints/<exp>/<run>/checkpoints/last.ckpt song.mp3 other.wav --top 5
    attn predict --ckpt_path CKPT --predict_path song.mp3 --output tagged/      # the same numbers, as a CSV

A file of any length is decoded (soundfile; resampled by torchaudio to the model's rate), turned
into the training log-mel, cut into windows of the model's input length every `--hop` seconds
(default: half a window; the last window ends at the end of the file; a file shorter than one
window is padded with silence), and the sigmoid outputs of all windows are averaged, as the
authors' evaluation does. The top tags are printed with their scores (`--output DIR` also writes
them as `DIR/predicted_tags.csv`). The checkpoint carries the model's class and arguments, the
front end's settings and the tag names (`TaggingTask`), and is read with
`torch.load(weights_only=True)`: no YAML is needed.

One implementation with `attn predict`: decoding and windows are `audio.data.datamodule.file_windows`
(the DataModule's predict items), the window scores `window_probabilities` (the task's
`predict_step`), the table `tag_table` (the task's `write_predictions`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from jsonargparse.typing import import_object
from torch import Tensor, nn

from audio.data.datamodule import file_windows, hop_frames
from audio.data.io import AudioReadError
from audio.models.mel import LogMel

PREDICTIONS_CSV = "predicted_tags.csv"
TOP_TAGS = 5  # the `top_tags` column of the table
TABLE_COLUMNS = ("file", "seconds", "windows", "top_tags")  # then one probability column per tag


@torch.no_grad()
def window_probabilities(model: nn.Module, windows: Tensor, batch_size: int = 16) -> Tensor:
    """`windows: (windows, n_mels, frames)` -> sigmoid outputs `(windows, tags)`, `batch_size` windows a pass."""
    return torch.cat([torch.sigmoid(model(windows[i:i + batch_size]).float()) for i in range(0, len(windows), batch_size)])


def tag_table(names: list[str], scores: np.ndarray, windows: list[int], seconds: list[float], tags: list[str],
              top: int = TOP_TAGS) -> pd.DataFrame:
    """One row per file: `file`, `seconds`, `windows`, `top_tags` (the `top` best, `;`-separated) and the
    probability of every tag (`scores: (files, tags)`, window-averaged)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(len(names), len(tags))
    clash = sorted(set(tags) & set(TABLE_COLUMNS))
    if clash:
        raise ValueError(f"audio.tag: tags {clash} have the names of the table's own columns {list(TABLE_COLUMNS)}")
    frame = pd.DataFrame({"file": names, "seconds": np.round(seconds, 3), "windows": windows,
                          "top_tags": [";".join(tags[k] for k in np.argsort(-row, kind="stable")[:top]) for row in scores]})
    return pd.concat([frame, pd.DataFrame(scores, columns=tags)], axis=1)


@dataclass
class Tagger:
    """A trained network with its front end, input length and tag names, rebuilt from a checkpoint."""

    model: nn.Module
    front_end: LogMel
    input_frames: int
    tags: list[str]

    @classmethod
    def from_checkpoint(cls, path: Path | str) -> Tagger:
        """Rebuild from a `TaggingTask` checkpoint (ValueError naming the file when it is not one)."""
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        spec = (checkpoint.get("hyper_parameters") or {}).get("model")
        data = checkpoint.get("datamodule_hyper_parameters") or {}
        tags = checkpoint.get("tags")
        if not isinstance(spec, dict) or "class_path" not in spec or tags is None:
            raise ValueError(f"{path}: not a checkpoint of audio.tasks.TaggingTask trained through `attn fit` "
                             "(no model class_path or tag names in it)")
        model = import_object(spec["class_path"])(**spec.get("init_args", {}))
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
        model.load_state_dict(state)
        model.eval()
        settings = {k: data[k] for k in ("sample_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max") if k in data}
        front_end = LogMel(**settings)
        input_frames = front_end.frames(int(round(float(data.get("input_seconds", 15.0)) * front_end.sample_rate)))
        return cls(model, front_end, input_frames, list(tags))

    def tag_file(self, path: Path | str, hop_seconds: float | None = None, batch_size: int = 16) -> tuple[np.ndarray, int, float]:
        """`(scores (tags,), windows, seconds)` of one file: window probabilities averaged."""
        hop = hop_frames(self.front_end, self.input_frames, hop_seconds)
        windows, seconds = file_windows(path, self.front_end, self.input_frames, hop)
        probs = window_probabilities(self.model, windows, batch_size)
        return probs.mean(dim=0).numpy(), len(windows), seconds


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (1 when a file could not be read)."""
    parser = argparse.ArgumentParser(prog="python -m audio.tag", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `attn fit` with audio.tasks.TaggingTask")
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3), any length")
    parser.add_argument("--top", type=int, default=5, help="tags printed per file")
    parser.add_argument("--hop", type=float, default=None, help="seconds between windows (default: half a window)")
    parser.add_argument("--output", default=None, help=f"also write the scores of every tag to OUTPUT/{PREDICTIONS_CSV}")
    args = parser.parse_args(argv)
    tagger = Tagger.from_checkpoint(args.ckpt_path)
    status = 0
    rows: list[tuple[str, np.ndarray, int, float]] = []
    for file in args.files:
        try:
            scores, windows, seconds = tagger.tag_file(file, args.hop)
        except AudioReadError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        rows.append((str(file), scores, windows, seconds))
        print(f"{file} ({seconds:.1f} s, {windows} window{'s' if windows != 1 else ''} averaged)")
        for k in np.argsort(-scores)[: args.top]:
            print(f"  {tagger.tags[k]:<20} {scores[k]:.3f}")
    if args.output and rows:
        folder = Path(args.output)
        folder.mkdir(parents=True, exist_ok=True)
        table = tag_table([r[0] for r in rows], np.stack([r[1] for r in rows]), [r[2] for r in rows],
                          [r[3] for r in rows], tagger.tags)
        table.to_csv(folder / PREDICTIONS_CSV, index=False)
        print(f"wrote {folder / PREDICTIONS_CSV}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
