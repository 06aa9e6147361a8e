"""`make lab` starts JupyterLab on notebooks/, as root too (--allow-root), with LAB_ARGS passed through."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_jupyterlab_with_lab_args(tmp_path):
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    # -o: take the venv as it is (never reinstall into it from a test)
    proc = subprocess.Popen(
        ["make", "-s", "-o", ".venv/.opsbench-installed", "lab",
         f"LAB_ARGS=--no-browser --ip=127.0.0.1 --port={port} --port-retries=0 --IdentityProvider.token=t0k"],
        cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/contents?token=t0k", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        if answer is None:
            os.killpg(proc.pid, signal.SIGTERM)
            out = proc.communicate(timeout=10)[0].decode(errors="replace")
            pytest.fail(f"make lab did not serve on port {port}:\n{out[-3000:]}")
        assert answer.status_code == 200
        names = {item["name"] for item in answer.json()["content"]}
        assert "overview.ipynb" in names  # --notebook-dir=notebooks
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
