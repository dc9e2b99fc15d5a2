"""Source-separation data: rendered four-source multitracks, Demucs-style augmentation, `SeparationDataModule`.

The embedded default (`render_multitrack`) renders Bach chorales of the music21 corpus with the
tagging renderer (`audio.data.render.render_clip`, General MIDI soundfont through tinysoundfont),
each chorale part its own stem, mapped to MUSDB's four sources:

- vocals: the top part (soprano), sung by a GM voice program (Choir Aahs, Voice Oohs);
- bass: the bottom part, on a GM bass program (acoustic, electric, fretless, slap, synth bass);
- other: the inner parts, each on an instrument of `audio.data.tags.INSTRUMENT_GROUPS` other than choir;
- drums: a seeded rock/pop pattern at the excerpt's tempo (kick, snare, hi-hat or ride, fills and
  crashes) on the soundfont's GM drum kit (bank 128).

Each source gets a seeded pan, so stems are stereo; the mixture is their sum, scaled with them to
a 0.8 peak. Tracks are written in the MUSDB18-HQ layout (`train/`, `test/`, validation names in
`validation_tracks.txt`) under `<cache_dir>/separation/<key>/` and read back by `audio.data.musdb`,
so the rendered set and MUSDB18-HQ go through the same reader. Splits are composition-disjoint.

Training draws random segments (`SegmentDataset`); with `remix` each source comes from its own
random track and offset (Demucs' remixing), then random gains, sign flips and channel swaps are
applied per source and the mixture is the sum of the augmented sources.

Predicting (`predict_path`, `attn predict --predict_path`): a song or a folder of songs
(`audio.data.io.predict_inputs`: wav, flac, ogg, mp3, mono or stereo, any rate, or a `.npy` array
`(channels, samples)` at the model's rate), one whole song per item (`SongFiles`), decoded when
read; the task separates it in segments (`audio.separate.separate_song`). No training data is read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from audio.data.datamodule import DEFAULT_CACHE, one_item
from audio.data.io import AudioReadError, input_name, load_song, predict_inputs
from audio.data.musdb import SOURCES, Track, read_musdb
from audio.data.render import (
    GAIN_RANGE,
    PEAK,
    SOUNDFONT,
    TRANSPOSE_RANGE,
    ClipSpec,
    PartSpec,
    ScoreNotes,
    composition_paths,
    load_scores,
    parallel_map,
    render_clip,
)
from audio.data.tags import INSTRUMENT_GROUPS, TEMPO_CLASSES

# bump when the rendering or the plan changes, so old caches are not reused
MULTITRACK_VERSION = 1
VOICE_PROGRAMS = (52, 53)  # Choir Aahs, Voice Oohs
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39)  # GM bass family
OTHER_PROGRAMS = tuple(p for group, programs in INSTRUMENT_GROUPS.items() if group != "choir" for p in programs)
KICK, SNARE, HIHAT, OPEN_HIHAT, RIDE, CRASH, TOM = 36, 38, 42, 46, 51, 49, 45
PANS = {"drums": 0.2, "bass": 0.1, "vocals": 0.2, "other": 0.7}  # max |pan| per source


@dataclass
class MultitrackSpec:
    """Everything that decides one rendered multitrack (`plan_multitracks`)."""

    name: str
    split: str
    clip: ClipSpec  # the chorale parts, each PartSpec.group naming its source
    pans: list[float]  # one per part of `clip`
    drum_pan: float
    drum_gain: float
    drum_seed: int


def plan_multitracks(scores: dict[str, ScoreNotes], counts: dict[str, int], seconds: float, seed: int) -> list[MultitrackSpec]:
    """Draw `counts[split]` tracks per split from composition-disjoint thirds (80/10/10) of `scores`.

    Scores with fewer than three parts are left out (a vocal, an inner and a bass part are needed).
    """
    rng = np.random.default_rng(seed)
    usable = sorted(c for c, n in scores.items() if len(n.parts) >= 3)
    if len(usable) < 3:
        raise ValueError(f"separation: only {len(usable)} corpus scores have three or more parts; need at least 3")
    order = [usable[i] for i in rng.permutation(len(usable))]
    n_valid = n_test = max(1, len(order) // 10)
    pools = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    tempos = list(TEMPO_CLASSES)
    specs = []
    for split in ("train", "valid", "test"):
        for i in range(counts.get(split, 0)):
            notes = scores[pools[split][i % len(pools[split])]]
            low, high = TEMPO_CLASSES[tempos[rng.integers(len(tempos))]]
            qpm = float(rng.uniform(low, high))
            window = seconds * qpm / 60.0
            start = float(np.floor(rng.uniform(0.0, max(notes.length - window, 0.0))))
            last = len(notes.parts) - 1
            parts = [PartSpec(0, int(rng.choice(VOICE_PROGRAMS)), "vocals", float(rng.uniform(*GAIN_RANGE)))]
            parts += [PartSpec(k, int(rng.choice(OTHER_PROGRAMS)), "other", float(rng.uniform(*GAIN_RANGE)))
                      for k in range(1, last)]
            parts.append(PartSpec(last, int(rng.choice(BASS_PROGRAMS)), "bass", float(rng.uniform(*GAIN_RANGE))))
            transpose = int(rng.integers(TRANSPOSE_RANGE[0], TRANSPOSE_RANGE[1] + 1))
            tempo = next(name for name, (lo, hi) in TEMPO_CLASSES.items() if lo <= qpm < hi)
            clip = ClipSpec(f"{split}{i:04d}", notes.composition, start, round(qpm, 3), tempo, transpose, parts)
            pans = [float(rng.uniform(-PANS[p.group], PANS[p.group])) for p in parts]
            specs.append(MultitrackSpec(f"{split}{i:04d}", split, clip, pans, float(rng.uniform(-PANS["drums"], PANS["drums"])),
                                        float(rng.uniform(*GAIN_RANGE)), int(rng.integers(2**31))))
    return specs


def drum_events(qpm: float, seconds: float, seed: int) -> list[tuple[float, int, int]]:
    """A seeded 4/4 drum pattern: `(time_s, GM drum key, velocity)` hits.

    Kick on beats 1 and 3 (and sometimes the "and" of 2 or 4), snare on 2 and 4, eighth-note
    hi-hat (or ride) with accents, a crash at the first downbeat and now and then a tom fill in a
    bar's last beat.
    """
    rng = np.random.default_rng(seed)
    beat = 60.0 / qpm
    cymbal = RIDE if rng.random() < 0.3 else HIHAT
    extra_kick = rng.random() < 0.5
    hits = []
    bars = int(math.ceil(seconds / (4 * beat)))
    for bar in range(bars):
        t0 = bar * 4 * beat
        fill = bar > 0 and rng.random() < 0.2
        for eighth in range(8):
            t = t0 + eighth * beat / 2
            if fill and eighth >= 6:
                hits.append((t, TOM, int(rng.integers(80, 110))))
                continue
            hits.append((t, cymbal if not (eighth == 7 and rng.random() < 0.2) else OPEN_HIHAT,
                         int(rng.integers(55, 75)) + (20 if eighth % 2 == 0 else 0)))
            if eighth in (0, 4) or (extra_kick and eighth == 5):
                hits.append((t, KICK, int(rng.integers(95, 120))))
            if eighth in (2, 6):
                hits.append((t, SNARE, int(rng.integers(90, 120))))
        if bar == 0 or (bar % 4 == 0 and rng.random() < 0.5):
            hits.append((t0, CRASH, 100))
    return sorted(h for h in hits if h[0] < seconds)


_DRUM_SYNTHS: dict[tuple[str, int], tuple[object, int]] = {}


def render_drums(qpm: float, seconds: float, sample_rate: int, seed: int, soundfont: Path | str = SOUNDFONT) -> np.ndarray:
    """`drum_events` on the GM drum kit (bank 128, channel 10): mono float32 `(samples,)`."""
    import tinysoundfont

    key = (str(soundfont), sample_rate)
    if key not in _DRUM_SYNTHS:  # one synthesizer per process: loading the soundfont costs more than a track
        synth = tinysoundfont.Synth(samplerate=sample_rate)
        _DRUM_SYNTHS[key] = (synth, synth.sfload(str(soundfont)))
    synth, sfid = _DRUM_SYNTHS[key]
    synth.program_select(9, sfid, 128, 0, is_drums=True)
    total = int(round(seconds * sample_rate))
    out = np.zeros((total, 2), dtype=np.float32)
    position = 0
    for time, note, velocity in [*drum_events(qpm, seconds, seed), (seconds, -1, 0)]:
        sample = min(int(round(time * sample_rate)), total)
        if sample > position:
            out[position:sample] = np.frombuffer(synth.generate(sample - position), dtype=np.float32).reshape(-1, 2)
            position = sample
        if note >= 0:
            synth.noteon(9, note, velocity)
    synth.sounds_off()
    synth.generate(sample_rate // 10)  # let the voices die out before the next track
    return out.mean(axis=1)


def _pan(mono: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan of `(samples,)` to `(samples, 2)`; pan in [-1, 1] (left to right)."""
    angle = (pan + 1.0) * math.pi / 4
    return np.stack([mono * math.cos(angle), mono * math.sin(angle)], axis=1) * math.sqrt(2.0)


