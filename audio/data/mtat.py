"""MagnaTagATune (Law et al. 2009) in the layout the tagging literature uses.

    <root>/annotations_final.csv    tab-separated, every field double-quoted: clip_id, 188 tag columns
                                    (0/1), mp3_path (relative, e.g. f/artist-album-01-track-30-59.mp3)
    <root>/<mp3_path>               the audio (or under <root>/<audio_dir>/)
    <root>/split/train.npy ...      the cleaned split (only for split="cleaned"; see below)

Tags: the `top_k` most frequent tag columns (50 in the literature; ties by column order).

Splits:
- `cleaned`: the split of the literature's comparison tables (Won et al. 2020, the lists in
  minzwon/sota-music-tagging-models `split/mtat/{train,valid,test}.npy`; clips without any of the
  top-50 tags removed): each list holds `"<index>\\t<mp3_path>"` strings (or one path per line in a
  `.txt` / `.tsv`); clips are matched by `mp3_path`.
- `directory`: the split by the first character of `mp3_path` (Dieleman & Schrauwen 2014): folders
  0-9 and a-b train, c validation, d-f test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

SPLITS = ("train", "valid", "test")
DIRECTORY_SPLIT = {**{c: "train" for c in "0123456789ab"}, "c": "valid", **{c: "test" for c in "def"}}


@dataclass
class TagTable:
    """Clips with their audio files, multi-hot tags and split.

    Attributes:
        files: audio path of every clip.
        labels: `(clips, tags)` 0/1 float32.
        tags: tag names (columns of `labels`).
        split: `"train"`, `"valid"` or `"test"` per clip.
        groups: a group per clip that no split may share (a composition, an artist, a file).
        missing: referenced audio files that do not exist (left out of `files`).
    """

    files: list[Path]
    labels: np.ndarray
    tags: list[str]
    split: list[str]
    groups: list[str]
    missing: list[Path]


def read_annotations(path: Path | str) -> pd.DataFrame:
    """`annotations_final.csv` as a DataFrame (ValueError naming the file when columns are missing)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: MagnaTagATune annotations not found (expected annotations_final.csv)")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ("clip_id", "mp3_path") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: columns {missing} missing; found {list(frame.columns)[:5]}... (is it tab-separated?)")
    return frame


def top_tags(frame: pd.DataFrame, top_k: int = 50) -> list[str]:
    """The `top_k` most frequent tag columns, most frequent first (stable for ties)."""
    tag_columns = [c for c in frame.columns if c not in ("clip_id", "mp3_path")]
    counts = frame[tag_columns].astype(int).sum(axis=0)
    order = sorted(range(len(tag_columns)), key=lambda i: (-counts.iloc[i], i))
    return [tag_columns[i] for i in order[:top_k]]


def read_split_list(path: Path) -> list[str]:
    """mp3 paths of one split list: a `.npy` of `"index\\tpath"` strings, or a text file of such lines or bare paths."""
    if path.suffix == ".npy":
        lines = [str(x) for x in np.load(path, allow_pickle=False)]
    else:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [line.split("\t")[-1].strip() for line in lines]


def read_mtat(root: Path | str, split: Literal["cleaned", "directory"] = "cleaned", top_k: int = 50,
              audio_dir: str = "", split_dir: str = "split") -> TagTable:
    """The MagnaTagATune clips of `root` (layout in the module docstring) with their top-`top_k` tags."""
    root = Path(root)
    frame = read_annotations(root / "annotations_final.csv")
    tags = top_tags(frame, top_k)
    if split == "cleaned":
        where = {}
        for name in SPLITS:
            candidates = [root / split_dir / f"{name}{ext}" for ext in (".npy", ".tsv", ".txt")]
            found = next((c for c in candidates if c.exists()), None)
            if found is None:
                raise FileNotFoundError(f"{root / split_dir}: no {name}.npy/.tsv/.txt split list (split='cleaned')")
            where.update({p: name for p in read_split_list(found)})
        assigned = [where.get(p) for p in frame["mp3_path"]]
    elif split == "directory":
        assigned = [DIRECTORY_SPLIT.get(p[:1]) for p in frame["mp3_path"]]
    else:
        raise ValueError(f"read_mtat: split must be 'cleaned' or 'directory', got {split!r}")
    keep = [i for i, s in enumerate(assigned) if s is not None]
    labels = frame[tags].astype(np.float32).to_numpy()
    files, rows, missing = [], [], []
    for i in keep:
        file = root / audio_dir / frame["mp3_path"].iloc[i]
        if file.exists():
            files.append(file)
            rows.append(i)
        else:
            missing.append(file)
    # the album folder of an MTAT path (artist-album-track-start-end) keeps one song's segments together
    groups = ["-".join(Path(frame["mp3_path"].iloc[i]).stem.split("-")[:-3]) for i in rows]
    return TagTable(files, labels[rows], tags, [assigned[i] for i in rows], groups, missing)
