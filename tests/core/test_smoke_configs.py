"""The documented smoke usage of every shipped config works: `attn fit --config C --trainer.max_steps=5
--test_after_fit=true` trains five steps (no validation runs: early stopping must wait for one,
`core.callbacks.EarlyStopping`) and tests, into MLflow, as a run tagged smoke.

Configs are found by `*/configs/*.yaml`, so a new domain's are tested as they land. Tiny data
overrides keep each run small (`TINY`); paper-size models skip the test stage (`FIT_ONLY`), and the
configs that still take long are marked slow (`SLOW`).
Measured on the shared 2-core machine under a load of 10 to 30 (noisy): the non-slow set, 36 configs,
took about 15 minutes in all, most of them 3 to 30 s, a few timeseries ones up to 100 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from core.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(ROOT.glob("*/configs/*.yaml"))
DATA = "--data.init_args"
# Per domain or config: overrides that shrink the data (every run also caps val/test batches).
_TAGGING = [f"{DATA}.num_clips=40", f"{DATA}.max_compositions=10", f"{DATA}.clip_seconds=4.0", f"{DATA}.input_seconds=4.0",
            f"{DATA}.eval_windows=2", f"{DATA}.batch_size=4", f"{DATA}.render_workers=1", f"{DATA}.progress=false"]
_SEPARATION = [f"{DATA}.num_tracks={{train: 3, valid: 1, test: 1}}", f"{DATA}.track_seconds=2.0", f"{DATA}.max_compositions=10",
               f"{DATA}.samples_per_epoch=4", f"{DATA}.batch_size=2", f"{DATA}.workers=1", f"{DATA}.progress=false"]
TINY: dict[str, list[str]] = {
    "recsys": [f"{DATA}.synthetic_rows=3000"],
    **{n: _TAGGING for n in ("tagger_rendered", "fcn_rendered", "shortchunk_rendered", "tagger_mtat")},
    **{n: _SEPARATION for n in ("htdemucs_rendered", "hdemucs_rendered", "mixture_rendered", "irm_rendered")},
}
# Configs that read a dataset a user downloads (no embedded default): skipped without it.
DOWNLOADS = {"tagger_mtat": ROOT / "data" / "mtat", "htdemucs_musdb": ROOT / "data" / "musdb18hq",
             "hdemucs_musdb": ROOT / "data" / "musdb18hq"}
# Paper-size models whose whole-image evaluation alone takes minutes on a CPU (HAT-S on a whole
# skimage photo peaked near 5 GB; LLFormer on LOL 13 minutes under load; SpecDETR 3 minutes) and
# whose training step takes seconds (HAT's configs accumulate 32 patches per step; the smoke fit takes one): their
# smoke fit takes one step with no validation, and checks the run, without the test.
FIT_ONLY = {"hat_x4_skimage", "hat_s_x4_skimage", "llformer_lol", "llformer_small_lol", "specdetr_hsi_sim"}
# Rendering the audio sets takes tens of seconds even tiny.
SLOW = {"audio"}


def _params(config: Path):
    domain, name = config.parent.parent.name, config.stem
    marks = [pytest.mark.slow] if domain in SLOW or name in SLOW else []
    if name in DOWNLOADS and not DOWNLOADS[name].exists():
        marks.append(pytest.mark.skip(reason=f"{name} reads a download the repository does not ship ({DOWNLOADS[name]})"))
    return pytest.param(config, marks=marks, id=str(config.relative_to(ROOT)))


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    """One MLflow store for the module (a fresh SQLite store per config would cost seconds each)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('smoke') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield MlflowClient(uri)


@pytest.mark.parametrize("config", [_params(c) for c in CONFIGS])
def test_five_step_fit_and_test(config, smoke_store, tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.chdir(ROOT)  # configs name their data paths relative to the repository
    domain = config.parent.parent.name
    extra = TINY.get(domain, []) + TINY.get(config.stem, [])
    if domain == "audio":
        extra += [f"{DATA}.cache_dir={tmp_path / 'audio'}"]
    existing = {r.info.run_id for r in smoke_store.search_runs([e.experiment_id for e in smoke_store.search_experiments()])}
    test = config.stem not in FIT_ONLY
    steps = 5 if test else 1
    if not test:  # no whole-image evaluation at all, not even Lightning's sanity check
        extra += ["--trainer.num_sanity_val_steps=0", "--trainer.limit_val_batches=0"]
    main([
        # one micro-batch per step: HAT's configs accumulate 32 patches into each optimizer step
        "fit", "--config", str(config), f"--trainer.max_steps={steps}", "--trainer.accumulate_grad_batches=1",
        f"--test_after_fit={str(test).lower()}",
        "--trainer.limit_val_batches=2", "--trainer.limit_test_batches=2",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={tmp_path}", *extra,
    ])
    runs = smoke_store.search_runs([e.experiment_id for e in smoke_store.search_experiments()])
    (run,) = [r for r in runs if r.info.run_id not in existing]
    assert run.info.status == "FINISHED"
    assert run.data.tags["config"] == config.stem and run.data.tags["smoke"] == "true"
    assert run.data.tags["mlflow.runName"].endswith(" smoke") and run.data.params["trainer.max_steps"] == str(steps)
    if test:
        assert any(name.startswith("test/") for name in run.data.metrics), sorted(run.data.metrics)
