"""The cost of one watch look: the queries it makes and the client time beyond them.

One look of ``reliability watch`` (``gate.watch.look_at``) against the embedded Prometheus on the
bundled history, at the canary's minute 60, 240 and 1440 (the evidence over that many per-minute
counts): the first look of a watch (one query over the whole watch so far) and a following one
(the counts of the minute since the last look only).
Client time is the look's wall time minus the time spent waiting for Prometheus' answers (the
client's query log). Target: under 50 ms of client time per look.
"""
from __future__ import annotations

import sys
from datetime import timedelta

from benchmarks.common import Table, cli, median, runs, timed


def run(quick: bool = False) -> list[Table]:
    from reliability.gate.params import ProofParams
    from reliability.gate.watch import look_at
    from reliability.source.embedded import EmbeddedPrometheus
    from reliability.source.prom import PrometheusClient
    from reliability.times import parse_time

    start = parse_time("2025-10-26T09:00:00Z")
    rows = []
    with EmbeddedPrometheus(alertmanager=False) as prom:
        for minutes in (60, 240, 1440):
            at = start + timedelta(minutes=minutes)
            params = ProofParams(start=start, end=at, candidate="v1.9.1")
            for kind in ("first look", "next look"):
                walls, clients, queries = [], [], 0
                for _ in range(runs(quick, full=7, fast=3)):
                    client = PrometheusClient(prom.url).scoped(['job="love-backend"'])
                    seen: dict = {}
                    if kind == "next look":
                        look_at(client, params, at - timedelta(minutes=1), seen=seen)
                    before = len(client.log)  # the log only grows: count this look's records
                    wall, _ = timed(lambda c=client, s=seen, p=params, t=at: look_at(c, p, t, seen=s))
                    mine = client.log[before:]
                    walls.append(wall * 1000)
                    clients.append((wall - sum(r.seconds for r in mine)) * 1000)
                    queries = sum(r.http_requests for r in mine)
                rows.append([f"minute {minutes}, {kind}", queries, median(walls), median(clients)])
    return [Table("One watch look (ms, medians)", ["look at", "HTTP queries", "wall", "client time beyond the queries"],
                  rows, notes="Client time = wall time minus the time the client waited for Prometheus' answers.")]


if __name__ == "__main__":
    sys.exit(cli(run, __doc__))
