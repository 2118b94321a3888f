"""Replacing recorded series by their expressions, so alerts can be replayed over backfilled history.

Prometheus does not evaluate rules over backfilled blocks: a series written by a
recording rule simply does not exist there, and an alert that reads it would never fire
in a backtest. Substituting ``name`` by ``(expr)`` gives the same value at every
evaluation time, as long as the name is used bare (no matchers, range or offset) and the
recording rule adds no labels; anything else is refused rather than replayed wrongly.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from reliability.errors import ConfigurationError

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[a-zA-Z0-9_]*")
# Keywords whose parenthesised argument is a list of label names, not expressions.
_LABEL_LIST = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_MAX_DEPTH = 10


def inline_recording_rules(expr: str, recording_rules: Mapping[str, str]) -> str:
    """``expr`` with every bare reference to a recorded series replaced by ``(its expression)``.

    Token-aware: names inside strings, label matchers, ranges, comments and ``by (...)``
    lists are left alone, as are function calls. Recording rules built on other recording
    rules are inlined recursively.

    Raises
    ------
    ConfigurationError
        A recorded series is used with matchers, a range, ``offset`` or ``@`` (the
        substitution would change the meaning), or recording rules refer to each other
        in a cycle.
    """
    if not recording_rules:
        return expr
    out = expr
    for _ in range(_MAX_DEPTH):
        replaced = _inline_once(out, recording_rules)
        if replaced == out:
            return out
        out = replaced
    raise ConfigurationError(f"recording rules refer to each other more than {_MAX_DEPTH} levels deep "
                             f"(a cycle?) while inlining: {expr}")


def _inline_once(expr: str, rules: Mapping[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = _string_end(expr, i)
            out.append(expr[i:j])
            i = j
        elif c == "#":
            j = expr.find("\n", i)
            j = n if j < 0 else j
            out.append(expr[i:j])
            i = j
        elif c in "{[":
            j = _group_end(expr, i, c, "}" if c == "{" else "]")
            out.append(expr[i:j])
            i = j
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = _NUMBER.match(expr, i)
            j = m.end() if m else i + 1
            out.append(expr[i:j])
            i = j
        elif c.isalpha() or c in "_:":
            m = _IDENT.match(expr, i)
            assert m is not None
            name, j = m.group(0), m.end()
            k = _skip_space(expr, j)
            nxt = expr[k] if k < n else ""
            if name.lower() in _LABEL_LIST and nxt == "(":
                end = _group_end(expr, k, "(", ")")
                out.append(expr[i:end])
                i = end
                continue
            if name in rules and nxt != "(":
                _check_bare(expr, name, k)
                out.append(f"({rules[name]})")
            else:
                out.append(name)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _check_bare(expr: str, name: str, k: int) -> None:
    rest = expr[k:]
    word = _IDENT.match(rest)
    if rest[:1] in ("{", "[", "@") or (word is not None and word.group(0) == "offset"):
        raise ConfigurationError(
            f"the recorded series {name!r} is used with matchers, a range, offset or @ in {expr!r}; "
            "the backtest can only inline bare references. Refer to it by bare name, or write "
            "the expression out in the alert"
        )


def _skip_space(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def _string_end(expr: str, i: int) -> int:
    quote, j = expr[i], i + 1
    while j < len(expr):
        if expr[j] == "\\" and quote != "`":
            j += 2
            continue
        if expr[j] == quote:
            return j + 1
        j += 1
    raise ConfigurationError(f"unterminated string in PromQL expression: {expr!r}")


def _group_end(expr: str, i: int, open_: str, close: str) -> int:
    depth, j = 0, i
    while j < len(expr):
        c = expr[j]
        if c in "\"'`":
            j = _string_end(expr, j)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise ConfigurationError(f"unbalanced {open_!r} in PromQL expression: {expr!r}")
