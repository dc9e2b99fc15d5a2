"""Split your own song into drums, bass, other and vocals: `python -m audio.separate --ckpt_path CKPT FILE.wav`.

    python -m audio.separate --ckpt_path checkpoints/<exp>/<run>/checkpoints/last.ckpt song.wav
    # -> song_drums.wav, song_bass.wav, song_other.wav, song_vocals.wav next to song.wav (or in --out)

A stereo (or mono) file of any length is decoded with soundfile, resampled by torchaudio to the
model's rate, and cut into overlapping segments of the model's training length (`--overlap`, a
quarter by default). Each segment is separated on its own, and the segments are summed with
triangular cross-fade weights, normalized by the weights' sum (Demucs' `apply_model`), so the
seams do not click and a model that returns its input reproduces the input exactly. Only one
segment goes through the model at a time: activation memory is bounded by the segment length,
whatever the song's length; the song and its stems are held once each. The stems are resampled
back to the file's rate and written as 32-bit float WAV (no clipping). A progress bar counts segments.
The checkpoint carries the model's class and arguments (`SeparationTask`) and is read with
`torch.load(weights_only=True)`: no YAML is needed.

One implementation with `attn predict --ckpt_path CKPT --predict_path SONG_OR_FOLDER --output DIR`
(stems as `DIR/<song>/<source>.wav`): both decode with `audio.data.io.load_song`, separate with
`separate_song` and write with `write_stems`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import soundfile as sf
import torch
import torchaudio.functional as AF
from jsonargparse.typing import import_object
from torch import Tensor, nn
from tqdm.auto import tqdm

from audio.data.io import load_song


def fade_weights(segment: int) -> Tensor:
    """Triangular overlap-add weights `(segment,)`: 1 at the ends rising to the middle, never 0."""
    half = segment // 2
    ramp = torch.cat([torch.arange(1, half + 1), torch.arange(segment - half, 0, -1)]).float()
    return ramp / ramp.max()


def segment_starts(length: int, segment: int, overlap: float) -> list[int]:
    """Starts of the segments covering `length` samples; the last one ends at the end."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1); got {overlap}")
    hop = max(1, int(segment * (1 - overlap)))
    starts = list(range(0, max(length - segment, 0) + 1, hop))
    if starts[-1] + segment < length:
        starts.append(length - segment)
    return starts


@torch.no_grad()
def apply_model(model: nn.Module, mix: Tensor, segment: int, overlap: float = 0.25, references: Tensor | None = None,
                progress: bool = False) -> Tensor:
    """Separate `mix: (channels, length)` in overlapping segments -> `(sources, channels, length)`.

    Segments shorter than `segment` (a track shorter than one) are zero-padded for the model and
    cut back. `references: (sources, channels, length)` are passed along, cut the same way, to a model
    that reads them (`uses_references`, the IRM oracle).
    """
    length = mix.shape[-1]
    weights = fade_weights(segment).to(mix.device)
    out, total = None, torch.zeros(length, device=mix.device)
    for start in tqdm(segment_starts(length, segment, overlap), desc="separating", unit="segment", disable=not progress, leave=False):
        chunk = mix[..., start:start + segment]
        n = chunk.shape[-1]
        pad = (0, segment - n)
        if references is not None:
            y = model(torch.nn.functional.pad(chunk, pad)[None], torch.nn.functional.pad(references[..., start:start + n], pad)[None])
        else:
            y = model(torch.nn.functional.pad(chunk, pad)[None])
        y = y[0, ..., :n].float()
        if out is None:
            out = torch.zeros(*y.shape[:-1], length, device=mix.device)
        out[..., start:start + n] += y * weights[:n]
        total[start:start + n] += weights[:n]
    return out / total


