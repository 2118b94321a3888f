"""Breaker replay throughput at 10 million calls: the array walk vs the plain class, call by call.

The history: 14 days of traffic to one dependency (about 8.3 calls/s, 10 million calls),
0.1 % independent failures, plus 30 outages of 1 to 10 minutes at 90 % failures, so the
breaker trips, rejects and probes; seed fixed. The plain class is fed call by call on the
first 1 million calls and its rate extrapolated to 10 million (it is linear in calls and
would take minutes per run at full size); the replays are timed on all 10 million.
Medians of several runs. Run: ``.venv/bin/python -m benchmarks.replay [--quick]``.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from benchmarks.common import Table, cli, median, runs

CALLS = 10_000_000
PLAIN_CALLS = 1_000_000
DAYS = 14


def calls_frame(n: int = CALLS, *, seed: int = 20251029) -> Any:
    """Times (s) and outcomes of ``n`` calls over 14 days with rare failures and outages."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    span = DAYS * 86400.0
    t = np.sort(rng.uniform(0.0, span, n))
    ok = rng.random(n) >= 0.001
    starts = rng.uniform(0.0, span, 30)
    ends = starts + rng.uniform(60.0, 600.0, 30)
    inside = np.zeros(n, dtype=bool)
    for s, e in zip(starts, ends, strict=True):
        inside[np.searchsorted(t, s):np.searchsorted(t, e)] = True
    ok &= ~(inside & (rng.random(n) < 0.9))
    return pd.DataFrame({"time": t, "ok": ok})


def plain_allowed(calls: Any, *, failure_threshold: int = 5, timeout: float = 60.0) -> Any:
    """The plain class fed call by call (the reference)."""
    import numpy as np

    from reliability.analysis.breakers import CircuitBreaker

    record = CircuitBreaker(failure_threshold=failure_threshold, timeout=timeout).record
    return np.fromiter((record(o, s) for s, o in zip(calls["time"].tolist(), calls["ok"].tolist(), strict=True)),
                       dtype=bool, count=len(calls))


def plain_rate_allowed(calls: Any) -> Any:
    import numpy as np

    from reliability.analysis.breakers import RateBasedBreaker

    record = RateBasedBreaker().record
    return np.fromiter((record(o, s) for s, o in zip(calls["time"].tolist(), calls["ok"].tolist(), strict=True)),
                       dtype=bool, count=len(calls))


def _time(fn: Any, n: int) -> tuple[float, Any]:
    seconds, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t0)
    return median(seconds), out


def run(*, quick: bool = False) -> list[Table]:
    """Median seconds and calls/s of each; the replays must agree with the classes."""
    from reliability.analysis.breakers import replay, replay_rate_based

    calls = calls_frame()
    head = calls.iloc[:PLAIN_CALLS]
    n_fast, n_plain = runs(quick, full=5, fast=3), runs(quick, full=3, fast=1)

    fast_s, fast = _time(lambda: replay(calls, failure_threshold=5, timeout=60.0), n_fast)
    rate_s, rate = _time(lambda: replay_rate_based(calls), n_fast)
    plain_s, allowed = _time(lambda: plain_allowed(head), n_plain)
    plain_rate_s, rate_allowed = _time(lambda: plain_rate_allowed(head), n_plain)
    same = bool((fast["allowed"].to_numpy()[:PLAIN_CALLS] == allowed).all())
    same_rate = bool((rate["allowed"].to_numpy()[:PLAIN_CALLS] == rate_allowed).all())
    plain_full = plain_s * CALLS / PLAIN_CALLS
    plain_rate_full = plain_rate_s * CALLS / PLAIN_CALLS
    trips = int((fast["allowed"] & (fast["state"] == "OPEN")).sum())
    rejected = int((~fast["allowed"]).sum())
    rows = [
        ["`replay` (consecutive, 5 / 60 s), array walk", f"{CALLS:,}", n_fast, fast_s, CALLS / fast_s,
         "yes" if same else "NO"],
        ["`CircuitBreaker.record` call by call", f"{PLAIN_CALLS:,} (x10 extrapolated)", n_plain, plain_full,
         PLAIN_CALLS / plain_s, "reference"],
        ["speed-up", "", "", plain_full / fast_s, "", ""],
        ["`replay_rate_based` (resilience4j defaults), array walk", f"{CALLS:,}", n_fast, rate_s, CALLS / rate_s,
         "yes" if same_rate else "NO"],
        ["`RateBasedBreaker.record` call by call", f"{PLAIN_CALLS:,} (x10 extrapolated)", n_plain, plain_rate_full,
         PLAIN_CALLS / plain_rate_s, "reference"],
        ["speed-up", "", "", plain_rate_full / rate_s, "", ""],
    ]
    return [Table(
        f"Breaker replay throughput, {CALLS:,} calls over {DAYS} days ({trips:,} openings, {rejected:,} rejected)",
        ["implementation", "calls timed", "runs", "seconds for 10M (median)", "calls per second",
         "same allowed as the class (first 1M)"],
        rows,
        notes=("The plain classes are timed on the first 1,000,000 calls and their time scaled by 10 "
               "(linear in calls); the replays are timed on all 10,000,000, input validation and the "
               "output frame included."))]


if __name__ == "__main__":
    sys.exit(cli(run, __doc__))
