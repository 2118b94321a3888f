#!/usr/bin/env python3
"""Generate the bundled 14-day metric history of the love backend, so every analysis has an oracle.

The history is a story with known answers: a stable v1.8.3, a failing v1.9.0 deploy whose
database dependency trips the ``db`` circuit breaker, a rollback, a 10 % canary of v1.9.1 and its
promotion, plus the data-quality traps a reader must survive (a counter reset, a scrape gap,
breaker openings shorter than one scrape interval, a cache-invalidation gap). It writes
OpenMetrics text (seconds timestamps, one series after another, ``# EOF``) for
``promtool tsdb create-blocks-from openmetrics`` and ``ground-truth.json`` with the exact counts.

Standalone on purpose (stdlib + numpy, no ``reliability`` import) so the data does not depend on
the code it tests. Deterministic: same seed, same bytes.

Usage: ``python data/generate.py [--out DIR] [--compression gz|xz]``

For benchmarks only, ``--days N`` (N >= 14) lets v1.9.1 run on after the story and
``--workers K`` splits every ``http_requests_total`` series over K worker processes (an extra
``worker`` label, same totals), e.g. ``--days 90 --workers 9 --compression none --out /tmp/h``.
Scaled histories belong under /tmp, never in data/.
"""
from __future__ import annotations

import argparse
import gzip
import json
import lzma
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

SEED = 20251029
JOB = "love-backend"
MAIN = "love-api-1:8080"
CANARY = "love-api-canary:8080"
STEP = 30
LOCAL_UTC_OFFSET_H = 3
# Measured on this output: gzip -9 ~11 MB in ~5 s, xz -9 ~7.4 MB in ~50 s; gzip is well under the budget.
COMPRESSION = "gz"


def epoch(text: str) -> int:
    """Seconds since the epoch of an ISO 8601 UTC string, so the timeline reads as dates."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def iso(t: float) -> str:
    """ISO 8601 UTC; milliseconds only where a breaker transition needs them."""
    dt = datetime.fromtimestamp(t, tz=timezone.utc)
    if float(t).is_integer():
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


T0 = epoch("2025-10-15T00:00:00Z")
T_END = epoch("2025-10-29T00:00:00Z")
N = (T_END - T0) // STEP  # intervals; scrapes are 0..N

RESTART = epoch("2025-10-21T02:00:00Z")
SCRAPE_GAP = (epoch("2025-10-20T11:00:00Z"), epoch("2025-10-20T11:15:00Z"))
BAD_DEPLOY = epoch("2025-10-24T10:00:00Z")
DB_FAULT_START = epoch("2025-10-24T10:05:00Z")
ROLLBACK = epoch("2025-10-24T10:45:00Z")
CANARY_START = epoch("2025-10-26T09:00:00Z")
PROMOTE = epoch("2025-10-27T09:00:00Z")
CACHE_GAP = ("orthopedics", epoch("2025-10-23T06:00:00Z"), epoch("2025-10-23T08:00:00Z"))
AUTH_BLIP = (epoch("2025-10-22T07:20:05Z"), 12.0)  # dependency fault start, duration (s)
REALTIME_BLIPS = [(epoch(t) + 4, 1.5) for t in
                  ("2025-10-18T09:12:00Z", "2025-10-21T13:37:00Z", "2025-10-28T08:20:00Z")]
DB_FAULT_FAILURE_P = 0.27

PEAK_RPS = 36.0
NIGHT_RPS = 0.15
FRIDAY_FACTOR = 0.45
BASE_5XX = {"v1.8.3": 0.0031, "v1.9.0": 0.0031, "v1.9.1": 0.0045}
SHARE_503 = 0.35
CANARY_SHARE = 0.10


@dataclass(frozen=True)
class Route:
    """One HTTP route, its traffic share, status codes and the dependencies a request calls."""

    method: str
    path: str
    share: float
    client_error: str
    p4xx: float
    deps: tuple[tuple[str, float], ...]  # (breaker, fraction of requests calling it)


ROUTES = (
    Route("GET", "/api/queue/list", 0.34, "400", 0.004, (("db", 0.05),)),
    Route("GET", "/api/queue/status", 0.24, "404", 0.012, (("db", 0.05),)),
    Route("POST", "/api/queue/update", 0.08, "422", 0.010, (("db", 1.0),)),
    Route("GET", "/api/committee", 0.06, "403", 0.005, (("db", 0.5), ("storage", 0.3))),
    Route("POST", "/api/auth/login", 0.05, "401", 0.060, (("auth", 1.0),)),
    Route("GET", "/api/realtime/subscribe", 0.15, "429", 0.003, (("realtime", 1.0),)),
    Route("GET", "/api/stats/dashboard", 0.08, "403", 0.004, (("db", 0.3), ("storage", 0.1))),
)
BREAKERS = {"db": (5, 60.0), "auth": (5, 30.0), "realtime": (3, 10.0), "storage": (5, 60.0)}
TRANSITIONS = (("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open"))
STATE_VALUE = {"closed": 0, "open": 1, "half_open": 2}
CLINICS = {"cardiology": 0.30, "pediatrics": 0.30, "orthopedics": 0.20, "dermatology": 0.20}


def statuses(route: Route) -> tuple[str, ...]:
    """The four status codes a route's counters carry (series count stays modest)."""
    return ("200", route.client_error, "500", "503")


