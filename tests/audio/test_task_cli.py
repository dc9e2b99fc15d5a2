"""`attn fit` trains the tagger a few steps on a tiny rendered set into a temporary MLflow store; the
tag command then tags a short WAV with the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from audio.tag import main as tag_main
from core.cli import main

from .conftest import TINY
from .helpers import write_wav

ROOT = Path(__file__).resolve().parents[2]


def tiny_args(config: str, cache: Path, root: Path, input_seconds: float = 2.0) -> list[str]:
    data = "--data.init_args"
    return [
        "fit", "--config", str(ROOT / "audio" / "configs" / config),
        f"{data}.num_clips={TINY['num_clips']}", f"{data}.max_compositions={TINY['max_compositions']}",
        f"{data}.clip_seconds={TINY['clip_seconds']}", f"{data}.cache_dir={cache}", f"{data}.render_workers=1",
        f"{data}.input_seconds={input_seconds}", f"{data}.eval_windows=2", f"{data}.batch_size=8", f"{data}.progress=false",
        "--trainer.max_steps=4", "--trainer.val_check_interval=2", "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={root}", "--test_after_fit=true",
    ]


@pytest.mark.slow
def test_cli_trains_tagger_logs_metrics_counts_and_attention(tiny_rendered, audio_cache, tmp_path, store, capsys):
    model = "--model.init_args.model.init_args"
    main([*tiny_args("tagger_rendered.yaml", audio_cache, tmp_path), f"{model}.kernel=math"])
    experiment = store.get_experiment_by_name("audio/tagging/rendered")
    assert experiment is not None
    (run,) = store.search_runs([experiment.experiment_id])
    assert run.data.tags["model"] == "SelfAttentionTagger" and run.data.tags["domain"] == "audio"
    assert run.data.tags["role"] == "model" and run.data.tags["kernel"] == "math"
    assert run.data.params["train_clips"] == "32" and run.data.params["skipped_files"] == "0"
    assert {"test/roc_auc", "test/pr_auc", "val/roc_auc", "data/skipped_files", "data/padded_clips"} <= set(run.data.metrics)
    assert 0.0 <= run.data.metrics["test/roc_auc"] <= 1.0
    artifacts = {a.path for a in store.list_artifacts(run.info.run_id, "attention")}
    assert {"attention/clip_0.png", "attention/top_segments.json"} <= artifacts
    segments = json.loads(Path(store.download_artifacts(run.info.run_id, "attention/top_segments.json", str(tmp_path))).read_text())
    for best in segments.values():  # the most attended 128 ms (8 frames of 16 ms) of each top-scored clip, inside it
        for seg in best:
            assert seg["end_s"] - seg["start_s"] == pytest.approx(0.128, abs=1e-3) and 0 <= seg["start_s"] < seg["end_s"]
            assert 0 < seg["attention"] < 1

    # the checkpoint carries the model, front end and tag names: the tag command needs nothing else
    (last,) = tmp_path.glob("*/*/checkpoints/last.ckpt")
    assert torch.load(last, weights_only=True)["tags"][:2] == ["piano", "percussion"]
    song = write_wav(tmp_path / "song.wav", 5.0, rate=22050)
    short = write_wav(tmp_path / "short.wav", 0.5)
    capsys.readouterr()
    assert tag_main(["--ckpt_path", str(last), str(song), str(short), "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    # 5 s -> 313 frames; 126-frame (2-s) windows every 63 frames start at 0, 63, 126 and 187 (ending at the end)
    assert out[0] == f"{song} (5.0 s, 4 windows averaged)"
    assert out[4] == f"{short} (0.5 s, 1 window averaged)"  # shorter than a window: padded
    scores = [float(line.split()[-1]) for line in out[1:4]]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert tag_main(["--ckpt_path", str(last), str(bad)]) == 1
    assert "bad.wav: cannot decode audio" in capsys.readouterr().err
    assert all(line.split()[0] in ("piano", "percussion", "organ", "guitar", "strings", "choir", "brass", "woodwind",
                                   "slow", "moderate", "fast", "major", "minor") for line in out[1:4])


@pytest.mark.slow
@pytest.mark.parametrize("config", ["fcn_rendered.yaml", "shortchunk_rendered.yaml"])
def test_cli_trains_baselines(config, tiny_rendered, audio_cache, tmp_path, store):
    main(tiny_args(config, audio_cache, tmp_path, input_seconds=4.0))  # FCN's pools need 192 frames (3.1 s)
    (run,) = store.search_runs([store.get_experiment_by_name("audio/tagging/rendered").experiment_id])
    assert run.data.tags["role"] == "baseline"
    assert {"test/roc_auc", "test/pr_auc"} <= set(run.data.metrics)


def test_tag_command_refuses_other_checkpoints(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="x.ckpt: not a checkpoint of audio.tasks.TaggingTask"):
        tag_main(["--ckpt_path", str(tmp_path / "x.ckpt"), str(tmp_path / "song.wav")])
