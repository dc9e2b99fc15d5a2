"""Tag your own audio files with a trained tagger: `python -m audio.tag --ckpt_path CKPT FILE [FILE ...]`.

    python -m audio.tag --ckpt_path checkpoints/<exp>/<run>/checkpoints/last.ckpt song.mp3 other.wav --top 5

A file of any length is decoded (soundfile; resampled by torchaudio to the model's rate), turned
into the training log-mel, cut into windows of the model's input length every `--hop` seconds
(default: half a window; the last window ends at the end of the file; a file shorter than one
window is padded with silence), and the sigmoid outputs of all windows are averaged, as the
authors' evaluation does. The top tags are printed with their scores. The checkpoint carries the
model's class and arguments, the front end's settings and the tag names (`TaggingTask`), and is
read with `torch.load(weights_only=True)`: no YAML is needed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jsonargparse.typing import import_object
from torch import nn

from audio.data.io import AudioReadError, load_audio
from audio.models.mel import SILENCE_DB, LogMel


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

    @torch.no_grad()
    def tag_file(self, path: Path | str, hop_seconds: float | None = None, batch_size: int = 16) -> tuple[np.ndarray, int, float]:
        """`(scores (tags,), windows, seconds)` of one file: window probabilities averaged."""
        audio = load_audio(path, self.front_end.sample_rate)
        mel = self.front_end(audio)
        frames = mel.shape[1]
        if frames < self.input_frames:
            mel = torch.nn.functional.pad(mel, (0, self.input_frames - frames), value=SILENCE_DB)
        hop = self.input_frames // 2 if hop_seconds is None else max(1, int(round(hop_seconds * self.front_end.sample_rate / self.front_end.hop_length)))
        last = mel.shape[1] - self.input_frames
        starts = sorted({*range(0, last + 1, hop), last})
        windows = torch.stack([mel[:, s:s + self.input_frames] for s in starts])
        probs = torch.cat([torch.sigmoid(self.model(windows[i:i + batch_size]).float()) for i in range(0, len(windows), batch_size)])
        return probs.mean(dim=0).numpy(), len(starts), audio.numel() / self.front_end.sample_rate


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (1 when a file could not be read)."""
    parser = argparse.ArgumentParser(prog="python -m audio.tag", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `attn fit` with audio.tasks.TaggingTask")
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3), any length")
    parser.add_argument("--top", type=int, default=5, help="tags printed per file")
    parser.add_argument("--hop", type=float, default=None, help="seconds between windows (default: half a window)")
    args = parser.parse_args(argv)
    tagger = Tagger.from_checkpoint(args.ckpt_path)
    status = 0
    for file in args.files:
        try:
            scores, windows, seconds = tagger.tag_file(file, args.hop)
        except AudioReadError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{file} ({seconds:.1f} s, {windows} window{'s' if windows != 1 else ''} averaged)")
        for k in np.argsort(-scores)[: args.top]:
            print(f"  {tagger.tags[k]:<20} {scores[k]:.3f}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
