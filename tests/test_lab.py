"""`make lab` as the README's fresh-machine route runs it: as root, with the project's kernel."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """JupyterLab started by `make lab` (as root too), serving a copy of notebooks/ (the browser saves into it)."""
    folder = tmp_path_factory.mktemp("lab") / "notebooks"
    shutil.copytree(REPO / "notebooks", folder)
    port, token = free_port(), "lab-test"
    args = f"--no-browser --port={port} --ServerApp.token={token} --ServerApp.ip=127.0.0.1"
    server = subprocess.Popen(["make", "-s", "lab", f"LAB_DIR={folder}", f"LAB_ARGS={args}"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, \
                f"make lab exited {server.returncode}: {server.stdout.read() if server.stdout else ''}"
            try:
                requests.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=2)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "JupyterLab did not answer within 120 s"
                time.sleep(0.5)
        yield base, token, folder
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        if server.stdout:
            server.stdout.close()


def test_make_lab_serves_the_notebooks_with_the_project_kernel(lab: tuple[str, str, Path]) -> None:
    base, token, _ = lab
    headers = {"Authorization": f"token {token}"}
    specs = requests.get(f"{base}/api/kernelspecs", headers=headers, timeout=5).json()
    assert "love-reliability" in specs["kernelspecs"]
    listing = requests.get(f"{base}/api/contents", headers=headers, timeout=5).json()
    names = {item["name"] for item in listing["content"]}
    assert {"monitoring_proof.ipynb", "explore_reliability.ipynb", "breaker_tuning.ipynb",
            "alert_design.ipynb"} <= names
    for name in (n for n in names if n.endswith(".ipynb")):
        nb = json.loads((REPO / "notebooks" / name).read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "love-reliability", name  # opens on the project's kernel


@pytest.mark.prometheus
def test_an_exploration_notebook_runs_in_jupyterlab_in_a_real_browser(lab: tuple[str, str, Path],
                                                                      tmp_path: Path) -> None:
    """Headless Chromium opens JupyterLab, runs every cell of explore_reliability.ipynb with the project's
    kernel (on the session's Prometheus), sees its figures and tables drawn, and saves it."""
    from reliability.source.screenshots import browser

    exe = browser()
    if exe is None:
        pytest.skip("no Chromium on this machine: `make setup` installs Debian's chromium (scripts/system-deps.sh)")
    from playwright.sync_api import expect, sync_playwright

    base, token, folder = lab
    name = "explore_reliability.ipynb"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/lab/tree/{name}?token={token}")
            kernel = page.locator(".jp-StatusBar-TextItem", has_text="Python (love-reliability)")
            expect(kernel).to_have_text(re.compile(r"\| Idle"), timeout=90_000)  # the project's kernel, started
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
            expect(prompts.last).to_have_text(re.compile(r"\[\d+\]:"), timeout=180_000)  # the last cell ran
            page.screenshot(path=str(tmp_path / "jupyterlab.png"))  # kept for a failure's post-mortem
            outputs = page.locator(".jp-OutputArea-output")
            assert page.locator(".jp-OutputArea-output img").count() >= 1  # a matplotlib figure, drawn
            assert page.locator(".jp-OutputArea-output table").count() >= 1  # a pandas table, rendered
            assert "non-inferior" in " ".join(outputs.all_inner_texts())  # the last cell's verdict text
            assert page.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
            page.keyboard.press("Control+s")
            expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=20_000)
        finally:
            chromium.close()
    nb = json.loads((folder / name).read_text())  # every cell ran, in order, without an error
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
