"""The MLflow UI shows what the suite logs: two tiny fits against `mlflow server` (SQLite backend,
artifacts served) over HTTP, then the compare view of the two runs in headless Chromium.

Chromium is Debian's `chromium` with `chromium-driver`, driven by Selenium; nothing downloads a
browser. Without them the test skips, saying what to install.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.core.servers import fit_process, mlflow_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"),
]


def browser(width: int = 1600, height: int = 1000):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_compare_view_shows_both_runs_and_their_shared_metric(tmp_path: Path):
    with mlflow_server(tmp_path) as (uri, _server):
        fits = [fit_process(uri, tmp_path, "--trainer.max_steps=6"),
                fit_process(uri, tmp_path, "--model.model=tests.core.toy.BagOfTokens", "--trainer.max_steps=6")]
        for fit in fits:
            _, err = fit.communicate(timeout=600)
            assert fit.returncode == 0, err[-3000:]
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("toy/classify/toy")
        runs = client.search_runs([exp.experiment_id])
        names = sorted(r.data.tags["mlflow.runName"] for r in runs)
        assert names == ["BagOfTokens toy smoke", "TinyTransformer toy kernel=math smoke"]
        assert all("config.yaml" in {a.path for a in client.list_artifacts(r.info.run_id)} for r in runs)  # served
        query = urllib.parse.urlencode({"runs": json.dumps([r.info.run_id for r in runs]),
                                        "experiments": json.dumps([exp.experiment_id])})
        driver = browser()
        try:
            driver.get(f"{uri}/#/compare-runs?{query}")
            deadline = time.monotonic() + 120
            page = ""
            while time.monotonic() < deadline:
                page = driver.find_element("tag name", "body").text
                if all(name in page for name in names) and "val/loss" in page:
                    break
                time.sleep(1)
            driver.save_screenshot(str(tmp_path / "compare.png"))
        finally:
            driver.quit()
        for name in names:
            assert name in page, f"{name!r} not on the compare page; screenshot {tmp_path / 'compare.png'}"
        assert "val/loss" in page and "val/accuracy" in page
        assert (tmp_path / "compare.png").stat().st_size > 10_000
