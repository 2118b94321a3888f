"""An empty panel is a broken dashboard only when the query is: a perfect, young service passes.

A real Prometheus serves 20 minutes of a service that never returned a 5xx (no 5xx series at
all, as most exporters leave it) and whose breakers never tripped. The bundled dashboard must
pass on it, every empty answer explained; a dashboard with a misspelt metric, a label value that
never matches and a label the metric does not have must fail, each named.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from reliability import paths
from reliability.gate import panels
from reliability.gate.dashboard import load_dashboard
from reliability.gate.sections import failure_matchers
from reliability.gate.verdict import Status
from reliability.source.prom import PrometheusClient

pytestmark = pytest.mark.prometheus
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MINUTES, STEP = 20, 15
JOB = "love-backend"


def write_history(path: Path) -> Path:
    """20 minutes of a flawless service: 200s only, breakers closed and never tripped, every update invalidated."""
    times = [int(START.timestamp()) + i * STEP for i in range(MINUTES * 60 // STEP + 1)]
    base = f'job="{JOB}",instance="api-1:8080"'
    lines: list[str] = []

    def family(name: str, kind: str) -> None:
        lines.extend([f"# HELP {name} {name}.", f"# TYPE {name} {kind}"])

    def counter(series: str, per_step: int) -> None:
        lines.extend(f"{series} {i * per_step} {t}" for i, t in enumerate(times))

    family("http_requests", "counter")
    for route, n in (("/api/queue/list", 40), ("/api/queue/update", 9)):
        counter(f'http_requests_total{{{base},method="GET",route="{route}",status="200",version="v2.0.0"}}', n)
    family("up", "gauge")
    lines.extend(f"up{{{base}}} 1 {t}" for t in times)
    family("circuit_breaker_state", "gauge")
    for b in paths_dependencies():
        lines.extend(f'circuit_breaker_state{{{base},breaker="{b}"}} 0 {t}' for t in times)
    family("circuit_breaker_transitions", "counter")
    for b in paths_dependencies():
        for frm, to in (("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open")):
            counter(f'circuit_breaker_transitions_total{{{base},breaker="{b}",from="{frm}",to="{to}"}}', 0)
    family("circuit_breaker_calls", "counter")
    for b in paths_dependencies():
        counter(f'circuit_breaker_calls_total{{{base},breaker="{b}",outcome="success"}}', 5)
    for name, n in (("queue_updates", 3), ("cache_invalidations", 3), ("cache_stale_reads", 0)):
        family(name, "counter")
        counter(f'{name}_total{{{base},clinic="cardiology"}}', n)
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return path


def paths_dependencies() -> tuple[str, ...]:
    from reliability.gate.params import DEFAULT_DEPENDENCIES

    return DEFAULT_DEPENDENCIES


@pytest.fixture(scope="module")
def young(tmp_path_factory: pytest.TempPathFactory):
    from reliability.source.embedded import EmbeddedPrometheus

    root = tmp_path_factory.mktemp("young")
    with EmbeddedPrometheus(write_history(root / "young.om"), alertmanager=False, cache_dir=root / "cache") as prom:
        yield PrometheusClient(prom.url).scoped([f'job="{JOB}"'])


def run(client: PrometheusClient, dashboard: Path) -> tuple[object, object]:
    end = START + timedelta(minutes=MINUTES)
    results = panels.run_panels(load_dashboard(dashboard), client, START, end, scrape_interval=STEP,
                                failures=failure_matchers())
    return results, panels.dashboard_check(results)


def test_a_perfect_young_service_passes_with_every_empty_panel_explained(young: PrometheusClient) -> None:
    results, check = run(young, paths.DASHBOARD_JSON)
    assert check.status is Status.PASS, check.detail
    empty = results[results["samples"] == 0]
    assert len(empty) >= 2  # the 5xx-ratio panels: no 5xx series exists at all
    assert empty["note"].str.contains('status=~"5.."', regex=False).all(), empty[["panel", "note"]]
    assert "return no data, correctly" in check.detail
    long = results[results["expr"].str.contains("[30d]", regex=False)]
    assert len(long) == 2 and (long["status"] == "PASS").all()  # 30 days asked of 20 minutes: not a failure


def test_a_broken_dashboard_still_fails_and_names_each_fault(young: PrometheusClient, tmp_path: Path) -> None:
    doc = json.loads(paths.DASHBOARD_JSON.read_text())
    broken = copy.deepcopy(doc)
    targets = {p["id"]: p["targets"] for p in broken["panels"] if p.get("targets")}
    targets[13][0]["expr"] = "sum by (clinic) (rate(cache_stale_read_total[$__rate_interval]))"  # misspelt
    targets[14][0]["expr"] = 'up{job="love-backend", instance="api-9:8080"}'                      # never matches
    targets[12][0]["expr"] = "sum(rate(queue_updates_total{clinik=\"cardiology\"}[5m]))"           # no such label
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    results, check = run(young, path)
    assert check.status is Status.FAIL
    failed = results[results["status"] == "FAIL"].set_index("panel_id")["error"]
    assert sorted(failed.index) == [12, 13, 14], results[["panel_id", "status", "error", "note"]]
    assert "no series of cache_stale_read_total" in failed[13]
    assert 'instance="api-9:8080" matches no series of up (instance: api-1:8080)' in failed[14]
    assert 'clinik="cardiology" matches no series of queue_updates_total (clinik: no such label)' in failed[12]
    assert "3 of 16 panel queries fail" in check.detail
