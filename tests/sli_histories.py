"""A small request history written in any SLI's convention, with its traps and its ground truth.

Two hours of the service ``job="shop"`` scraped every 15 s: instance ``a`` serves the stable
version, ``b`` the candidate. Around it, what each convention gets wrong when read naively:

- another service (``job="other"``) at 30 % failures under the candidate's version value;
- client errors (404, 4xx, 4) that are not failures;
- where the SLI has filters (Istio's ``reporter="destination"``, Linkerd's ``direction="inbound"``),
  the same requests reported again from the other side, with more failures;
- where the version lives on an info metric (OpenTelemetry's ``target_info``), instance ``a`` is
  redeployed from the stable to the candidate at 11:00 (its counter restarts), so the
  candidate's requests are ``b``'s plus ``a``'s after 11:00;
- the counter's own name: classes only (``5xx``), no ``_total`` (Kong 2.8, ingress-nginx, Envoy).

Plus the seed's breaker and cache metrics, so a proof on it can reach GO. :func:`write` returns
the ground truth the proof's counts are compared with.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from reliability.cli.rules import spelling
from reliability.gate.params import DEFAULT_DEPENDENCIES
from reliability.source.breaker_metrics import SEED as SEED_BREAKERS
from reliability.source.breaker_metrics import BreakerMetrics
from reliability.source.parsed import matcher_keys
from reliability.source.sli import Sli

START = datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc)
END = START + timedelta(hours=2)
SWITCH = START + timedelta(hours=1)       # when instance a moves to the candidate (info-metric versions)
WINDOW = (START + timedelta(minutes=5), END)
STEP = 15
JOB, OTHER, STABLE, CANDIDATE, FAILING = "shop", "other", "v1", "v2", "v3"  # v3: a canary at 5 % failures
#: per scrape step: (successes, failures) of each side; 4xx are extra, never failures
STABLE_RATE, GOOD, BAD, CLIENT_ERRORS = (400, 1), (200, 1), (190, 10), 2  # failures are drawn around these


def _labels(pairs: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in pairs.items())


def write(sli: Sli, path: Path, *, breakers: BreakerMetrics = SEED_BREAKERS) -> dict[str, float]:
    """Write the history in ``sli``'s names; the candidate's true requests and failures in :data:`WINDOW`."""
    ok, bad = spelling(sli)
    client = "4" + bad[1:]
    filters = {n: v for n, _, v in matcher_keys(tuple(sli.filter_matchers()))}
    twin = {k: f"not-{v}" for k, v in filters.items()}
    times = list(range(int(START.timestamp()) - 300, int(END.timestamp()) + 1, STEP))
    switch = int(SWITCH.timestamp())
    lines: list[str] = []
    counters: dict[str, list[tuple[int, float]]] = {}
    truth = {"requests": 0.0, "errors": 0.0}
    w0, w1 = (int(t.timestamp()) for t in WINDOW)
    cand_ok, cand_bad = GOOD
    rng = np.random.default_rng(7)
    on_info = bool(sli.version_info)

    def add(labels: dict[str, str], t: int, n: float, *, restart: bool = False) -> None:
        key = f"{sli.requests}{{{_labels(labels)}}}"
        series = counters.setdefault(key, [])
        last = series[-1][1] if series and not restart else 0.0
        series.append((t, last + n))

    routes = ["/api/a", "/api/b"] if sli.route_label else [""]
    for t in times:
        a_version = CANDIDATE if on_info and t >= switch else STABLE
        sides = [("a:8080", a_version, JOB, *(STABLE_RATE if a_version == STABLE else (2 * cand_ok, 2 * cand_bad))),
                 ("b:8080", CANDIDATE, JOB, cand_ok, cand_bad),
                 ("c:8080", FAILING, JOB, *BAD),
                 ("o:80", CANDIDATE, OTHER, 70, 30)]
        for instance, version, job, n_ok, n_bad in sides:
            # Failures drawn per step around the side's rate (seeded): real counts are never a constant,
            # and the clustering estimate needs their scatter to count independent units.
            total = n_ok + n_bad
            n_bad = int(rng.binomial(total, n_bad / total))
            n_ok = total - n_bad
            for route in routes:
                base = {"job": job, "instance": instance, **filters}
                if route:
                    base[sli.route_label] = route
                if not on_info:
                    base[sli.version_label] = version
                restart = on_info and instance == "a:8080" and t == switch  # the redeployed process starts at 0
                per_route = 1 / len(routes)
                add({**base, sli.code_label: ok}, t, n_ok * per_route, restart=restart)
                add({**base, sli.code_label: bad}, t, n_bad * per_route, restart=restart)
                add({**base, sli.code_label: client}, t, CLIENT_ERRORS * per_route, restart=restart)
                if twin and job == JOB:  # the other side's report of the same requests, with more failures
                    add({**base, **twin, sli.code_label: bad}, t, (n_bad + 50) * per_route, restart=restart)
                if job == JOB and version == CANDIDATE and w0 < t <= w1:
                    truth["requests"] += (n_ok + n_bad + CLIENT_ERRORS) * per_route
                    truth["errors"] += n_bad * per_route
    name = sli.requests.removesuffix("_total") if sli.requests.endswith("_total") else sli.requests
    kind = "counter" if sli.requests.endswith("_total") else "unknown"
    lines += [f"# HELP {name} Requests.", f"# TYPE {name} {kind}"]
    for key, samples in counters.items():
        lines += [f"{key} {value:g} {t}" for t, value in samples]
    if on_info:
        lines += [f"# HELP {sli.version_info} Resource.", f"# TYPE {sli.version_info} gauge"]
        for instance in ("a:8080", "b:8080", "c:8080", "o:80"):
            job = OTHER if instance == "o:80" else JOB
            for t in times:
                version = STABLE if instance == "a:8080" and t < switch else FAILING if instance == "c:8080" \
                    else CANDIDATE
                lines.append(f'{sli.version_info}{{job="{job}",instance="{instance}",'
                             f'{sli.version_label}="{version}",telemetry_sdk_language="python"}} 1 {t}')
    lines += _contract(times, breakers)
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return truth


#: The db breaker's outage in every written breaker history: it opens at 10:20, fails its half-open
#: trial at 10:22 (a re-trip) and closes at 10:24; auth, realtime and storage never trip.
OUTAGE = (START + timedelta(minutes=20), START + timedelta(minutes=22), START + timedelta(minutes=24))
BREAKER_TRUTH = {"db": {"trips": 2, "retrips": 1, "closed_to_open": 1}}


def _contract(times: list[int], breakers: BreakerMetrics = SEED_BREAKERS) -> list[str]:
    """up, the breakers (in ``breakers``' library names, with :data:`OUTAGE`) and cache for the service."""
    base = f'job="{JOB}",instance="b:8080"'
    out = ["# HELP up Up.", "# TYPE up gauge"]
    out += [f'up{{job="{j}",instance="{i}"}} 1 {t}' for j, i in ((JOB, "a:8080"), (JOB, "b:8080"), (JOB, "c:8080"),
                                                                   (OTHER, "o:80")) for t in times]
    out += _breakers(times, base, breakers)
    for name, n in (("queue_updates", 3), ("cache_invalidations", 3), ("cache_stale_reads", 0)):
        out += [f"# HELP {name} {name}.", f"# TYPE {name} counter"]
        out += [f'{name}_total{{{base},clinic="cardiology"}} {i * n} {t}' for i, t in enumerate(times)]
    return out


def _breakers(times: list[int], base: str, m: BreakerMetrics) -> list[str]:
    opened, retrial, closed = (int(t.timestamp()) for t in OUTAGE)

    def state(dep: str, t: int) -> int:  # 0 closed, 1 open, 2 half-open (one scrape each half-open)
        if dep != "db" or not opened <= t < closed:
            return 0
        return 2 if t in (retrial - STEP, closed - STEP) else 1

    out: list[str] = []
    if m.kind == "seed":
        out += ["# HELP circuit_breaker_state State.", "# TYPE circuit_breaker_state gauge"]
        out += [f'circuit_breaker_state{{{base},breaker="{b}"}} {state(b, t)} {t}' for b in DEFAULT_DEPENDENCIES
                for t in times]
        out += ["# HELP circuit_breaker_transitions Transitions.", "# TYPE circuit_breaker_transitions counter"]
        moves = {("closed", "open"): [opened], ("half_open", "open"): [retrial], ("open", "half_open"):
                 [retrial - STEP, closed - STEP], ("half_open", "closed"): [closed]}
        for b in DEFAULT_DEPENDENCIES:
            for (frm, to), when in moves.items():
                out += [f'circuit_breaker_transitions_total{{{base},breaker="{b}",from="{frm}",to="{to}"}} '
                        f'{sum(w <= t for w in when) if b == "db" else 0} {t}' for t in times]
        out += ["# HELP circuit_breaker_calls Calls.", "# TYPE circuit_breaker_calls counter"]
        for b in DEFAULT_DEPENDENCIES:  # every series exists from the start, as the contract says
            totals = {"success": 0, "rejected": 0, "failure": 0}
            lines: dict[str, list[str]] = {k: [] for k in totals}
            for t in times:
                s = state(b, t)
                totals["success" if s == 0 else "rejected" if s == 1 else "failure"] += 5 if s != 2 else 1
                for k, v in totals.items():
                    lines[k].append(f'circuit_breaker_calls_total{{{base},breaker="{b}",outcome="{k}"}} {v} {t}')
            for k in totals:
                out += lines[k]
    elif m.kind == "opossum":  # one series per event, born at its first: no zeros, no half-open, no _total
        out += [f"# HELP {m.events} A count of all circuit' events", f"# TYPE {m.events} unknown"]
        for b in DEFAULT_DEPENDENCIES:
            counts = {"fire": 0, "success": 0, "failure": 0, "reject": 0, "open": 0, "close": 0}
            series: dict[str, list[str]] = {k: [] for k in counts}
            for t in times:
                s = state(b, t)
                if s == 0:
                    counts["fire"] += 5
                    counts["success"] += 5
                else:
                    counts["fire"] += 5
                    counts["reject" if s == 1 else "failure"] += 5 if s == 1 else 1
                    counts["reject"] += 0 if s == 1 else 4
                if b == "db" and t in (opened, retrial):
                    counts["open"] += 1
                    counts["failure"] += 5 if t == opened else 0
                if b == "db" and t == closed:
                    counts["close"] += 1
                for k, v in counts.items():
                    if v:
                        series[k].append(f'{m.events}{{{base},{m.name_label}="{b}",event="{k}"}} {v} {t}')
            for lines in series.values():
                out += lines
    else:  # resilience4j: the one-hot state gauge, calls by kind, not permitted; all from the start
        out += [f"# HELP {m.state} State.", f"# TYPE {m.state} gauge"]
        names = {0: "closed", 1: "open", 2: "half_open"}
        for b in DEFAULT_DEPENDENCIES:
            for st in ("closed", "open", "half_open", "forced_open", "disabled", "metrics_only"):
                out += [f'{m.state}{{{base},{m.name_label}="{b}",state="{st}"}} '
                        f'{int(names[state(b, t)] == st)} {t}' for t in times]
        families: dict[str, list[str]] = {m.calls: [], m.not_permitted: []}
        for b in DEFAULT_DEPENDENCIES:
            ok = failed = rejected = 0
            successful, failures = [], []
            for t in times:
                s = state(b, t)
                ok += 5 if s == 0 else 0
                failed += 1 if s == 2 and t == retrial - STEP else 0
                rejected += 5 if s == 1 else 0
                successful.append(f'{m.calls}{{{base},kind="successful",{m.name_label}="{b}"}} {ok} {t}')
                failures.append(f'{m.calls}{{{base},kind="failed",{m.name_label}="{b}"}} {failed} {t}')
                families[m.not_permitted].append(f'{m.not_permitted}{{{base},kind="not_permitted",'
                                                 f'{m.name_label}="{b}"}} {rejected} {t}')
            families[m.calls] += successful + failures
        out += [f"# HELP {m.calls} Calls.", f"# TYPE {m.calls} unknown", *families[m.calls]]
        rejected_family = m.not_permitted.removesuffix("_total")
        out += [f"# HELP {rejected_family} Rejected.", f"# TYPE {rejected_family} counter",
                *families[m.not_permitted]]
    return out
