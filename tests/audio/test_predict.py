"""`attn predict` on your own audio from a checkpoint alone: tags (window-averaged, as the test scores clips)
and stems (cross-faded segments, as `python -m audio.separate`), equal to the loaded model run by hand;
`attn test` from a checkpoint alone; the logged MLflow models serving raw arrays in a fresh process; bad
input in one line. One tiny tagger fit and one tiny HT Demucs fit serve every test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
from mlflow.tracking import MlflowClient

import core.lightning_cli  # noqa: F401 - Lightning and MLflow bind the real stderr before capsys tests
from audio.data.tags import RENDERED_TAGS
from audio.models.mel import SILENCE_DB, LogMel
from audio.separate import Separator
from audio.separation_task import SeparationTask
from audio.tag import main as tag_main
from audio.tasks import TaggingTask
from core.cli import main

from .conftest import TINY
from .helpers import tone, write_wav

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--trainer.enable_progress_bar=false"]
SOURCES = ["drums", "bass", "other", "vocals"]
RATE, SEGMENT = 16000, 16000  # the tiny separator: 16 kHz, 1-s segments


def tagger_fit(cache: Path, root: Path) -> list[str]:
    data, model = "--data.init_args", "--model.init_args.model.init_args"
    return [
        "fit", "--config", str(ROOT / "audio" / "configs" / "tagger_rendered.yaml"),
        f"{data}.num_clips={TINY['num_clips']}", f"{data}.max_compositions={TINY['max_compositions']}",
        f"{data}.clip_seconds={TINY['clip_seconds']}", f"{data}.cache_dir={cache}", f"{data}.render_workers=1",
        f"{data}.input_seconds=2.0", f"{data}.eval_windows=2", f"{data}.batch_size=8", f"{data}.progress=false",
        f"{model}.n_channels=4", f"{model}.num_layers=1", f"{model}.num_heads=2", f"{model}.kernel=math",
        "--trainer.max_steps=2", "--trainer.val_check_interval=2", f"--trainer.default_root_dir={root}",
        "--log_model=true", *QUIET,
    ]


def separator_fit(cache: Path, root: Path) -> list[str]:
    data, model = "--data.init_args", "--model.init_args.model.init_args"
    return [
        "fit", "--config", str(ROOT / "audio" / "configs" / "htdemucs_rendered.yaml"),
        f"{data}.num_tracks={{train: 3, valid: 1, test: 1}}", f"{data}.track_seconds=2.0", f"{data}.max_compositions=10",
        f"{data}.cache_dir={cache}", f"{data}.workers=1", f"{data}.progress=false", f"{data}.samples_per_epoch=2",
        f"{data}.batch_size=2", f"{data}.segment_seconds=1.0", f"{model}.segment=1.0", f"{model}.hidden_channels=8",
        f"{model}.depth=2", f"{model}.nfft=256", f"{model}.t_layers=1", f"{model}.t_heads=2", f"{model}.kernel=math",
        "--trainer.max_steps=1", "--trainer.val_check_interval=1", f"--trainer.default_root_dir={root}",
        "--log_model=true", *QUIET,
    ]


@pytest.fixture(scope="module")
def fits(tiny_rendered, audio_cache, tmp_path_factory):
    """Both fits (models logged) in one scratch store: folder, uri, checkpoints and fit runs."""
    folder = tmp_path_factory.mktemp("audio-predict")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            mp.chdir(folder)
            main(tagger_fit(audio_cache, folder / "tag"))
            main(separator_fit(audio_cache, folder / "sep"))
    finally:
        torch.set_num_threads(threads)
    client = MlflowClient(uri)
    runs = {name: client.search_runs([client.get_experiment_by_name(f"audio/{name}/rendered").experiment_id],
                                     "tags.subcommand = 'fit'")[0] for name in ("tagging", "separation")}
    (tag_ckpt,) = (folder / "tag").glob("*/*/checkpoints/last.ckpt")
    (sep_ckpt,) = (folder / "sep").glob("*/*/checkpoints/last.ckpt")
    return SimpleNamespace(folder=folder, uri=uri, tag_ckpt=tag_ckpt, sep_ckpt=sep_ckpt, runs=runs)


@pytest.fixture
def in_store(fits, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fits.uri)
    monkeypatch.chdir(fits.folder)
    return fits


def noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def read_stem(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return samples.T, rate


@pytest.mark.slow
def test_tags_of_a_folder_from_a_checkpoint_alone_are_the_window_averaged_model(in_store, capsys):
    songs, out = in_store.folder / "songs", in_store.folder / "tagged"
    write_wav(songs / "a.wav", 5.0, rate=22050)
    write_wav(songs / "sub" / "b.wav", 0.5, freq=880.0)
    (songs / "bad.wav").write_bytes(b"not audio")
    (songs / "cover.jpg").write_bytes(b"\xff\xd8\xff")  # not an audio suffix: ignored
    capsys.readouterr()
    empty = in_store.folder / "no-cache"
    main(["predict", "--ckpt_path", str(in_store.tag_ckpt), "--predict_path", str(songs), "--output", str(out),
          f"--data.init_args.cache_dir={empty}", *QUIET])
    assert not empty.exists()  # predicting read no training data (nothing rendered, no features cached)
    err = capsys.readouterr().err
    assert "skipped" in err and "bad.wav: cannot decode audio" in err and "1 input(s) skipped" in err
    assert "cover.jpg" not in err
    table = pd.read_csv(out / "predicted_tags.csv", float_precision="round_trip")
    assert table["file"].tolist() == ["a.wav", "sub/b.wav"]
    # 5 s -> 313 frames: 126-frame (2-s) windows every 63 frames start at 0, 63, 126, 187; 0.5 s is one padded window
    assert table["windows"].tolist() == [4, 1] and table["seconds"].tolist() == [5.0, 0.5]

    checkpoint = torch.load(in_store.tag_ckpt, map_location="cpu", weights_only=True)
    assert checkpoint["TaggingDataModule"] == {"tags": list(RENDERED_TAGS)}  # what predicting restores
    tags = list(table.columns[4:])
    assert tags == list(RENDERED_TAGS)

    task = TaggingTask.load_from_checkpoint(in_store.tag_ckpt, map_location="cpu").eval()  # no YAML
    front = LogMel(16000, 512, 256, 128, 0.0, 8000.0)
    samples, rate = sf.read(songs / "a.wav", dtype="float32")
    mel_a = front(AF.resample(torch.from_numpy(samples), rate, 16000))
    assert mel_a.shape == (128, 313)
    mel_b = front(torch.from_numpy(sf.read(songs / "sub" / "b.wav", dtype="float32")[0]))
    mel_b = torch.nn.functional.pad(mel_b, (0, 126 - mel_b.shape[1]), value=SILENCE_DB)
    with torch.no_grad():
        expected = torch.stack([
            torch.sigmoid(task.model(torch.stack([mel_a[:, s:s + 126] for s in (0, 63, 126, 187)]))).mean(0),
            torch.sigmoid(task.model(mel_b[None])).mean(0),
        ]).double()
    torch.testing.assert_close(torch.from_numpy(table[tags].to_numpy()), expected, atol=1e-5, rtol=0)
    for row, scores in zip(table["top_tags"], expected, strict=True):
        assert row.split(";") == [tags[k] for k in torch.argsort(-scores, stable=True)[:5].tolist()]

    # `python -m audio.tag` is the same code path: the same numbers, bit for bit
    assert tag_main(["--ckpt_path", str(in_store.tag_ckpt), str(songs / "a.wav"), str(songs / "sub" / "b.wav"),
                     "--output", str(in_store.folder / "by-tag")]) == 0
    again = pd.read_csv(in_store.folder / "by-tag" / "predicted_tags.csv", float_precision="round_trip")
    np.testing.assert_array_equal(again[tags].to_numpy(), table[tags].to_numpy())


@pytest.mark.slow
def test_stems_of_a_folder_from_a_checkpoint_alone_are_the_models_segments(in_store, capsys):
    songs, out = in_store.folder / "mixes", in_store.folder / "stems"
    songs.mkdir()
    short = noise((2, 12000), 0)  # 0.75 s of stereo at the model's rate: one padded segment
    sf.write(songs / "short.wav", short.T, RATE, subtype="FLOAT")
    sf.write(songs / "long.flac", tone(2.5, 22050, 330.0), 22050)  # mono at 22.05 kHz: 3 segments at 16 kHz
    sf.write(songs / "three.wav", noise((RATE, 3), 1), RATE, subtype="FLOAT")
    capsys.readouterr()
    empty = in_store.folder / "no-cache"
    main(["predict", "--ckpt_path", str(in_store.sep_ckpt), "--predict_path", str(songs), "--output", str(out),
          f"--data.init_args.cache_dir={empty}", *QUIET])
    assert not empty.exists()  # predicting rendered nothing
    err = capsys.readouterr().err
    assert "three.wav: expected mono or stereo audio; found 3 channels" in err and "1 input(s) skipped" in err
    manifest = pd.read_csv(out / "stems.csv")
    assert manifest["file"].tolist() == ["long.flac", "short.wav"]
    assert manifest["sample_rate"].tolist() == [22050, RATE] and manifest["channels"].tolist() == [1, 2]
    assert manifest[SOURCES].iloc[1].tolist() == [f"short/{s}.wav" for s in SOURCES]
    assert not list(out.glob(".separating-*"))  # the spool is gone

    task = SeparationTask.load_from_checkpoint(in_store.sep_ckpt, map_location="cpu").eval()  # no YAML
    with torch.no_grad():
        expected = task.model(torch.nn.functional.pad(torch.from_numpy(short), (0, SEGMENT - 12000))[None])[0, ..., :12000]
    written = [read_stem(out / "short" / f"{s}.wav") for s in SOURCES]
    assert all(rate == RATE for _, rate in written)
    torch.testing.assert_close(torch.from_numpy(np.stack([w for w, _ in written])), expected, atol=1e-5, rtol=1e-4)

    # `python -m audio.separate` is the same code path, and the model only ever sees one segment
    separator = Separator.from_checkpoint(in_store.sep_ckpt)
    seen = []
    separator.model.register_forward_hook(lambda module, args, output: seen.append(tuple(args[0].shape)))
    files = separator.separate_file(songs / "long.flac", in_store.folder / "by-separate", progress=False)
    assert seen == [(1, 2, SEGMENT)] * 3  # 40,000 samples at 16 kHz: segments at 0, 12,000 and 24,000
    for source, file in zip(SOURCES, files, strict=True):
        stem, rate = read_stem(out / "long" / f"{source}.wav")
        assert rate == 22050 and stem.shape == (1, 55125)
        np.testing.assert_array_equal(stem, read_stem(file)[0])


@pytest.mark.slow
def test_test_runs_from_a_checkpoint_alone(in_store):
    main(["test", "--ckpt_path", str(in_store.tag_ckpt), *QUIET])
    fit = in_store.runs["tagging"]
    (run,) = MlflowClient(in_store.uri).search_runs([fit.info.experiment_id], "tags.subcommand = 'test'")
    assert "test/roc_auc" in run.data.metrics and run.data.tags["checkpoint_run"] == fit.info.run_id


SERVE = """
import sys, numpy as np, mlflow
tags = mlflow.pyfunc.load_model(sys.argv[1]).predict(np.load(sys.argv[3]))
tags.to_csv(sys.argv[5], index=False)
np.save(sys.argv[6], mlflow.pyfunc.load_model(sys.argv[2]).predict(np.load(sys.argv[4])))
"""


@pytest.mark.slow
def test_the_logged_models_serve_raw_arrays_in_a_fresh_process(in_store):
    folder = in_store.folder / "served"
    folder.mkdir()
    clip = tone(1.2, RATE, 523.0)  # mono samples at the model's rate
    song = noise((2, RATE), 2)  # (channels, samples); the signature of the example fixes 16,000 samples
    np.save(folder / "clip.npy", clip)
    np.save(folder / "song.npy", song)
    uris = [in_store.runs[name].data.tags["model_uri"] for name in ("tagging", "separation")]
    env = {**os.environ, "MLFLOW_TRACKING_URI": in_store.uri, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SERVE, *uris, str(folder / "clip.npy"), str(folder / "song.npy"),
                           str(folder / "tags.csv"), str(folder / "stems.npy")],
                          capture_output=True, text=True, env=env, cwd=in_store.folder, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    main(["predict", "--ckpt_path", str(in_store.tag_ckpt), "--predict_path", str(folder / "clip.npy"),
          "--output", str(folder / "tagged"), *QUIET])
    direct = pd.read_csv(folder / "tagged" / "predicted_tags.csv", float_precision="round_trip")
    served = pd.read_csv(folder / "tags.csv", float_precision="round_trip")
    assert list(served.columns) == list(RENDERED_TAGS) and len(served) == 1
    assert direct["windows"].tolist() == [1]  # 1.2 s: one padded 2-s window
    np.testing.assert_array_equal(served.to_numpy(), direct[list(RENDERED_TAGS)].to_numpy())

    main(["predict", "--ckpt_path", str(in_store.sep_ckpt), "--predict_path", str(folder / "song.npy"),
          "--output", str(folder / "separated"), *QUIET])
    stems = np.load(folder / "stems.npy")
    assert stems.shape == (4, 2, RATE) and stems.dtype == np.float32
    for k, source in enumerate(SOURCES):
        stem, rate = read_stem(folder / "separated" / "song" / f"{source}.wav")
        assert rate == RATE  # a .npy is at the model's rate
        np.testing.assert_array_equal(stems[k], stem)


def bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("not audio\n")
    (folder / "covers").mkdir(exist_ok=True)
    (folder / "covers" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    sf.write(folder / "nan.wav", np.full(1600, np.nan, dtype=np.float32), RATE, subtype="FLOAT")
    np.save(folder / "wrong.npy", noise((RATE, 2), 3))
    sf.write(folder / "three.wav", noise((RATE, 3), 4), RATE, subtype="FLOAT")
    return {p.name: p for p in folder.iterdir()}


@pytest.mark.slow
@pytest.mark.parametrize(("task", "name", "message"), [
    ("tag", "notes.txt", "notes.txt: cannot decode audio"),
    ("tag", "covers", "covers: no audio file in this folder; give wav, flac, ogg or mp3 audio"),
    ("tag", "nan.wav", "nan.wav: the samples hold NaN or infinite values"),
    ("sep", "wrong.npy", "wrong.npy: expected (channels, samples); found shape (16000, 2) (more channels than samples: transpose it)"),
    ("sep", "three.wav", "three.wav: expected mono or stereo audio; found 3 channels"),
])
def test_bad_input_is_one_line_naming_the_file(in_store, capsys, task, name, message):
    path = bad_inputs(in_store.folder / "bad")[name]
    ckpt = in_store.tag_ckpt if task == "tag" else in_store.sep_ckpt
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(ckpt), "--predict_path", str(path), "--output",
              str(in_store.folder / "bad-out"), *QUIET], friendly=True)
    lines = capsys.readouterr().err.strip().splitlines()
    at = next(i for i, line in enumerate(lines) if ": error: " in line)
    assert message in lines[at] and len(lines) - at <= 2, lines
