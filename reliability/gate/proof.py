"""The monitoring proof: run every analysis for one candidate and window, then decide.

Each section turns its analysis into checks. A section that cannot be computed
(unreachable server, no data, missing file) yields an INCONCLUSIVE check with the
reason instead of raising, so the report is always produced and never says GO
without evidence.
"""
from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reliability import paths
from reliability.errors import NoDataError, ReliabilityError
from reliability.gate import alert_replay, sections
from reliability.gate.params import ProofParams
from reliability.gate.verdict import Check, Status, Verdict, decide
from reliability.source.breaker_metrics import resolve as resolve_breakers
from reliability.source.prom import PrometheusClient
from reliability.source.sli import resolve


@dataclass
class Proof:
    """Everything the report shows: the verdict, each section's result, and provenance."""

    params: ProofParams
    checks: list[Check] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    verdict: Verdict | None = None
    prometheus_url: str = ""
    queries: pd.DataFrame = field(default_factory=pd.DataFrame)


#: The file ``reliability proof`` follows while the kernel works: one line per finished analysis.
PROGRESS_VARIABLE = "RELIABILITY_PROGRESS"


def progress_from_env() -> Callable[[str], None]:
    """Report to the file named by ``$RELIABILITY_PROGRESS`` (the CLI prints it); else say nothing.

    The kernel's own stdout and stderr belong to the notebook, so the CLI cannot read them as
    they happen; a small file it tails can.
    """
    path = os.environ.get(PROGRESS_VARIABLE)
    if not path:
        return lambda _msg: None

    def say(msg: str) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(msg + "\n")
    return say


#: Sections run at once. Their queries are independent, and while one waits for Prometheus
#: another computes; more would only queue on a small server (measured in benchmarks/report_phases.py).
WORKERS = 6


def _run_section(name: str, check_name: str, required: bool,
                 fn: Callable[[], tuple[Any, list[Check]]]) -> tuple[Any, list[Check], str | None]:
    """Run one section: (result, checks, error). Any failure becomes a not-proven check naming the cause."""
    try:
        result, checks = fn()
        return result, checks, None
    except NoDataError as exc:
        return None, [Check(check_name, Status.INCONCLUSIVE, required, f"no data: {exc}")], str(exc)
    except ReliabilityError as exc:
        return None, [Check(check_name, Status.INCONCLUSIVE, required, str(exc).splitlines()[0])], str(exc)
    except Exception as exc:  # a bug must not turn into GO either
        return None, [Check(check_name, Status.INCONCLUSIVE, required,
                            f"could not be computed ({type(exc).__name__}: {exc})")], f"{type(exc).__name__}: {exc}"


def _plan(params: ProofParams) -> list[tuple[str, str, bool, Callable[[PrometheusClient], tuple[Any, list[Check]]]]]:
    """Every section in report order: (name, its check's name, required, what computes it)."""
    p = params
    return [
        ("scope", "Scope", p.partial_scope, lambda c: sections.scope(p, c)),
        ("prometheus", "Prometheus is reachable", True, lambda c: sections.prometheus(c)),
        ("monitoring", "Monitoring works", True, lambda c: sections.monitoring(p, c)),
        ("reliability", f"R > {p.threshold} for {p.candidate}", True, lambda c: sections.reliability(p, c)),
        ("budget", "Error budget", False, lambda c: sections.budget(p, c)),
        ("comparison", "Candidate vs stable", False, lambda c: sections.comparison(p, c)),
        ("alerts", "High5xxErrorRate on the candidate", True, lambda c: alert_replay.alerts(p, c)),
        ("breakers", "Circuit breakers at the window end", True, lambda c: sections.breakers(p, c)),
        ("junit", "Regression tests", True, lambda c: sections.junit(p)),
        ("cache", "Cache invalidation", True, lambda c: sections.cache(p, c)),
        ("data_quality", "Data quality", False, lambda c: sections.data_quality(p, c)),
    ]


