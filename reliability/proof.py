"""The monitoring proof: run every analysis for one candidate and window, then decide.

Each section turns its analysis into checks. A section that cannot be computed
(unreachable server, no data, missing file) yields an INCONCLUSIVE check with the
reason instead of raising, so the report is always produced and never says GO
without evidence.
"""
from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import measure, paths
from .errors import NoDataError, ReliabilityError
from .prom import PrometheusClient
from .promql import matcher, parse_selector
from .times import iso
from .verdict import Check, Status, Verdict, decide


@dataclass(frozen=True)
class ProofParams:
    """What the proof is about; everything here is safe to record in the report."""

    start: datetime
    end: datetime
    candidate: str
    stable: str | None = None
    selector: str = ""
    threshold: float = 0.98
    confidence: float = 0.95
    method: str = "clopper-pearson"
    version_label: str = "version"
    margin: float = 0.005
    step: float = 60.0
    junit: tuple[str, ...] = ()
    rules: str = str(paths.ALERTS_YML)
    dashboard: str = str(paths.DASHBOARD_JSON)
    cache_threshold: float = 0.999
    budget_days: float = 30.0

    def candidate_matchers(self) -> list[str]:
        """The user selector plus ``version="<candidate>"`` (escaped)."""
        return [*parse_selector(self.selector), matcher(self.version_label, self.candidate)]


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


def _section(proof: Proof, name: str, check_name: str, required: bool,
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


def run(params: ProofParams, client: PrometheusClient) -> Proof:
    """Run every section of the proof against ``client`` and decide the verdict."""
    proof = Proof(params=params, prometheus_url=client.url)
    _section(proof, "prometheus", "Prometheus is reachable", True, lambda: _prometheus(client))
    _section(proof, "monitoring", "Monitoring works", True, lambda: _monitoring(params, client))
    _section(proof, "reliability", f"R > {params.threshold} for {params.candidate}", True,
             lambda: _reliability(params, client))
    _section(proof, "budget", "Error budget", False, lambda: _budget(params, client))
    _section(proof, "comparison", "Candidate not worse than stable", False, lambda: _comparison(params, client))
    _section(proof, "alerts", "High5xxErrorRate did not fire for the candidate", True,
             lambda: _alerts(params, client))
    _section(proof, "breakers", "No circuit breaker OPEN at the window end", True, lambda: _breakers(params, client))
    _section(proof, "junit", "Regression tests passed", True, lambda: _junit(params))
    _section(proof, "cache", "Cache invalidated after every queue update", True, lambda: _cache(params, client))
    _section(proof, "data_quality", "Data quality", False, lambda: _data_quality(params, client))
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


# --------------------------------------------------------------------------- sections
def _prometheus(client: PrometheusClient) -> tuple[dict[str, Any], list[Check]]:
    # Reachability is judged by the monitoring checks; this records the version for provenance.
    return client.api("status/buildinfo"), []


@dataclass(frozen=True)
class MonitoringSection:
    """The monitoring checks, every dashboard panel's query result, and the dashboard image."""

    checks: list[Check]
    panels: pd.DataFrame
    image: bytes  # PNG of the dashboard drawn from the panels' own queries


def _monitoring(p: ProofParams, client: PrometheusClient) -> tuple[MonitoringSection, list[Check]]:
    import matplotlib.pyplot as plt

    from . import checks, dashboard, grafana
    from .errors import PrometheusUnavailable

    if not client.ready():  # an unreachable server is missing evidence, not a failed check
        raise PrometheusUnavailable(f"Prometheus at {client.url} is unreachable: the monitoring "
                                    "checks could not run", url=client.url)
    found = checks.run_all(client, rule_file=Path(p.rules), start=p.start, end=p.end, now=client.now())
    dash = dashboard.load_dashboard(Path(p.dashboard))
    panels = dashboard.run_panels(dash, client, p.start, p.end)
    found.append(dashboard.dashboard_check(panels))
    figure = dashboard.render_image(dash, panels)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=80)
    plt.close(figure)  # the report shows the PNG once; the inline backend must not show it again
    import tempfile

    # Panel PNGs are fetched only when GRAFANA_URL is set; no directory is made otherwise.
    out = tempfile.mkdtemp(prefix="grafana-") if os.environ.get("GRAFANA_URL") else tempfile.gettempdir()
    found += grafana.grafana_checks(dash, start=p.start, end=p.end, out_dir=out)
    return MonitoringSection(found, panels, image.getvalue()), found


