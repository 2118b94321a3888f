"""Building PromQL safely: label matchers, selectors and durations.

Every user-supplied label value goes through :func:`escape_label_value`, so a value
such as ``x"} or vector(1) #`` stays a string and cannot change the query.
"""
from __future__ import annotations

import re

from reliability.errors import ConfigurationError
from reliability.times import format_duration, parse_duration  # noqa: F401 - PromQL durations, re-exported

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_MATCH_OPS = ("=", "!=", "=~", "!~")
STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LITERAL_OR_COMMENT = re.compile(STRING_LITERAL.pattern + r"|#[^\n]*")
_SET_OPERATOR = re.compile(r"(?<![\w:])(and|or|unless)(?![\w:])", re.IGNORECASE)
RANGE_SELECTOR = re.compile(r"\[\s*([0-9a-zA-Z]+)\s*(?::[^\]]*)?\]")  # [5m], a subquery's [1d:1m]


def escape_label_value(value: str) -> str:
    """Escape a label value for a double-quoted PromQL string literal."""
    return (
        str(value)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
    )


def matcher(name: str, value: str, op: str = "=") -> str:
    """One label matcher, e.g. ``version="v1.9.1"``; names are validated, values escaped."""
    if not _LABEL_NAME.match(name):
        raise ConfigurationError(f"invalid label name {name!r}: use letters, digits and '_'")
    if op not in _MATCH_OPS:
        raise ConfigurationError(f"invalid matcher operator {op!r}: use one of {', '.join(_MATCH_OPS)}")
    return f'{name}{op}"{escape_label_value(value)}"'


def selector(metric: str, *matchers: str, **labels: str) -> str:
    """A vector selector: ``metric{matchers..., label="value"...}``.

    ``matchers`` are already-built matcher strings (from :func:`matcher` or a validated
    user selector); ``labels`` are equality matchers whose values are escaped here.
    """
    if not _METRIC_NAME.match(metric):
        raise ConfigurationError(f"invalid metric name {metric!r}")
    parts = [m for m in matchers if m] + [matcher(k, v) for k, v in labels.items()]
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


_MATCHER_RE = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)'
)


def parse_selector(text: str | None) -> list[str]:
    """Parse a user selector such as ``route="/api/queue/list",status!="404"`` into matchers.

    Accepts the inside of braces (optionally with the braces). Anything that is not a
    plain list of label matchers is rejected, so a selector cannot smuggle in PromQL.
    """
    if text is None:
        return []
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    if not body:
        return []
    out: list[str] = []
    pos = 0
    while pos < len(body):
        m = _MATCHER_RE.match(body, pos)
        if not m:
            raise ConfigurationError(
                f"selector {text!r} is not a list of label matchers like "
                'route="/api/queue/list",status=~"5.."'
            )
        name, op, raw = m.groups()
        value = _unescape(raw)
        out.append(matcher(name, value, op))
        pos = m.end()
    return out


