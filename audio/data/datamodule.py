"""`TaggingDataModule`: clips with multi-hot tags, as log-mel windows for the taggers.

Formats (`format`):
- `rendered` (default, no download): music21 corpus compositions rendered with the General MIDI
  soundfont inside pretty_midi (`audio.data.render`); splits are composition-disjoint.
- `mtat`: MagnaTagATune at `path` (`audio.data.mtat`), cleaned or by-directory split, top-`top_k` tags.
- `folder`: a folder of audio files with `tags.csv` at `path` (`audio.data.folder`).

Every clip is decoded once (soundfile, resampled by torchaudio to `sample_rate`), turned into a
log-mel spectrogram (`audio.models.mel.LogMel`) and cached on disk as float16 `.npy` under
`<cache_dir>/mel/<settings>/`, so later runs read only the cache. Unreadable or empty files are
skipped with a warning naming each (`skipped_files`); files a tag table names but that do not
exist are counted (`missing_files`); clips shorter than the model's input are padded with silence
(-100 dB) and counted (`padded_clips`). The task logs the three counts to MLflow.

Batches: training draws one random window of `input_seconds` per clip,
`{"mel": (batch, n_mels, frames), "labels": (batch, tags)}`; validation and test take
`eval_windows` windows evenly spaced from the clip's start to its end (the authors' evaluation,
whose scores are averaged per clip), `{"mel": (batch, windows, n_mels, frames), "labels": ...,
"index": (batch,)}`.

Predicting (`predict_path`, `attn predict --predict_path`): a file or a folder of the user's audio
(`audio.data.io.predict_inputs`: wav, flac, ogg, mp3 at any rate, mono or stereo, or a `.npy` array
of samples at `sample_rate`), each decoded like the training clips and cut into windows of
`input_seconds` every `predict_hop_seconds` (`sliding_windows`, what `python -m audio.tag` does);
one item per file, `{"windows": (windows, n_mels, frames), "seconds": (), "index": ()}`. The tag
names of the checkpoint come back through `state_dict`, so predicting reads no training data.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from audio.data.folder import group_split, read_folder
from audio.data.io import AudioReadError, input_name, load_audio, predict_inputs
from audio.data.mtat import TagTable, read_mtat
from audio.data.render import render_dataset
from audio.data.tags import RENDERED_TAGS
from audio.models.mel import SILENCE_DB, LogMel

DEFAULT_CACHE = Path.home() / ".cache" / "attn-suite" / "audio"


class MelWindows(Dataset):
    """Cached log-mel clips cut into windows of `input_frames` (shorter clips padded with silence).

    Args:
        mel_files: one cached `(n_mels, frames)` `.npy` per clip.
        labels: `(clips, tags)` multi-hot.
        input_frames: frames of a window.
        windows: 0 for one random window per clip (training), else that many evenly spaced windows.
    """

    def __init__(self, mel_files: list[Path], labels: np.ndarray, input_frames: int, windows: int = 0) -> None:
        self.mel_files, self.labels = mel_files, np.asarray(labels, dtype=np.float32)
        self.input_frames, self.windows = input_frames, windows

    def __len__(self) -> int:
        return len(self.mel_files)

    def full(self, index: int) -> np.ndarray:
        """The whole clip's log-mel `(n_mels, frames)`, float32, padded to at least `input_frames`."""
        mel = np.load(self.mel_files[index]).astype(np.float32)
        if mel.shape[1] < self.input_frames:
            mel = np.pad(mel, ((0, 0), (0, self.input_frames - mel.shape[1])), constant_values=SILENCE_DB)
        return mel

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        mel = self.full(index)
        frames = mel.shape[1]
        if self.windows == 0:
            start = int(torch.randint(0, frames - self.input_frames + 1, ()).item())
            x = torch.from_numpy(mel[:, start:start + self.input_frames].copy())
        else:
            starts = np.linspace(0, frames - self.input_frames, self.windows).round().astype(int)
            x = torch.from_numpy(np.stack([mel[:, s:s + self.input_frames] for s in starts]))
        return {"mel": x, "labels": torch.from_numpy(self.labels[index]), "index": torch.tensor(index)}


def sliding_windows(mel: Tensor, input_frames: int, hop_frames: int) -> Tensor:
    """`mel: (n_mels, frames)` -> `(windows, n_mels, input_frames)`: a window every `hop_frames`, the last
    one ending at the clip's end; a clip shorter than one window is padded with silence (-100 dB)."""
    if mel.shape[1] < input_frames:
        mel = torch.nn.functional.pad(mel, (0, input_frames - mel.shape[1]), value=SILENCE_DB)
    last = mel.shape[1] - input_frames
    starts = sorted({*range(0, last + 1, max(1, hop_frames)), last})
    return torch.stack([mel[:, s:s + input_frames] for s in starts])


