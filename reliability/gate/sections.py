"""The proof's sections: each runs one analysis for the candidate's window and turns it into checks.

A section returns its frozen result (what the report shows) and its checks; it raises
:class:`~reliability.errors.ReliabilityError` when its evidence is missing, which
:func:`reliability.gate.proof.run` records as an INCONCLUSIVE check. Sections never draw:
the report draws from the frames they return.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from reliability.analysis import measure
from reliability.errors import NoDataError
from reliability.gate.dashboard import Dashboard
from reliability.gate.params import ProofParams
from reliability.gate.verdict import Check, Status
from reliability.source.prom import PrometheusClient
from reliability.source.promql import parse_selector
from reliability.source.sli import SEED, Sli
from reliability.times import format_duration, iso, plural


@dataclass(frozen=True)
class ScopeSection:
    """Which service the proof judges: the selector, and the jobs whose series it read."""

    selector: str
    jobs: list[str]
    partial: bool = False

    @property
    def text(self) -> str:
        jobs = ", ".join(self.jobs) or "none found"
        if self.partial:
            return f"PARTIAL SCOPE: {self.selector} (jobs: {jobs})"
        if self.selector:
            return f"{self.selector} (jobs: {jobs})"
        return f"all series, no selector (jobs summed: {jobs})"


def scope(p: ProofParams, client: PrometheusClient) -> tuple[ScopeSection, list[Check]]:
    """The jobs behind the candidate's requests; several without a selector is worth a warning."""
    rng = format_duration(max((p.end - p.start).total_seconds(), 1.0))
    found = client.query(p.sli.counted("count_over_time", rng, version=p.candidate, by=["job"]), p.end)
    jobs = sorted(found["job"].astype(str)) if "job" in found else []
    section = ScopeSection(p.selector, jobs, p.partial_scope)
    if p.partial_scope:  # a slice of the traffic proves nothing about the service: never GO
        return section, [Check("Scope", Status.INCONCLUSIVE, True,
                               f"PARTIAL SCOPE: {p.selector} judges a slice of the traffic, not the service; "
                               "the verdict can be at best INCONCLUSIVE")]
    if not p.selector and len(jobs) > 1:
        return section, [Check("Scope", Status.WARN, False,
                               f"no selector: the counts sum {len(jobs)} jobs ({', '.join(jobs)}); pass "
                               f"--selector 'job=\"<your service>\"' to judge one service")]
    return section, [Check("Scope", Status.PASS, False, section.text)]


def prometheus(client: PrometheusClient) -> tuple[dict[str, Any], list[Check]]:
    """The server's build (for provenance), and whether it serves recorded history (the demo banner).

    Reachability is judged by the monitoring checks.
    """
    from reliability.source import server_config
    from reliability.source.embedded.config import HISTORY_LABEL

    labels = ((server_config(client) or {}).get("global") or {}).get("external_labels") or {}
    return {**client.api("status/buildinfo"), "served_history": labels.get(HISTORY_LABEL) == "true"}, []


@dataclass(frozen=True)
class MonitoringSection:
    """The monitoring checks, the dashboard, and every panel's query result (the report draws them)."""

    checks: list[Check]
    dashboard: Dashboard
    panels: pd.DataFrame


def monitoring(p: ProofParams, client: PrometheusClient) -> tuple[MonitoringSection, list[Check]]:
    import tempfile

    from reliability.errors import PrometheusUnavailable
    from reliability.gate import checks, grafana, panels
    from reliability.gate.dashboard import load_dashboard

    if not client.ready():  # an unreachable server is missing evidence, not a failed check
        raise PrometheusUnavailable(f"Prometheus at {client.url} is unreachable: the monitoring "
                                    "checks could not run", url=client.url)
    found = checks.run_all(client, rule_file=Path(p.rules), start=p.start, end=p.end, now=client.now(),
                           job=p.job(), sli=p.sli, breakers=p.breakers)
    dash = load_dashboard(Path(p.dashboard))
    results = panels.run_panels(dash, client, p.start, p.end, failures=failure_matchers(p.sli, p.breakers))
    # No samples at all, or a window under one bucket: panels without data are missing evidence.
    empty = (p.end - p.start).total_seconds() < p.bucket or any(
        c.name == "Series present" and c.status is Status.INCONCLUSIVE and "no series of any metric" in c.detail
        for c in found)
    found.append(panels.dashboard_check(results, window_empty=empty))
    # Panel PNGs are fetched only when GRAFANA_URL is set; no directory is made otherwise.
    out = tempfile.mkdtemp(prefix="grafana-") if os.environ.get("GRAFANA_URL") else tempfile.gettempdir()
    found += grafana.grafana_checks(dash, start=p.start, end=p.end, out_dir=out)
    found.append(screenshot_check(p.screenshots))
    return MonitoringSection(found, dash, results), found


