"""Push-down vs pull: per-version R over the bundled 14 days, in PromQL or in pandas.

(a) ``reliability.analysis.measure.totals(..., by=["version"])``: two instant queries, Prometheus
    sums ``increase()`` server-side and sends one number per version.
(b) The common naive way: prometheus-api-client's ``get_metric_range_data`` pulls every raw
    ``http_requests_total`` sample, ``MetricRangeDataFrame`` turns them into a frame, and
    pandas sums the per-series increases. Counter resets are handled the way a careful
    user would (a drop means the counter restarted from 0); the plain ``last - first`` a
    hurried user writes is reported too.

Each run is a fresh interpreter, so its peak RSS belongs to that method alone.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from benchmarks.common import (
    ROOT,
    CountingProxy,
    Table,
    WireCounter,
    child,
    emit,
    mb,
    median,
    peak_rss_mb,
    rss_mb,
    runs,
    timed,
)

METHODS = ("promql", "naive")


def _window() -> tuple[datetime, datetime, dict[str, Any]]:
    truth = json.loads((ROOT / "data" / "ground-truth.json").read_text())
    w = truth["windows"]["full"]
    parse = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)  # noqa: E731
    return parse(w["start"]), parse(w["end"]), w["by_version"]


def promql(url: str, start: datetime, end: datetime, wire: WireCounter) -> dict[str, dict[str, float]]:
    """This project's way: the aggregation runs in Prometheus."""
    from reliability.analysis.measure import totals
    from reliability.source.prom import PrometheusClient

    client = PrometheusClient(url)
    wire.install(client._session)  # the adapter's one session carries every request
    frame = totals(client, start, end, by=["version"])
    return {r.version: {"requests": r.requests, "errors": r.errors} for r in frame.itertuples()}


def naive(url: str, start: datetime, end: datetime, wire: WireCounter) -> dict[str, dict[str, float]]:
    """The usual prometheus-api-client recipe: pull raw samples, aggregate in pandas."""
    import requests
    from prometheus_api_client import MetricRangeDataFrame, PrometheusConnect

    session = requests.Session()
    wire.install(session)
    prom = PrometheusConnect(url=url, disable_ssl=True, session=session)
    # Explicit times: the defaults are frozen at import (datetime.now() in the signature).
    data = prom.get_metric_range_data("http_requests_total", start_time=start, end_time=end)
    df = MetricRangeDataFrame(data)
    keys = ["instance", "method", "route", "status", "version"]
    if "worker" in df.columns:
        keys.append("worker")
    df = df.reset_index().sort_values([*keys, "timestamp"])
    d = df.groupby(keys, sort=False)["value"].diff()
    # A drop means the process restarted and its counter began again from 0.
    # The first sample of a series has no predecessor (NaN) and adds nothing.
    df["inc"] = d.mask(d < 0, df["value"]).fillna(0.0)
    df["is5xx"] = df["status"].str.startswith("5")
    per_series = df.groupby(keys, sort=False)["value"].agg(["first", "last"])
    per_series["inc"] = df.groupby(keys, sort=False)["inc"].sum()
    per_series = per_series.reset_index()
    per_series["is5xx"] = per_series["status"].str.startswith("5")
    out: dict[str, dict[str, float]] = {}
    for version, g in per_series.groupby("version"):
        out[str(version)] = {
            "requests": float(g["inc"].sum()), "errors": float(g.loc[g["is5xx"], "inc"].sum()),
            "requests_last_minus_first": float((g["last"] - g["first"]).sum()),
            "errors_last_minus_first": float((g["last"] - g["first"])[g["is5xx"]].sum()),
        }
    return out


def one(method: str, url: str) -> dict[str, Any]:
    """Measure one method in this (fresh) process."""
    import pandas  # noqa: F401 - both methods need it; its import is not the method's cost
    import prometheus_api_client  # noqa: F401

    import reliability.analysis.measure  # noqa: F401

    start, end, _ = _window()
    base = rss_mb()
    wire = WireCounter()
    seconds, result = timed(lambda: {"promql": promql, "naive": naive}[method](url, start, end, wire))
    return {"method": method, "seconds": seconds, "http_requests": wire.responses,
            "body_bytes": wire.body_bytes,
            "peak_mb": peak_rss_mb() - base, "result": result}