@dataclass(frozen=True)
class ReliabilitySection:
    """R for the candidate with its bounds, per-version and per-route tables, the ratio over time."""

    bound: Any                 # stats.RBound
    buckets: pd.DataFrame
    per_version: pd.DataFrame
    per_route: pd.DataFrame
    ratio: pd.DataFrame
    profile: measure.RatioProfile | None


def _reliability(p: ProofParams, client: PrometheusClient) -> tuple[ReliabilitySection, list[Check]]:
    from .stats import bound_r, bound_r_frame, dispersion

    sel = p.candidate_matchers()
    tot = measure.totals(client, p.start, p.end, selector=sel)
    n, e = float(tot["requests"].sum()), float(tot["errors"].sum())
    buckets = measure.bucket_counts(client, p.start, p.end, selector=sel)
    phi = dispersion(buckets)  # fewer than 2 non-empty buckets: 1.0 with a warning
    bound = bound_r(n, e, phi=phi, threshold=p.threshold, confidence=p.confidence, method=p.method)
    opts = dict(threshold=p.threshold, confidence=p.confidence, method=p.method)
    v = p.version_label
    user_sel = p.selector or None
    per_version = bound_r_frame(
        measure.totals(client, p.start, p.end, selector=user_sel, by=[v]), by=v,
        phi=measure.dispersion_by(measure.bucket_counts(client, p.start, p.end, selector=user_sel, by=[v]), [v]),
        **opts)
    per_route = bound_r_frame(
        measure.totals(client, p.start, p.end, selector=sel, by=["route"]), by="route",
        phi=measure.dispersion_by(measure.bucket_counts(client, p.start, p.end, selector=sel, by=["route"]),
                                  ["route"]),
        **opts)
    ratio = measure.ratio_series(client, p.start, p.end, step=p.step, selector=sel)
    profile = measure.ratio_profile(ratio, threshold=1 - p.threshold, step=p.step) if len(ratio) else None
    section = ReliabilitySection(bound, buckets, per_version, per_route, ratio, profile)
    return section, [_r_check(p, bound)]


def _r_check(p: ProofParams, b: Any) -> Check:
    name = f"R > {p.threshold} for {p.candidate}"
    pct = f"{p.confidence:.0%}"
    head = (f"R = {b.r:.5f} over {b.requests:,.0f} requests ({b.errors:,.0f} 5xx); "
            f"{pct} lower bound {b.lower_adjusted:.5f} (dispersion {b.phi:.2f}, plain {b.lower:.5f})")
    if b.r <= p.threshold:
        return Check(name, Status.FAIL, True, f"{head}: the observed R is not above {p.threshold}")
    if not b.sufficient:
        need = f"{b.min_requests:,}" if b.min_requests else "more"
        return Check(name, Status.INCONCLUSIVE, True,
                     f"{head}: insufficient data, {need} requests are needed to prove R > {p.threshold}")
    if b.lower_adjusted > p.threshold:
        return Check(name, Status.PASS, True, f"{head} > {p.threshold}")
    return Check(name, Status.INCONCLUSIVE, True,
                 f"{head}: not proven, the lower bound does not exceed {p.threshold}")


@dataclass(frozen=True)
class BudgetSection:
    """The service's 2 % error budget over the period before the window end, and the burn rates."""

    budget: Any               # budget.ErrorBudget
    burn_rates: pd.DataFrame
    period_days: float
    text: str


def _budget(p: ProofParams, client: PrometheusClient) -> tuple[BudgetSection, list[Check]]:
    from .budget import burn_rates, error_budget

    days = p.budget_days
    start = p.end - pd.Timedelta(days=days)
    sel = parse_selector(p.selector)
    tot = measure.totals(client, start, p.end, selector=sel)
    slo = p.threshold
    b = error_budget(float(tot["requests"].sum()), float(tot["errors"].sum()), slo=slo)
    rates = burn_rates(measure.burn_ratios(client, p.end, selector=sel), slo=slo)
    text = (f"Error budget ({1 - slo:.0%} of requests over the {days:g} days before the window end, "
            f"all versions): {b.errors:,.0f} 5xx of {b.allowed_errors:,.0f} allowed — "
            f"**{b.consumed:.1%} consumed, {b.remaining:.1%} remaining**.")
    burning = rates[rates["status"] == "burning"]
    if len(burning) or b.overspent:
        what = ", ".join(f"{r.severity} {r.short_window}/{r.long_window}" for r in burning.itertuples())
        detail = f"{b.consumed:.1%} of the budget consumed" + (f"; burning: {what}" if what else "; overspent")
        return BudgetSection(b, rates, days, text), [Check("Error budget", Status.WARN, False, detail)]
    return BudgetSection(b, rates, days, text), [
        Check("Error budget", Status.PASS, False, f"{b.consumed:.1%} of the {days:g}-day budget consumed, no burn-rate alert pair burning")]