def run(params: ProofParams, client: PrometheusClient, *, progress: Callable[[str], None] | None = None,
        workers: int = WORKERS) -> Proof:
    """Run every section of the proof against ``client`` and decide the verdict.

    Up to ``workers`` sections run at once, each on its own branch of the client (shared
    session, breaker and deadline; its own query log). The checks, sections and query table
    come out in report order whatever finishes first, so ``workers=1`` gives the same proof.
    ``progress`` hears one line per finished analysis (default: :func:`progress_from_env`).
    """
    from concurrent.futures import ThreadPoolExecutor

    proof = Proof(params=params, prometheus_url=client.url)
    say = progress or progress_from_env()
    # One scope for every query of every section: the parser adds it to each selector.
    client = client.scoped(params.service_scope())
    client.now()  # one clock for every section, taken before they start
    params, recorded = _recorded(params, client)
    proof.params = params  # the SLI as read: its recording rule where it covers the window
    plan = _plan(params)
    branches = [client.branch() for _ in plan]

    def one(i: int) -> tuple[Any, list[Check], str | None]:
        name, check_name, required, fn = plan[i]
        t = time.perf_counter()
        out = _run_section(name, check_name, required, lambda: fn(branches[i]))
        statuses = {str(c.status) for c in out[1]}
        shown = next((s for s in ("FAIL", "INCONCLUSIVE", "WARN", "PASS") if s in statuses), "done")
        say(f"analysis: {check_name} — {shown} ({time.perf_counter() - t:.1f} s)")
        return out

    with warnings.catch_warnings():  # caveats are reported as checks, not stderr noise
        warnings.simplefilter("ignore")
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="proof") as pool:
            results = list(pool.map(one, range(len(plan))))
    for (name, *_), (result, found, error) in zip(plan, results, strict=True):
        if error is None:
            proof.sections[name] = result
        else:
            proof.errors[name] = error
        proof.checks.extend(found)
    proof.checks.append(recorded)
    proof.verdict = decide(proof.checks)
    cols = ["kind", "query", "time", "start", "end", "step", "http_requests", "seconds", "series", "pieces"]
    log = pd.DataFrame([r.__dict__ for b in branches for r in b.log], columns=cols)
    # A polled check (rules, Alertmanagers) asks the same question until it is answered. The
    # table lists each question once, so the report re-rendered from the snapshot (which
    # holds one answer per question) shows the same table.
    keys = ["kind", "query", "time", "start", "end", "step"]
    proof.queries = (log.groupby(keys, sort=False, dropna=False)
                     .agg(http_requests=("http_requests", "sum"), seconds=("seconds", "sum"),
                          series=("series", "last"), pieces=("pieces", "max"))
                     .reset_index()[cols])
    return proof


def _recorded(params: ProofParams, client: PrometheusClient) -> tuple[ProofParams, Check]:
    """Whether the counts come from the SLI's recording rules: only where they cover the longest window
    the proof reads (the error budget's), else from the raw series, said in a check that is not required."""
    from dataclasses import replace

    from reliability.analysis import measure

    name = "Recorded SLI"
    if not params.sli.recorded:
        return params, Check(name, Status.NOT_CONFIGURED, False, "no recording rule declared ([sli] recorded): "
                                                               "the counts are read from the raw series")
    start = params.end - pd.Timedelta(days=params.budget_days).to_pytimedelta()
    try:
        why = measure.recorded_coverage(client, min(start, params.start), params.end, sli=params.sli,
                                        selector=params.scope())
    except ReliabilityError as exc:
        why = str(exc).splitlines()[0]
    if why:
        return params, Check(name, Status.WARN, False, f"{why}; the requests are read from the raw series instead")
    return replace(params, sli=replace(params.sli, covered=True)), Check(name, Status.PASS, False,
                         f"the long windows' requests are read from {params.sli.recorded_name}, evaluated over all of "
                         "them (within 1 % of the raw series' count, tests/test_recorded.py); the 5xx from the raw "
                         "series, exactly")


def params_from(values: dict[str, Any], *, root: str | os.PathLike[str] | None = None) -> ProofParams:
    """The proof parameters from the notebook's parameter values (the notebook and the CLI's prefetch).

    Relative file names are looked for in ``root`` (the user's repository), else among the
    bundled files; a missing stable version is the content of ``.last-stable-version``.
    """
    from reliability.times import parse_time

    v = values
    # Values taken as they are; a missing one keeps ProofParams' default.
    plain = {k: v[k] for k in ("selector", "threshold", "confidence", "method", "partial_scope", "screenshots")
             if k in v}
    if "dependencies" in v:
        plain["dependencies"] = tuple(v["dependencies"])
    table = dict(v.get("sli") or {})
    if v.get("version_label") and "version_label" not in table:  # the parameter before [sli] held it
        table["version_label"] = v["version_label"]
    plain["sli"] = resolve(table, where="the sli parameter")
    plain["breakers"] = resolve_breakers(v.get("breakers") or {}, where="the breakers parameter")
    return ProofParams(
        start=parse_time(v["start"], name="start"), end=parse_time(v["end"], name="end"), candidate=v["candidate"],
        stable=v.get("stable") or default_stable(root),
        junit=tuple(str(paths.find(j, root=root)) for j in v.get("junit", ())),
        rules=str(paths.find(v.get("rules", "monitoring/alerts.yml"), root=root)),
        dashboard=str(paths.find(v.get("dashboard", "monitoring/grafana-dashboard.json"), root=root)),
        **plain,
    )


def rollback_plan(proof: Proof) -> str | None:
    """On NO-GO, the runbook text naming the version to return to; the tool never runs it."""
    if proof.verdict is None or proof.verdict.decision != "NO-GO":
        return None
    stable = proof.params.stable
    if not stable:
        return ("Roll back to the last version that worked: no stable version is known "
                "(.last-stable-version is missing); find it in the deploy history before acting.")
    return (f"Roll back to {stable} (from .last-stable-version): do not fix in production.\n"
            f"  git checkout {stable}\n  npm run deploy\n"
            f"Then confirm the 5xx ratio falls below {1 - proof.params.threshold:.0%} on the dashboard.")


def default_stable(root: str | os.PathLike[str] | None = None) -> str | None:
    """The content of ``.last-stable-version`` when present (the seed's rollback target)."""
    f = paths.repo(root) / paths.LAST_STABLE_NAME
    return f.read_text().strip() or None if f.exists() else None
