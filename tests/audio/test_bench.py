"""`attn-bench tagging`: neural rows through `core.bench.train_row` in a worker, the logistic regression beside them."""

from __future__ import annotations

import json

import pytest

from audio.bench import claims, per_tag_lines
from core.bench import BenchRow
from core.bench import main as bench_main

from .conftest import TINY


def test_claims_state_the_targets():
    rows = [BenchRow("SelfAttentionTagger", metrics={"roc_auc": 0.93, "pr_auc": 0.8}),
            BenchRow("LogisticRegression", metrics={"roc_auc": 0.71}),
            BenchRow("FCN", metrics={"roc_auc": 0.95, "pr_auc": 0.85})]
    assert claims(rows) == [
        "target SelfAttentionTagger roc_auc >= 0.9: met (0.930)",
        "target SelfAttentionTagger above LogisticRegression: met (0.930 vs 0.710)",
        "SelfAttentionTagger is below FCN: roc_auc 0.930 vs 0.950 (pr_auc 0.800 vs 0.850)",
    ]
    assert claims([BenchRow("SelfAttentionTagger", metrics={"roc_auc": 0.5})])[0].endswith("MISSED (0.500)")


def test_per_tag_lines_name_every_tag_and_model():
    rows = [BenchRow("SelfAttentionTagger", metrics={"roc_auc_piano": 0.91, "roc_auc_major": 0.47}),
            BenchRow("FCN", metrics={"roc_auc_piano": 0.8})]
    assert per_tag_lines(rows, ["piano", "major"]) == [
        "per-tag test roc_auc:",
        "         SelfAttentionTagger    FCN",
        "  piano                0.910  0.800",
        "  major                0.470    nan",
    ]
    assert per_tag_lines([BenchRow("FCN", metrics={"roc_auc": 0.8})], ["piano"]) == []


@pytest.mark.slow
def test_bench_rows_of_the_tagger_and_logistic_regression(tiny_rendered, audio_cache, tmp_path, store):
    out = tmp_path / "tagging.json"
    bench_main([
        "tagging", "--num-clips", str(TINY["num_clips"]), "--max-compositions", str(TINY["max_compositions"]),
        "--models", "tagger", "logreg", "--jobs", "1", "--max-steps", "2", "--cache-dir", str(audio_cache),
        "--json", str(out), "--set", f"data.init_args.clip_seconds={TINY['clip_seconds']}", "data.init_args.input_seconds=2.0",
        "data.init_args.eval_windows=2",
    ])
    tagger, logreg = json.loads(out.read_text())
    assert (tagger["model"], tagger["role"], tagger["error"], tagger["steps"]) == ("SelfAttentionTagger", "model", None, 2)
    assert (logreg["model"], logreg["role"], logreg["error"]) == ("LogisticRegression", "baseline", None)
    for row in (tagger, logreg):
        assert 0 <= row["metrics"]["roc_auc"] <= 1 and 0 <= row["metrics"]["pr_auc"] <= 1 and row["params"] > 0
        per_tag = [v for k, v in row["metrics"].items() if k.startswith("roc_auc_")]  # test/roc_auc_<tag> of every scored tag
        assert len(per_tag) == row["metrics"]["tags_scored"] and sum(per_tag) / len(per_tag) == pytest.approx(row["metrics"]["roc_auc"])
    runs = store.search_runs([store.get_experiment_by_name("audio/tagging/rendered").experiment_id])
    assert sorted(r.data.tags["model"] for r in runs) == ["LogisticRegression", "SelfAttentionTagger"]
    assert store.get_experiment_by_name("bench/tagging") is not None
