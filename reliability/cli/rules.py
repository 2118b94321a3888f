"""``reliability rules``: the directive's alert and the error-budget rules, written in a service's own metric names.

From the SLI (:mod:`reliability.source.sli`) and the service's scope it writes one self-contained rule
file (``alerts.yml``): recording rules of the failure ratio over every burn-rate window, the seed's
High5xxErrorRate (5xx share over 5 minutes above 2 % for 5 minutes, its summary and description
kept), the four multi-window burn-rate alerts on the 98 % objective (Google's SRE workbook, ch. 5)
and NoRequestTraffic; and promtool unit tests for them (``alerts_test.yml``), with input series in
the same convention: the service at 3 % fires, at 1 % does not, another service at 30 % cannot.
Sloth builds every rule from one error/total pair the same way.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from reliability.errors import ConfigurationError
from reliability.source.breaker_metrics import BreakerMetrics
from reliability.source.parsed import matcher_keys
from reliability.source.promql import escape_label_value, matcher
from reliability.source.sli import Sli

OBJECTIVE = 0.98
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
#: (alert, burn rate, long window, short window, for, severity, action, what it spends)
BURN_ALERTS = (
    ("ErrorBudgetFastBurn", "14.4", "1h", "5m", "2m", "critical", "page", "2% of the 30-day budget within 1 h"),
    ("ErrorBudgetSustainedBurn", "6", "6h", "30m", "2m", "critical", "page", "5% of the 30-day budget within 6 h"),
    ("ErrorBudgetSlowBurn", "3", "1d", "2h", "15m", "warning", "ticket", "10% of the 30-day budget within 1 day"),
    ("ErrorBudgetChronicBurn", "1", "3d", "6h", "15m", "warning", "ticket", "the whole budget within 30 days"),
)
SUMMARY = "CRITICAL: 5xx error rate exceeds 2% (R < 0.98)"
DESCRIPTION = "Error rate is {{ $value | humanizePercentage }}. Immediate rollback required!"


def equalities(scope: list[str]) -> dict[str, str]:
    """The scope as label values: rules are written for one service, named by ``=`` matchers."""
    keys = matcher_keys(tuple(scope))
    wrong = [f"{n}{op}{v!r}" for n, op, v in keys if op != "="]
    if wrong or not keys:
        raise ConfigurationError(f"--selector {','.join(scope) or '(none)'}: name the service with = matchers "
                                 f"(job=\"love-backend\"), the rules and their tests are written for it"
                                 + (f"; not {', '.join(wrong)}" if wrong else ""))
    return {n: v for n, _, v in keys}


def prefix(labels: dict[str, str]) -> str:
    """A recording-rule prefix per service, so two services' rules on one server never collide."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", "_".join(labels.values()))


