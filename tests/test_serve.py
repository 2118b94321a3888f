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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(prometheus_url: str, port: int) -> subprocess.Popen:
    """`reliability serve` as a process, answering once /healthz does."""
    env = {**os.environ, "PROMETHEUS_URL": prometheus_url, "RELIABILITY_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "reliability", "serve", "--port", str(port), "--selector",
                             'job="love-backend"'], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except requests.RequestException:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    os.killpg(proc.pid, sig)
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(prometheus_url: str):
    port = free_port()
    proc = start(prometheus_url, port)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


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


def test_argo_reads_go_for_the_canary_and_no_go_for_the_bad_deploy(server: str, truth: dict,
                                                                   prometheus_url: str) -> None:
    canary, bad = truth["windows"]["canary"], truth["windows"]["bad_deploy"]
    at = (ts(canary["start"]) + timedelta(hours=1)).isoformat()
    r = argo(server, candidate="v1.9.1", start=canary["start"], at=at)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "GO" and body["requests"] > 10_000 and 0.99 < body["r"] < 1
    assert prometheus_url not in r.text and TOKEN not in r.text  # never the server or a credential
    # No fixed minimum watch: GO as soon as the evidence (with the incident guard) says so, not before.
    early = argo(server, candidate="v1.9.1", start=canary["start"],
                 at=(ts(canary["start"]) + timedelta(minutes=3)).isoformat()).json()
    assert early["verdict"] == "INCONCLUSIVE" and early["why"].startswith("GO waits"), early
    at = (ts(canary["start"]) + timedelta(minutes=30)).isoformat()
    body = argo(server, candidate="v1.9.1", start=canary["start"], at=at).json()
    assert body["verdict"] == "GO" and body["why"].startswith("GO: outside incidents"), body
    assert body["incidents"] == 0 and 0 < body["room_outside_incidents"] < 0.02
    policy = argo(server, candidate="v1.9.1", start=canary["start"], at=at, min_watch="60m").json()
    assert policy["verdict"] == "INCONCLUSIVE"  # a policy minimum is still kept
    r = argo(server, candidate="v1.9.0", start=bad["start"], at="2025-10-24T10:21:00Z")
    assert r.json()["verdict"] == "NO-GO" and "R < 0.98 is proven" in r.json()["why"]
    assert "NaN" not in r.text and "Infinity" not in r.text  # figures that do not apply are null: valid JSON


def test_flagger_promotes_only_on_go_and_rolls_back_on_no_go(server: str, truth: dict) -> None:
    canary, bad = truth["windows"]["canary"], truth["windows"]["bad_deploy"]
    proven = {"candidate": "v1.9.1", "start": canary["start"],
              "at": (ts(canary["start"]) + timedelta(hours=1)).isoformat()}
    waiting = {**proven, "at": (ts(canary["start"]) + timedelta(minutes=3)).isoformat()}
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
    r = requests.post(f"{server}/flagger/confirm", data=b"not json",
                      headers={**auth(), "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400


def test_fifty_canaries_a_thousand_calls_and_a_kill_minus_9_lose_nothing(prometheus_url: str, truth: dict) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    canary, bad = ts(truth["windows"]["canary"]["start"]), ts(truth["windows"]["bad_deploy"]["start"])
    canaries = [("v1.9.1", canary + timedelta(minutes=k)) for k in range(25)] + \
               [("v1.9.0", bad + timedelta(minutes=k)) for k in range(25)]
    calls = [(c, s0, s0 + timedelta(minutes=10 + 4 * i)) for c, s0 in canaries for i in range(20)]  # 1,000
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def ask(call: tuple) -> tuple[float, tuple]:
        candidate, s0, at = call
        deadline = time.monotonic() + 120  # bounded: a server that never answers fails the test, not CI
        while True:  # a load generator that retries until answered: nothing may be lost
            assert time.monotonic() < deadline, f"no answer for {call} within 120 s"
            t0 = time.perf_counter()
            try:
                r = requests.get(f"{base}/api/v1/verdict", headers=auth(), timeout=60,
                                 params={"candidate": candidate, "start": s0.isoformat(), "at": at.isoformat()})
            except requests.RequestException:  # the server was killed mid-answer, is down or restarting
                time.sleep(0.1)
                continue
            if r.status_code == 503:  # back-pressure (all looks busy): the caller retries, as Argo and Flagger do
                time.sleep(0.1)
                continue
            assert r.status_code == 200, r.text
            b = r.json()
            return time.perf_counter() - t0, (b["verdict"], b["requests"], b["errors_5xx"])

    proc = start(prometheus_url, port)
    with ThreadPoolExecutor(8) as pool:  # bounded concurrency
        reference = list(pool.map(ask, calls))
    stop(proc)
    proc = start(prometheus_url, port)
    done = []
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(ask, c) for c in calls]
            for i, f in enumerate(futures):
                done.append(f.result())
                if i == 500:  # kill -9 in the middle, then start again on the same port
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
                    proc = start(prometheus_url, port)
    finally:
        stop(proc)
    assert [a for _, a in done] == [a for _, a in reference]  # no call lost, no decision changed
    latency = np.array([t for t, _ in reference]) * 1000
    print(f"1,000 calls over 50 canaries, 8 at a time: p50 {np.percentile(latency, 50):.0f} ms, "
          f"p99 {np.percentile(latency, 99):.0f} ms; after kill -9 and restart: identical answers")
    assert {a[0] for _, a in reference} == {"GO", "NO-GO", "INCONCLUSIVE"}


def test_thirty_two_callers_of_one_look_cost_one_computation(prometheus_url: str, truth: dict,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Argo and Flagger ask the same question many times a minute: the look is computed once, the
    callers at once wait for it, later ones read it; a time between two looks gets the earlier look."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from http.server import ThreadingHTTPServer

    from reliability.cli import serve as served
    from reliability.source.prom import PrometheusClient

    computed = []
    real = served._look
    monkeypatch.setattr(served, "_look", lambda *a: computed.append(a) or real(*a))  # counted, then the real one
    start = ts(truth["windows"]["canary"]["start"]) + timedelta(minutes=3)  # a start no other test uses
    at = start + timedelta(minutes=30, seconds=20)
    client = PrometheusClient(prometheus_url)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), served.make_handler(client, token=None))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/api/v1/verdict"
    query = {"candidate": "v1.9.1", "stable": "v1.8.3", "start": start.isoformat(), "at": at.isoformat()}
    try:
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _: requests.get(url, params=query, timeout=120), range(32)))
        once = client.http_requests
        later = requests.get(url, params={**query, "at": (at + timedelta(seconds=30)).isoformat()}, timeout=60)
        read = client.http_requests
        next_minute = requests.get(url, params={**query, "at": (at + timedelta(seconds=60)).isoformat()}, timeout=60)
    finally:
        httpd.shutdown()
        httpd.server_close()
    bodies = [a.json() for a in answers]
    assert {a.status_code for a in answers} == {200} and all(b == bodies[0] for b in bodies)
    assert bodies[0]["at"] == (start + timedelta(minutes=30)).isoformat()  # the look of the last whole minute
    assert later.json() == bodies[0] and read == once  # the same minute: read, not asked again
    assert next_minute.json()["at"] == (start + timedelta(minutes=31)).isoformat()
    assert len(computed) == 2  # 32 callers and a later one: one look; the next minute: one more
