"""An unrelated service's history, to serve beside the love backend's on one Prometheus.

Everything about it would sink the love backend's verdict if it leaked in: 30 % 5xx under the
same ``version`` label as the canary, a ``db`` breaker OPEN for the whole window, a target that
is down for an hour, queue updates with no cache invalidation.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

JOB = "clinic-scheduler"
START = datetime(2025, 10, 26, 6, 0, tzinfo=timezone.utc)
END = datetime(2025, 10, 27, 10, 0, tzinfo=timezone.utc)
STEP = 30
VERSION = "v1.9.1"  # the canary's version label: a version selector alone cannot tell them apart


def write(path: Path) -> Path:
    """Write the OpenMetrics history (same families and help texts as the bundled one)."""
    t0, t1 = int(START.timestamp()), int(END.timestamp())
    times = range(t0, t1 + 1, STEP)
    base = f'job="{JOB}",instance="sched-1:9000"'
    down = f'job="{JOB}",instance="sched-2:9000"'
    outage = (int(datetime(2025, 10, 26, 12, 0, tzinfo=timezone.utc).timestamp()),
              int(datetime(2025, 10, 26, 13, 0, tzinfo=timezone.utc).timestamp()))
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    def counter(series: str, per_step: int, start_after: int = 0) -> None:
        for i, t in enumerate(times):
            lines.append(f"{series} {max(0, i - start_after) * per_step} {t}")

    family("http_requests", "counter", "HTTP requests served, by route, method, status code and backend version.")
    req = f'http_requests_total{{{base},method="GET",route="/api/slots",version="{VERSION}",status='
    counter(req + '"200"}', 70)
    counter(req + '"503"}', 30)
    family("up", "gauge", "Whether the last scrape of the target succeeded (1) or failed (0).")
    lines += [f"up{{{base}}} 1 {t}" for t in times]
    lines += [f"up{{{down}}} {0 if outage[0] <= t < outage[1] else 1} {t}" for t in times]
    family("circuit_breaker_state", "gauge", "Circuit breaker state: 0 closed, 1 open, 2 half-open.")
    lines += [f'circuit_breaker_state{{{base},breaker="db"}} 1 {t}' for t in times]
    family("circuit_breaker_transitions", "counter", "Circuit breaker state transitions.")
    lines += [f'circuit_breaker_transitions_total{{{base},breaker="db",from="closed",to="open"}} '
              f'{0 if i == 0 else 1} {t}' for i, t in enumerate(times)]
    family("circuit_breaker_calls", "counter", "Calls through a circuit breaker by outcome.")
    counter(f'circuit_breaker_calls_total{{{base},breaker="db",outcome="rejected"}}', 5)
    family("queue_updates", "counter", "Queue updates committed to the database, by clinic.")
    counter(f'queue_updates_total{{{base},clinic="cardiology"}}', 2)
    family("cache_invalidations", "counter", "Queue cache invalidations after an update, by clinic.")
    counter(f'cache_invalidations_total{{{base},clinic="cardiology"}}', 0)
    family("cache_stale_reads", "counter", "Queue reads served from a cache entry older than the last update.")
    counter(f'cache_stale_reads_total{{{base},clinic="cardiology"}}', 1)
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return path