def separate_song(model: nn.Module, audio: Tensor, rate: int | None = None, overlap: float = 0.25,
                  progress: bool = False, model_rate: int | None = None, segment_seconds: float | None = None) -> Tensor:
    """`audio: (channels, length)` at `rate` -> stems `(sources, channels, length)` at `rate`.

    Mono is duplicated to the model's stereo and its stems averaged back to mono; another rate than
    `model_rate` (default the model's `sample_rate`; `rate` None: that one) is resampled there and
    back. The song goes through `apply_model` in segments of `segment_seconds` (default the model's
    `segment`), one at a time.
    """
    model_rate = int(model.sample_rate if model_rate is None else model_rate)
    segment_seconds = float(model.segment if segment_seconds is None else segment_seconds)
    rate = model_rate if rate is None else int(rate)
    channels = audio.shape[0]
    mix = audio.expand(2, -1) if channels == 1 else audio
    if rate != model_rate:
        mix = AF.resample(mix, rate, model_rate)
    stems = apply_model(model, mix, int(round(segment_seconds * model_rate)), overlap, progress=progress)
    if rate != model_rate:
        stems = AF.resample(stems, model_rate, rate)[..., :audio.shape[-1]]
    return stems.mean(dim=1, keepdim=True) if channels == 1 else stems


def write_stems(stems: Tensor, rate: int, targets: list[Path]) -> list[Path]:
    """Write each source of `stems: (sources, channels, length)` to its target as 32-bit float WAV (no clipping)."""
    for stem, target in zip(stems, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(target), stem.T.cpu().numpy(), rate, subtype="FLOAT")
    return targets


class Separator:
    """A trained separator with its rate and segment length, rebuilt from a `SeparationTask` checkpoint.

    Args:
        model: the network, `(batch, channels, length) -> (batch, sources, channels, length)`.
        sample_rate: the rate it was trained at.
        segment_seconds: the segment it separates at a time.
        sources: source names, in the model's output order.
    """

    def __init__(self, model: nn.Module, sample_rate: int, segment_seconds: float, sources: list[str]) -> None:
        self.model, self.sample_rate, self.segment_seconds, self.sources = model.eval(), sample_rate, segment_seconds, sources

    @classmethod
    def from_checkpoint(cls, path: Path | str) -> Separator:
        """Rebuild from a checkpoint of `attn fit` with `audio.separation_task.SeparationTask` (ValueError otherwise)."""
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        spec = (checkpoint.get("hyper_parameters") or {}).get("model")
        if not isinstance(spec, dict) or "class_path" not in spec:
            raise ValueError(f"{path}: not a checkpoint of audio.separation_task.SeparationTask trained through `attn fit` "
                             "(no model class_path in it)")
        model = import_object(spec["class_path"])(**spec.get("init_args", {}))
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
        model.load_state_dict(state)
        if getattr(model, "uses_references", False):
            raise ValueError(f"{path}: {type(model).__name__} is an oracle that needs the true sources; it cannot split a song")
        return cls(model, int(model.sample_rate), float(model.segment), list(model.sources))

    def separate(self, audio: Tensor, rate: int | None, overlap: float = 0.25, progress: bool = False) -> Tensor:
        """`audio: (channels, length)` at `rate` (mono is duplicated to stereo) -> stems `(sources, channels, length)` at `rate`."""
        return separate_song(self.model, audio, rate, overlap, progress, self.sample_rate, self.segment_seconds)

    def separate_file(self, path: Path | str, out_dir: Path | str | None = None, overlap: float = 0.25,
                      progress: bool = True) -> list[Path]:
        """Write `<stem>_<source>.wav` for each source next to `path` (or in `out_dir`); returns the files.

        ValueError naming the file when it cannot be decoded or is not mono or stereo.
        """
        path = Path(path)
        audio, rate = load_song(path)
        stems = self.separate(audio, rate, overlap, progress)
        folder = Path(out_dir) if out_dir is not None else path.parent
        return write_stems(stems, rate or self.sample_rate,
                           [folder / f"{path.stem}_{source}.wav" for source in self.sources])


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (1 when a file could not be read)."""
    parser = argparse.ArgumentParser(prog="python -m audio.separate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `attn fit` with audio.separation_task.SeparationTask")
    parser.add_argument("files", nargs="+", help="audio files (wav, flac, ogg), mono or stereo, any length")
    parser.add_argument("--out", default=None, help="folder for the stems (default: next to each input)")
    parser.add_argument("--overlap", type=float, default=0.25, help="overlap of consecutive segments, a fraction of one")
    args = parser.parse_args(argv)
    separator = Separator.from_checkpoint(args.ckpt_path)
    status = 0
    for file in args.files:
        try:
            written = separator.separate_file(file, args.out, args.overlap)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{file}: " + ", ".join(str(p) for p in written))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
