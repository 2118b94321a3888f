"""Parsing the times users type: ISO 8601 or relative to now (``now``, ``now-24h``)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from .errors import ConfigurationError
from .promql import parse_duration

_RELATIVE = re.compile(r"^now\s*(?:([+-])\s*(\S+))?$")


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
            delta = timedelta(seconds=parse_duration(m.group(2)))
            base = base - delta if m.group(1) == "-" else base + delta
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
