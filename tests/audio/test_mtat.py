"""The MagnaTagATune reader on a fixture in the exact layout: tab-separated quoted annotations, relative mp3 paths, split lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio.data.mtat import read_mtat

from .helpers import tone

TAGS = ["guitar", "classical", "slow", "techno", "strings", "drums"]
# clip_id, tags (by TAGS order), mp3_path: folders 0-b train, c valid, d-f test in the directory split
CLIPS = [
    (2, [1, 1, 1, 0, 1, 0], "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3"),
    (6, [0, 1, 1, 0, 1, 0], "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-88-117.mp3"),
    (10, [1, 0, 0, 1, 0, 1], "c/jacob_heringman-josquin_des_prez_lute_music-19-gintzler__pater_noster-59-88.mp3"),
    (11, [1, 1, 0, 0, 0, 0], "0/paul_berget-the_siena_manuscript_on_steel_string_guitar-01-ferrara-0-29.mp3"),
    (15, [0, 0, 0, 1, 0, 1], "0/electric_frankenstein-dead_and_back-03-rock_and_roll-30-59.mp3"),
    (17, [1, 1, 1, 0, 0, 0], "9/the_strands-the_strands-05-march-117-146.mp3"),
]


def write_mtat(root: Path, with_audio: bool = True, skip_audio: tuple[int, ...] = ()) -> Path:
    header = "\t".join(f'"{c}"' for c in ["clip_id", *TAGS, "mp3_path"])
    lines = [header]
    for k, (clip_id, labels, path) in enumerate(CLIPS):
        lines.append("\t".join(f'"{v}"' for v in [clip_id, *labels, path]))
        if with_audio and k not in skip_audio:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / path, tone(1.0, 16000, 220.0 * (k + 1)), 16000, format="MP3")
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    split = root / "split"
    split.mkdir(exist_ok=True)
    # the authors' lists: numpy arrays of "<index>\t<mp3_path>" strings
    for name, rows in {"train": [3, 4, 5], "valid": [2], "test": [0, 1]}.items():
        np.save(split / f"{name}.npy", np.array([f"{r}\t{CLIPS[r][2]}" for r in rows]))
    return root


def test_top_tags_labels_and_cleaned_split(tmp_path):
    table = read_mtat(write_mtat(tmp_path), split="cleaned", top_k=3)
    # frequencies: guitar 4, classical 4, slow 3, techno 2, strings 2, drums 2 -> ties by column order
    assert table.tags == ["guitar", "classical", "slow"]
    by_name = {f.relative_to(tmp_path).as_posix(): (s, lab.tolist()) for f, s, lab in zip(table.files, table.split, table.labels, strict=True)}
    assert by_name[CLIPS[0][2]] == ("test", [1.0, 1.0, 1.0])
    assert by_name[CLIPS[2][2]] == ("valid", [1.0, 0.0, 0.0])
    assert by_name[CLIPS[4][2]] == ("train", [0.0, 0.0, 0.0])
    assert table.missing == []
    # one song's segments share a group
    assert table.groups[table.files.index(tmp_path / CLIPS[0][2])] == table.groups[table.files.index(tmp_path / CLIPS[1][2])]


def test_directory_split_and_missing_files(tmp_path):
    table = read_mtat(write_mtat(tmp_path, skip_audio=(5,)), split="directory", top_k=6)
    split = {f.relative_to(tmp_path).as_posix(): s for f, s in zip(table.files, table.split, strict=True)}
    assert split == {CLIPS[0][2]: "test", CLIPS[1][2]: "test", CLIPS[2][2]: "valid", CLIPS[3][2]: "train", CLIPS[4][2]: "train"}
    assert table.missing == [tmp_path / CLIPS[5][2]]
    assert table.labels.shape == (5, 6)


def test_mtat_datamodule_decodes_mp3(tmp_path):
    from audio.data import TaggingDataModule

    data = TaggingDataModule(format="mtat", path=str(write_mtat(tmp_path / "mtat")), top_k=3, input_seconds=2.0, eval_windows=2,
                             cache_dir=str(tmp_path / "cache"), progress=False)
    data.setup()
    assert data.dataset_name == "MTAT" and data.num_tags == 3
    assert data.data_counts() == {"train_clips": 3, "val_clips": 1, "test_clips": 2, "skipped_files": 0,
                                  "missing_files": 0, "padded_clips": 6}
    batch = next(iter(data.test_dataloader()))
    assert batch["mel"].shape == (2, 2, 128, data.input_frames) and batch["labels"].shape == (2, 3)


def test_missing_columns_are_named(tmp_path):
    (tmp_path / "annotations_final.csv").write_text("clip_id,guitar,mp3_path\n1,0,a/b.mp3\n")
    with pytest.raises(ValueError, match="annotations_final.csv: columns .* missing.*tab-separated"):
        read_mtat(tmp_path, split="directory")
