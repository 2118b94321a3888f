"""Breaker trips from the breaker library people use in the directive's own stack: opossum, on Node.

A real Node service (``tests/breaker_node``: opossum 10, opossum-prometheus 0.3 and prom-client,
pinned in its package-lock.json, installed by ``make setup``) calls two dependencies through
opossum breakers set as close to the directive's policy as opossum allows, time-compressed 15x. A
real Prometheus scrapes its ``/metrics`` every second. The dependencies fail on demand, the breakers
trip, re-trip from half-open and close; the service logs every event, and the trips, re-trips and
calls :func:`breaker_stats` reads from the metrics must equal that log exactly.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import requests
import yaml

from reliability.analysis.breakers import breaker_stats
from reliability.errors import StatisticalWarning
from reliability.source.embedded.process import find_binary, free_port, launch, terminate, wait_ready
from reliability.source.prom import PrometheusClient

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
NODE = Path(__file__).resolve().parent / "breaker_node"
FACTOR = 15.0           # 60 s of the directive's policy become 4 s
RATE = 25.0             # calls a second while a phase runs


def calls(port: int, dep: str, seconds: float) -> None:
    session = requests.Session()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        session.get(f"http://127.0.0.1:{port}/call/{dep}", timeout=5)
        time.sleep(1 / RATE)


def failing(port: int, dep: str, p: float) -> None:
    requests.post(f"http://127.0.0.1:{port}/control", json={"dep": dep, "fail": p}, timeout=5)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    node = shutil.which("node")
    if node is None or not (NODE / "node_modules" / "opossum").is_dir():
        pytest.fail("Node.js or tests/breaker_node/node_modules is missing: `make setup` installs them "
                    "(npm ci in tests/breaker_node)")
    work = tmp_path_factory.mktemp("opossum")
    port, prom_port = free_port(), free_port()
    service = subprocess.Popen([node, str(NODE / "service.js"), str(port), str(FACTOR)], cwd=NODE,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    prometheus = None
    try:
        assert service.stdout is not None and "listening" in service.stdout.readline()
        config = {"global": {"scrape_interval": "1s"},
                  "scrape_configs": [{"job_name": "breakers", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = launch("prometheus", [find_binary("prometheus"), f"--config.file={work / 'prometheus.yml'}",
                                           f"--storage.tsdb.path={work / 'tsdb'}",
                                           f"--web.listen-address=127.0.0.1:{prom_port}"],
                            log=work / "prometheus.log", url=f"http://127.0.0.1:{prom_port}")
        wait_ready(prometheus, deadline=time.monotonic() + 30)
        client = PrometheusClient(prometheus.url)
        scraped(client, after=time.time())
        start = time.time()
        # db: one outage that re-trips from half-open before the dependency recovers; auth: two outages.
        plan = [("db", 0.0, 2.0), ("db", 1.0, 11.0), ("db", 0.0, 6.0),
                ("auth", 0.0, 2.0), ("auth", 1.0, 6.0), ("auth", 0.0, 6.0), ("auth", 1.0, 6.0), ("auth", 0.0, 6.0)]
        for dep, p, seconds in plan:
            failing(port, dep, p)
            calls(port, dep, seconds)
        scraped(client, after=time.time())
        end = time.time()
        logged = requests.get(f"http://127.0.0.1:{port}/events", timeout=5).json()
        with warnings.catch_warnings():  # one outage of db: too few to time the outages, said, not failed
            warnings.simplefilter("ignore", StatisticalWarning)
            stats = breaker_stats(client, ts(start), ts(end), selector='job="breakers"', scrape_interval=1.0,
                                  source="opossum")
        naive = client.query(f'sum by (name) (increase(circuit{{event="open"}}[{int(end - start) + 1}s]))', ts(end))
        yield {"stats": stats, "logged": logged, "start": start, "end": end, "naive": naive, "client": client}
    finally:
        if prometheus is not None:
            terminate(prometheus)
        service.terminate()
        service.wait(timeout=10)
        if service.stdout is not None:
            service.stdout.close()


def ts(t: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, timezone.utc)


def scraped(client: PrometheusClient, *, after: float, timeout: float = 20.0) -> None:
    """Until the service was scraped after ``after`` (the condition, not the clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        targets = client.api("targets").get("activeTargets", [])
        if targets and all(t.get("lastScrape", "").startswith("2") and _epoch(t["lastScrape"]) > after + 0.5
                           for t in targets):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no scrape after {after} within {timeout} s")


def _epoch(rfc3339: str) -> float:
    import pandas as pd

    return pd.Timestamp(rfc3339).timestamp()


def counted(logged: list[dict], name: str, event: str, start: float, end: float) -> int:
    return sum(1 for e in logged if e["name"] == name and e["event"] == event and start < e["t"] <= end)


@pytest.mark.parametrize("breaker", ["db", "auth"])
def test_trips_and_calls_equal_the_breakers_own_log(run: dict, breaker: str) -> None:
    s = run["stats"].summary.set_index("breaker").loc[breaker]
    log, t0, t1 = run["logged"], run["start"], run["end"]
    opens, closes = counted(log, breaker, "open", t0, t1), counted(log, breaker, "close", t0, t1)
    retrips = counted(log, breaker, "halfOpen", t0, t1) - closes   # half-open trials that failed
    assert opens >= 2 and closes >= 1 and retrips >= (1 if breaker == "db" else 0), (opens, closes, retrips)
    assert s["trips"] == opens                        # every move into open, re-opens included
    assert s["closed_to_open"] == closes              # each outage ended (the breaker is closed at the end)
    assert s["retrips"] == retrips                    # re-opens after a failed half-open trial, never exported
    assert s["successes"] == counted(log, breaker, "success", t0, t1)
    assert s["failures"] == counted(log, breaker, "failure", t0, t1)
    assert s["rejected"] == counted(log, breaker, "reject", t0, t1)
    assert s["state_at_end"] == "closed" and not s["open_at_end"]
    assert s["source"] == "opossum" and json.dumps(float(s["time_half_open"])) == "NaN"  # no half-open event


def test_a_plain_increase_would_lose_each_series_first_event(run: dict) -> None:
    """Why the events are counted from the samples: opossum-prometheus makes a series at its first
    event, and increase() starts counting from the series' first sample."""
    naive = dict(zip(run["naive"]["name"], run["naive"]["value"], strict=True)) if len(run["naive"]) else {}
    for breaker in ("db", "auth"):
        exact = run["stats"].summary.set_index("breaker").loc[breaker, "trips"]
        assert naive.get(breaker, 0.0) < exact