def render_multitrack_track(spec: MultitrackSpec, notes: ScoreNotes, seconds: float, sample_rate: int) -> dict[str, np.ndarray]:
    """The four stereo sources `(samples, 2)` of one track, unscaled; the mixture is their sum."""
    _, parts = render_clip(spec.clip, notes, seconds, sample_rate)
    total = int(round(seconds * sample_rate))
    stems = {s: np.zeros((total, 2), dtype=np.float32) for s in SOURCES}
    for part, audio, pan in zip(spec.clip.parts, parts, spec.pans, strict=True):
        stems[part.group] += _pan(audio, pan).astype(np.float32)
    drums = render_drums(spec.clip.qpm, seconds, sample_rate, spec.drum_seed) * spec.drum_gain
    stems["drums"] += _pan(drums, spec.drum_pan).astype(np.float32)
    return stems


def _render_and_write(job: tuple[MultitrackSpec, ScoreNotes, float, int, str]) -> str:
    spec, notes, seconds, sample_rate, root = job
    stems = render_multitrack_track(spec, notes, seconds, sample_rate)
    peak = float(np.abs(sum(stems.values())).max())
    scale = PEAK / peak if peak > 0 else 1.0
    folder = Path(root) / ("test" if spec.split == "test" else "train") / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    quantized = {s: np.round(np.clip(a * scale, -1, 1) * 32767).astype(np.int16) for s, a in stems.items()}
    for source, pcm in quantized.items():
        sf.write(folder / f"{source}.wav", pcm, sample_rate, subtype="PCM_16")
    # the mixture is the sum of the written stems (at most a sum of 16-bit steps away from exact)
    mixture = np.clip(sum(p.astype(np.int32) for p in quantized.values()), -32768, 32767).astype(np.int16)
    sf.write(folder / "mixture.wav", mixture, sample_rate, subtype="PCM_16")
    return spec.name


