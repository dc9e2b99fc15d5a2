"""A folder of audio files with a CSV of their tags: the format for a user's own collection.

    <root>/tags.csv      columns `file` (path relative to <root>) and `tags` (`;`-separated names),
                         optionally `split` (train / valid / test) and `group` (e.g. the album:
                         clips of one group never cross splits)
    <root>/<file>        any format soundfile decodes (wav, flac, ogg, mp3)

Without a `split` column, groups (each file its own without a `group` column) are split 80/10/10
at random with the DataModule's seed. Tags are every name that occurs, sorted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audio.data.mtat import SPLITS, TagTable

TAGS_CSV = "tags.csv"


def read_folder(root: Path | str, csv_name: str = TAGS_CSV, seed: int = 0,
                fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> TagTable:
    """The clips listed in `<root>/<csv_name>` (layout in the module docstring)."""
    root = Path(root)
    path = root / csv_name
    if not path.exists():
        raise FileNotFoundError(f"{path}: tag CSV not found (a folder dataset needs {csv_name} with columns file, tags)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing_columns = [c for c in ("file", "tags") if c not in frame.columns]
    if missing_columns:
        raise ValueError(f"{path}: columns {missing_columns} missing; found {list(frame.columns)}")
    if "split" in frame.columns:
        bad = sorted(set(frame["split"]) - set(SPLITS))
        if bad:
            raise ValueError(f"{path}: column 'split' holds {bad}; allowed {list(SPLITS)}")
    tag_lists = [[t.strip() for t in row.split(";") if t.strip()] for row in frame["tags"]]
    tags = sorted({t for row in tag_lists for t in row})
    if not tags:
        raise ValueError(f"{path}: column 'tags' names no tag")
    index = {t: k for k, t in enumerate(tags)}
    labels = np.zeros((len(frame), len(tags)), dtype=np.float32)
    for i, row in enumerate(tag_lists):
        labels[i, [index[t] for t in row]] = 1.0
    groups = list(frame["group"]) if "group" in frame.columns else list(frame["file"])
    if "split" in frame.columns:
        split = list(frame["split"])
    else:
        split = group_split(groups, seed, fractions)
    files, rows, missing = [], [], []
    for i, name in enumerate(frame["file"]):
        file = root / name
        if file.exists():
            files.append(file)
            rows.append(i)
        else:
            missing.append(file)
    return TagTable(files, labels[rows], tags, [split[i] for i in rows], [groups[i] for i in rows], missing)


def group_split(groups: list[str], seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> list[str]:
    """A split name per item such that no group spans two splits: groups shuffled with `seed`, cut by `fractions`."""
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_train = int(round(fractions[0] * len(unique)))
    n_valid = int(round(fractions[1] * len(unique)))
    name = {}
    for rank, k in enumerate(order):
        name[unique[k]] = "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
    return [name[g] for g in groups]
