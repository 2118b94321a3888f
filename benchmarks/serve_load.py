"""``reliability serve`` under load: 32 callers at once asking about 8 canaries (as Argo Rollouts'
analysis runs and Flagger's webhooks do, every interval), latency per request before (every request
computes its look; the stable's history was already kept) and after (one computation per look and
minute, concurrent callers waiting for it), alternated, against the embedded Prometheus.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import ThreadingHTTPServer
from typing import Any

import numpy as np
import requests

from benchmarks.common import Table, cli, runs

CALLERS, CANARIES, PER_CALLER = 32, 8, 16


class Uncached:
    """Before: every request computes its look."""

    def get(self, key: Any, compute: Any, *, expires: float) -> Any:
        return compute()


def load(url: str, start: Any) -> list[float]:
    """Latencies (ms) of CALLERS x PER_CALLER requests, CALLERS at once, over CANARIES looks."""
    queries = [{"candidate": "v1.9.1", "stable": "v1.8.3", "start": (start + timedelta(minutes=k)).isoformat(),
                "at": (start + timedelta(minutes=k + 45)).isoformat()} for k in range(CANARIES)]

    def caller(i: int) -> list[float]:
        out = []
        with requests.Session() as session:
            for j in range(PER_CALLER):
                t = time.perf_counter()
                while (r := session.get(url, params=queries[(i + j) % CANARIES], timeout=300)).status_code == 503:
                    time.sleep(0.1)  # back-pressure (all looks busy): retried, as Argo and Flagger do; counted
                r.raise_for_status()
                out.append((time.perf_counter() - t) * 1000)
        return out

    with ThreadPoolExecutor(CALLERS) as pool:
        return [ms for part in pool.map(caller, range(CALLERS)) for ms in part]


def run(*, quick: bool = False) -> list[Table]:
    import json

    from reliability import paths
    from reliability.cli import serve as served
    from reliability.source.embedded import EmbeddedPrometheus
    from reliability.source.prom import PrometheusClient
    from reliability.times import parse_time

    truth = json.loads(paths.GROUND_TRUTH.read_text())
    canary = parse_time(truth["windows"]["canary"]["start"])
    n = runs(quick, full=3, fast=2)
    got: dict[str, list[float]] = {"before": [], "after": []}
    wall: dict[str, list[float]] = {"before": [], "after": []}
    with EmbeddedPrometheus(alertmanager=False) as prom:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), served.make_handler(PrometheusClient(prom.url), token=None))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/api/v1/verdict"
        try:
            for r in range(n):
                for mode in ("before", "after"):
                    served.LOOKS = Uncached() if mode == "before" else served.Looks()  # a cold cache each run
                    start = canary + timedelta(minutes=10 * (2 * r + (mode == "after")))  # new looks each run
                    load(url, start - timedelta(minutes=60))  # warms the server (page cache), not counted
                    t = time.perf_counter()
                    got[mode] += load(url, start)
                    wall[mode].append(time.perf_counter() - t)
        finally:
            httpd.shutdown()
            httpd.server_close()
            served.LOOKS = served.Looks()
    rows = [[mode, len(ms), np.percentile(ms, 50), np.percentile(ms, 99), max(ms),
             len(ms) / sum(wall[mode])] for mode, ms in got.items()]
    return [Table(f"serve: {CALLERS} callers at once, {CANARIES} canaries, {CALLERS * PER_CALLER} requests per "
                  f"run ({n} runs, alternated)",
                  ["", "requests", "p50 ms", "p99 ms", "max ms", "requests/s"], rows,
                  notes="before: every request computes its look (the stable's 14-day history was already kept "
                        "across calls); after: one computation per look and minute, concurrent callers wait for it.")]


if __name__ == "__main__":
    raise SystemExit(cli(run, __doc__))