def _comparison(p: ProofParams, client: PrometheusClient) -> tuple[Any, list[Check]]:
    from .compare import compare
    from .stats import dispersion

    name = "Candidate not worse than stable"
    if not p.stable or p.stable == p.candidate:
        return None, [Check(name, Status.NOT_CONFIGURED, False, "no stable version to compare with")]
    counts = {}
    for version in (p.candidate, p.stable):
        sel = [*parse_selector(p.selector), matcher(p.version_label, version)]
        tot = measure.totals(client, p.start, p.end, selector=sel)
        buckets = measure.bucket_counts(client, p.start, p.end, selector=sel)
        counts[version] = (float(tot["requests"].sum()), float(tot["errors"].sum()), dispersion(buckets))
    (cn, ce, cphi), (sn, se, sphi) = counts[p.candidate], counts[p.stable]
    c = compare(cn, ce, sn, se, margin=p.margin, confidence=p.confidence, phi_candidate=cphi, phi_stable=sphi)
    status = Status.PASS if c.non_inferior else Status.WARN
    return c, [Check(name, status, False, c.verdict_text)]


@dataclass(frozen=True)
class AlertSection:
    """The seed's rule replayed on the candidate's traffic, and every rule of the file on all traffic."""

    candidate: Any            # alerts.Backtest of High5xxErrorRate scoped to the candidate
    all_rules: pd.DataFrame   # one row per alerting rule: fired, episodes, first firing
    episodes: pd.DataFrame    # firing episodes of every rule over the window


SEED_ALERT = "High5xxErrorRate"


def _alerts(p: ProofParams, client: PrometheusClient) -> tuple[AlertSection, list[Check]]:
    from dataclasses import replace

    from .alerts import backtest, load_rules
    from .promql import scope

    groups = load_rules(p.rules)
    rules = [r for g in groups for r in g.rules if hasattr(r, "alert")]
    seed = next((r for r in rules if r.alert == SEED_ALERT), None)
    name = f"{SEED_ALERT} did not fire for the candidate"
    if seed is None:
        return None, [Check(name, Status.FAIL, True, f"{p.rules} has no {SEED_ALERT} rule: the 2 % alert is not set")]
    # Start early enough that a condition already true at the window start can reach `for`.
    lead = pd.Timedelta(seconds=seed.for_)
    scoped = replace(seed, expr=scope(seed.expr, measure.METRIC, p.candidate_matchers()))
    bt = backtest(scoped, client, p.start - lead, p.end)
    rows, episodes = [], []
    for rule in rules:
        res = backtest(rule, client, p.start, p.end)
        rows.append(res.summary.iloc[0][["alert", "fired", "firing_episodes", "first_firing", "firing_time"]])
        if len(res.firing):
            episodes.append(res.firing.assign(alert=rule.alert))
    table = pd.DataFrame(rows).reset_index(drop=True)
    eps = pd.concat(episodes, ignore_index=True) if episodes else pd.DataFrame()
    firing = bt.firing
    firing = firing[firing["resolved_at"].isna() | (firing["resolved_at"] > p.start)]
    if len(firing):
        first = firing.iloc[0]
        detail = (f"fired {len(firing)} time(s) on {p.candidate}'s traffic; first at "
                  f"{iso(first['firing_since'])}, peak 5xx ratio {first['peak_value']:.2%}")
        return AlertSection(bt, table, eps), [Check(name, Status.FAIL, True, detail)]
    detail = (f"replayed every {bt.interval:.0f} s over the window on {p.candidate}'s traffic "
              f"({bt.evaluations} evaluations): never firing")
    return AlertSection(bt, table, eps), [Check(name, Status.PASS, True, detail)]


