"""Raw series: one ``proof.run`` over 112, 1,008 and 10,080 request series carrying the same traffic,
reading the long windows' requests from the raw series (before) and from the SLI's recording rule
(after), alternated in the same run on the same server.

The histories are synthetic and written here (26 hours, a 30 s scrape): 4 processes (3 stable
v1.8.3 instances and a v1.9.1 canary) x 7 routes x 4 statuses = 112 counters, each split over K
workers (K = 1, 9, 90) with the same totals. Only the request counter exists, so the sections that
read breakers or caches end quickly and the time is the SLI's. The embedded Prometheus backfills
the recording rule over each history with promtool, once (cached under /tmp).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import SCRATCH, Table, child, emit, median, peak_rss_mb, rss_mb, runs, server_peak_mb
from reliability.source.sli import SEED

WORKERS = (1, 9, 90)
END = datetime(2025, 11, 2, tzinfo=timezone.utc)
HOURS, SCRAPE = 26, 30
ROUTES = ("/api/queue", "/api/queue/next", "/api/committee", "/api/patients", "/api/auth", "/api/realtime",
          "/health")
STATUSES = {"200": 0.93, "404": 0.05, "500": 0.012, "503": 0.008}
PROCESSES = (("api-1", "v1.8.3"), ("api-2", "v1.8.3"), ("api-3", "v1.8.3"), ("api-canary", "v1.9.1"))
RATE = 2.0  # requests per second per process and route
CACHE = SCRATCH / "series" / "cache"


def history(workers: int) -> Path:
    """The synthetic history with ``112 * workers`` request series (written once)."""
    out = SCRATCH / "series" / f"w{workers}" / "history.om"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    n = HOURS * 3600 // SCRAPE
    times = [str(int(END.timestamp()) - (n - 1 - i) * SCRAPE) for i in range(n)]
    tmp = out.with_suffix(".tmp")
    with tmp.open("w") as fh:
        family = SEED.requests.removesuffix("_total")  # in the directive's names, the SLI's one place
        fh.write(f"# HELP {family} HTTP requests.\n# TYPE {family} counter\n")
        for instance, version in PROCESSES:
            for route in ROUTES:
                for status, share in STATUSES.items():
                    counts = rng.poisson(RATE * SCRAPE * share, size=n)  # the counter's traffic...
                    parts = rng.multinomial(counts, np.full(workers, 1 / workers)).T  # ...over its workers
                    for w, part in enumerate(parts):
                        labels = (f'{SEED.requests}{{instance="{instance}",job="love-backend",'
                                  f'{SEED.route_label}="{route}",{SEED.code_label}="{status}",'
                                  f'{SEED.version_label}="{version}",worker="{w}"}}')
                        fh.write("".join(f"{labels} {v} {t}\n" for v, t in zip(np.cumsum(part), times, strict=True)))
        fh.write("# EOF\n")
    tmp.rename(out)
    return out


def one(url: str, recorded: str) -> dict[str, Any]:
    """One proof.run in this fresh process, the requests from raw series or the recording rule."""
    import scipy.stats  # noqa: F401

    from reliability.gate import proof, sections  # noqa: F401
    from reliability.source.prom import PrometheusClient

    params = proof.ProofParams(start=END - timedelta(days=1), end=END, candidate="v1.9.1", stable="v1.8.3",
                               sli=dataclasses.replace(SEED, recorded=recorded))
    client = PrometheusClient(url)
    base = rss_mb()
    t = time.perf_counter()
    result = proof.run(params, client)
    seconds = time.perf_counter() - t
    q = result.queries.sort_values("seconds", ascending=False)
    recorded_check = next(c for c in result.checks if c.name == "Recorded SLI")
    return {"seconds": seconds, "peak_mb": peak_rss_mb() - base, "http_requests": client.http_requests,
            "recorded": str(recorded_check.status), "top": q.head(4)[["query", "seconds"]].values.tolist()}


def run(*, quick: bool = False, workers: tuple[int, ...] = WORKERS) -> list[Table]:
    from reliability.source.embedded import EmbeddedPrometheus

    n = runs(quick, full=3, fast=1)
    rows, found = [], {}
    for k in workers:
        path = history(k)
        t = time.perf_counter()
        with EmbeddedPrometheus(path, cache_dir=CACHE, alertmanager=False, recorded=True) as prom:
            start_s = time.perf_counter() - t
            for mode in ("", "love"):
                child("benchmarks.series", "--one", prom.url, mode)  # warm-up: page cache, not counted
            got: dict[str, list[dict[str, Any]]] = {"": [], "love": []}
            for _ in range(n):  # alternated: before, after, before, after...
                for mode in ("", "love"):
                    got[mode].append(child("benchmarks.series", "--one", prom.url, mode))
            server = server_peak_mb(prom.pids[0])
        for mode, label in (("", "raw series (before)"), ("love", "recording rule (after)")):
            med = {key: median([g[key] for g in got[mode]]) for key in ("seconds", "peak_mb")}
            found[(k, mode)] = med["seconds"]
            rows.append([f"{112 * k:,}", label, med["seconds"], med["peak_mb"], server, got[mode][-1]["recorded"],
                         "; ".join(f"{s:.2f} s {q[:60]}" for q, s in got[mode][-1]["top"][:2]), start_s])
    ratios = []
    for k in workers[1:]:
        ratios.append([f"{112 * k:,} vs 112", found[(k, "")] / found[(workers[0], "")],
                       found[(k, "love")] / found[(workers[0], "love")]])
    return [Table(f"Raw series: one `proof.run`, last day of 26 h (median of {n}, alternated)",
                  ["request series", "requests read from", "time s", "client peak RSS MB", "Prometheus peak RSS MB",
                   "Recorded SLI", "slowest two queries", "server start s (first: backfill + rules)"], rows),
            Table("Raw series: the time ratio to 112 series (goal ≤ 1.2×)", ["series", "before", "after"], ratios)]


KINDS = (  # what each query of the proof reads, by the text of its PromQL (first match wins)
    ("burn-rate alert backtests", r"\[(3d|1d|6h|2h|30m|1h)\]\)\) or vector\(0\)\) / \(sum|\(14\.4 \* 0\.02\)"),
    ("the directive's alert, verbatim", r"^\( sum\(rate\(|\)\) > 0\.02$|or vector\(0\)\) == 0"),
    ("dashboard panels", r"label_replace|\[5m30s\]|status_class"),
    ("data quality", r"resets\(|count_over_time|changes\(|timestamp\(| > sum \(increase"),
    ("per-minute counts", r"\[1m\]"),
)


def breakdown(url: str) -> dict[str, Any]:
    """One proof.run: the server-side seconds of its queries, grouped by what they read."""
    import re

    from reliability.gate import proof
    from reliability.source.prom import PrometheusClient

    params = proof.ProofParams(start=END - timedelta(days=1), end=END, candidate="v1.9.1", stable="v1.8.3",
                               sli=dataclasses.replace(SEED, recorded="love"))
    q = proof.run(params, PrometheusClient(url)).queries
    kind = q["query"].map(lambda text: next((k for k, rx in KINDS if re.search(rx, text)), "the rest"))
    grouped = q.groupby(kind)["seconds"].agg(["sum", "count"])
    return {k: [float(v["sum"]), int(v["count"])] for k, v in grouped.iterrows()}


def prepare(workers: tuple[int, ...] = WORKERS) -> None:
    """Write and backfill the histories (and their recorded rule) without measuring."""
    from reliability.source.embedded import EmbeddedPrometheus

    for k in workers:
        t = time.perf_counter()
        with EmbeddedPrometheus(history(k), cache_dir=CACHE, alertmanager=False, recorded=True):
            print(f"{112 * k} series ready in {time.perf_counter() - t:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", help="e.g. 1,9 (112 x K series)")
    parser.add_argument("--prepare", action="store_true", help="only write and backfill the histories")
    parser.add_argument("--breakdown", action="store_true", help="where the query time goes, by kind of query")
    parser.add_argument("--one", nargs=2, metavar=("URL", "RECORDED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        emit(one(*args.one))
        return 0
    workers = tuple(int(x) for x in args.workers.split(",")) if args.workers else WORKERS
    if args.prepare:
        prepare(workers)
        return 0
    if args.breakdown:
        from reliability.source.embedded import EmbeddedPrometheus

        found = {}
        for k in workers[:2]:
            with EmbeddedPrometheus(history(k), cache_dir=CACHE, alertmanager=False, recorded=True) as prom:
                breakdown(prom.url)  # warm-up
                found[k] = breakdown(prom.url)
        a, b = workers[:2]
        rows = [[kind, found[b].get(kind, [0, 0])[1], found[a].get(kind, [0.0])[0], found[b].get(kind, [0.0])[0],
                 found[b].get(kind, [0.0])[0] / max(found[a].get(kind, [1e-9])[0], 1e-9)]
                for kind in [*(k for k, _ in KINDS), "the rest"]]
        print(Table(f"Raw series: server seconds of the proof's queries by kind, {112 * a:,} vs {112 * b:,} series",
                    ["queries", "count", f"{112 * a:,} s", f"{112 * b:,} s", "ratio"], rows).markdown())
        return 0
    for table in run(quick=args.quick, workers=workers):
        print(table.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

