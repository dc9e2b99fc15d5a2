"""Bad input: unreadable and empty files are skipped with a warning naming them and counted; missing
files named by the tag CSV are counted; clips shorter than the input are padded and counted."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio.data import TaggingDataModule
from audio.data.folder import group_split, read_folder
from audio.data.io import AudioReadError, load_audio
from audio.models.mel import SILENCE_DB

from .helpers import write_wav


def make_folder(root):
    for k in range(8):
        write_wav(root / f"song{k}.wav", 3.0 if k else 1.0, freq=200.0 + 50 * k)  # song0 is shorter than the input
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    sf.write(root / "empty.wav", np.zeros((0, 1), dtype=np.float32), 16000)
    rows = ["file,tags,split"]
    rows += [f"song{k}.wav,{'rock;guitar' if k % 2 else 'piano'},{'test' if k >= 6 else 'train'}" for k in range(8)]
    rows += ["broken.wav,piano,train", "empty.wav,rock,train", "gone.wav,rock,train"]
    (root / "tags.csv").write_text("\n".join(rows) + "\n")
    return root


def test_load_audio_errors_name_the_file(tmp_path):
    folder = make_folder(tmp_path)
    with pytest.raises(AudioReadError, match="broken.wav: cannot decode audio"):
        load_audio(folder / "broken.wav", 16000)
    with pytest.raises(AudioReadError, match="empty.wav: the file holds no samples"):
        load_audio(folder / "empty.wav", 16000)


def test_bad_files_skipped_and_counted_short_clips_padded(tmp_path):
    folder = make_folder(tmp_path / "songs")
    data = TaggingDataModule(format="folder", path=str(folder), input_seconds=2.0, eval_windows=2,
                             cache_dir=str(tmp_path / "cache"), progress=False)
    assert data.num_tags == 3 and data.tags == ["guitar", "piano", "rock"]  # from the CSV, before setup
    with pytest.warns(UserWarning) as caught:
        data.setup()
    messages = [str(w.message) for w in caught]
    assert any("broken.wav: cannot decode audio" in m for m in messages)
    assert any("empty.wav: the file holds no samples" in m for m in messages)
    assert any("1 file(s) named in the tag table do not exist" in m and "gone.wav" in m for m in messages)
    assert data.data_counts() == {"train_clips": 6, "val_clips": 0, "test_clips": 2, "skipped_files": 2,
                                  "missing_files": 1, "padded_clips": 1}
    short = data.train_set.full(0)  # song0: 1 s, padded with silence to the 2-s input
    assert short.shape == (128, data.input_frames) and (short[:, -20:] == SILENCE_DB).all()
    # the second run reads the mel cache: the same clips, and the broken files are reported again
    again = TaggingDataModule(format="folder", path=str(folder), input_seconds=2.0, cache_dir=str(tmp_path / "cache"), progress=False)
    with pytest.warns(UserWarning, match="broken.wav"):
        again.setup()
    assert again.data_counts() == data.data_counts()


def test_folder_csv_errors_and_group_split(tmp_path):
    (tmp_path / "tags.csv").write_text("path,labels\na.wav,rock\n")
    with pytest.raises(ValueError, match=r"tags.csv: columns \['file', 'tags'\] missing"):
        read_folder(tmp_path)
    groups = [f"album{k // 3}" for k in range(30)]
    split = group_split(groups, seed=0)
    for name in ("train", "valid", "test"):
        mine = {g for g, s in zip(groups, split, strict=True) if s == name}
        others = {g for g, s in zip(groups, split, strict=True) if s != name}
        assert mine and not mine & others
