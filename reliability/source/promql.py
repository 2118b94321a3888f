"""Building PromQL safely: label matchers, selectors and durations (reading it: :mod:`.parsed`).

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


def _squash(expr: str) -> str:
    """Whitespace-insensitive form: all whitespace outside string literals removed."""
    out, pos = [], 0
    for m in STRING_LITERAL.finditer(expr):
        out.append(re.sub(r"\s+", "", expr[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(re.sub(r"\s+", "", expr[pos:]))
    return "".join(out)
