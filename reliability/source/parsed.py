"""PromQL written by people, read with a parser: scope every selector, read ranges, names, thresholds.

Rule files and dashboard panels hold arbitrary PromQL. Regular expressions cannot tell a
metric name from a label value, a function or a keyword, so the scope (``job="love-backend"``)
is added to every vector selector of the parsed expression, and ranges, metric names and
comparison thresholds are read from its syntax tree. The parser is ``promql-parser``
(bindings of the Rust parser GreptimeDB uses); Prometheus' own ``/api/v1/format_query``
compares two expressions (:mod:`reliability.gate.checks`).
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from functools import lru_cache
from typing import Any

import promql_parser as pp

from reliability.errors import ConfigurationError
from reliability.times import format_duration

_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
_COMPARISONS = frozenset({">", "<", ">=", "<=", "==", "!="})
RANGE_FUNCTIONS = frozenset({"rate", "irate", "increase", "delta", "idelta", "deriv"})  # need 2 samples


def parse(expr: str) -> Any:
    """The syntax tree of ``expr``; a :class:`ConfigurationError` naming the expression if invalid."""
    try:
        return pp.parse(expr)
    except ValueError as exc:
        raise ConfigurationError(f"invalid PromQL {expr!r}: {exc}") from None


def _op(m: Any) -> str:
    return _OPS[str(m.op).rsplit(".", 1)[-1]]


def _key(m: Any) -> tuple[str, str, str]:
    return (m.name, _op(m), m.value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _text(key: tuple[str, str, str]) -> str:
    name, op, value = key
    return f'{name}{op}"{_escape(value)}"'


@lru_cache(maxsize=256)
def matcher_keys(matchers: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    """``('job="x"', ...)`` as ``(name, op, value)`` triples, read by the parser."""
    if not matchers:
        return ()
    # PromQL refuses a bare {...} whose matchers are all negative (status!~"5.."), and a name
    # beside a __name__ matcher: name the selector unless a matcher names it.
    named = any(m.lstrip().startswith("__name__") for m in matchers)
    tree = parse(("" if named else "__scope__") + "{" + ",".join(matchers) + "}")
    return tuple(_key(m) for m in tree.matchers.matchers)


def _selector(node: Any, extra: Sequence[tuple[str, str, str]]) -> str:
    """The selector's name and matchers (plus ``extra``), escaped here: the parser's printer
    does not escape quotes in label values."""
    groups = [list(g) for g in node.matchers.or_matchers] or [list(node.matchers.matchers)]
    parts = []
    for group in groups:
        keys = [_key(m) for m in group]
        keys += [k for k in extra if k not in keys]
        parts.append(",".join(_text(k) for k in keys))
    return f"{node.name or ''}{{{' or '.join(parts)}}}"


def _modifiers(node: Any) -> str:
    text = ""
    if node.offset is not None:
        seconds = node.offset.total_seconds()
        text += f" offset {'-' if seconds < 0 else ''}{format_duration(abs(seconds))}"
    if node.at is not None:
        text += f" {node.at}"
    return text


def selector_names(node: Any) -> set[str]:
    """The metric names a vector selector can read (its name, or a ``__name__=`` matcher)."""
    if node.name:
        return {node.name}
    groups = [list(g) for g in node.matchers.or_matchers] or [list(node.matchers.matchers)]
    return {m.value for g in groups for m in g if m.name == "__name__" and _op(m) == "="}


def add_matchers(expr: str, matchers: Iterable[str], *, metrics: Collection[str] | None = None) -> str:
    """``expr`` with ``matchers`` added to every vector selector (only those of ``metrics`` if given).

    A matcher the selector already has is not added twice, so scoping is idempotent. Each
    selector is swapped for a placeholder, the tree printed, and the placeholder replaced by
    the selector written here; the result is parsed again and must hold exactly the intended
    selectors, or the expression is refused.
    """
    extra = matcher_keys(tuple(matchers))
    if not extra:
        return expr
    tree = parse(expr)
    texts: dict[str, str] = {}

    def visit(node: Any) -> Any:
        if isinstance(node, pp.VectorSelector) and (metrics is None or selector_names(node) & set(metrics)):
            mark = f"__reliability_scope_{len(texts)}__"
            texts[mark + "{}"] = _selector(node, extra)
            return pp.parse(mark + _modifiers(node))
        return None

    out = str(pp.transform(tree, visit, None))
    if not texts:
        return expr  # nothing to scope: keep the author's text
    for mark, text in texts.items():
        out = out.replace(mark, text, 1)
    out = _tidy(out)
    want = sorted(_selector_keys(parse(t)) for t in texts.values())
    got = parse(out)
    if any("__reliability_scope_" in n for n in metric_names(out)) or not set(want) <= set(
            _selector_keys(n) for n in _nodes_of(got, pp.VectorSelector)):
        raise ConfigurationError(f"cannot add the scope to {expr!r} safely; simplify the expression")
    return out


def wrap_calls(expr: str, metrics: Collection[str], wrap: Callable[[str], str]) -> str:
    """``expr`` with every range call over ``metrics`` (``rate(m[5m])``) replaced by ``wrap(call)``.

    How an instant vector computed from a counter is joined to labels the counter lacks (the
    version on an info metric): the join must wrap the call, a range cannot be multiplied.
    """
    tree = parse(expr)
    texts: dict[str, str] = {}

    def visit(node: Any) -> Any:
        if isinstance(node, pp.Call) and node.args and isinstance(node.args[0], pp.MatrixSelector):
            inner = node.args[0].vector_selector
            if selector_names(inner) & set(metrics):
                if len(node.args) > 1:
                    raise ConfigurationError(f"cannot join {node.func.name}() with arguments after its range "
                                             f"in {expr!r}")
                mark = f"__reliability_wrap_{len(texts)}__"
                rng = format_duration(node.args[0].range.total_seconds())
                texts[mark] = wrap(f"{node.func.name}({_selector(inner, ())}[{rng}]{_modifiers(inner)})")
                return pp.parse(mark)
        return None

    out = str(pp.transform(tree, visit, None))
    for mark, text in texts.items():
        out = out.replace(mark + "{}", text, 1) if mark + "{}" in out else out.replace(mark, text, 1)
    out = _tidy(out)
    parse(out)  # still PromQL
    return out


def _tidy(text: str) -> str:
    """The printer's ``or  x`` and ``x{}`` written as people write them (outside string literals)."""
    import re

    from reliability.source.promql import STRING_LITERAL

    def fix(code: str) -> str:
        return re.sub(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{\}", r"\1", re.sub(r" {2,}", " ", code))

    out, pos = [], 0
    for m in STRING_LITERAL.finditer(text):
        out.append(fix(text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(fix(text[pos:]))
    return "".join(out)


def _selector_keys(node: Any) -> tuple[Any, ...]:
    groups = [list(g) for g in node.matchers.or_matchers] or [list(node.matchers.matchers)]
    return (node.name, tuple(tuple(sorted(_key(m) for m in g)) for g in groups))


def _nodes_of(tree: Any, kind: type) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, kind):
            found.append(node)

    pp.walk(tree, visit, None)
    return found


def _nodes(expr: str, kind: type) -> list[Any]:
    return _nodes_of(parse(expr), kind)


def metric_names(expr: str) -> set[str]:
    """Series names an expression reads."""
    return set().union(*(selector_names(n) for n in _nodes(expr, pp.VectorSelector)))


def vector_selectors(expr: str) -> list[tuple[str, tuple[tuple[str, str, str], ...]]]:
    """Every vector selector of ``expr`` as ``(metric name, matchers)``; an ``or`` selector gives each group."""
    out = []
    for node in _nodes(expr, pp.VectorSelector):
        groups = [list(g) for g in node.matchers.or_matchers] or [list(node.matchers.matchers)]
        for group in groups:
            keys = tuple(_key(m) for m in group if m.name != "__name__" or node.name)
            out.append((node.name or "", keys))
    return list(dict.fromkeys(out))


def selector_text(name: str, keys: Iterable[tuple[str, str, str]]) -> str:
    """A selector written back from :func:`vector_selectors`' parts, values escaped."""
    body = ",".join(_text(k) for k in keys)
    return f"{name}{{{body}}}" if body or not name else name


def range_selectors(expr: str) -> list[tuple[str, float]]:
    """``(function, seconds)`` for every rate-like call (``rate(x[5m])``, ``increase(y[1h:1m])``)."""
    out = []
    for call in _nodes(expr, pp.Call):
        name = call.func.name
        if name not in RANGE_FUNCTIONS:
            continue
        for arg in call.args:
            if isinstance(arg, (pp.MatrixSelector, pp.SubqueryExpr)):
                out.append((name, arg.range.total_seconds()))
    return out


def longest_range(expr: str) -> float:
    """The longest range or subquery range in ``expr``, in seconds; 0 if none."""
    ranges = [n.range.total_seconds() for n in _nodes(expr, pp.MatrixSelector)]
    ranges += [n.range.total_seconds() for n in _nodes(expr, pp.SubqueryExpr)]
    return max(ranges, default=0.0)


def comparison_literals(expr: str) -> list[float]:
    """Numbers an expression compares against (``> 0.02`` and ``0.02 <``).

    A number inside arithmetic (``> (14.4 * 0.02)``) is not a plain threshold and is not returned.
    """
    out = []
    for node in _nodes(expr, pp.BinaryExpr):
        if str(node.op) not in _COMPARISONS:
            continue
        for side in (node.lhs, node.rhs):
            while isinstance(side, pp.ParenExpr):
                side = side.expr
            if isinstance(side, pp.NumberLiteral):
                out.append(float(side.val))
    return out


def ratio_shape_problems(expr: str, *, metrics: Collection[str] = ("http_requests_total",), code_label: str = "status",
                         longest: float = 300.0) -> list[str]:
    """Why ``expr`` is not the seed's rule shape: (failed requests / all requests) over <= 5 m, compared.

    The numerator must read one of ``metrics`` (the SLI's counter) with a ``code_label=~"5..."``
    matcher and otherwise the denominator's matchers (a subset of the same traffic); the
    denominator must not filter on ``code_label``.
    """
    tree = parse(expr)
    while isinstance(tree, pp.ParenExpr):
        tree = tree.expr
    if not (isinstance(tree, pp.BinaryExpr) and str(tree.op) in _COMPARISONS):
        return ["the expression is not a comparison of a ratio with a threshold"]
    ratio = tree.lhs if not isinstance(_unparen(tree.lhs), pp.NumberLiteral) else tree.rhs
    ratio = _unparen(ratio)
    if not (isinstance(ratio, pp.BinaryExpr) and str(ratio.op) == "/"):
        return ["the compared value is not a ratio (numerator / denominator)"]
    problems = []
    num, den = _nodes_of(ratio.lhs, pp.VectorSelector), _nodes_of(ratio.rhs, pp.VectorSelector)
    names = " or ".join(metrics)
    if not num or not den or any(not selector_names(n) or not selector_names(n) <= set(metrics) for n in num + den):
        problems.append(f"both sides must read {names} only")
    den_keys = {k for n in den for k in map(_key, n.matchers.matchers)}
    if any(k[0] == code_label for k in den_keys):
        problems.append(f"the denominator filters on {code_label}: it must count all requests")
    for n in num:
        keys = set(map(_key, n.matchers.matchers))
        if not any(k[0] == code_label and k[1] == "=~" and k[2].startswith("5") for k in keys):
            problems.append(f'the numerator must count {code_label}=~"5.." requests')
        if {k for k in keys if k[0] != code_label} != {k for k in den_keys if k[0] != "__name__"}:
            problems.append("numerator and denominator select different traffic")
    ranges = [r for _, r in range_selectors(expr)]
    if not ranges or max(ranges) > longest:
        problems.append(f"the rates must be over at most {format_duration(longest)}")
    return list(dict.fromkeys(problems))


def _unparen(node: Any) -> Any:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node