def hop_frames(front_end: LogMel, input_frames: int, hop_seconds: float | None) -> int:
    """Frames between prediction windows: `hop_seconds` (None: half a window)."""
    if hop_seconds is None:
        return input_frames // 2
    return max(1, int(round(hop_seconds * front_end.sample_rate / front_end.hop_length)))


def file_windows(path: Path | str, front_end: LogMel, input_frames: int, hop: int) -> tuple[Tensor, float]:
    """One file of any length and rate as `(windows (windows, n_mels, input_frames), seconds)`.

    Decoded to mono at the front end's rate (`load_audio`), turned into the training log-mel, cut
    with `sliding_windows`. AudioReadError naming the file when it cannot be read.
    """
    audio = load_audio(path, front_end.sample_rate)
    with torch.no_grad():
        mel = front_end(audio)
    return sliding_windows(mel, input_frames, hop), audio.numel() / front_end.sample_rate


def one_item(items: list[dict]) -> dict:
    """The collate function of loaders of one whole file per batch (files differ in length)."""
    return items[0]


class AudioFileWindows(Dataset):
    """The user's files for predicting, each as its log-mel windows (`file_windows`), decoded when read.

    An item is `{"windows", "seconds", "index"}`, or `{"index", "error"}` for a file that fails to
    decode (the task reports it as skipped).

    Args:
        files: the audio (or `.npy`) files.
        front_end: the training log-mel transform.
        input_frames: frames of a window (the model's input).
        hop: frames between windows.
    """

    def __init__(self, files: list[Path], front_end: LogMel, input_frames: int, hop: int) -> None:
        self.files, self.front_end, self.input_frames, self.hop = files, front_end, input_frames, hop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Tensor | float | int | str]:
        try:
            windows, seconds = file_windows(self.files[index], self.front_end, self.input_frames, self.hop)
        except AudioReadError as err:
            return {"index": index, "error": str(err)}
        return {"windows": windows, "seconds": seconds, "index": index}


