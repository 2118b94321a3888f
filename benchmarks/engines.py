"""The same proof against a second engine: Prometheus vs VictoriaMetrics, both on 127.0.0.1.

Both hold the whole bundled history (VictoriaMetrics through its import API, no
backfill) and answer the unchanged ``PrometheusClient``; ``proof.run`` is timed on each
in alternation and the results are compared check by check and number by number.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from benchmarks.common import Table, cli, median, proof_params, runs, server_peak_mb


def _numbers(result: Any) -> dict[str, Any]:
    rel = result.sections.get("reliability")
    out: dict[str, Any] = {"verdict": result.verdict.decision}
    if rel is not None:
        b = rel.bound
        out.update(requests=b.requests, errors=b.errors, r=b.r, lower=b.lower_adjusted, phi=b.phi,
                   worst_5m_r=rel.profile.worst_r if rel.profile else None,
                   per_version={r[0]: (r[1], r[2]) for r in rel.per_version.itertuples(index=False)})
    out["checks"] = {c.name: c.status.value if hasattr(c.status, "value") else str(c.status) for c in result.checks}
    return out


def run(*, quick: bool = False) -> list[Table]:
    """Start both engines, time ``proof.run`` alternately, compare the results."""
    from reliability.gate import proof
    from reliability.source.embedded import EmbeddedPrometheus
    from reliability.source.embedded.victoria import EmbeddedVictoriaMetrics
    from reliability.source.prom import PrometheusClient

    n = runs(quick, full=5, fast=3)
    params = proof_params()
    times: dict[str, list[float]] = {"prometheus": [], "victoria": []}
    t = time.perf_counter()
    prom = EmbeddedPrometheus().start()
    start_prom = time.perf_counter() - t
    t = time.perf_counter()
    vm = EmbeddedVictoriaMetrics().start()
    start_vm = time.perf_counter() - t
    try:
        results: dict[str, Any] = {}
        clients = {"prometheus": prom.url, "victoria": vm.url}
        for url in clients.values():  # warm-up: Alertmanager discovery, page cache
            proof.run(params, PrometheusClient(url))
        for _ in range(n):
            for name, url in clients.items():
                client = PrometheusClient(url)
                t = time.perf_counter()
                results[name] = proof.run(params, client)
                times[name].append(time.perf_counter() - t)
                results[name + "_requests"] = client.http_requests
        peaks = {"prometheus": server_peak_mb(prom.pids[0]), "victoria": server_peak_mb(vm.pids[0])}
    finally:
        vm.stop()
        prom.stop()
    med = {k: median(v) for k, v in times.items()}
    timing = Table(
        f"Second engine: `proof.run` on Prometheus 2.42 vs VictoriaMetrics 1.79 (median of {n}, alternated)",
        ["engine", "start s", "proof.run s", "HTTP requests", "server peak RSS MB"],
        [["Prometheus (promtool blocks, warm cache)", start_prom, med["prometheus"],
          results["prometheus_requests"], peaks["prometheus"]],
         ["VictoriaMetrics (import API, whole history)", start_vm, med["victoria"],
          results["victoria_requests"], peaks["victoria"]],
         ["ratio VictoriaMetrics / Prometheus", start_vm / start_prom, med["victoria"] / med["prometheus"], "", ""]],
        notes=f"VictoriaMetrics import timings: {', '.join(f'{k} {v:.1f}' for k, v in vm.timings.items())}.")
    a, b = _numbers(results["prometheus"]), _numbers(results["victoria"])
    rows: list[list[Any]] = [["verdict", a["verdict"], b["verdict"], ""]]
    for key in ("requests", "errors", "r", "lower", "phi", "worst_5m_r"):
        x, y = a.get(key), b.get(key)
        diff = f"{y - x:+.6g}" if isinstance(x, float) and isinstance(y, float) else ""
        rows.append([f"candidate {key}", _fmt(x), _fmt(y), diff])
    for v in sorted(set(a.get("per_version", {})) | set(b.get("per_version", {}))):
        x, y = a.get("per_version", {}).get(v), b.get("per_version", {}).get(v)
        rows.append([f"{v} requests, 5xx", _fmt(x), _fmt(y), ""])
    for name in a["checks"]:
        x, y = a["checks"].get(name), b["checks"].get(name)
        if x != y:
            rows.append([f"check: {name}", x, y, "differs"])
    same = [name for name in a["checks"] if a["checks"][name] == b["checks"].get(name)]
    diffs = Table(f"Second engine: results of the {params.candidate} proof ({params.start:%Y-%m-%d %H:%M} .. "
                  f"{params.end:%Y-%m-%d %H:%M} UTC)", ["quantity", "Prometheus", "VictoriaMetrics", "difference"],
                  rows, notes=f"Checks with the same status on both engines: {len(same)} of {len(a['checks'])}.")
    return [timing, diffs]


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6f}" if x < 10 else f"{x:,.1f}"
    if isinstance(x, tuple):
        return ", ".join(_fmt(v) for v in x)
    return "–" if x is None else str(x)


if __name__ == "__main__":
    sys.exit(cli(run, __doc__))