def screenshot_check(folder: str) -> Check:
    """Whether the report holds pictures of the Prometheus UI (taken by the bundle, see
    :mod:`reliability.source.screenshots`). Never required: a missing browser is said, not a verdict."""
    from reliability.source import screenshots

    name = "Prometheus screenshots"
    if folder == "off":
        return Check(name, Status.NOT_CONFIGURED, False, "turned off (--no-screenshots or LOVE_SCREENSHOTS=0)")
    manifest = screenshots.read(folder)
    if manifest is None:
        return Check(name, Status.NOT_CONFIGURED, False, "taken only when `reliability proof` or `reliability demo` "
                                                          "writes the report; this notebook ran by itself")
    if manifest["missing"] or not manifest["shots"]:
        return Check(name, Status.INCONCLUSIVE, False, f"not proven by a picture: {manifest['missing']}")
    shown = "; ".join(s["shows"] for s in manifest["shots"])
    return Check(name, Status.PASS, False, f"{len(manifest['shots'])} pictures of {manifest['prometheus']}'s web UI "
                                           f"taken {manifest['taken_at']} with headless Chromium: {shown}")


def failure_matchers(sli: Sli = SEED, breakers: Any = None) -> tuple[tuple[str, str, str], ...]:
    """The matchers that select failures (5xx, a breaker's trips): a panel empty only for them is right."""
    from reliability.analysis.breakers.observed import TRIPPED
    from reliability.source.parsed import matcher_keys

    return matcher_keys((sli.error_matcher, *((TRIPPED,) if breakers is None else breakers.failure_matchers)))


@dataclass(frozen=True)
class ReliabilitySection:
    """R for the candidate with its bounds, per-version and per-route tables, the ratio over time."""

    bound: Any                 # stats.RBound, from bound_r_buckets
    steps: pd.DataFrame        # per-step counts behind it
    per_version: pd.DataFrame
    per_route: pd.DataFrame
    ratio: pd.DataFrame
    profile: measure.RatioProfile | None


def reliability(p: ProofParams, client: PrometheusClient) -> tuple[ReliabilitySection, list[Check]]:
    from reliability.analysis.stats import bound_r_buckets, bound_r_buckets_frame

    sel, sli, cand = p.scope(), p.sli, p.candidate
    seconds = (p.end - p.start).total_seconds()
    if seconds < p.bucket:
        raise NoDataError(f"the window is {format_duration(seconds)}, shorter than one {format_duration(p.bucket)} "
                          "bucket: how much the 5xx cluster cannot be measured, so R cannot be bounded; "
                          "use a window of at least 5 minutes (hours of traffic prove more)")
    # The whole window's increase() is the count (it extrapolates once); the steps measure clustering.
    # no requests: NoDataError naming the selector
    tot = measure.totals(client, p.start, p.end, sli=sli, selector=sel, version=cand)
    scrape = scrape_interval(p, client)
    steps = step_counts(p, client, selector=sel, version=cand, scrape=scrape)
    opts = dict(threshold=p.threshold, confidence=p.confidence, method=p.method)
    bound = bound_r_buckets(steps, totals=(tot["requests"].sum(), tot["errors"].sum()), **opts)

    def per(label: str, version: str | None) -> pd.DataFrame:
        if not label:  # the exporter has no such label (Istio has no route): an empty table says so
            return pd.DataFrame()
        return bound_r_buckets_frame(
            step_counts(p, client, selector=sel, version=version, scrape=scrape, by=[label]), by=label, **opts,
            totals=measure.totals(client, p.start, p.end, sli=sli, selector=sel, version=version, by=[label]))

    per_version, per_route = per(sli.version_label, None), per(sli.route_label, cand)
    ratio = measure.ratio_series(client, p.start, p.end, step=p.step, sli=sli, selector=sel, version=cand)
    profile = measure.ratio_profile(ratio, threshold=1 - p.threshold, step=p.step) if len(ratio) else None
    section = ReliabilitySection(bound, steps, per_version, per_route, ratio, profile)
    return section, [r_check(p, bound)]


def scrape_interval(p: ProofParams, client: PrometheusClient) -> float:
    """The candidate job's scrape interval, asked once per section (one status/config read)."""
    from reliability import paths
    from reliability.gate.checks import server_scrape_interval

    return server_scrape_interval(client, p.job(), fallback=paths.PROMETHEUS_YML)[0]


def step_counts(p: ProofParams, client: PrometheusClient, *, selector: Any, scrape: float,
                version: str | None = None, by: list[str] | None = None) -> pd.DataFrame:
    """Per-step counts at the proof's step (at least two scrape intervals): what the bound takes."""
    return measure.step_counts(client, p.start, p.end, step=p.step, sli=p.sli, selector=selector, version=version,
                               by=by or (), scrape_interval=scrape)