def _unescape(raw: str) -> str:
    """Undo PromQL string escapes (\\", \\\\, \\n) without touching non-ASCII text."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw)


def scope(expr: str, metric: str, matchers: list[str]) -> str:
    """Add ``matchers`` to every selector of ``metric`` in ``expr``.

    Used to apply the seed's alert (which sums all traffic) to one version's series.
    Matchers must come from :func:`matcher`/:func:`parse_selector`. Occurrences inside
    string literals are not expected in alert expressions and are not special-cased.
    """
    if not matchers:
        return expr
    extra = ",".join(matchers)
    pattern = re.compile(rf"(?<![a-zA-Z0-9_:]){re.escape(metric)}(?![a-zA-Z0-9_:])(\s*\{{([^}}]*)\}})?")

    def add(m: re.Match[str]) -> str:
        inner = (m.group(2) or "").strip().rstrip(",")
        return f"{metric}{{{inner + ',' if inner else ''}{extra}}}"

    return pattern.sub(add, expr)


def blank_strings(expr: str) -> str:
    """``expr`` with string contents and comments blanked, same length, so indices still match.

    What text scans of PromQL read: a label value can hold any keyword, bracket or number.
    """
    def blank(m: re.Match[str]) -> str:
        text = m.group(0)
        return " " * len(text) if text[0] == "#" else text[0] + " " * (len(text) - 2) + text[-1]
    return _LITERAL_OR_COMMENT.sub(blank, expr)


def split_and(expr: str) -> tuple[str, str] | None:
    """``(left, right)`` when ``expr`` is ``left and right`` at the top level, else None.

    None too when the top level also has ``or`` or ``unless`` (they bind as loose or
    looser, so splitting would change the meaning) or the ``and`` has ``on``/``ignoring``:
    callers that re-implement the match on all labels must see only the default match.
    """
    text, depth, found = blank_strings(expr), 0, []
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and (m := _SET_OPERATOR.match(text, i)) is not None:
            found.append((m.group(1).lower(), m.start(), m.end()))
    if [op for op, _, _ in found] != ["and"]:
        return None
    _, a, b = found[0]
    left, right = expr[:a].strip(), expr[b:].strip()
    if not left or not right or re.match(r"(on|ignoring|group_left|group_right)\s*\(", right, re.IGNORECASE):
        return None
    return left, right


def longest_range(expr: str) -> float:
    """The longest range (``[3d]``, or a subquery's ``[1d:5m]``) in ``expr``, in seconds; 0 if none."""
    return max((parse_duration(r) for r in RANGE_SELECTOR.findall(blank_strings(expr))), default=0.0)


# ---- scanning PromQL written by people (rule files, dashboards)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|\d*\.?\d+(?:[eE][+-]?\d+)?)")
# A number right after a comparison operator, or right before one, and not an arithmetic operand.
_COMPARISON = re.compile(
    rf"(?:(?:>=|<=|>|<|==|!=)\s*(?:bool\s+)?\(?\s*({_NUMBER.pattern})(?![\w.])(?!\s*[*/+^%-]))"
    rf"|(?:(?<![\w.])({_NUMBER.pattern})(?=\s*\)?\s*(?:>=|<=|>|<|==|!=)))"
)
_RANGE_FUNCS = ("rate", "irate", "increase")
_KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
})
_LABEL_LIST = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def _squash(expr: str) -> str:
    """Whitespace-insensitive form: all whitespace outside string literals removed."""
    out, pos = [], 0
    for m in STRING_LITERAL.finditer(expr):
        out.append(re.sub(r"\s+", "", expr[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(re.sub(r"\s+", "", expr[pos:]))
    return "".join(out)


def _closing(text: str, open_at: int, pair: str = "()") -> int:
    """Index of the bracket closing the one at ``open_at`` (strings must be blanked)."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == pair[0]:
            depth += 1
        elif text[i] == pair[1]:
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def comparison_literals(expr: str) -> list[float]:
    """Numbers an expression compares against (``> 0.02`` and ``0.02 <``), string literals ignored.

    A literal that is part of arithmetic (``> (14.4 * 0.02)``) is not a plain threshold
    and is not returned.
    """
    text = blank_strings(expr)
    out = []
    for m in _COMPARISON.finditer(text):
        if m.group(2) and re.search(r"[*/+^%-]\s*\(?\s*$", text[:m.start()]):
            continue
        literal = m.group(1) or m.group(2)
        out.append(float(int(literal, 16)) if literal.lower().startswith("0x") else float(literal))
    return out


def range_selectors(expr: str) -> list[tuple[str, str]]:
    """``(function, range)`` for every ``rate``/``irate``/``increase`` call in ``expr``."""
    text = blank_strings(expr)
    found = []
    for m in re.finditer(rf"\b({'|'.join(_RANGE_FUNCS)})\s*\(", text):
        body = text[m.end() - 1:_closing(text, m.end() - 1)]
        # The function's own range is the last top-level [...] in its argument.
        ranges = RANGE_SELECTOR.findall(body)
        if ranges:
            found.append((m.group(1), ranges[-1]))
    return found


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression reads (functions, keywords and label names excluded)."""
    text = blank_strings(expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    # Remove label lists such as by (job, instance) before collecting identifiers.
    text = re.sub(rf"\b({'|'.join(_LABEL_LIST)})\s*\([^)]*\)", " ", text)
    names = set()
    for m in _IDENT.finditer(text):
        name = m.group(0)
        before = text[m.start() - 1] if m.start() else " "
        if before.isdigit() or before == ".":  # unit of a number literal such as 1e3
            continue
        if name.lower() in _KEYWORDS or re.match(r"\s*\(", text[m.end():]):
            continue
        names.add(name)
    return names