@dataclass(frozen=True)
class BreakerSection:
    """Per-breaker trip statistics and the sampled state timeline."""

    stats: Any                # breakers.BreakerStats, or None when the package is unavailable
    state: pd.DataFrame       # breaker, time, value (0 closed, 1 open, 2 half-open)
    transitions: pd.DataFrame
    calls: pd.DataFrame
    open_at_end: list[str]
    image: bytes | None

    @property
    def summary(self) -> pd.DataFrame:
        return self.stats.summary if self.stats is not None else self.transitions


def _breakers(p: ProofParams, client: PrometheusClient) -> tuple[BreakerSection, list[Check]]:
    import matplotlib.pyplot as plt

    from . import breakers
    from .promql import format_duration

    name = "No circuit breaker OPEN at the window end"
    rng = format_duration((p.end - p.start).total_seconds())
    transitions = client.query(
        f"sum by (breaker, from, to) (increase(circuit_breaker_transitions_total[{rng}]))", p.end)
    calls = client.query(f"sum by (breaker, outcome) (increase(circuit_breaker_calls_total[{rng}]))", p.end)
    state = client.query_range("max by (breaker) (circuit_breaker_state)", p.start, p.end, 30.0)
    if state.empty:
        raise NoDataError("no circuit_breaker_state samples in the window: the backend does not export "
                          "the breaker metrics of monitoring/METRICS.md")
    last = state.sort_values("time").groupby("breaker").tail(1)
    fresh = last[last["time"] >= p.end - pd.Timedelta(minutes=5)]
    open_now = sorted(fresh.loc[fresh["value"] == 1, "breaker"])
    stale = sorted(set(last["breaker"]) - set(fresh["breaker"]))
    stats = breakers.trip_stats(transitions.rename(columns={"value": "increase"}), state,
                                calls.rename(columns={"value": "increase"}), start=p.start, end=p.end)
    ax = stats.plot_timeline(state)
    image = io.BytesIO()
    ax.figure.savefig(image, format="png", dpi=90)
    plt.close(ax.figure)
    section = BreakerSection(stats, state, transitions, calls, open_now, image.getvalue())
    trips = transitions[transitions["to"] == "open"]["value"].sum() if len(transitions) else 0.0
    if open_now:
        return section, [Check(name, Status.FAIL, True, f"OPEN at {iso(p.end)}: {', '.join(open_now)} "
                               "(a dependency is failing now)")]
    if stale:
        return section, [Check(name, Status.INCONCLUSIVE, True,
                               f"no recent state sample at the window end for: {', '.join(stale)}")]
    return section, [Check(name, Status.PASS, True,
                           f"{len(last)} breakers closed at {iso(p.end)}; {trips:.0f} trips in the window")]


def _junit(p: ProofParams) -> tuple[Any, list[Check]]:
    from .junit import read_junit

    name = "Regression tests passed"
    if not p.junit:
        return None, [Check(name, Status.INCONCLUSIVE, True,
                            "no JUnit file given: the candidate's regression tests are not proven to pass")]
    res = read_junit(p.junit)
    counts = f"{res.total} tests: {res.passed} passed, {res.failures} failed, {res.errors} errors, {res.skipped} skipped"
    if res.failures or res.errors:
        names = ", ".join(res.failing["name"].head(5))
        return res, [Check(name, Status.FAIL, True, f"{counts}; failing: {names}")]
    if res.total == res.skipped:
        return res, [Check(name, Status.INCONCLUSIVE, True, f"{counts}: no test ran")]
    return res, [Check(name, Status.PASS, True, counts)]


def _cache(p: ProofParams, client: PrometheusClient) -> tuple[Any, list[Check]]:
    from .cache import cache_consistency

    name = "Cache invalidated after every queue update"
    res = cache_consistency(client, p.start, p.end, threshold=p.cache_threshold)
    cov = res.coverage
    head = (f"coverage {cov:.3%} of {res.by_clinic['updates'].sum():,.0f} queue updates "
            f"(threshold {p.cache_threshold:.1%}); {res.by_clinic['stale_reads'].sum():,.0f} stale reads")
    if len(res.below):
        clinics = ", ".join(f"{r.clinic} {r.coverage:.2%}" for r in res.below.itertuples())
        return res, [Check(name, Status.FAIL, True, f"{head}; below threshold: {clinics}")]
    return res, [Check(name, Status.PASS, True, head)]