def r_check(p: ProofParams, b: Any) -> Check:
    name = f"R > {p.threshold} for {p.candidate}"
    pct = f"{p.confidence:.0%}"
    units = f"; {b.units:.0f} independent units" if b.units is not None else ""
    head = (f"R = {b.r:.5f} over {b.requests:,.0f} requests ({b.errors:,.0f} 5xx); "
            f"{pct} lower bound {b.lower_adjusted:.5f} (clustering phi {b.phi:.2f}{units}, plain {b.lower:.5f})")
    if b.r <= p.threshold:
        return Check(name, Status.FAIL, True, f"{head}: the observed R is not above {p.threshold}")
    if not b.sufficient:
        why = b.shortfall or f"more requests are needed to prove R > {p.threshold}"
        return Check(name, Status.INCONCLUSIVE, True, f"{head}: insufficient data, {why}")
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


def budget(p: ProofParams, client: PrometheusClient) -> tuple[BudgetSection, list[Check]]:
    from reliability.analysis.budget import burn_rates, error_budget

    days = p.budget_days
    start = p.end - pd.Timedelta(days=days)
    sel = parse_selector(p.selector)
    tot = measure.totals(client, start, p.end, sli=p.sli, selector=sel)
    slo = p.threshold
    first = measure.first_seen(client, start, p.end, sli=p.sli, selector=sel) or start
    covered = (p.end - max(first, start)).total_seconds() / 86400
    b = error_budget(float(tot["requests"].sum()), float(tot["errors"].sum()), slo=slo, days=covered)
    rates = burn_rates(measure.burn_ratios(client, p.end, sli=p.sli, selector=sel), slo=slo)
    text = (f"Error budget ({1 - slo:.0%} of the requests of the {days:g} days before the window end, all versions; "
            f"the data covers {covered:.1f} of those days, from {max(first, start):%Y-%m-%d %H:%M} UTC): "
            f"{b.errors:,.0f} 5xx of {b.allowed_errors:,.0f} allowed — "
            f"**{b.consumed:.1%} consumed, {b.remaining:.1%} remaining**.")
    burning = rates[rates["status"] == "burning"]
    if len(burning) or b.overspent:
        what = ", ".join(f"{r.severity} {r.short_window}/{r.long_window}" for r in burning.itertuples())
        detail = b.describe() + (f"; burning: {what}" if what else "; overspent")
        return BudgetSection(b, rates, days, text), [Check("Error budget", Status.WARN, False, detail)]
    return BudgetSection(b, rates, days, text), [
        Check("Error budget", Status.PASS, False, f"{b.describe()}; no burn-rate alert pair burning")]


def comparison(p: ProofParams, client: PrometheusClient) -> tuple[Any, list[Check]]:
    from reliability.analysis.compare import compare
    from reliability.analysis.stats import clustering

    name = "Candidate vs stable"
    if not p.stable or p.stable == p.candidate:
        return None, [Check(name, Status.NOT_CONFIGURED, False, "no stable version to compare with")]
    counts, scrape = {}, scrape_interval(p, client)
    for version in (p.candidate, p.stable):
        tot = measure.totals(client, p.start, p.end, sli=p.sli, selector=p.scope(), version=version)
        phi = clustering(step_counts(p, client, selector=p.scope(), version=version, scrape=scrape),
                         confidence=p.confidence).phi
        counts[version] = (float(tot["requests"].sum()), float(tot["errors"].sum()), phi)
    (cn, ce, cphi), (sn, se, sphi) = counts[p.candidate], counts[p.stable]
    c = compare(cn, ce, sn, se, margin=p.margin, confidence=p.confidence, phi_candidate=cphi, phi_stable=sphi)
    status = Status.PASS if c.non_inferior else Status.WARN
    return c, [Check(name, status, False, c.verdict_text)]


@dataclass(frozen=True)
class BreakerSection:
    """What the breakers did (:func:`reliability.analysis.breakers.breaker_stats`) and which dependencies they cover."""

    stats: Any                # breakers.BreakerStats
    coverage: pd.DataFrame    # dependency, exported, calls, status (covered / no calls / missing)
    open_at_end: list[str]

    @property
    def state(self) -> pd.DataFrame:
        return self.stats.state

    @property
    def summary(self) -> pd.DataFrame:
        return self.stats.summary


