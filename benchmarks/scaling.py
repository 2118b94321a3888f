"""Scaling: a full proof analysis (``proof.run``, no papermill) on longer and wider histories.

Histories of 30 and 90 days with ~100 and ~1,000 ``http_requests_total`` series come from
``data/generate.py --days N --workers K`` (K=9 splits each of the 112 request counters over
9 worker processes: 1,008 series, same totals) and are backfilled into their own cache under
/tmp. The proof window is the last day or the last three days of each history, so the
evaluation steps vary with the window and not with the history length.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON,
    ROOT,
    SCRATCH,
    Table,
    child,
    emit,
    median,
    peak_rss_mb,
    rss_mb,
    runs,
    server_peak_mb,
)

SIZES = ((30, 1), (30, 9), (90, 1), (90, 9))
WINDOWS_DAYS = (1, 3)
CACHE = SCRATCH / "scale" / "cache"


def history(days: int, workers: int) -> tuple[Path, dict[str, float]]:
    """The generated history (made once) and how long generating and backfilling took."""
    from reliability.source.embedded import backfill

    out = SCRATCH / "scale" / f"d{days}-w{workers}"
    path = out / "love-history.om"
    cost: dict[str, float] = {}
    if not (out / "ground-truth.json").exists():
        t = time.perf_counter()
        subprocess.run([PYTHON, str(ROOT / "data" / "generate.py"), "--days", str(days), "--workers",
                        str(workers), "--compression", "none", "--out", str(out)], check=True,
                       capture_output=True)
        cost["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    backfill(path, cache_dir=CACHE)
    cost["backfill_s"] = time.perf_counter() - t
    cost["size_gb"] = path.stat().st_size / 1e9
    return path, cost


def one(url: str, start: str, end: str) -> dict[str, Any]:
    """One proof.run in this fresh process; lazily imported modules are loaded before the clock."""
    import scipy.stats  # noqa: F401

    from reliability.analysis import alerts, budget, cache, compare, dataquality, stats  # noqa: F401
    from reliability.gate import checks, dashboard, grafana, panels, proof, sections  # noqa: F401
    from reliability.source.prom import PrometheusClient
    from reliability.times import parse_time

    params = proof.ProofParams(start=parse_time(start), end=parse_time(end), candidate="v1.9.1",
                               stable="v1.8.3", junit=(str(ROOT / "data" / "junit" / "v1.9.1.xml"),))
    client = PrometheusClient(url)
    base = rss_mb()
    t = time.perf_counter()
    result = proof.run(params, client)
    seconds = time.perf_counter() - t
    q = result.queries
    rng = q[q["kind"] == "range"]
    steps = int(sum((r.end - r.start).total_seconds() / r.step + 1 for r in rng.itertuples()))
    alerts_s = float(q.loc[q["query"].str.contains(r"\[(?:1d|3d|6h)\]") & (q["kind"] == "range"), "seconds"].sum())
    return {"seconds": seconds, "http_requests": client.http_requests, "queries": len(q),
            "steps": steps, "query_s": float(q["seconds"].sum()), "long_range_s": alerts_s,
            "peak_mb": peak_rss_mb() - base, "verdict": result.verdict.decision,
            "errors": sorted(result.errors)}


def run(*, quick: bool = False, sizes: tuple[tuple[int, int], ...] = SIZES) -> list[Table]:
    """Measure each size; the EmbeddedPrometheus is started once per history."""
    from reliability.source.embedded import EmbeddedPrometheus

    n = runs(quick, full=3, fast=3)
    rows, prep = [], []
    for days, workers in sizes:
        path, cost = history(days, workers)
        truth = json.loads((path.parent / "ground-truth.json").read_text())
        end = datetime.strptime(truth["generator"]["end"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        series = 112 * workers
        t = time.perf_counter()
        with EmbeddedPrometheus(path, cache_dir=CACHE) as prom:
            start_s = time.perf_counter() - t
            prep.append([f"{days} d", f"{series:,}", cost["size_gb"], cost.get("generate_s"),
                         cost["backfill_s"], start_s])
            for wdays in WINDOWS_DAYS if workers == 1 else WINDOWS_DAYS[:1]:  # time: 1 day on wide ones
                start = end - timedelta(days=wdays)
                args = ("benchmarks.scaling", "--one", prom.url, start.isoformat(), end.isoformat())
                child(*args)  # warm-up: rule loading and the page cache, not counted
                got = [child(*args) for _ in range(n)]
                med = {k: median([g[k] for g in got]) for k in ("seconds", "http_requests", "queries",
                                                                 "steps", "query_s", "long_range_s", "peak_mb")}
                rows.append([f"{days} d", f"{series:,}", f"last {wdays} d", med["seconds"],
                             int(med["http_requests"]), int(med["steps"]), med["long_range_s"],
                             med["peak_mb"], server_peak_mb(prom.pids[0]), got[-1]["verdict"]])
    table = Table(
        f"Scaling: one full `proof.run` (median of {n} runs, after one warm-up run)",
        ["history", "request series", "proof window", "time s", "HTTP requests", "evaluation steps",
         "of which ≥6h-range rule backtests s", "client peak RSS MB", "Prometheus peak RSS MB", "verdict"],
        rows)
    setup = Table("Scaling: preparing the histories (once; cached afterwards)",
                  ["history", "request series", "OpenMetrics GB", "generate s", "backfill s (promtool)",
                   "EmbeddedPrometheus start s (warm cache)"], prep,
                  notes="A `–` for generate means the history already existed under /tmp.")
    return [table, setup]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--prepare", action="store_true", help="only generate and backfill the histories")
    parser.add_argument("--sizes", help="e.g. 30x1,90x9 (days x workers)")
    parser.add_argument("--one", nargs=3, metavar=("URL", "START", "END"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        emit(one(*args.one))
        return 0
    sizes = tuple(tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")) if args.sizes else SIZES
    if args.prepare:
        for days, workers in sizes:
            print(days, workers, history(days, workers), flush=True)
        return 0
    for table in run(quick=args.quick, sizes=sizes):  # type: ignore[arg-type]
        print(table.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
