"""Parsing the times and durations users type: ISO 8601, relative to now (``now-24h``), ``5m``."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from reliability.errors import ConfigurationError

_RELATIVE = re.compile(r"^now\s*(?:([+-])\s*(\S+))?$")
_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_time(text: str | datetime, *, now: datetime | None = None, name: str = "time") -> datetime:
    """A tz-aware UTC datetime from ISO 8601 (``Z`` or an offset) or ``now-24h``.

    Naive ISO times are rejected: evidence must not depend on the machine's time zone.
    """
    if isinstance(text, datetime):
        if text.tzinfo is None:
            raise ConfigurationError(f"{name} {text.isoformat()} has no time zone; add Z or +00:00")
        return text.astimezone(timezone.utc)
    s = str(text).strip()
    m = _RELATIVE.match(s)
    if m:
        base = now or datetime.now(timezone.utc)
        if m.group(1):
            amount = m.group(2)
            if amount.startswith(("-", "+")):
                raise ConfigurationError(f"{name} {text!r}: write the sign once, e.g. now-24h")
            try:
                delta = timedelta(seconds=parse_duration(amount))
                base = base - delta if m.group(1) == "-" else base + delta
            except ConfigurationError:
                raise ConfigurationError(f"{name} {text!r}: after now- or now+ write a finite duration "
                                         "such as 24h or 30d") from None
            except (OverflowError, ValueError):
                raise ConfigurationError(f"{name} {text!r} is out of range: use a duration such as 24h or "
                                         "30d") from None
        return base.astimezone(timezone.utc)
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{name} {text!r} is not a time: use ISO 8601 such as 2025-10-26T09:00:00Z, or now-24h"
        ) from None
    if t.tzinfo is None:
        raise ConfigurationError(f"{name} {text!r} has no time zone; add Z (UTC) or an offset such as +03:00")
    return t.astimezone(timezone.utc)


def iso(t: datetime) -> str:
    """UTC ISO 8601 with a Z, the form used in evidence files."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str | float | int, *, name: str = "duration") -> float:
    """Prometheus duration (``90s``, ``5m``, ``1h30m``) or a number of seconds, to seconds.

    NaN, infinities and negative values are refused: no window or interval is any of them.
    """
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip()
        try:
            value = float(s)
        except ValueError:
            value = _parse_units(s, text, name)
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ConfigurationError(f"{name} {text!r} must be a finite, non-negative duration such as 30s or 5m")
    return value


def _parse_units(s: str, text: object, name: str) -> float:
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ConfigurationError(f"invalid {name} {text!r}: use Prometheus syntax such as 30s, 5m, 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """Seconds to the shortest Prometheus duration string (``3600`` -> ``1h``)."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def plural(n: float, noun: str) -> str:
    """``1 error``, ``3 errors``, ``1,250 requests``: counts as people write them."""
    return f"{n:,.0f} {noun}" + ("" if n == 1 else "s")