def render_multitrack(counts: dict[str, int] | None = None, seed: int = 0, seconds: float = 8.0, sample_rate: int = 16000,
                      composers: tuple[str, ...] = ("bach",), max_compositions: int | None = None,
                      cache_dir: Path | str | None = None, workers: int = 2, progress: bool = True) -> Path:
    """Render (or find in the cache) the four-source set; returns its MUSDB-layout root.

    Args:
        counts: tracks per split (`train`, `valid`, `test`); default 96 / 8 / 16.
        seed: redraws every choice (compositions per split, excerpts, programs, tempo, pans, drums).
        seconds: length of every track.
        sample_rate: audio rate written.
        composers: music21 corpus composers whose scores are used.
        max_compositions: the first N scores only (a quick demo).
        cache_dir: cache root (default `~/.cache/attn-suite/audio`, shared with the tagging set's parsed scores).
        workers: rendering processes.
        progress: show progress bars.
    """
    counts = dict(counts or {"train": 96, "valid": 8, "test": 16})
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE
    compositions = composition_paths(composers, max_compositions)
    settings = {"version": MULTITRACK_VERSION, "counts": counts, "seed": seed, "seconds": seconds,
                "sample_rate": sample_rate, "compositions": compositions}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    root = cache_dir / "separation" / key
    done = root / "settings.json"
    if done.exists():
        return root
    scores = load_scores(compositions, cache_dir, workers)
    specs = plan_multitracks(scores, counts, seconds, seed)
    jobs = [(spec, scores[spec.clip.composition], seconds, sample_rate, str(root)) for spec in specs]
    parallel_map(_render_and_write, jobs, workers, "rendering multitracks", progress=progress)
    (root / "validation_tracks.txt").write_text("\n".join(s.name for s in specs if s.split == "valid"))
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings, indent=1))
    os.replace(tmp, done)  # last: its presence marks a complete set
    return root