@dataclass(frozen=True)
class Process:
    """One backend process: counters start at 0 when it starts and vanish when it ends.

    The first process started before the history, so its counters already hold a value at T0.
    """

    instance: str
    version: str
    start: int
    end: int
    kind: str


PROCESSES = (
    Process(MAIN, "v1.8.3", T0, RESTART, "initial"),
    Process(MAIN, "v1.8.3", RESTART, BAD_DEPLOY, "restart"),
    Process(MAIN, "v1.9.0", BAD_DEPLOY, ROLLBACK, "deploy"),
    Process(MAIN, "v1.8.3", ROLLBACK, PROMOTE, "rollback"),
    Process(CANARY, "v1.9.1", CANARY_START, PROMOTE, "canary"),
    Process(MAIN, "v1.9.1", PROMOTE, T_END, "promote"),
)


def idx(t: float) -> int:
    """Index of the interval (T[k-1], T[k]] holding instant t (a scrape at t counts it)."""
    return math.ceil((t - T0) / STEP)


def traffic(rng: np.random.Generator) -> np.ndarray:
    """Total request rate (req/s) per interval: clinic hours, quiet nights, a quiet Friday."""
    mid = T0 + STEP * (np.arange(N + 1) - 0.5)
    local = mid + LOCAL_UTC_OFFSET_H * 3600
    hour = (local % 86400) / 3600

    def sig(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    clinic = sig((hour - 8) / 0.4) * sig((20 - hour) / 0.5) * (0.8 + 0.2 * np.sin(np.pi * (hour - 8) / 12))
    shoulder = sig((hour - 6.5) / 0.7) * sig((22.5 - hour) / 0.8)
    day = ((local // 86400).astype(int) + 4) % 7  # 0 = Monday; 1970-01-01 was a Thursday
    n_days = max(20, (T_END - T0) // 86400 + 6)  # 20 for the bundled 14 days: same draws, same bytes
    day_noise = 1 + 0.05 * rng.standard_normal(n_days)[(local // 86400 - local[0] // 86400).astype(int)]
    factor = np.where(day == 4, FRIDAY_FACTOR, 1.0) * day_noise
    slow = np.exp(0.06 * np.convolve(rng.standard_normal(N + 41), np.ones(40) / np.sqrt(40), "valid"))[: N + 1]
    rate = (NIGHT_RPS + 0.6 * shoulder + (PEAK_RPS - NIGHT_RPS) * clinic * factor) * slow
    rate[0] = 0.0
    return rate


class Breaker:
    """The seed's circuit breaker (SEED section 2), replayed call by call with recorded transitions."""

    def __init__(self, threshold: int, timeout: float) -> None:
        self.threshold, self.timeout = threshold, timeout
        self.state, self.failures, self.next_attempt = "closed", 0, 0.0
        self.log: list[tuple[float, str, str]] = []

    def _move(self, t: float, to: str) -> None:
        self.log.append((t, self.state, to))
        self.state = to

    def call(self, t: float, fails: bool) -> str:
        """Return success, failure or rejected for a call at t whose dependency fails or not."""
        if self.state == "open":
            if t < self.next_attempt:
                return "rejected"
            self._move(t, "half_open")
        if not fails:
            self.failures = 0
            if self.state == "half_open":
                self._move(t, "closed")
            return "success"
        # failureCount is not reset on opening, so one failed HALF_OPEN probe re-opens.
        self.failures += 1
        if self.failures >= self.threshold:
            self._move(t, "open")
            self.next_attempt = t + self.timeout
        return "failure"


def replay(rng: np.random.Generator, counts: dict, breaker: str, k_from: int, k_to: int,
           fault: tuple[float, float, float]) -> tuple[np.ndarray, list]:
    """Replay intervals k_from..k_to of the main instance request by request through a breaker.

    Requests calling the failing dependency end in 500 (failure) or 503 (rejected while OPEN);
    the others keep their ordinary status. Rewrites the status counts of those intervals in
    place (same number of requests) and returns the calls per interval (success, failure,
    rejected) and the breaker's transitions.
    """
    fault_start, fault_end, p_fail = fault
    cb = Breaker(*BREAKERS[breaker])
    calls = np.zeros((k_to - k_from + 1, 3), dtype=np.int64)
    routes = [r for r in ROUTES if breaker in dict(r.deps)]
    for k in range(k_from, k_to + 1):
        reqs = []
        for r in routes:
            per_status = counts[(MAIN, r.method, r.path)]
            base = np.array([per_status[s][k] for s in statuses(r)], dtype=float)
            n = int(base.sum())
            probs = base / n if n else np.full(4, 0.25)
            for t, uses, st in zip(T0 + STEP * (k - 1) + rng.uniform(0, STEP, n),
                                   rng.random(n) < dict(r.deps)[breaker], rng.choice(4, size=n, p=probs), strict=True):
                reqs.append((float(t), r, bool(uses), int(st)))
            for s in statuses(r):
                per_status[s][k] = 0
        for t, r, uses, st in sorted(reqs, key=lambda x: x[0]):
            if uses:
                fails = fault_start <= t < fault_end and rng.random() < p_fail
                outcome = cb.call(round(t, 3), fails)
                calls[k - k_from, ("success", "failure", "rejected").index(outcome)] += 1
                st = {"success": st, "failure": 2, "rejected": 3}[outcome]
            counts[(MAIN, r.method, r.path)][statuses(r)[st]][k] += 1
    return calls, cb.log


def simulate(seed: int = SEED) -> dict:
    """Draw every per-interval count of the story; returns the arrays the writers need."""
    rng = np.random.default_rng(seed)
    rate = traffic(rng)
    k = np.arange(N + 1)
    u = np.clip(rate / PEAK_RPS, 0, 1)
    cs, ce = idx(CANARY_START), idx(PROMOTE)
    in_canary = (k > cs) & (k <= ce)

    version = {MAIN: np.empty(N + 1, dtype=object), CANARY: np.full(N + 1, None, dtype=object)}
    for p in PROCESSES:
        version[p.instance][idx(p.start) + 1: idx(p.end) + 1] = p.version
    version[MAIN][0] = "v1.8.3"
    share = {MAIN: np.where(in_canary, 1 - CANARY_SHARE, 1.0), CANARY: np.where(in_canary, CANARY_SHARE, 0.0)}

    counts: dict = {}
    bursts = []
    for inst in (MAIN, CANARY):
        p5 = np.array([BASE_5XX.get(v, 0.0) if v else 0.0 for v in version[inst]]) * (0.01 + 0.99 * u)
        burst = np.zeros(N + 1)
        # v1.9.1's short noisy bursts: 1-2 minutes, a few per busy day, too short for the 2 %/5m alert.
        busy = np.flatnonzero((version[inst] == "v1.9.1") & (u > 0.5))
        if busy.size:
            last = -10**9
            for b in np.sort(rng.choice(busy, size=max(1, busy.size // 300), replace=False)):
                if b - last < 30:  # 15 minutes apart, so two bursts never add up to an alert
                    continue
                last, length = b, int(rng.integers(2, 5))
                burst[b: b + length] = rng.uniform(0.03, 0.06)
                bursts.append((inst, int(b), length))
        for r in ROUTES:
            mean = rate * share[inst] * r.share * STEP
            p = {"200": 1 - r.p4xx - p5 - burst, r.client_error: np.full(N + 1, r.p4xx),
                 "500": p5 * (1 - SHARE_503), "503": p5 * SHARE_503 + burst}
            counts[(inst, r.method, r.path)] = {s: rng.poisson(mean * p[s]) for s in statuses(r)}
            for s in statuses(r):
                counts[(inst, r.method, r.path)][s][version[inst] == None] = 0  # noqa: E711

    # Request-level replays where a breaker matters; elsewhere failures are rare and isolated.
    episodes = [("db", idx(BAD_DEPLOY) + 1, idx(ROLLBACK), (DB_FAULT_START, ROLLBACK, DB_FAULT_FAILURE_P))]
    episodes.append(("auth", idx(AUTH_BLIP[0]), idx(AUTH_BLIP[0]) + 2,
                     (AUTH_BLIP[0], AUTH_BLIP[0] + AUTH_BLIP[1], 1.0)))
    episodes += [("realtime", idx(t), idx(t), (t, t + d, 1.0)) for t, d in REALTIME_BLIPS]

    main_total = {(r.method, r.path): sum(counts[(MAIN, r.method, r.path)].values()) for r in ROUTES}
    calls, transitions = {}, {}
    for b in BREAKERS:
        n_calls = sum(rng.binomial(main_total[(r.method, r.path)], dict(r.deps)[b])
                      for r in ROUTES if b in dict(r.deps))
        fail = rng.binomial(n_calls, 2e-5)
        calls[b] = np.stack([n_calls - fail, fail, np.zeros_like(fail)], axis=1)
        transitions[b] = []
    for b, k_from, k_to, fault in episodes:
        calls[b][k_from: k_to + 1], log = replay(rng, counts, b, k_from, k_to, fault)
        transitions[b] += log

    # Cache: successful queue updates on the main instance, split by clinic.
    upd_ok = counts[(MAIN, "POST", "/api/queue/update")]["200"]
    reads = counts[(MAIN, "GET", "/api/queue/list")]["200"] + counts[(MAIN, "GET", "/api/queue/status")]["200"]
    pv = list(CLINICS.values())
    updates = rng.multinomial(upd_ok, pv)
    clinic_reads = rng.multinomial(reads, pv)
    invalidations = updates.copy()
    stale = rng.poisson(clinic_reads * 1e-6)
    c_name, g_start, g_end = CACHE_GAP
    j = list(CLINICS).index(c_name)
    gap = slice(idx(g_start) + 1, idx(g_end) + 1)
    invalidations[gap, j] = 0
    missed = np.cumsum(updates[gap, j])
    stale[gap, j] = rng.binomial(clinic_reads[gap, j], 0.6 * (1 - np.exp(-missed / 30)))

    return {"rate": rate, "version": version, "counts": counts, "calls": calls, "transitions": transitions,
            "updates": updates, "invalidations": invalidations, "stale": stale, "bursts": bursts,
            "offset_seed": int(rng.integers(2**32))}


def cumulative(counts: np.ndarray, procs: list[Process], offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Scrape indices and counter values of one series across the processes that exported it.

    A process starting at T[s] is first scraped at T[s+1] and counts from T[s], so a restart loses
    no request; the first process also shows the counter (with its pre-history offset) at T[0].
    """
    ks, vs = [], []
    for p in procs:
        first = 0 if p.start == T0 else idx(p.start) + 1
        last = idx(p.end)
        ks.append(np.arange(first, last + 1))
        vs.append((offset if p.start == T0 else 0) + np.cumsum(counts[first: last + 1]))
    k, v = np.concatenate(ks), np.concatenate(vs)
    if procs[0].instance == MAIN:  # nothing but up=0 while the main instance could not be scraped
        keep = (k <= idx(SCRAPE_GAP[0])) | (k >= idx(SCRAPE_GAP[1]))
        k, v = k[keep], v[keep]
    return k, v


def label_text(name: str, labels: dict[str, str]) -> str:
    """The sample prefix with job and instance first on every series."""
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{name}{{{inner}}} "


def series_text(prefix: str, ks: np.ndarray, values: np.ndarray) -> str:
    """One series' samples, contiguous, integer seconds timestamps."""
    return "".join([f"{prefix}{v} {t}\n" for v, t in zip(values.tolist(), (T0 + STEP * ks).tolist(), strict=True)])


def main_procs() -> list[Process]:
    """The main instance's processes, which alone export breaker and cache metrics."""
    return [p for p in PROCESSES if p.instance == MAIN]


def breaker_states(transitions: list) -> np.ndarray:
    """Gauge value at every scrape: a scrape at t sees transitions at t; a new process starts closed."""
    state = np.zeros(N + 1, dtype=np.int64)
    events = [(t, STATE_VALUE[to]) for t, _, to in transitions]
    events += [(p.start + 1e-6, 0) for p in main_procs() if p.start > T0]
    for t, value in sorted(events, key=lambda e: e[0]):  # stable: same-instant transitions keep their order
        state[idx(t):] = value
    return state


WORKERS = 1  # http_requests_total series per (instance, route, status, version); see scale()


def scale(days: int, workers: int) -> None:
    """Stretch the history to ``days`` and split request counters over ``workers`` (benchmarks only).

    The story keeps its dates; the promoted v1.9.1 simply runs on until the new end.
    """
    global T_END, N, PROCESSES, WORKERS
    if days < 14 or workers < 1:
        raise SystemExit("generate.py: --days must be at least 14 (the story) and --workers at least 1")
    old_end, T_END = T_END, T0 + days * 86400
    N = (T_END - T0) // STEP
    PROCESSES = tuple(Process(p.instance, p.version, p.start, T_END if p.end == old_end else p.end, p.kind)
                      for p in PROCESSES)
    WINDOWS["full"] = (iso(T0), iso(T_END), WINDOWS["full"][2])
    WORKERS = workers


def worker_series(prefix_labels: dict[str, str], c: np.ndarray, procs: list[Process], offset: int,
                  rng: np.random.Generator) -> Iterator[str]:
    """One request counter split over WORKERS worker processes (multinomial, same totals)."""
    parts = rng.multinomial(c, np.full(WORKERS, 1 / WORKERS))
    for j in range(WORKERS):
        share = offset // WORKERS + (offset % WORKERS if j == 0 else 0)
        labels = {**prefix_labels, "worker": str(j)}
        yield series_text(label_text("http_requests_total", labels), *cumulative(parts[:, j], procs, share))


def render(sim: dict) -> Iterator[str]:
    """Yield the OpenMetrics text family by family, series by series (it compresses far better)."""
    rng = np.random.default_rng(sim["offset_seed"])  # pre-history counter values; render stays repeatable
    split = np.random.default_rng(sim["offset_seed"] + 1)  # used only with WORKERS > 1
    counts = sim["counts"]
    day = slice(1, 2881)
    yield "# HELP http_requests HTTP requests served, by route, method, status code and backend version.\n"
    yield "# TYPE http_requests counter\n"
    for inst, version in ((MAIN, "v1.8.3"), (MAIN, "v1.9.0"), (MAIN, "v1.9.1"), (CANARY, "v1.9.1")):
        procs = [p for p in PROCESSES if p.instance == inst and p.version == version]
        for r in ROUTES:
            for s in statuses(r):
                c = counts[(inst, r.method, r.path)][s]
                offset = int(rng.poisson(c[day].sum() * 1.5)) if procs[0].start == T0 else 0
                ks, vs = cumulative(c, procs, offset)
                labels = {"job": JOB, "instance": inst, "method": r.method, "route": r.path,
                          "status": s, "version": version}
                if WORKERS == 1:
                    yield series_text(label_text("http_requests_total", labels), ks, vs)
                else:
                    yield from worker_series(labels, c, procs, offset, split)

    yield "# HELP up Whether the last scrape of the target succeeded (1) or failed (0).\n"
    yield "# TYPE up gauge\n"
    k_main = np.arange(N + 1)
    up = ((k_main <= idx(SCRAPE_GAP[0])) | (k_main >= idx(SCRAPE_GAP[1]))).astype(np.int64)
    yield series_text(label_text("up", {"job": JOB, "instance": MAIN}), k_main, up)
    k_can = np.arange(idx(CANARY_START) + 1, idx(PROMOTE) + 1)
    yield series_text(label_text("up", {"job": JOB, "instance": CANARY}), k_can, np.ones_like(k_can))

    procs = main_procs()
    yield "# HELP circuit_breaker_state Circuit breaker state: 0 closed, 1 open, 2 half-open.\n"
    yield "# TYPE circuit_breaker_state gauge\n"
    for b in BREAKERS:
        ks, _ = cumulative(np.zeros(N + 1, dtype=np.int64), procs, 0)
        states = breaker_states(sim["transitions"][b])
        yield series_text(label_text("circuit_breaker_state", {"job": JOB, "instance": MAIN, "breaker": b}),
                          ks, states[ks])
    yield "# HELP circuit_breaker_transitions Circuit breaker state transitions.\n"
    yield "# TYPE circuit_breaker_transitions counter\n"
    for b in BREAKERS:
        for frm, to in TRANSITIONS:
            c = np.zeros(N + 1, dtype=np.int64)
            for t, f, tt in sim["transitions"][b]:
                if (f, tt) == (frm, to):
                    c[idx(t)] += 1
            labels = {"job": JOB, "instance": MAIN, "breaker": b, "from": frm, "to": to}
            yield series_text(label_text("circuit_breaker_transitions_total", labels), *cumulative(c, procs, 0))
    yield "# HELP circuit_breaker_calls Calls through a circuit breaker by outcome.\n"
    yield "# TYPE circuit_breaker_calls counter\n"
    for b in BREAKERS:
        for j, outcome in enumerate(("success", "failure", "rejected")):
            c = sim["calls"][b][:, j]
            offset = int(rng.poisson(c[day].sum() * 1.5)) if outcome == "success" else 0
            labels = {"job": JOB, "instance": MAIN, "breaker": b, "outcome": outcome}
            yield series_text(label_text("circuit_breaker_calls_total", labels), *cumulative(c, procs, offset))

    offsets = rng.poisson(sim["updates"][day].sum(axis=0) * 1.5)
    for family, key, help_text in (
            ("queue_updates", "updates", "Queue updates committed to the database, by clinic."),
            ("cache_invalidations", "invalidations", "Queue cache invalidations after an update, by clinic."),
            ("cache_stale_reads", "stale", "Queue reads served from a cache entry older than the last update.")):
        yield f"# HELP {family} {help_text}\n"
        yield f"# TYPE {family} counter\n"
        for j, clinic in enumerate(CLINICS):
            offset = 0 if key == "stale" else int(offsets[j])
            labels = {"job": JOB, "instance": MAIN, "clinic": clinic}
            yield series_text(label_text(f"{family}_total", labels), *cumulative(sim[key][:, j], procs, offset))
    yield "# EOF\n"


WINDOWS = {
    "full": ("2025-10-15T00:00:00Z", "2025-10-29T00:00:00Z", "The whole history."),
    "stable_week": ("2025-10-17T10:00:00Z", "2025-10-24T10:00:00Z",
                    "Seven days of v1.8.3 before the bad deploy (restart, scrape gap, cache gap, auth blip)."),
    "pre_deploy_day": ("2025-10-23T10:00:00Z", "2025-10-24T10:00:00Z", "The last 24 h of v1.8.3 before v1.9.0."),
    "bad_deploy": ("2025-10-24T10:00:00Z", "2025-10-24T10:45:00Z", "v1.9.0's lifetime on the main instance."),
    "incident": ("2025-10-24T10:05:00Z", "2025-10-24T10:45:00Z", "The database failure under v1.9.0."),
    "after_rollback": ("2025-10-24T10:45:00Z", "2025-10-26T09:00:00Z", "v1.8.3 again, before the canary."),
    "canary": ("2025-10-26T09:00:00Z", "2025-10-27T09:00:00Z", "v1.9.1 canary (10 %) beside v1.8.3 (90 %)."),
    "post_promote": ("2025-10-27T09:00:00Z", "2025-10-29T00:00:00Z", "v1.9.1 at 100 % until the end."),
    "quiet_night": ("2025-10-19T00:40:00Z", "2025-10-19T00:50:00Z", "Ten minutes at 03:40 local: too little traffic."),
    "busy_hour": ("2025-10-22T08:00:00Z", "2025-10-22T09:00:00Z", "A peak clinic hour of v1.8.3."),
    "scrape_gap_hour": ("2025-10-20T10:30:00Z", "2025-10-20T11:30:00Z", "An hour holding the 15-minute scrape gap."),
    "restart_hour": ("2025-10-21T01:30:00Z", "2025-10-21T02:30:00Z", "An hour holding the v1.8.3 process restart."),
    "cache_gap": ("2025-10-23T06:00:00Z", "2025-10-23T08:00:00Z", "Orthopedics updates without cache invalidation."),
}


def window_counts(sim: dict, a: int, b: int) -> dict:
    """Exact requests and 5xx with timestamps in (a, b], by version and in total."""
    ka, kb = idx(a) + 1, idx(b) + 1
    by_version: dict[str, dict[str, int]] = {}
    for (inst, _, _), per_status in sim["counts"].items():
        v = sim["version"][inst][ka:kb]
        for s, c in per_status.items():
            for version in {x for x in v if x}:
                n = int(c[ka:kb][v == version].sum())
                slot = by_version.setdefault(version, {"requests": 0, "errors_5xx": 0})
                slot["requests"] += n
                slot["errors_5xx"] += n if s.startswith("5") else 0
    by_version = {v: by_version[v] for v in sorted(by_version) if by_version[v]["requests"]}
    total = {key: sum(x[key] for x in by_version.values()) for key in ("requests", "errors_5xx")}
    return {"by_version": by_version, "total": total}


def per_interval_totals(sim: dict, version: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Requests and 5xx per interval over every instance, optionally of one version only."""
    req = np.zeros(N + 1, dtype=np.int64)
    err = np.zeros(N + 1, dtype=np.int64)
    for (inst, _, _), per_status in sim["counts"].items():
        mask = np.ones(N + 1, dtype=bool) if version is None else sim["version"][inst] == version
        for s, c in per_status.items():
            req += c * mask
            if s.startswith("5"):
                err += c * mask
    return req, err


def alert_firings(req: np.ndarray, err: np.ndarray, *, threshold: float = 0.02, window: int = 10,
                  hold: int = 10) -> list[dict[str, str]]:
    """Where the seed's High5xxErrorRate (5xx/all over 5m > 2 %, for 5m) fires on exact counts."""
    r = np.convolve(req, np.ones(window, dtype=np.int64))[: N + 1]
    e = np.convolve(err, np.ones(window, dtype=np.int64))[: N + 1]
    cond = (e > threshold * r) & (r > 0)
    firings, k = [], 0
    while k <= N:
        if cond[k]:
            j = k
            while j + 1 <= N and cond[j + 1]:
                j += 1
            if j - k >= hold:
                firings.append({"start": iso(T0 + STEP * (k + hold)), "end": iso(T0 + STEP * j)})
            k = j + 1
        else:
            k += 1
    return firings


def breaker_truth(transitions: list, threshold: int, timeout: float) -> dict:
    """Transitions, trips (entries into open), openings no scrape saw, and the state at the end."""
    subs, opened = 0, None
    for t, frm, to in transitions:
        if frm == "closed":
            opened = t
        elif to == "closed" and opened is not None:
            first_scrape = T0 + STEP * math.ceil((opened - T0) / STEP)
            subs += first_scrape >= t
            opened = None
    state = breaker_states(transitions)
    return {"failure_threshold": threshold, "timeout_s": timeout,
            "transitions": [{"time": iso(t), "from": f, "to": to} for t, f, to in transitions],
            "trips": sum(to == "open" for _, _, to in transitions), "sub_scrape_opens": int(subs),
            "open_at_end": bool(state[N] == 1)}


def ground_truth(sim: dict) -> dict:
    """Everything a test may compare against, per the COMMON.md schema (plus a few extras)."""
    windows = {}
    for name, (a, b, text) in WINDOWS.items():
        windows[name] = {"start": a, "end": b, "description": text, **window_counts(sim, epoch(a), epoch(b))}
    req, err = per_interval_totals(sim)
    r5 = np.convolve(req, np.ones(10, dtype=np.int64))[: N + 1]
    e5 = np.convolve(err, np.ones(10, dtype=np.int64))[: N + 1]
    inc = slice(idx(DB_FAULT_START) + 10, idx(ROLLBACK) + 1)
    deploys = [{"time": iso(p.start), "instance": p.instance, "version": p.version, "kind": p.kind}
               for p in PROCESSES if p.kind != "restart"]
    deploys.append({"time": iso(PROMOTE), "instance": CANARY, "version": "v1.9.1", "kind": "canary_removed"})
    reasons = {"restart": "process restart of v1.8.3 (same series)",
               "deploy": "v1.9.0 deployed: new process, breaker and cache counters restart",
               "rollback": "rollback to v1.8.3: new process, v1.8.3 series reset",
               "promote": "v1.9.1 promoted: new process, breaker and cache counters restart"}
    clinics = list(CLINICS)
    c_name, g_start, g_end = CACHE_GAP
    gap = slice(idx(g_start) + 1, idx(g_end) + 1)
    j = clinics.index(c_name)

    def cache_totals(a: int, b: int) -> dict:
        s = slice(idx(a) + 1, idx(b) + 1)
        return {c: {"updates": int(sim["updates"][s, i].sum()), "invalidations": int(sim["invalidations"][s, i].sum()),
                    "stale_reads": int(sim["stale"][s, i].sum())} for i, c in enumerate(clinics)}

    return {
        "generator": {"seed": SEED, "start": iso(T0), "end": iso(T_END), "scrape_interval_s": STEP, "job": JOB,
                      "instances": {"main": MAIN, "canary": CANARY},
                      "breaker_and_cache_metrics_from": MAIN},
        "deploys": deploys,
        "windows": windows,
        "incidents": [{"name": "v1.9.0 database failure", "start": iso(DB_FAULT_START), "end": iso(ROLLBACK),
                       "version": "v1.9.0",
                       "cause": f"database dependency failing ({DB_FAULT_FAILURE_P:.0%} of calls); db breaker trips",
                       "peak_5xx_ratio": round(float((e5[inc] / r5[inc]).max()), 6)}],
        "breakers": {b: breaker_truth(sim["transitions"][b], *cfg) for b, cfg in BREAKERS.items()},
        "cache": {"by_clinic": cache_totals(T0, T_END),
                  "by_window": {w: cache_totals(epoch(WINDOWS[w][0]), epoch(WINDOWS[w][1]))
                                for w in ("canary", "cache_gap", "post_promote")},
                  "gaps": [{"clinic": c_name, "start": iso(g_start), "end": iso(g_end),
                            "updates_without_invalidation": int(sim["updates"][gap, j].sum())}]},
        "data_quality": {"scrape_gaps": [{"instance": MAIN, "start": iso(SCRAPE_GAP[0]), "end": iso(SCRAPE_GAP[1])}],
                         "counter_resets": [{"instance": MAIN, "time": iso(p.start), "reason": reasons[p.kind]}
                                            for p in main_procs() if p.start > T0]},
        "alerts": {"High5xxErrorRate": {
            "rule": "sum(rate(5xx[5m])) / sum(rate(all[5m])) > 0.02 for 5m, on exact 30 s counts",
            "firing": alert_firings(req, err),
            "short_bursts": [{"instance": inst, "start": iso(T0 + STEP * (k - 1)), "end": iso(T0 + STEP * (k - 1 + n))}
                             for inst, k, n in sim["bursts"]]}},
    }


def check_story(sim: dict, truth: dict) -> None:
    """Fail loudly if a seed or parameter change broke a promise the tests rely on."""
    w = truth["windows"]
    problems = []
    if w["quiet_night"]["total"]["requests"] >= 140:
        problems.append("quiet_night has 140 requests or more")
    bad = w["bad_deploy"]["total"]
    if not 0.04 <= bad["errors_5xx"] / bad["requests"] <= 0.12:
        problems.append("bad_deploy 5xx ratio outside 4-12 %")
    cand = w["canary"]["by_version"]["v1.9.1"]
    if cand["errors_5xx"] / cand["requests"] >= 0.01:
        problems.append("canary v1.9.1 R not above 0.99")
    for f in truth["alerts"]["High5xxErrorRate"]["firing"]:
        if not (truth["incidents"][0]["start"] <= f["start"] and f["end"] <= iso(ROLLBACK + 600)):
            problems.append(f"High5xxErrorRate fires outside the incident: {f}")
    if alert_firings(*per_interval_totals(sim, "v1.9.1")):
        problems.append("the 2 %/5m alert fires on v1.9.1's own traffic")
    for name, transitions in sim["transitions"].items():
        state = breaker_states(transitions)
        if state[idx(PROMOTE)] != 0 or state[N] != 0:
            problems.append(f"breaker {name} is not closed at the end of the canary or of the history")
    if problems:
        raise SystemExit("generate.py: the story broke: " + "; ".join(problems))


def write(out: Path, *, seed: int = SEED, compression: str = COMPRESSION) -> tuple[Path, dict]:
    """Write the compressed history and ground-truth.json into out; return the history path."""
    sim = simulate(seed)
    truth = ground_truth(sim)
    check_story(sim, truth)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("love-history.om" if compression == "none" else f"love-history.om.{compression}")
    truth["generator"]["file"] = path.name
    for other in out.glob("love-history.om*"):
        if other != path:
            other.unlink()  # history_file() must not find a stale sibling
    if compression == "none":  # scaled benchmark histories: promtool reads plain text directly
        with open(path, "w") as f:
            for chunk in render(sim):
                f.write(chunk)
    elif compression == "gz":
        # mtime=0 and no file name in the header: same seed, same bytes.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as f:
            for chunk in render(sim):
                f.write(chunk.encode())
    else:
        with lzma.open(path, "wb", preset=9) as f:
            for chunk in render(sim):
                f.write(chunk.encode())
    (out / "ground-truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return path, truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="directory for love-history.om.* and ground-truth.json (default: data/)")
    parser.add_argument("--compression", choices=("gz", "xz", "none"), default=COMPRESSION)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--days", type=int, default=14, help="benchmarks only: history length (>= 14)")
    parser.add_argument("--workers", type=int, default=1,
                        help="benchmarks only: split each http_requests_total series over K workers")
    args = parser.parse_args(argv)
    if (args.days, args.workers) != (14, 1):
        scale(args.days, args.workers)
    started = time.perf_counter()
    path, _ = write(args.out, seed=args.seed, compression=args.compression)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and ground-truth.json "
          f"in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