class TaggingDataModule(L.LightningDataModule):
    """Music tagging data: rendered compositions (default), MagnaTagATune, or a folder with a tag CSV.

    Args:
        format: `rendered`, `mtat` or `folder` (module docstring).
        path: the dataset root for `mtat` and `folder` (unused for `rendered`).
        dataset_name: the MLflow dataset name (experiment `audio/tagging/<name>`); default
            `rendered`, `MTAT`, or the folder's name.
        seed: redraws the rendered set, and the random split of a folder without a `split` column.
        num_clips: clips of the rendered set.
        clip_seconds: length of each rendered clip.
        max_compositions: render from the first N corpus scores only (a quick demo); None: all.
        render_workers: processes that parse and render.
        mtat_split: `cleaned` (the literature's lists under `<path>/split/`) or `directory`.
        top_k: MagnaTagATune tags kept, most frequent first.
        sample_rate: audio is resampled to this rate (Hz).
        n_fft: FFT size of the log-mel front end.
        hop_length: hop of the front end (default n_fft // 2).
        n_mels: mel bands.
        f_min: lowest mel band edge (Hz).
        f_max: highest mel band edge (Hz).
        input_seconds: the model's input window (the paper: 15 s); shorter clips are padded.
        eval_windows: windows per clip at validation and test, their scores averaged.
        batch_size: clips per batch.
        num_workers: DataLoader worker processes.
        cache_dir: rendered audio, parsed scores and mel features (default `~/.cache/attn-suite/audio`).
        progress: progress bars while rendering and computing features.
        predict_path: a file or folder of your own audio to tag (`attn predict --predict_path`; module
            docstring); predicting needs only the checkpoint, not the training data.
        predict_hop_seconds: seconds between the windows of a predicted file (None: half a window).
    """

    def __init__(
        self,
        format: Literal["rendered", "mtat", "folder"] = "rendered",
        path: str | None = None,
        dataset_name: str | None = None,
        seed: int = 0,
        num_clips: int = 2000,
        clip_seconds: float = 8.0,
        max_compositions: int | None = None,
        render_workers: int = 2,
        mtat_split: Literal["cleaned", "directory"] = "cleaned",
        top_k: int = 50,
        sample_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int | None = None,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float = 8000.0,
        input_seconds: float = 15.0,
        eval_windows: int = 16,
        batch_size: int = 16,
        num_workers: int = 0,
        cache_dir: str | None = None,
        progress: bool = True,
        predict_path: str | None = None,
        predict_hop_seconds: float | None = None,
    ) -> None:
        super().__init__()
        if format in ("mtat", "folder") and not path:
            raise ValueError(f"TaggingDataModule: format={format!r} needs data.init_args.path (the dataset folder)")
        if format not in ("rendered", "mtat", "folder"):
            raise ValueError(f"TaggingDataModule: format must be rendered, mtat or folder; got {format!r}")
        self.save_hyperparameters()
        self.format, self.path, self.seed = format, path, seed
        self.num_clips, self.clip_seconds, self.max_compositions = num_clips, clip_seconds, max_compositions
        self.render_workers, self.mtat_split, self.top_k = render_workers, mtat_split, top_k
        self.mel_settings = {"sample_rate": sample_rate, "n_fft": n_fft, "hop_length": hop_length or n_fft // 2,
                             "n_mels": n_mels, "f_min": f_min, "f_max": f_max}
        self.input_seconds, self.eval_windows = input_seconds, eval_windows
        self.batch_size, self.num_workers, self.progress = batch_size, num_workers, progress
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else DEFAULT_CACHE
        if dataset_name is None:
            dataset_name = {"rendered": "rendered", "mtat": "MTAT"}.get(format) or Path(path).resolve().name
        self.dataset_name = dataset_name
        self.table: TagTable | None = None
        self.datasets: dict[str, MelWindows] = {}
        self.skipped_files: list[Path] = []
        self.padded_clips = 0
        self.predict_path, self.predict_hop_seconds = predict_path, predict_hop_seconds
        self.predict_names: list[str] = []
        self.predict_skipped = 0
        self._checkpoint_tags: list[str] | None = None

    # ---- sizes known before setup -------------------------------------------------------------------
    @property
    def tags(self) -> list[str]:
        """Tag names, the columns of `labels` (known without `setup` except for a folder, whose CSV is read)."""
        if self.table is not None:
            return self.table.tags
        if self._checkpoint_tags is not None:
            return self._checkpoint_tags
        if self.format == "rendered":
            return list(RENDERED_TAGS)
        if self.format == "folder":
            return read_folder(self.path, seed=self.seed).tags
        return [f"tag{k}" for k in range(self.top_k)]  # MTAT: the names come with the annotations

    @property
    def num_tags(self) -> int:
        """Outputs the model needs (13 rendered tags, `top_k` for MTAT, the CSV's tags for a folder)."""
        return len(self.tags)

    def front_end(self) -> LogMel:
        """The log-mel transform of this data (the tag command applies it to a user's file)."""
        return LogMel(**self.mel_settings)

    @property
    def input_frames(self) -> int:
        return self.front_end().frames(int(round(self.input_seconds * self.mel_settings["sample_rate"])))

    # ---- setup --------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets or stage == "predict":  # predicting reads the user's files only (predict_dataloader)
            return
        self.table = self.read_table()
        if self.table.missing:
            shown = ", ".join(str(p) for p in self.table.missing[:3])
            warnings.warn(f"{self.path}: {len(self.table.missing)} file(s) named in the tag table do not exist "
                          f"(e.g. {shown}); they are left out", UserWarning, stacklevel=2)
        mel_files, keep = self.cache_features(self.table.files)
        input_frames = self.input_frames
        frames = [np.load(f, mmap_mode="r").shape[1] for f in mel_files]
        self.padded_clips = sum(1 for n in frames if n < input_frames)
        split = [self.table.split[i] for i in keep]
        labels = self.table.labels[keep]
        for name in ("train", "valid", "test"):
            rows = [k for k, s in enumerate(split) if s == name]
            self.datasets[name] = MelWindows([mel_files[k] for k in rows], labels[rows], input_frames,
                                             0 if name == "train" else self.eval_windows)
        self.clip_files = {name: [self.table.files[keep[k]] for k, s in enumerate(split) if s == name]
                           for name in ("train", "valid", "test")}
        if not len(self.datasets["train"]):
            raise ValueError(f"TaggingDataModule ({self.dataset_name}): no readable training clip")

    def read_table(self) -> TagTable:
        """The clips, tags and splits of the chosen format (renders the default set if not cached)."""
        if self.format == "mtat":
            return read_mtat(self.path, split=self.mtat_split, top_k=self.top_k)
        if self.format == "folder":
            return read_folder(self.path, seed=self.seed)
        rendered = render_dataset(
            num_clips=self.num_clips, seed=self.seed, clip_seconds=self.clip_seconds,
            sample_rate=self.mel_settings["sample_rate"], max_compositions=self.max_compositions,
            cache_dir=self.cache_dir, workers=self.render_workers, progress=self.progress,
        )
        index = {t: k for k, t in enumerate(RENDERED_TAGS)}
        labels = np.zeros((len(rendered.clips), len(RENDERED_TAGS)), dtype=np.float32)
        for i, clip in enumerate(rendered.clips):
            labels[i, [index[t] for t in clip.tags]] = 1.0
        groups = [clip.composition for clip in rendered.clips]
        split = group_split(groups, self.seed)
        return TagTable([rendered.audio_path(c) for c in rendered.clips], labels, list(RENDERED_TAGS), split, groups, [])

    def cache_features(self, files: list[Path]) -> tuple[list[Path], list[int]]:
        """The cached log-mel file of every readable clip (computing the missing ones) and their indices in `files`."""
        key = hashlib.sha1(json.dumps(self.mel_settings, sort_keys=True).encode()).hexdigest()[:10]
        folder = self.cache_dir / "mel" / key
        folder.mkdir(parents=True, exist_ok=True)
        front = None
        out, keep, skipped = [], [], []
        for i, file in enumerate(tqdm(files, desc="log-mel features", disable=not self.progress, leave=False)):
            stat = file.stat()
            name = hashlib.sha1(f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]
            target = folder / f"{name}.npy"
            if not target.exists():
                try:
                    audio = load_audio(file, self.mel_settings["sample_rate"])
                except AudioReadError as err:
                    warnings.warn(f"skipping {err}", UserWarning, stacklevel=2)
                    skipped.append(file)
                    continue
                front = front or self.front_end()
                with torch.no_grad():
                    mel = front(audio).numpy().astype(np.float16)
                tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.npy")  # processes may share the cache
                np.save(tmp, mel)
                os.replace(tmp, target)
            out.append(target)
            keep.append(i)
        self.skipped_files = skipped
        return out, keep

    # ---- loaders ------------------------------------------------------------------------------------
    @property
    def train_set(self) -> MelWindows:
        return self.datasets["train"]

    @property
    def val_set(self) -> MelWindows:
        return self.datasets["valid"]

    @property
    def test_set(self) -> MelWindows:
        return self.datasets["test"]

    def data_counts(self) -> dict[str, int]:
        """What setup found: clips per split and the files skipped, missing and padded."""
        return {
            "train_clips": len(self.train_set), "val_clips": len(self.val_set), "test_clips": len(self.test_set),
            "skipped_files": len(self.skipped_files), "missing_files": len(self.table.missing) if self.table else 0,
            "padded_clips": self.padded_clips,
        }

    def state_dict(self) -> dict[str, list[str]]:
        """The tag names (saved in every checkpoint), so predicting knows them without the training data."""
        return {"tags": list(self.tags)}

    def load_state_dict(self, state_dict: dict[str, list[str]]) -> None:
        if state_dict.get("tags"):
            self._checkpoint_tags = [str(t) for t in state_dict["tags"]]

    def predict_dataloader(self) -> DataLoader:
        """One item per file of `predict_path` (`AudioFileWindows`); files that cannot be read are skipped,
        named on stderr and counted in `predict_skipped`."""
        if not self.predict_path:
            raise ValueError("TaggingDataModule: predict_path is not set; give a file or folder of audio "
                             "(attn predict --predict_path PATH)")
        root, files, errors = predict_inputs(self.predict_path)
        for error in errors:
            print(f"skipped {error}", file=sys.stderr)
        self.predict_skipped = len(errors)
        self.predict_names = [input_name(f, root) for f in files]
        front = self.front_end()
        dataset = AudioFileWindows(files, front, self.input_frames, hop_frames(front, self.input_frames, self.predict_hop_seconds))
        return DataLoader(dataset, batch_size=1, collate_fn=one_item, num_workers=self.num_workers)

    @property
    def predict_window_batch(self) -> int:
        """Windows per forward pass when predicting: those of one evaluation batch (`batch_size` x `eval_windows`)."""
        return self.batch_size * max(1, self.eval_windows)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=len(self.train_set) > self.batch_size,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.batch_size, num_workers=self.num_workers)