class SegmentDataset(Dataset):
    """Random training segments with Demucs' augmentation: `{"mixture": (2, n), "sources": (4, 2, n)}`.

    Args:
        tracks: the training tracks.
        sample_rate: rate of the segments (tracks at another rate are resampled).
        segment_samples: segment length at `sample_rate`.
        samples_per_epoch: items of one epoch (segments are drawn anew each time).
        remix: draw each source from its own random track and offset (else all from one).
        gain_range: each source is scaled by a uniform draw from this range (`(1, 1)`: off).
        flip: flip each source's sign with probability 1/2.
        swap: swap each source's left and right channels with probability 1/2.
    """

    def __init__(self, tracks: list[Track], sample_rate: int, segment_samples: int, samples_per_epoch: int,
                 remix: bool = True, gain_range: tuple[float, float] = (0.25, 1.25), flip: bool = True,
                 swap: bool = True) -> None:
        if not tracks:
            raise ValueError("SegmentDataset: no training tracks")
        self.tracks, self.sample_rate, self.segment = tracks, sample_rate, segment_samples
        self.samples_per_epoch, self.remix, self.gain_range, self.flip, self.swap = samples_per_epoch, remix, gain_range, flip, swap
        self.info = [t.info() for t in tracks]  # (rate, frames): checks every track once, naming a bad one

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sources = []
        shared = int(torch.randint(len(self.tracks), ()))
        shared_start = None  # without remixing every source is cut at the same place of the same track
        for source in SOURCES:
            k = int(torch.randint(len(self.tracks), ())) if self.remix else shared
            rate, frames = self.info[k]
            need = int(math.ceil(self.segment * rate / self.sample_rate))
            start = int(torch.randint(max(frames - need, 0) + 1, ())) if self.remix or shared_start is None else shared_start
            shared_start = start
            samples, _ = sf.read(str(self.tracks[k].stems[source]), start=start, frames=need, dtype="float32", always_2d=True)
            x = torch.from_numpy(samples.T.copy())
            x = x.expand(2, -1).clone() if x.shape[0] == 1 else x
            if rate != self.sample_rate:
                x = AF.resample(x, rate, self.sample_rate)
            sources.append(torch.nn.functional.pad(x[:, :self.segment], (0, max(0, self.segment - x.shape[1]))))
        sources = torch.stack(sources)
        low, high = self.gain_range
        sources = sources * (low + (high - low) * torch.rand(len(SOURCES), 1, 1))
        if self.flip:
            sources = sources * (torch.randint(2, (len(SOURCES), 1, 1)) * 2 - 1)
        if self.swap:
            swapped = torch.rand(len(SOURCES)) < 0.5
            sources[swapped] = sources[swapped].flip(1)
        return {"mixture": sources.sum(0), "sources": sources}


class TrackDataset(Dataset):
    """Whole tracks for evaluation: `{"mixture": (2, n), "sources": (4, 2, n), "index": ()}` at `sample_rate`.

    Args:
        tracks: the tracks.
        sample_rate: the rate read (resampled when a track has another).
        max_seconds: read at most this many seconds from each track's start (None: all of it).
    """

    def __init__(self, tracks: list[Track], sample_rate: int, max_seconds: float | None = None) -> None:
        self.tracks, self.sample_rate, self.max_seconds = tracks, sample_rate, max_seconds

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        track = self.tracks[index]
        rate, _ = track.info()
        frames = -1 if self.max_seconds is None else int(self.max_seconds * rate)
        mixture, sources = track.read(self.sample_rate, 0, frames)
        return {"mixture": mixture, "sources": sources, "index": torch.tensor(index)}


class SongFiles(Dataset):
    """The user's songs for separating, decoded when read (`audio.data.io.load_song`).

    An item is `{"mixture": (channels, length), "rate": Hz or None (a .npy array: the model's), "index"}`,
    or `{"index", "error"}` for a song that fails to decode (the task reports it as skipped).

    Args:
        files: the audio (or `.npy`) files.
    """

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Tensor | int | str | None]:
        try:
            mixture, rate = load_song(self.files[index])
        except AudioReadError as err:
            return {"index": index, "error": str(err)}
        return {"mixture": mixture, "rate": rate, "index": index}


def song_folders(names: list[str]) -> list[str]:
    """The output folder of each song: its name without the suffix, or with it where two songs would share one."""
    plain = [str(Path(n).with_suffix("")) if Path(n).suffix else n for n in names]
    shared = {p for p in plain if plain.count(p) > 1}
    return [n if p in shared else p for n, p in zip(names, plain, strict=True)]