def _data_quality(p: ProofParams, client: PrometheusClient) -> tuple[Any, list[Check]]:
    from .dataquality import preflight

    res = preflight(client, p.start, p.end)
    if res.ok:
        return res, [Check("Data quality", Status.PASS, False, "no scrape gaps, counter resets or impossible values")]
    kinds = res.findings["kind"].value_counts()
    detail = "; ".join(f"{n} {k}" for k, n in kinds.items()) + " (see the data-quality section)"
    return res, [Check("Data quality", Status.WARN, False, detail)]


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


# --------------------------------------------------------------------------- evidence
def evidence(proof: Proof) -> dict[str, Any]:
    """The machine-readable verdict (evidence.json) an approval system can consume."""
    p = proof.params
    assert proof.verdict is not None
    rel: dict[str, Any] = {"version_label": p.version_label, "candidate": p.candidate}
    section = proof.sections.get("reliability")
    if section is not None:
        b = section.bound
        rel.update(requests=b.requests, errors_5xx=b.errors, r=b.r, r_lower_bound=b.lower_adjusted,
                   r_lower_bound_plain=b.lower, confidence=b.confidence, method=b.method,
                   dispersion=b.phi, min_requests=b.min_requests, threshold=p.threshold)
    else:
        rel.update(requests=None, errors_5xx=None, r=None, r_lower_bound=None,
                   confidence=p.confidence, method=p.method, dispersion=None,
                   error=proof.errors.get("reliability"))
    return {
        "verdict": proof.verdict.decision,
        "reasons": list(proof.verdict.reasons),
        "checks": [c.as_dict() for c in proof.verdict.checks],
        "reliability": rel,
        "window": {"start": iso(p.start), "end": iso(p.end)},
        "candidate": p.candidate,
        "stable": p.stable,
        "selector": p.selector,
        "prometheus": {"url": proof.prometheus_url,
                       "version": (proof.sections.get("prometheus") or {}).get("version")},
        "queries": len(proof.queries),
        "inputs": inputs(p),
        "versions": versions(proof),
        "rollback": rollback_plan(proof),
    }


_LIBRARIES = ("love-reliability", "pandas", "numpy", "scipy", "prometheus-api-client", "papermill",
              "nbconvert", "weasyprint", "matplotlib")


def sha256(path: str | Path) -> str | None:
    """Hash of an input file, so an auditor can tell the evidence was made from these files."""
    import hashlib

    f = Path(path)
    return hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else None


def inputs(params: ProofParams) -> dict[str, Any]:
    """sha256 of every file the proof read."""
    return {
        "rules": {"path": params.rules, "sha256": sha256(params.rules)},
        "dashboard": {"path": params.dashboard, "sha256": sha256(params.dashboard)},
        "junit": [{"path": j, "sha256": sha256(j)} for j in params.junit],
        "notebook": {"path": str(paths.PROOF_NOTEBOOK), "sha256": sha256(paths.PROOF_NOTEBOOK)},
    }


def versions(proof: Proof) -> dict[str, str | None]:
    """Versions of Prometheus, of this package and of the libraries the numbers depend on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"prometheus": (proof.sections.get("prometheus") or {}).get("version"),
                                  "python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def provenance(proof: Proof) -> pd.DataFrame:
    """Versions and input hashes as one table for the report."""
    rows = [{"item": k, "value": v or "unknown"} for k, v in versions(proof).items()]
    for key, entry in inputs(proof.params).items():
        for e in entry if isinstance(entry, list) else [entry]:
            rows.append({"item": f"{key} {Path(e['path']).name}", "value": f"sha256 {e['sha256'] or 'missing'}"})
    return pd.DataFrame(rows)


def write_outputs(proof: Proof, client: PrometheusClient, *, evidence_path: str = "",
                  snapshot_path: str = "") -> None:
    """Save the query snapshot (unless replaying one) and evidence.json, which records its hash."""
    import json

    from .prom import SnapshotClient

    snapshot = getattr(client, "path", None) if isinstance(client, SnapshotClient) else None
    if snapshot_path and snapshot is None:
        snapshot = client.save_snapshot(snapshot_path)
    if evidence_path:
        ev = evidence(proof)
        ev["inputs"]["snapshot"] = {"path": str(snapshot) if snapshot else None,
                                    "sha256": sha256(snapshot) if snapshot else None}
        Path(evidence_path).write_text(json.dumps(ev, indent=2, default=str) + "\n")


def default_stable() -> str | None:
    """The content of ``.last-stable-version`` when present (the seed's rollback target)."""
    f: Path = paths.LAST_STABLE
    return f.read_text().strip() or None if f.exists() else None
