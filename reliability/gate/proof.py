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
from reliability.source.prom import PrometheusClient
from reliability.gate import alert_replay, sections
from reliability.gate.params import ProofParams
from reliability.gate.verdict import Check, Status, Verdict, decide


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


def _run_section(proof: Proof, name: str, check_name: str, required: bool,
                 fn: Callable[[], tuple[Any, list[Check]]]) -> None:
    """Run one section; turn any failure into a not-proven check that names the cause."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # caveats are reported as checks, not stderr noise
            result, checks = fn()
        proof.sections[name] = result
        proof.checks.extend(checks)
    except NoDataError as exc:
        proof.errors[name] = str(exc)
        proof.checks.append(Check(check_name, Status.INCONCLUSIVE, required, f"no data: {exc}"))
    except ReliabilityError as exc:
        proof.errors[name] = str(exc)
        proof.checks.append(Check(check_name, Status.INCONCLUSIVE, required, str(exc).splitlines()[0]))
    except Exception as exc:  # a bug must not turn into GO either
        proof.errors[name] = f"{type(exc).__name__}: {exc}"
        proof.checks.append(Check(check_name, Status.INCONCLUSIVE, required,
                                  f"could not be computed ({type(exc).__name__}: {exc})"))


def run(params: ProofParams, client: PrometheusClient, *, progress: Callable[[str], None] | None = None) -> Proof:
    """Run every section of the proof against ``client`` and decide the verdict.

    ``progress`` hears one line per finished analysis (default: :func:`progress_from_env`).
    """
    proof = Proof(params=params, prometheus_url=client.url)
    say = progress or progress_from_env()
    # One scope for every query of every section: the parser adds it to each selector.
    client = client.scoped(params.service_scope())

    def _section(name: str, check_name: str, required: bool, fn: Callable[[], tuple[Any, list[Check]]]) -> None:
        t, before = time.perf_counter(), len(proof.checks)
        _run_section(proof, name, check_name, required, fn)
        statuses = {str(c.status) for c in proof.checks[before:]}
        shown = next((s for s in ("FAIL", "INCONCLUSIVE", "WARN", "PASS") if s in statuses), "done")
        say(f"analysis: {check_name} — {shown} ({time.perf_counter() - t:.1f} s)")
    _section("scope", "Scope", params.partial_scope, lambda: sections.scope(params, client))
    _section("prometheus", "Prometheus is reachable", True, lambda: sections.prometheus(client))
    _section("monitoring", "Monitoring works", True, lambda: sections.monitoring(params, client))
    _section("reliability", f"R > {params.threshold} for {params.candidate}", True,
             lambda: sections.reliability(params, client))
    _section("budget", "Error budget", False, lambda: sections.budget(params, client))
    _section("comparison", "Candidate vs stable", False, lambda: sections.comparison(params, client))
    _section("alerts", "High5xxErrorRate on the candidate", True,
             lambda: alert_replay.alerts(params, client))
    _section("breakers", "Circuit breakers at the window end", True, lambda: sections.breakers(params, client))
    _section("junit", "Regression tests", True, lambda: sections.junit(params))
    _section("cache", "Cache invalidation", True, lambda: sections.cache(params, client))
    _section("data_quality", "Data quality", False, lambda: sections.data_quality(params, client))
    proof.verdict = decide(proof.checks)
    cols = ["kind", "query", "time", "start", "end", "step", "http_requests", "seconds", "series"]
    log = pd.DataFrame([r.__dict__ for r in client.log], columns=cols)
    # A polled check (rules, Alertmanagers) asks the same question until it is answered. The
    # table lists each question once, so the report re-rendered from the snapshot (which
    # holds one answer per question) shows the same table.
    keys = ["kind", "query", "time", "start", "end", "step"]
    proof.queries = (log.groupby(keys, sort=False, dropna=False)
                     .agg(http_requests=("http_requests", "sum"), seconds=("seconds", "sum"),
                          series=("series", "last"))
                     .reset_index()[cols])
    return proof


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


def default_stable() -> str | None:
    """The content of ``.last-stable-version`` when present (the seed's rollback target)."""
    f = paths.repo() / paths.LAST_STABLE_NAME
    return f.read_text().strip() or None if f.exists() else None
