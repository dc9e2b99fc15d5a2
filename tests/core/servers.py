"""A local `mlflow server` (SQLite backend, artifacts served) and subprocess fits of the toy task, for
the tracking-server, fault and browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOY = str(Path(__file__).with_name("toy.yaml"))
MLFLOW = Path(sys.executable).with_name("mlflow")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(uri: str, timeout: float = 180.0) -> None:
    """Wait until the server at `uri` answers `/health` (a loaded 2-core machine takes a while)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {uri} did not come up within {timeout:.0f} s")


@contextmanager
def mlflow_server(folder: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`mlflow server` on a free loopback port with a SQLite backend in `folder` and served artifacts."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}", "--serve-artifacts",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True,
    )
    try:
        wait_healthy(uri)
        yield uri, process
    finally:
        stop_server(process)
        log.close()


def stop_server(process: subprocess.Popen) -> None:
    """Kill the server with its uvicorn workers and job runners (the `mlflow` process alone would leave
    them serving the port)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def fit_process(uri: str, folder: Path, *args: str) -> subprocess.Popen:
    """`python -m core.cli fit --config toy.yaml ARGS` tracking to `uri`, checkpoints under `folder`."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli", "fit", "--config", TOY, f"--trainer.default_root_dir={folder}", *args],
        env=env, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
