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
from typing import Any

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

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str) and SEED.requests in node["expr"]:
                node["expr"] = panel(node["expr"], sli)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc.get("panels", []))
    return json.dumps(doc, indent=2) + "\n"


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
