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


def write(sli: Sli, path: Path) -> dict[str, float]:
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
    lines += _contract(times)
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return truth


def _contract(times: list[int]) -> list[str]:
    """up, breakers and cache of the seed's contract for the service: all healthy."""
    base = f'job="{JOB}",instance="b:8080"'
    out = ["# HELP up Up.", "# TYPE up gauge"]
    out += [f'up{{job="{j}",instance="{i}"}} 1 {t}' for j, i in ((JOB, "a:8080"), (JOB, "b:8080"), (JOB, "c:8080"),
                                                                   (OTHER, "o:80")) for t in times]
    out += ["# HELP circuit_breaker_state State.", "# TYPE circuit_breaker_state gauge"]
    out += [f'circuit_breaker_state{{{base},breaker="{b}"}} 0 {t}' for b in DEFAULT_DEPENDENCIES for t in times]
    out += ["# HELP circuit_breaker_transitions Transitions.", "# TYPE circuit_breaker_transitions counter"]
    out += [f'circuit_breaker_transitions_total{{{base},breaker="{b}",from="closed",to="open"}} 0 {t}'
            for b in DEFAULT_DEPENDENCIES for t in times]
    out += ["# HELP circuit_breaker_calls Calls.", "# TYPE circuit_breaker_calls counter"]
    out += [f'circuit_breaker_calls_total{{{base},breaker="{b}",outcome="success"}} {i * 5} {t}'
            for b in DEFAULT_DEPENDENCIES for i, t in enumerate(times)]
    for name, n in (("queue_updates", 3), ("cache_invalidations", 3), ("cache_stale_reads", 0)):
        out += [f"# HELP {name} {name}.", f"# TYPE {name} counter"]
        out += [f'{name}_total{{{base},clinic="cardiology"}} {i * n} {t}' for i, t in enumerate(times)]
    return out
