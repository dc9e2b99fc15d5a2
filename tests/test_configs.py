"""Every shipped CLI config parses and runs one fast_dev_run step through `attn fit`."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(ROOT.glob("*/configs/*.yaml")) + [ROOT / "tests" / "core" / "toy.yaml"]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c.relative_to(ROOT)) for c in CONFIGS])
def test_config_runs_fast_dev_run(config, mlflow_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # configs name their data paths relative to the repository
    main([
        "fit", "--config", str(config), "--trainer.fast_dev_run=true",
        "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}",
    ])
