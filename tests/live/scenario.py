"""The live scenario: a healthy canary (GO), the same canary failing (NO-GO), Prometheus gone
(INCONCLUSIVE), with the proof's counts and alert times compared to the log and the live server.

Used by ``tests/test_live.py`` (time-compressed, about 2 minutes) and by ``make live``
(production rules, about 15 minutes), which prints the figures.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from live.stack import JOB, LiveStack
from reliability.gate import proof
from reliability.source.prom import PrometheusClient

JUNIT = Path(__file__).resolve().parents[2] / "data" / "junit" / "v1.9.1.xml"


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def prove(stack: LiveStack, start: float, end: float) -> proof.Proof:
    assert stack.prometheus is not None
    params = proof.ProofParams(
        start=utc(start), end=utc(end), candidate=stack.canary, stable=stack.stable, selector=f'job="{JOB}"',
        junit=(str(JUNIT),), rules=str(stack.rules), dashboard=str(stack.dashboard), sli=stack.sli,
        step=max(1.0, 60.0 / stack.factor), bucket=300.0 / stack.factor)
    return proof.run(params, PrometheusClient(stack.prometheus.url, retries=1, backoff=0.1))


def extrapolation_bound(requests: int, window: float, scrape: float) -> float:
    """How far ``increase()`` can be from the true count: Prometheus extrapolates the sampled
    increase to the window's edges by at most 1.1 average sample intervals at each end; the series
    start at 0 before the window (no extrapolation below zero), so only the end adds, at the
    window's average rate."""
    return 1.1 * scrape * requests / max(window - 2 * scrape, scrape) + 1


def live_alert_times(stack: LiveStack, start: float, end: float) -> dict[str, float | None]:
    """When the live rule went pending (ALERTS_FOR_STATE's activeAt) and first fired (ALERTS)."""
    state = stack.query_range('ALERTS_FOR_STATE{alertname="High5xxErrorRate"}', start, end)
    firing = stack.query_range('ALERTS{alertname="High5xxErrorRate",alertstate="firing"}', start, end)
    active = float(state[0]["values"][0][1]) if state else None
    fired = float(firing[0]["values"][0][0]) if firing else None
    return {"active_since": active, "firing_since": fired}


def run_scenario(workdir: Path, *, factor: float = 15.0, minutes: float | None = None,
                 exporter: str = "seed", gone: bool = True) -> dict[str, Any]:
    """Run the phases (healthy, failing, and with ``gone`` Prometheus stopped); every figure the test
    asserts and the README quotes. ``exporter`` is who counts the requests (:class:`LiveStack`)."""
    total = (minutes or 1.5) * 60
    healthy_s, failing_s = 0.5 * total, 0.45 * total
    out: dict[str, Any] = {"factor": factor, "exporter": exporter}
    with LiveStack(workdir, factor=factor, exporter=exporter) as stack:
        scrape = 1.0
        if exporter == "otel":
            warm_up(stack)
        t0 = time.time()
        stack.load(healthy_s)
        stack.settle(time.time())  # every logged request scraped, every rule evaluated after it
        t1 = time.time()
        healthy = prove(stack, t0 - 2, t1)
        logged, logged_5xx = stack.log.counts(stack.canary, t0 - 2, t1)
        bound = healthy.sections["reliability"].bound
        out["healthy"] = {"verdict": healthy.verdict.decision, "reasons": list(healthy.verdict.reasons),
                          "logged": (logged, logged_5xx), "proof": (bound.requests, bound.errors),
                          "allowed": extrapolation_bound(logged, t1 - t0 + 2, scrape)}

        stack.set_failure("canary", 0.5)
        t2 = time.time()
        stack.load(failing_s)
        stack.settle(time.time())
        t3 = time.time()
        failing = prove(stack, t2 - 2, t3)
        episodes = failing.sections["alerts"].episodes
        seed = episodes[episodes["alert"] == "High5xxErrorRate"] if len(episodes) else episodes
        replayed = {"active_since": seed.iloc[0]["active_since"].timestamp() if len(seed) else None,
                    "firing_since": seed.iloc[0]["firing_since"].timestamp() if len(seed) else None}
        live = live_alert_times(stack, t2 - 2, t3)
        interval = failing.sections["alerts"].candidate.interval
        out["failing"] = {"verdict": failing.verdict.decision, "reasons": list(failing.verdict.reasons),
                          "replayed": replayed, "window": (t2 - 2, t3), "live": live, "interval": interval,
                          "rules": failing.sections["alerts"].all_rules.to_dict("records"),
                          "alertmanager": sorted({a["labels"].get("alertname") for a in stack.alertmanager_alerts()})}

        if gone:
            stack.stop_prometheus()
            stopped = prove(stack, t0, t3)
            out["gone"] = {"verdict": stopped.verdict.decision, "reasons": list(stopped.verdict.reasons)}
    return out


def warm_up(stack: LiveStack) -> None:
    """OpenTelemetry makes a series at its first measurement, so the requests before its first
    scrape are never counted (Prometheus 2 has no created timestamps). A service that has been
    running has its series; this one gets them before the window: one failing and a few good
    requests per route and version, fewer failures than any breaker's threshold."""
    import requests

    from live.stack import ROUTES

    for fail, times in ((1.0, 1), (0.0, 10)):
        for name in ("stable", "canary"):
            stack.set_failure(name, fail)
            port = stack.backends[name][1]
            for method, route, _ in ROUTES:
                for _ in range(times):
                    requests.request(method, f"http://127.0.0.1:{port}{route}", timeout=5)
    for name in ("stable", "canary"):
        stack.set_failure(name, 0.002)
    stack.settle(time.time())
