"""The bundled dashboard in another SLI's names: every panel reads the service's own counter.

The template's request panels are written on the seed's ``http_requests_total{status, version}``.
Each selector of that counter is rewritten by the PromQL parser: the SLI's counter and filters,
the failure matcher on its code label, the version matcher on its version label; groupings and
``label_replace`` follow. Where the version lives on an info metric (OpenTelemetry's
``target_info``), each rate or increase is joined to it, the ``$version`` variable filtering the
join. The proof then runs these very queries against the server (the dashboard check).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from reliability.source.breaker_metrics import BreakerMetrics
from reliability.source.parsed import parse, selector_text, vector_selectors, wrap_calls
from reliability.source.sli import SEED, Sli

_RANGE_VARIABLE = re.compile(r"\[(\$\{?\w+\}?)\]")


def rewrite(dashboard_json: str, sli: Sli) -> str:
    """The dashboard JSON with every seed-counter query in ``sli``'s names."""
    doc = json.loads(dashboard_json)
    source = sli.selector() if sli.versioned_on_counter else f"{sli.version_info}"
    for var in doc.get("templating", {}).get("list", []):
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if isinstance(text, str) and SEED.requests in text:
            label = sli.version_label if var.get("name") == "version" else None
            new = (f"label_values({source}, {label})" if label else
                   text.replace(SEED.requests, sli.requests))
            var["definition"] = new
            if isinstance(query, dict):
                query["query"] = new
            else:
                var["query"] = new

    each_expr(doc, lambda expr: panel(expr, sli) if SEED.requests in expr else expr)
    return json.dumps(doc, indent=2) + "\n"


def each_expr(doc: dict[str, Any], change: Callable[[str], str]) -> None:
    """Every panel target's ``expr`` of a dashboard replaced by ``change(expr)``, in place."""
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str) and node["expr"].strip():
                node["expr"] = change(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc.get("panels", []))


def panel(expr: str, sli: Sli) -> str:
    """One panel query written on the seed's counter, in ``sli``'s names (Grafana's variables kept)."""
    found = list(dict.fromkeys(_RANGE_VARIABLE.findall(expr)))
    stand_in = {var: 1_000_003 + i for i, var in enumerate(found)}
    for var, seconds in stand_in.items():
        expr = expr.replace(f"[{var}]", f"[{seconds}s]")
    versioned = False
    for name, keys in vector_selectors(expr):
        if name != SEED.requests:
            continue
        new = [*(k for k in _filters(sli) if k not in keys)]
        for label, op, value in keys:
            if label == SEED.code_label:
                new.append((sli.code_label, op, sli.errors if value == SEED.errors else value))
            elif label == SEED.version_label:
                versioned = True
                if sli.versioned_on_counter:
                    new.append((sli.version_label, op, value))
            else:
                new.append((label, op, value))
        expr = _replace_selector(expr, name, keys, selector_text(sli.requests, new))
    expr = re.sub(rf"\bby \(([^)]*)\b{SEED.version_label}\b", rf"by (\1{sli.version_label}", expr)
    expr = expr.replace(f'"{SEED.code_label}", "(.).."', f'"{sli.code_label}", "(.).*"')
    if sli.version_info and (versioned or f"by ({sli.version_label}" in expr or f", {sli.version_label})" in expr):
        keys = ", ".join(sli.join)
        info = sli.info("$version", op="=~")
        expr = wrap_calls(expr, {sli.requests},
                          lambda call: f"({call} * on ({keys}) group_left ({sli.version_label}) {info})")
    parse(expr.replace("$version", "x"))  # still PromQL
    for var, seconds in stand_in.items():
        expr = expr.replace(f"[{seconds}s]", f"[{var}]").replace(f"[{_printed(seconds)}]", f"[{var}]")
    return expr


def _filters(sli: Sli) -> list[tuple[str, str, str]]:
    from reliability.source.parsed import matcher_keys

    return list(matcher_keys(tuple(sli.filter_matchers())))


def _replace_selector(expr: str, name: str, keys: tuple[tuple[str, str, str], ...], new: str) -> str:
    """``expr`` with each written form of the selector ``name{keys}`` replaced by ``new``."""
    body = r"\s*,\s*".join(re.escape(f'{k}{op}"{v}"') for k, op, v in keys)
    pattern = re.compile(rf"\b{re.escape(name)}\{{\s*{body}\s*\}}" if keys else
                         rf"\b{re.escape(name)}(?:\{{\s*\}})?(?![\w{{:])")
    return pattern.sub(lambda _m: new, expr)


def _printed(seconds: int) -> str:
    import promql_parser

    return str(promql_parser.parse(f"x[{seconds}s]"))[len("x{}["):-1]


#: The bundle's breaker panels, written on the seed's contract.
SEED_BREAKER_PANELS = ("count(circuit_breaker_state > 0) or vector(0)",
                       "max by (instance, breaker) (circuit_breaker_state)",
                       'sum by (breaker) (increase(circuit_breaker_transitions_total{to="open"}[$__rate_interval]))')


def breaker_panels(dashboard_json: str, breakers: BreakerMetrics) -> str:
    """The dashboard with its breaker panels in the breaker library's names (before the job scope is added):
    breakers not closed now, their state (opossum: its rejections, it has no state gauge), their trips."""
    n = breakers.name_label
    if breakers.kind == "opossum":
        e = breakers.events
        new = (f'count(sum by ({n}) (increase({e}{{event="reject"}}[5m])) > 0) or vector(0)',
               f'sum by (instance, {n}) (increase({e}{{event="reject"}}[$__rate_interval]))',
               f'sum by ({n}) (increase({e}{{event="open"}}[$__rate_interval]))')
    elif breakers.kind == "resilience4j":
        st = breakers.state
        new = (f'count(max by ({n}) ({st}{{state=~"open|half_open|forced_open"}}) > 0) or vector(0)',
               f'max by (instance, {n}) ({st}{{state="open"}})',
               f'sum by ({n}) (changes({st}{{state="open"}}[$__rate_interval]))')
    else:
        return dashboard_json
    doc = json.loads(dashboard_json)
    each_expr(doc, lambda expr: new[SEED_BREAKER_PANELS.index(expr)] if expr in SEED_BREAKER_PANELS else expr)
    return json.dumps(doc, indent=2) + "\n"