def breakers(p: ProofParams, client: PrometheusClient) -> tuple[BreakerSection, list[Check]]:
    from reliability.analysis.breakers import breaker_stats, dependency_coverage
    from reliability.analysis.breakers.observed import unexpected

    name = "Circuit breakers at the window end"
    stats = breaker_stats(client, p.start, p.end, source=p.breakers)  # the client carries the service's scope
    state = stats.state
    last = state.sort_values("time").groupby(["breaker", "instance"]).tail(1)
    fresh = last[last["time"] >= p.end - pd.Timedelta(minutes=5)]
    open_now = sorted(set(fresh.loc[fresh["value"] == 1, "breaker"]))
    stale = sorted(set(last["breaker"]) - set(fresh["breaker"]))
    coverage = dependency_coverage(stats, p.dependencies)
    section = BreakerSection(stats, coverage, open_now)
    trips = float(stats.summary["trips"].sum())
    if open_now:
        checks = [Check(name, Status.FAIL, True,
                        f"OPEN at {iso(p.end)}: {', '.join(open_now)} (a dependency is failing now)")]
    elif stale:
        checks = [Check(name, Status.INCONCLUSIVE, True,
                        f"no recent state sample at the window end for: {', '.join(stale)}")]
    else:
        checks = [Check(name, Status.PASS, True, f"{plural(len(set(last['breaker'])), 'breaker')} closed at "
                                                 f"{iso(p.end)}; {plural(trips, 'trip')} in the window")]
    return section, [*checks, _coverage_check(coverage, unexpected(stats, p.dependencies), p.breakers.describe())]


def _coverage_check(coverage: pd.DataFrame, extra: list[str], source: str = "monitoring/METRICS.md") -> Check:
    """The seed's rule: every external service the backend calls is wrapped in a breaker that is used."""
    name = "A breaker on every dependency"
    missing = coverage.loc[coverage["status"] == "missing", "dependency"].tolist()
    idle = coverage.loc[coverage["status"] == "no calls", "dependency"].tolist()
    also = f"; breakers not in the settings' dependencies: {', '.join(extra)}" if extra else ""
    if missing:
        them = "it" if len(missing) == 1 else "them"
        return Check(name, Status.FAIL, True, f"no circuit breaker for {', '.join(missing)}: the backend calls "
                                              f"{them} unprotected, or does not export its breaker metrics "
                                              f"({source}){also}")
    if idle:
        return Check(name, Status.INCONCLUSIVE, True,
                     f"the breaker of {', '.join(idle)} saw no calls in the window, so it is not shown to wrap "
                     f"them; use a window with traffic{also}")
    calls = ", ".join(f"{r.dependency} {r.calls:,.0f}" for r in coverage.itertuples())
    return Check(name, Status.PASS, True, f"each dependency's breaker saw calls ({calls}){also}")


def junit(p: ProofParams) -> tuple[Any, list[Check]]:
    from reliability.analysis.junit import read_junit

    name = "Regression tests"
    if not p.junit:
        return None, [Check(name, Status.INCONCLUSIVE, True,
                            "no JUnit file given: the candidate's regression tests are not proven to pass")]
    res = read_junit(p.junit)
    counts = res.counts
    if res.failures or res.errors:
        names = ", ".join(res.failing["name"].head(5))
        return res, [Check(name, Status.FAIL, True, f"{counts}; failing: {names}")]
    if res.inconsistent:  # the summary and the cases cannot both be true: trust neither
        return res, [Check(name, Status.FAIL, True, f"{counts}, but the files contradict themselves: "
                                                    f"{'; '.join(res.inconsistent)}. Use the XML the runner wrote")]
    if res.total == res.skipped:
        return res, [Check(name, Status.INCONCLUSIVE, True, f"{counts}: no test ran")]
    return res, [Check(name, Status.PASS, True, counts)]


def cache(p: ProofParams, client: PrometheusClient) -> tuple[Any, list[Check]]:
    from reliability.analysis.cache import cache_consistency

    name = "Cache invalidation"
    res = cache_consistency(client, p.start, p.end, threshold=p.cache_threshold)
    cov = res.coverage
    head = (f"coverage {cov:.3%} of {res.by_clinic['updates'].sum():,.0f} queue updates "
            f"(threshold {p.cache_threshold:.1%}); {res.by_clinic['stale_reads'].sum():,.0f} stale reads")
    if len(res.below):
        clinics = ", ".join(f"{r.clinic} {r.coverage:.2%}" for r in res.below.itertuples())
        return res, [Check(name, Status.FAIL, True, f"{head}; below threshold: {clinics}")]
    return res, [Check(name, Status.PASS, True, head)]


def data_quality(p: ProofParams, client: PrometheusClient) -> tuple[Any, list[Check]]:
    from reliability.analysis.dataquality import preflight

    res = preflight(client, p.start, p.end, sli=p.sli)
    if res.ok:
        return res, [Check("Data quality", Status.PASS, False, "no scrape gaps, counter resets or impossible values")]
    kinds = res.findings["kind"].value_counts()
    detail = "; ".join(f"{n} {k}" for k, n in kinds.items()) + " (see the data-quality section)"
    return res, [Check("Data quality", Status.WARN, False, detail)]