def render(sli: Sli, scope: list[str]) -> tuple[str, str]:
    """``(alerts.yml, alerts_test.yml)`` for the service the ``scope`` matchers name."""
    labels = equalities(scope)
    series = sli.selector(scope)
    errors = sli.selector(scope, errors=True)
    rec = prefix(labels)

    def ratio(w: str) -> str:
        return f"(sum(rate({errors}[{w}])) or vector(0)) / (sum(rate({series}[{w}])) > 0)"

    recorded = [{"record": f"{rec}:sli_errors:ratio_rate{w}", "expr": ratio(w)} for w in WINDOWS]
    seed = {
        "alert": "High5xxErrorRate",
        "expr": f"( sum(rate({errors}[5m])) / sum(rate({series}[5m])) ) > 0.02",
        "for": "5m", "labels": {"severity": "critical"},
        "annotations": {"summary": SUMMARY, "description": DESCRIPTION, "runbook": _runbook(sli, errors)},
    }
    budget = 1 - OBJECTIVE
    burns = [{
        "alert": name,
        "expr": f"{rec}:sli_errors:ratio_rate{long} > ({rate} * {budget:g}) and "
                f"{rec}:sli_errors:ratio_rate{short} > ({rate} * {budget:g})",
        "for": for_, "labels": {"severity": severity, "action": action, "burn_rate": rate,
                                "long_window": long, "short_window": short},
        "annotations": {"summary": f"Error budget burning at {rate}x or more: {spends}",
                        "description": f"The failure ratio of {sli.requests} is above {rate} x {budget:.0%} over "
                                       f"both the last {long} and the last {short}."},
    } for name, rate, long, short, for_, severity, action, spends in BURN_ALERTS]
    traffic = {
        "alert": "NoRequestTraffic", "expr": f"(sum(rate({series}[10m])) or vector(0)) == 0", "for": "10m",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "No HTTP requests recorded for 10+ minutes: the 5xx alerts are blind",
                        "description": f"{sli.requests} has not grown for 10 minutes: the service is down, "
                                       "unreachable or not scraped. Missing data is never evidence of health."},
    }
    doc = {"groups": [
        {"name": "sli_recording", "rules": recorded},
        {"name": "sli_counts", "interval": "1m",
         "rules": [replace(sli, recorded=rec).recorded_rule(scope, keep=labels)]},
        {"name": "critical_alerts", "rules": [seed]},
        {"name": "slo_burn_rate", "rules": burns},
        {"name": "traffic", "rules": [traffic]},
    ]}
    head = (f"# Written by `reliability rules` for {','.join(scope)} from the SLI {sli.preset}:\n"
            f"# {sli.describe()}\n"
            "# High5xxErrorRate is the directive's rule in these names; regenerate, do not edit.\n")
    return head + _dump(doc), _tests(sli, labels, seed["annotations"], rec)


def _runbook(sli: Sli, errors: str) -> str:
    version = sli.version_label if sli.versioned_on_counter else "instance"
    return ("Roll back, do not fix in production: read .last-stable-version, git checkout that version, "
            f"npm run deploy. Then find the cause with sum by ({version}, {sli.code_label}) "
            f"(rate({errors}[5m])).")


def spelling(sli: Sli) -> tuple[str, str]:
    """A success and a failure code as the exporter spells them (``200``/``503``, ``2xx``/``5xx``, ``2``/``5``)."""
    for ok, bad in (("200", "503"), ("2xx", "5xx"), ("2", "5")):
        if re.fullmatch(sli.errors, bad) and not re.fullmatch(sli.errors, ok):
            return ok, bad
    raise ConfigurationError(f"[sli] errors = {sli.errors!r}: no test can be written for it (it matches none of "
                             "503, 5xx, 5, or also matches a success)")