class SeparationDataModule(L.LightningDataModule):
    """Four-source separation data: the rendered default or a MUSDB18-HQ-layout folder.

    Args:
        format: `rendered` (embedded default, `render_multitrack`) or `musdb` (a MUSDB18-HQ layout at `path`).
        path: the MUSDB18-HQ-layout root (`musdb`).
        dataset: dataset name for MLflow (default `rendered`, or `MUSDB18-HQ` for `musdb`).
        sample_rate: rate the models see (tracks at other rates are resampled).
        segment_seconds: training segment length.
        batch_size: training segments per batch (evaluation takes one whole track at a time).
        samples_per_epoch: training segments per epoch.
        remix: Demucs' remixing of sources across tracks.
        gain_min: lower bound of the random source gain.
        gain_max: upper bound (set both to 1 for no gain augmentation).
        flip: random sign flips per source.
        swap: random channel swaps per source.
        eval_seconds: evaluate on at most this many seconds from each track's start (None: whole tracks).
        num_tracks: rendered tracks per split, `{train, valid, test}`.
        track_seconds: length of the rendered tracks.
        max_compositions: render from the first N corpus scores only.
        seed: redraws the rendered set.
        cache_dir: rendering cache (default `~/.cache/attn-suite/audio`).
        workers: rendering processes.
        progress: show the rendering progress bar.
        num_workers: DataLoader workers.
        predict_path: a song or a folder of songs to separate (`attn predict --predict_path`; module
            docstring); predicting needs only the checkpoint, not the training data.
    """

    def __init__(self, format: Literal["rendered", "musdb"] = "rendered", path: str | None = None, dataset: str | None = None,
                 sample_rate: int = 16000, segment_seconds: float = 2.0, batch_size: int = 4, samples_per_epoch: int = 400,
                 remix: bool = True, gain_min: float = 0.25, gain_max: float = 1.25, flip: bool = True, swap: bool = True,
                 eval_seconds: float | None = None, num_tracks: dict[str, int] | None = None, track_seconds: float = 8.0,
                 max_compositions: int | None = None, seed: int = 0, cache_dir: str | None = None, workers: int = 2,
                 progress: bool = True, num_workers: int = 0, predict_path: str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        if format == "musdb" and path is None:
            raise ValueError("SeparationDataModule: format 'musdb' needs `path` (a MUSDB18-HQ-layout folder)")
        self.format, self.path, self.sample_rate = format, path, sample_rate
        self.segment_samples = int(round(segment_seconds * sample_rate))
        self.dataset_name = dataset or ("rendered" if format == "rendered" else "MUSDB18-HQ")
        self.sources = list(SOURCES)
        self.layout = None
        self.predict_path = predict_path
        self.predict_names: list[str] = []
        self.predict_folders: list[str] = []
        self.predict_skipped = 0

    def prepare_data(self) -> None:
        predicting = self.trainer is not None and self.trainer.state.fn == "predict"
        if self.format == "rendered" and not predicting:  # predicting reads the user's songs only
            self._rendered_root()

    def _rendered_root(self) -> Path:
        h = self.hparams
        return render_multitrack(h.num_tracks, h.seed, h.track_seconds, self.sample_rate, max_compositions=h.max_compositions,
                                 cache_dir=h.cache_dir, workers=h.workers, progress=h.progress)

    def setup(self, stage: str | None = None) -> None:
        if self.layout is not None or stage == "predict":
            return
        root = self._rendered_root() if self.format == "rendered" else Path(self.path)
        self.layout = read_musdb(root)
        h = self.hparams
        self.train_set = SegmentDataset(self.layout.splits["train"], self.sample_rate, self.segment_samples, h.samples_per_epoch,
                                        h.remix, (h.gain_min, h.gain_max), h.flip, h.swap) if self.layout.splits["train"] else None
        self.val_set = TrackDataset(self.layout.splits["valid"], self.sample_rate, h.eval_seconds)
        self.test_set = TrackDataset(self.layout.splits["test"], self.sample_rate, h.eval_seconds)

    def data_counts(self) -> dict[str, int]:
        """Tracks per split and tracks skipped (for the run's params)."""
        return {**{f"{k}_tracks": len(v) for k, v in self.layout.splits.items()}, "skipped_tracks": len(self.layout.skipped)}

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            raise ValueError(f"{self.layout.root}: no training tracks (train/ is empty or missing)")
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.hparams.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1, num_workers=self.hparams.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=1, num_workers=self.hparams.num_workers)

    def predict_dataloader(self) -> DataLoader:
        """One whole song per batch (`SongFiles`); files that cannot be read are skipped, named on stderr and
        counted in `predict_skipped`."""
        if not self.predict_path:
            raise ValueError("SeparationDataModule: predict_path is not set; give a song or a folder of songs "
                             "(attn predict --predict_path PATH)")
        root, files, errors = predict_inputs(self.predict_path, max_channels=2)
        for error in errors:
            print(f"skipped {error}", file=sys.stderr)
        self.predict_skipped = len(errors)
        self.predict_names = [input_name(f, root) for f in files]
        self.predict_folders = song_folders(self.predict_names)
        return DataLoader(SongFiles(files), batch_size=1, collate_fn=one_item, num_workers=self.hparams.num_workers)
