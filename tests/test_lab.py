"""`make lab` as the README's fresh-machine route runs it: as root, with the project's kernel."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_make_lab_serves_the_notebooks_with_the_project_kernel() -> None:
    port, token = free_port(), "lab-test"
    args = f"--no-browser --port={port} --ServerApp.token={token} --ServerApp.ip=127.0.0.1"
    lab = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}
        deadline = time.monotonic() + 90
        while True:
            assert lab.poll() is None, f"make lab exited {lab.returncode}: {lab.stdout.read() if lab.stdout else ''}"
            try:
                specs = requests.get(f"{base}/api/kernelspecs", headers=headers, timeout=2).json()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(0.5)
        assert "love-reliability" in specs["kernelspecs"]
        listing = requests.get(f"{base}/api/contents", headers=headers, timeout=5).json()
        names = {item["name"] for item in listing["content"]}
        assert {"monitoring_proof.ipynb", "explore_reliability.ipynb", "breaker_tuning.ipynb",
                "alert_design.ipynb"} <= names
        for name in (n for n in names if n.endswith(".ipynb")):
            nb = json.loads((REPO / "notebooks" / name).read_text())
            assert nb["metadata"]["kernelspec"]["name"] == "love-reliability", name  # opens on the project's kernel
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
        if lab.stdout:
            lab.stdout.close()