def run(*, quick: bool = False, url: str | None = None) -> list[Table]:
    """Alternate the two methods ``runs`` times against one Prometheus; medians and ratios."""
    from reliability.source.embedded import EmbeddedPrometheus

    n = runs(quick)
    _start, _end, truth = _window()
    if url is None:
        with EmbeddedPrometheus(alertmanager=False) as prom:
            return run(quick=quick, url=prom.url)
    samples: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    proxy = CountingProxy(url)
    try:
        for _ in range(n):
            for m in METHODS:
                before = proxy.down_bytes
                sample = child("benchmarks.pushdown", "--one", m, "--url", proxy.url)
                samples[m].append({**sample, "wire_bytes": proxy.down_bytes - before})
    finally:
        proxy.close()
    med = {m: {k: median([s[k] for s in samples[m]]) for k in ("seconds", "wire_bytes", "body_bytes",
                                                                "peak_mb", "http_requests")} for m in METHODS}
    ratio = {k: med["naive"][k] / med["promql"][k] if med["promql"][k] else float("nan")
             for k in ("seconds", "wire_bytes", "body_bytes", "peak_mb")}
    per_run = [s_n["seconds"] / s_p["seconds"] for s_p, s_n in zip(samples["promql"], samples["naive"], strict=True)]
    rows = []
    for m, label in (("promql", "PromQL push-down (`measure.totals`)"),
                     ("naive", "pull raw samples + pandas (`get_metric_range_data`)")):
        rows.append([label, med[m]["seconds"], int(med[m]["http_requests"]), mb(med[m]["wire_bytes"]),
                     mb(med[m]["body_bytes"]), med[m]["peak_mb"]])
    rows.append(["ratio pull / push-down", ratio["seconds"], "", ratio["wire_bytes"], ratio["body_bytes"],
                 ratio["peak_mb"]])
    cost = Table(
        f"Push-down vs pull: per-version R over the bundled 14 days (median of {n} runs each, alternated)",
        ["method", "time s", "HTTP requests", "MB on the wire (gzip)", "MB decoded JSON", "peak RSS MB above imports"],
        rows,
        notes=(f"Per-run time ratios (pull / push-down): {', '.join(f'{r:.0f}×' for r in per_run)}. "
               "Each measurement is a fresh interpreter with pandas, prometheus-api-client and reliability "
               "already imported; bytes on the wire are what Prometheus sent "
               "through a counting TCP proxy on 127.0.0.1 (gzip-compressed JSON plus HTTP headers); decoded "
               "bytes are the JSON bodies as the client saw them."))
    last = {m: samples[m][-1]["result"] for m in METHODS}
    vrows = []
    for v in sorted(truth):
        t = truth[v]
        p, q = last["promql"].get(v, {}), last["naive"].get(v, {})
        for what, tk, pk, nk, lk in (("requests", "requests", "requests", "requests", "requests_last_minus_first"),
                                     ("5xx", "errors_5xx", "errors", "errors", "errors_last_minus_first")):
            vrows.append([v, what, t[tk], p.get(pk), q.get(nk), q.get(lk)])
        r = lambda d, n_, e_: 1 - d[e_] / d[n_] if d and d.get(n_) else float("nan")  # noqa: E731
        vrows.append([v, "R", 1 - t["errors_5xx"] / t["requests"], r(p, "requests", "errors"),
                      r(q, "requests", "errors"), r(q, "requests_last_minus_first", "errors_last_minus_first")])
    numbers = Table(
        "Push-down vs pull: the numbers (ground truth from data/ground-truth.json, window `full`)",
        ["version", "quantity", "ground truth", "PromQL increase()", "pandas, reset-aware diff",
         "pandas, last − first"], [[*row[:2], *(_num(x) for x in row[2:])] for row in vrows],
        notes=("PromQL's `increase()` extrapolates to the window edges, so series born or ended inside the "
               "14 days (v1.9.0, v1.9.1, the canary) are off by a fraction of a scrape interval's traffic "
               "and the totals are not integers. The reset-aware pandas diff misses each new series' first "
               "sample (the requests counted before the first scrape of a new process). `last − first` "
               "additionally loses everything before each counter reset (the v1.8.3 restart and the "
               "rollback), which is why naive pulls under-count."))
    return [cost, numbers]


def _num(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and x < 1.0:
        return f"{x:.5f}"
    return f"{x:,.1f}" if isinstance(x, float) and not float(x).is_integer() else f"{x:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", help="a running Prometheus with the bundled history (default: start one)")
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        emit(one(args.one, args.url))
        return 0
    for table in run(quick=args.quick, url=args.url):
        print(table.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
