"""`attn fit` trains HT Demucs a few steps on a tiny rendered four-source set into a temporary MLflow store;
the separation command then splits a short WAV into four stems with the checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio.separate import Separator
from audio.separate import main as separate_main
from core.cli import main

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["drums", "bass", "other", "vocals"]


def tiny_args(config: str, cache: Path, root: Path) -> list[str]:
    data = "--data.init_args"
    return [
        "fit", "--config", str(ROOT / "audio" / "configs" / config),
        f"{data}.num_tracks={{train: 3, valid: 1, test: 1}}", f"{data}.track_seconds=2.0", f"{data}.max_compositions=10",
        f"{data}.cache_dir={cache}", f"{data}.workers=1", f"{data}.progress=false", f"{data}.samples_per_epoch=4",
        f"{data}.batch_size=2", "--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={root}", "--test_after_fit=true",
    ]


@pytest.mark.slow
def test_cli_trains_htdemucs_and_the_checkpoint_separates_a_song(audio_cache, tmp_path, store, capsys):
    model = "--model.init_args.model.init_args"
    main([*tiny_args("htdemucs_rendered.yaml", audio_cache, tmp_path), f"{model}.kernel=math"])
    experiment = store.get_experiment_by_name("audio/separation/rendered")
    assert experiment is not None
    (run,) = store.search_runs([experiment.experiment_id])
    assert run.data.tags["model"] == "HTDemucs" and run.data.tags["domain"] == "audio"
    assert run.data.tags["role"] == "model" and run.data.tags["kernel"] == "math"
    assert run.data.params["train_tracks"] == "3" and run.data.params["skipped_tracks"] == "0"
    names = {"test/sdr", "test/si_sdr", "val/sdr", *(f"test/sdr_{s}" for s in SOURCES)}
    assert names <= set(run.data.metrics)
    per_source = [run.data.metrics[f"test/sdr_{s}"] for s in SOURCES]
    assert run.data.metrics["test/sdr"] == pytest.approx(float(np.mean(per_source)), abs=1e-4)
    artifacts = {a.path for a in store.list_artifacts(run.info.run_id, "spectrograms")}
    assert "spectrograms/track_0.png" in artifacts

    (last,) = tmp_path.glob("*/*/checkpoints/last.ckpt")
    song = tmp_path / "song.wav"  # 3 s of stereo at 22.05 kHz: resampled to the model's 16 kHz and back
    t = np.arange(3 * 22050) / 22050
    sf.write(song, np.stack([np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 330 * t)], axis=1) * 0.5, 22050)
    capsys.readouterr()
    assert separate_main(["--ckpt_path", str(last), str(song)]) == 0
    for source in SOURCES:
        stem, rate = sf.read(tmp_path / f"song_{source}.wav", always_2d=True)
        assert rate == 22050 and stem.shape == (3 * 22050, 2) and np.isfinite(stem).all()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert separate_main(["--ckpt_path", str(last), str(bad), "--out", str(tmp_path / "out")]) == 1
    assert "bad.wav: cannot decode audio" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_tests_the_references_untrained(audio_cache, tmp_path, store):
    main(tiny_args("mixture_rendered.yaml", audio_cache, tmp_path))
    (run,) = store.search_runs([store.get_experiment_by_name("audio/separation/rendered").experiment_id])
    assert run.data.tags["role"] == "baseline" and run.data.tags["model"] == "MixtureCopy"
    assert {"test/sdr", "test/si_sdr"} <= set(run.data.metrics)


def test_separate_refuses_other_checkpoints(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="x.ckpt: not a checkpoint of audio.separation_task.SeparationTask"):
        Separator.from_checkpoint(tmp_path / "x.ckpt")
    oracle = {"hyper_parameters": {"model": {"class_path": "audio.models.hdemucs.IdealRatioMask", "init_args": {}}},
              "state_dict": {}}
    torch.save(oracle, tmp_path / "irm.ckpt")
    with pytest.raises(ValueError, match="oracle that needs the true sources"):
        Separator.from_checkpoint(tmp_path / "irm.ckpt")
