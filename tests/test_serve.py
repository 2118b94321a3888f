"""`reliability serve` answered the way Argo Rollouts' web provider and Flagger's webhooks call it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from conftest import ts

REPO = Path(__file__).resolve().parents[1]
TOKEN = "test-token-not-a-secret"

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(prometheus_url: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PROMETHEUS_URL": prometheus_url, "RELIABILITY_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "reliability", "serve", "--port", str(port), "--selector",
                             'job="love-backend"'], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=1)
            break
        except requests.RequestException:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def argo(base: str, **params: str) -> requests.Response:
    """What an AnalysisTemplate's `provider.web` sends: a GET with its headers, read with jsonPath."""
    return requests.get(f"{base}/api/v1/verdict", params=params, headers=auth(), timeout=60)


def flagger(base: str, hook: str, metadata: dict[str, str]) -> requests.Response:
    """What Flagger sends to a webhook: a POST of its JSON payload, metadata as strings, and no headers."""
    payload = {"name": "love-backend", "namespace": "clinics", "phase": "Progressing",
               "metadata": {**metadata, "token": TOKEN}}
    return requests.post(f"{base}/flagger/{hook}", json=payload, timeout=60)


def test_argo_reads_go_for_the_canary_and_no_go_for_the_bad_deploy(server: str, truth: dict, prometheus_url: str) -> None:
    canary, bad = truth["windows"]["canary"], truth["windows"]["bad_deploy"]
    at = (ts(canary["start"]) + timedelta(hours=1)).isoformat()
    r = argo(server, candidate="v1.9.1", start=canary["start"], at=at)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "GO" and body["requests"] > 10_000 and 0.99 < body["r"] < 1
    assert prometheus_url not in r.text and TOKEN not in r.text  # never the server or a credential
    early = argo(server, candidate="v1.9.1", start=canary["start"], at=(ts(canary["start"]) + timedelta(minutes=20)).isoformat())
    assert early.json()["verdict"] == "INCONCLUSIVE"  # proven at minute 9, but the minimum watch is 60 min
    r = argo(server, candidate="v1.9.0", start=bad["start"], at="2025-10-24T10:21:00Z")
    assert r.json()["verdict"] == "NO-GO"


def test_flagger_promotes_only_on_go_and_rolls_back_on_no_go(server: str, truth: dict) -> None:
    canary, bad = truth["windows"]["canary"], truth["windows"]["bad_deploy"]
    proven = {"candidate": "v1.9.1", "start": canary["start"], "at": (ts(canary["start"]) + timedelta(hours=1)).isoformat()}
    waiting = {**proven, "at": (ts(canary["start"]) + timedelta(minutes=20)).isoformat()}
    failing = {"candidate": "v1.9.0", "start": bad["start"], "at": "2025-10-24T10:21:00Z"}
    assert flagger(server, "confirm", proven).status_code == 200
    assert flagger(server, "confirm", waiting).status_code == 412      # promotion waits
    assert flagger(server, "check", waiting).status_code == 200        # but the analysis goes on
    r = flagger(server, "check", failing)
    assert r.status_code == 500 and r.json()["verdict"] == "NO-GO"     # Flagger counts a failed check
    assert r.json()["name"] == "love-backend"
    assert flagger(server, "rollback", failing).status_code == 200     # a rollback hook rolls back at once
    assert flagger(server, "rollback", waiting).status_code == 412
    assert TOKEN not in r.text


def test_callers_without_the_token_or_with_bad_parameters_get_no_work_done(server: str, truth: dict) -> None:
    canary = truth["windows"]["canary"]
    r = requests.get(f"{server}/api/v1/verdict", params={"candidate": "v1.9.1", "start": canary["start"]}, timeout=10)
    assert r.status_code == 401
    assert argo(server, start=canary["start"]).status_code == 400  # no candidate
    r = argo(server, candidate="v1.9.1", start=canary["start"], at=canary["end"], selector='status!~"5.."')
    assert r.status_code == 400 and "slice" in r.json()["error"]  # a selector may not hide failures
    r = argo(server, candidate="v1.9.1", start="2025-01-01T00:00:00Z", at=canary["end"])
    assert r.status_code == 400 and "at most 7 days" in r.json()["error"]
    r = argo(server, candidate='v1"} or vector(1) #', start=canary["start"], at=canary["end"])
    assert r.status_code == 200 and r.json()["requests"] == 0  # escaped: a label value, matching nothing
    r = requests.post(f"{server}/flagger/confirm", data=b"not json", headers={**auth(), "Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 400
