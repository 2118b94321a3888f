"""Monitoring checks: is the alert that guards the redeploy actually running, and can it see data?

An alert that is not loaded, was edited to a laxer threshold, reads a metric that does
not exist or cannot reach an Alertmanager is silently useless. Each function here asks
Prometheus one such question and answers with a :class:`~reliability.gate.verdict.Check`
whose detail says what was found and what to do.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reliability import paths
from reliability.errors import PrometheusError, ReliabilityError
from reliability.gate.alertmanager import alertmanager_wired
from reliability.gate.verdict import Check, Status
from reliability.source.parsed import comparison_literals, metric_names, range_selectors, ratio_shape_problems
from reliability.source.promql import _squash, format_duration, parse_duration
from reliability.source.sli import SEED, Sli

SEED_RULE = "High5xxErrorRate"
# The metric contract beyond the SLI's counter and the breakers' metrics: what the report and the rules
# read (monitoring/METRICS.md).
CONTRACT_METRICS = (
    "up",
    "queue_updates_total",
    "cache_invalidations_total",
    "cache_stale_reads_total",
)

def rule_metrics(rule_groups: Iterable[Any]) -> list[str]:
    """Raw series the rules need: names in every expression minus the recorded ones.

    Recorded series are excluded because Prometheus never evaluates rules over
    backfilled history: only the raw series can be checked there.
    """
    groups = list(rule_groups)
    recorded = {getattr(r, "record", None) for g in groups for r in g.rules}
    names: set[str] = set()
    for g in groups:
        for r in g.rules:
            names |= metric_names(r.expr)
    return sorted(names - recorded)


def scrape_interval(prometheus_yml: str | Path = paths.PROMETHEUS_YML) -> float:
    """The global ``scrape_interval`` of a Prometheus config in seconds (Prometheus' default 1m)."""
    import yaml

    from reliability.errors import ConfigurationError

    path = Path(prometheus_yml)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path}: cannot read the Prometheus config ({exc}); "
                                 "pass the path of monitoring/prometheus.yml") from None
    value = (doc.get("global") or {}).get("scrape_interval", "1m") if isinstance(doc, dict) else "1m"
    return parse_duration(value)


def _parse_time(text: str) -> datetime | None:
    """Prometheus' RFC 3339 times with nanoseconds; None for the zero time (never evaluated)."""
    if not text or text.startswith("0001-01-01"):
        return None
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if m is None:
        return None
    frac = (m.group(2) or ".0")[:7]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + zone)


# --------------------------------------------------------------------------- checks
def _shape(expr: str, sli: Sli) -> list[str]:
    try:
        return ratio_shape_problems(expr, metrics=sli.counters(), code_label=sli.code_label)
    except ReliabilityError as exc:
        return [str(exc)]


def prometheus_ready(client: Any) -> Check:
    """Prometheus answers ``/-/ready``; its version goes in the detail for the record."""
    name = "Prometheus ready"
    if not client.ready():
        return Check(name, Status.FAIL, True,
                     f"Prometheus at {client.url} does not answer /-/ready. Start it (`reliability "
                     f"prometheus` serves the bundled history) or fix PROMETHEUS_URL; check with "
                     f"curl {client.url}/-/ready")
    try:
        info = client.api("status/buildinfo")
        build = (f"version {info.get('version', '?')} (revision {info.get('revision', '?')}, "
                 f"{info.get('goVersion', '?')})")
    except PrometheusError as exc:
        build = f"build info unavailable ({type(exc).__name__}); not a Prometheus server?"
    return Check(name, Status.PASS, True, f"{client.url} is ready; {build}")


def _format(client: Any, expr: str) -> str | None:
    """Prometheus' canonical text of ``expr`` via /api/v1/format_query; None if unavailable."""
    try:
        out = client.api("format_query", {"query": expr})
    except PrometheusError:
        return None
    return out if isinstance(out, str) else None