def _tests(sli: Sli, labels: dict[str, str], annotations: dict[str, str], rec: str) -> str:
    ok, bad = spelling(sli)
    extra = {n: v for n, _, v in matcher_keys(tuple(sli.filter_matchers()))}

    def series(own: dict[str, str], code: str, per_step: int, *, filters: dict[str, str] = extra) -> dict[str, str]:
        all_labels = {**own, **filters, sli.code_label: code, "instance": own.get("instance", "a:8080")}
        if sli.versioned_on_counter:
            all_labels[sli.version_label] = "v2"
        body = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in all_labels.items())
        return {"series": f"{sli.requests}{{{body}}}", "values": f"0+{per_step}x40"}

    other = {**{k: f"other-{v}" for k, v in labels.items()}, "instance": "o:80"}
    info = ([{"series": f'{sli.version_info}{{{_labels({**labels, "instance": "a:8080"})},'
                        f'{matcher(sli.version_label, "v2")}}}', "values": "1x40"}]
            if sli.version_info else [])

    def case(failing: int, other_failing: int, alerts: list[dict[str, Any]], *, other_share: int = 0) -> dict[str, Any]:
        inputs = [series(labels, ok, 100 - failing), series(labels, bad, failing), *info]
        if other_share:
            inputs += [series(other, ok, other_share - other_failing), series(other, bad, other_failing)]
        return {"interval": "30s", "input_series": inputs,
                "alert_rule_test": [{"eval_time": "15m", "alertname": "High5xxErrorRate", "exp_alerts": alerts}]}

    fired = [{"exp_labels": {"severity": "critical"},
              "exp_annotations": {**annotations, "description": "Error rate is 3%. Immediate rollback required!"}}]
    recorded = case(3, 0, fired)
    recorded["promql_expr_test"] = [{"expr": f"{rec}:sli_errors:ratio_rate5m", "eval_time": "15m",
                                     "exp_samples": [{"labels": f"{rec}:sli_errors:ratio_rate5m", "value": 0.03}]}]
    if extra:  # the same requests reported from the other side (Istio's source) must not count twice
        recorded["input_series"].append(series(labels, bad, 50, filters={k: f"not-{v}" for k, v in extra.items()}))
    doc = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "30s",
        "tests": [
            recorded,                                  # 3 %: fires, the recorded ratio is exactly 0.03
            case(1, 0, []),                            # 1 %: quiet
            case(1, 30, [], other_share=100),          # another service's 30 % cannot fire it
        ],
    }
    return ("# promtool unit tests written by `reliability rules`: promtool test rules alerts_test.yml\n"
            + _dump(doc))


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, width=10_000, allow_unicode=True)


def write(out: Path, sli: Sli, scope: list[str], *, force: bool = False) -> list[Path]:
    """Write ``alerts.yml`` and ``alerts_test.yml`` into ``out``; refuses to overwrite unless ``force``."""
    alerts, tests = render(sli, scope)
    targets = {out / "alerts.yml": alerts, out / "alerts_test.yml": tests}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ConfigurationError("refusing to overwrite " + ", ".join(map(str, existing)) + "; pass --force")
    out.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        path.write_text(text)
    return list(targets)


def breaker_group(metrics: BreakerMetrics) -> dict[str, Any]:
    """The two breaker alerts of the bundle (stuck open, flapping) in the breaker library's names."""
    n = metrics.name_label
    by = f"sum by (job, instance, {n})"
    if metrics.kind == "opossum":  # no state gauge: rejecting and never succeeding is stuck open
        events = metrics.events
        stuck = (f'({by} (increase({events}{{event="reject"}}[5m])) > 0) unless '
                 f'({by} (increase({events}{{event="success"}}[5m])) > 0)')
        flapping = f'{by} (increase({events}{{event="open"}}[30m])) >= 3'
    elif metrics.kind == "resilience4j":  # no transition counter: every trip is two changes of the gauge
        stuck = f'max by (job, instance, {n}) ({metrics.state}{{state=~"open|half_open|forced_open"}}) > 0'
        flapping = f'{by} (changes({metrics.state}{{state="open"}}[30m])) >= 6'
    else:
        stuck = f"{metrics.state} > 0"
        flapping = f'{by} (increase({metrics.transitions}{{to="open"}}[30m])) >= 3'
    label = "{{ $labels." + n + " }}"
    return {"name": "circuit_breakers", "rules": [
        {"alert": "CircuitBreakerStuckOpen", "expr": stuck, "for": "5m", "labels": {"severity": "critical"},
         "annotations": {"summary": f"Circuit breaker {label} on {{{{ $labels.instance }}}} has not closed for "
                                    "5 minutes",
                         "description": f"Read from {metrics.describe()}: calls to that dependency are being "
                                        "rejected."}},
        {"alert": "CircuitBreakerFlapping", "expr": flapping, "for": "5m", "labels": {"severity": "warning"},
         "annotations": {"summary": f"Circuit breaker {label} on {{{{ $labels.instance }}}} opened 3+ times in "
                                    "30 minutes",
                         "description": "The dependency fails intermittently; each open rejects calls."}},
    ]}