def _loaded_rules(client: Any) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Alerting rules Prometheus has loaded: name -> (rule, its group)."""
    data = client.api("rules", {"type": "alert"})
    return {r["name"]: (r, g) for g in data.get("groups", []) for r in g.get("rules", [])
            if r.get("type") == "alerting"}


def _file_rules(rule_file: Path) -> dict[str, Any]:
    from reliability.analysis.alerts import load_rules

    return {r.alert: r for g in load_rules(rule_file) for r in g.alerts}


def rules_loaded(
    client: Any,
    rule_file: str | Path = paths.ALERTS_YML,
    *,
    required: Sequence[str] = (SEED_RULE,),
    limited: Sequence[str] = (SEED_RULE,),
    max_threshold: float = 0.02,
    max_for: float = 300.0,
    wait: float = 75.0,
    now: datetime | None = None,
    sli: Sli = SEED,
) -> Check:
    """Every required alert is loaded, healthy, recently evaluated and identical to the repository's.

    One aggregate check; its detail has one line per required rule.

    Parameters
    ----------
    client
        A :class:`reliability.source.prom.PrometheusClient`.
    rule_file
        The repository's rule file the running rules must equal (expression, ``for``, labels).
    required
        Alert names that must be loaded.
    limited
        Rules held to the seed's limits: every comparison literal at most ``max_threshold``
        and ``for`` at most ``max_for`` seconds (a laxer rule alerts too late).
    wait
        Seconds to wait for a first evaluation: a freshly started Prometheus evaluates a
        group only once its interval (30 s here) has come round.
    now
        Reference time for "recently evaluated"; default the wall clock, because
        Prometheus evaluates rules at wall-clock time even over backfilled data.
    """
    name = "Alert rules loaded"
    rule_file = Path(rule_file)
    try:
        in_file = _file_rules(rule_file)
    except ReliabilityError as exc:
        return Check(name, Status.FAIL, True, f"cannot read the repository's rules: {exc}")
    deadline = time.monotonic() + (wait if getattr(client, "live", True) else 0.0)
    while True:
        try:
            loaded = _loaded_rules(client)
        except PrometheusError as exc:
            return Check(name, Status.INCONCLUSIVE, True, f"cannot list the loaded rules: {exc}")
        problems, unevaluated, notes = [], [], []
        fallback = False
        for alert in required:
            findings, pending, fell_back = _compare_rule(
                client, alert, loaded.get(alert), in_file.get(alert), rule_file,
                limited=alert in limited, max_threshold=max_threshold, max_for=max_for,
                now=now or datetime.now(timezone.utc), sli=sli)
            fallback |= fell_back
            if findings:
                problems.extend(f"{alert}: {finding}" for finding in findings)
            elif pending:
                unevaluated.append(f"{alert}: {pending}")
            else:
                notes.append(alert)
        if problems or not unevaluated or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    how = ("compared after whitespace removal (Prometheus has no /api/v1/format_query)"
           if fallback else "compared via /api/v1/format_query")
    if problems:
        return Check(name, Status.FAIL, True, "\n".join(problems + unevaluated) +
                     f"\nRunning rules must equal {rule_file}: reload Prometheus with the repository's "
                     "rule file (curl -X POST <prometheus>/-/reload) or fix the file.")
    if unevaluated:
        return Check(name, Status.INCONCLUSIVE, True, "\n".join(unevaluated) +
                     f"\nWaited {wait:.0f} s; check the rule group's interval and rerun.")
    return Check(name, Status.PASS, True,
                 f"{', '.join(notes)} loaded from {rule_file.name}, health ok, recently evaluated, "
                 f"expression, for and labels equal to the file ({how})")


def _compare_rule(
    client: Any, alert: str, served: tuple[dict[str, Any], dict[str, Any]] | None, filed: Any,
    rule_file: Path, *, limited: bool, max_threshold: float, max_for: float, now: datetime, sli: Sli = SEED,
) -> tuple[list[str], str, bool]:
    """(problems, reason it is not yet evaluated, whether format_query was unavailable)."""
    problems: list[str] = []
    if filed is None:
        problems.append(f"not defined in {rule_file}; add it or fix the name")
    if served is None:
        problems.append(f"not loaded by Prometheus at {client.url}; add {rule_file} to rule_files in "
                        "prometheus.yml and reload")
        return problems, "", False
    rule, group = served
    fell_back = False
    if filed is not None:
        a, b = _format(client, rule["query"]), _format(client, filed.expr)
        if a is None or b is None:
            fell_back = True
            a, b = _squash(rule["query"]), _squash(filed.expr)
        if a != b:
            problems.append(f"expression differs: Prometheus runs `{rule['query']}`, {rule_file.name} has "
                            f"`{filed.expr}`")
        if float(rule.get("duration", 0)) != filed.for_:
            problems.append(f"for differs: Prometheus has {format_duration(rule.get('duration', 0))}, "
                            f"{rule_file.name} has {format_duration(filed.for_)}")
        if dict(rule.get("labels") or {}) != dict(filed.labels):
            problems.append(f"labels differ: Prometheus has {rule.get('labels')}, {rule_file.name} has "
                            f"{dict(filed.labels)}")
    if limited:
        # The running rule and the file's are both held to the limits; the same finding in
        # the same file is reported once.
        sources = ((f"{group.get('file') or 'the rules Prometheus loaded'} (running)", rule["query"],
                    float(rule.get("duration", 0))),
                   (str(rule_file), getattr(filed, "expr", None), getattr(filed, "for_", None)))
        for where, expr, for_ in sources:
            if expr is None:
                continue
            where = where.replace(" (running)", "") if where.startswith(str(rule_file)) else where
            literals = comparison_literals(expr)
            found = []
            if not literals:
                found.append(f"no threshold literal found in `{expr}` in {where}; the rule must compare the "
                             f"5xx ratio with a number at most {max_threshold:g}")
            elif max(literals) > max_threshold:
                found.append(f"threshold {max(literals):g} is above the seed's {max_threshold:g} "
                             f"(R > {1 - max_threshold:g}) in {where}; restore `> {max_threshold:g}`")
            found.extend(f"{where}: {why} (the seed's rule is the 5xx share of all requests over 5m)"
                         for why in _shape(expr, sli))
            if for_ is not None and for_ > max_for:
                found.append(f"for {format_duration(for_)} is longer than the seed's {format_duration(max_for)} "
                             f"in {where}; restore `for: {format_duration(max_for)}`")
            problems.extend(f for f in found if f not in problems)
    health = rule.get("health")
    if health == "err":
        problems.append(f"evaluation fails: {rule.get('lastError') or 'no detail'}; test the expression "
                        "in the Prometheus UI")
    last = _parse_time(rule.get("lastEvaluation", ""))
    interval = float(group.get("interval") or 60)
    if last is None or health != "ok":
        return problems, f"not evaluated yet (health {health!r})", fell_back
    age = (now - last).total_seconds()
    if age > 3 * interval + 10:
        problems.append(f"last evaluated {age:.0f} s ago ({last:%Y-%m-%dT%H:%M:%SZ}), more than 3 evaluation "
                        f"intervals of {interval:g} s: the rule manager is stuck or the clock is wrong")
    return problems, "", fell_back


def series_present(client: Any, start: datetime, end: datetime, metrics: Iterable[str]) -> Check:
    """Every metric the rules and the report read has series in ``[start, end]``."""
    name = "Series present"
    window = format_duration(max((end - start).total_seconds(), 1.0))
    counts: dict[str, int] = {}
    for metric in dict.fromkeys(metrics):
        try:
            frame = client.query(f"count(count_over_time({metric}[{window}]))", end)
        except PrometheusError as exc:
            return Check(name, Status.INCONCLUSIVE, True, f"cannot count series of {metric}: {exc}")
        counts[metric] = int(frame["value"].iloc[0]) if len(frame) else 0
    absent = [m for m, n in counts.items() if n == 0]
    span = f"{start:%Y-%m-%dT%H:%MZ} .. {end:%Y-%m-%dT%H:%MZ}"
    found = ", ".join(f"{m} {n}" for m, n in counts.items() if n)
    if not counts:
        return Check(name, Status.INCONCLUSIVE, True, "no metrics were given to look for")
    if len(absent) == len(counts):  # nothing at all: missing evidence, not a broken alert
        return Check(name, Status.INCONCLUSIVE, True,
                     f"no series of any metric in {span}: the window is outside the history (or too short) "
                     "or the scope matches nothing; choose a window with samples")
    if absent:
        return Check(name, Status.FAIL, True,
                     f"no series in {span} for {', '.join(absent)}: an alert on an absent metric never "
                     f"fires. Check the scrape target and the metric names (series found: {found or 'none'})")
    return Check(name, Status.PASS, True, f"series in {span}: {found}")


def rate_ranges_ok(rule_groups: Iterable[Any], scrape_interval: float | str, *,
                   source: str = "the given scrape interval") -> Check:
    """Every rate/irate/increase range covers at least 2 scrapes (better 4), else the rule goes blind.

    Below 2x the scrape interval a range often holds fewer than two samples and the rate
    is absent; below 4x one missed scrape does the same.
    """
    name = "Rate ranges"
    scrape = parse_duration(scrape_interval)
    too_short, short, n = [], [], 0
    for group in rule_groups:
        for rule in group.rules:
            rule_name = getattr(rule, "alert", None) or getattr(rule, "record", "?")
            for func, seconds in range_selectors(rule.expr):
                n += 1
                where = f"{rule_name} ({group.name}): {func}(...[{format_duration(seconds)}])"
                if seconds < 2 * scrape:
                    too_short.append(where)
                elif seconds < 4 * scrape:
                    short.append(where)
    every = f"{format_duration(scrape)} (from {source})"
    if too_short:
        return Check(name, Status.FAIL, True,
                     f"ranges shorter than 2 x the {every} scrape interval: {'; '.join(too_short)}. "
                     f"Use at least {format_duration(4 * scrape)}.")
    if short:
        return Check(name, Status.WARN, True,
                     f"ranges under 4 x the {every} scrape interval (one missed scrape blinds them): "
                     f"{'; '.join(short)}. Use at least {format_duration(4 * scrape)}.")
    if not n:
        return Check(name, Status.PASS, True, "no rate/irate/increase in the rules")
    return Check(name, Status.PASS, True, f"all {n} rate/irate/increase ranges are at least 4 x the "
                                          f"{every} scrape interval")


def run_all(
    client: Any,
    *,
    rule_file: str | Path = paths.ALERTS_YML,
    start: datetime,
    end: datetime,
    extra_rule_files: Sequence[str | Path] | None = None,
    prometheus_yml: str | Path | None = None,
    metrics: Iterable[str] | None = None,
    required: Sequence[str] = (SEED_RULE,),
    now: datetime | None = None,
    job: str | None = None,
    sli: Sli = SEED,
    breakers: Any = None,
) -> list[Check]:
    """All monitoring checks in the order a reader would investigate them.

    ``metrics`` defaults to the raw series the rule files read plus the metric contract;
    ``extra_rule_files`` to the ``recording.yml`` beside ``rule_file``, ``prometheus_yml`` to the
    ``prometheus.yml`` beside it (else the bundled one).
    """
    here = Path(rule_file).parent
    if extra_rule_files is None:
        extra_rule_files = [here / "recording.yml"]
    if prometheus_yml is None:
        prometheus_yml = here / "prometheus.yml" if (here / "prometheus.yml").exists() else paths.PROMETHEUS_YML
    from reliability.analysis.alerts import load_rules

    checks = [prometheus_ready(client)]
    if checks[0].status is not Status.PASS:
        return checks
    checks.append(rules_loaded(client, rule_file, required=required, now=now, sli=sli))
    checks.append(alertmanager_wired(client, start, end))
    try:
        groups = [g for f in (rule_file, *extra_rule_files) if Path(f).exists() for g in load_rules(f)]
    except ReliabilityError as exc:
        checks.append(Check("Rate ranges", Status.FAIL, True, f"cannot read the rules: {exc}"))
        groups = []
    if metrics is None:
        from reliability.source.breaker_metrics import SEED as SEED_BREAKERS

        metrics = [*rule_metrics(groups), sli.requests, *((sli.version_info,) if sli.version_info else ()),
                   *(breakers or SEED_BREAKERS).exported(), *CONTRACT_METRICS]
    checks.append(series_present(client, start, end, metrics))
    if groups:
        seconds, source = server_scrape_interval(client, job, fallback=prometheus_yml)
        checks.append(rate_ranges_ok(groups, seconds, source=source))
    return checks


def server_scrape_interval(client: Any, job: str | None, *, fallback: str | Path) -> tuple[float, str]:
    """The scrape interval of ``job`` (else the global one) from the server's own config.

    Our ``prometheus.yml`` is used only when the server does not say (said so in the result).
    """
    from reliability.source import server_config

    config = server_config(client)
    if config is not None:
        default = (config.get("global") or {}).get("scrape_interval", "1m")
        for sc in config.get("scrape_configs") or []:
            if job and sc.get("job_name") == job:
                return parse_duration(sc.get("scrape_interval", default)), f"the server's scrape interval for job {job}"
        return parse_duration(default), "the server's global scrape interval"
    return scrape_interval(fallback), f"{Path(fallback).name}, because the server did not report its config"
