"""Why a panel query returned nothing, and whether that is a broken dashboard or a correct answer.

"No data" on a panel means one of three things, and only the first is a broken dashboard:

- a selector names a metric the service does not export, or a label value none of its series has
  (a misspelt name, a variable that never matches): the panel hides an incident, FAIL;
- the only selector that matches nothing selects failures (``status=~"5.."``, a breaker's
  ``to="open"``) and the service had none: the empty answer is the right one, a note;
- every series the query reads exists, yet the expression is empty (its own filter, or a range
  longer than the history, such as a 30-day budget on a young Prometheus): a note.

The questions go to the server's index (label values with ``match[]``), never to the samples, so
the diagnosis costs a few small requests per empty panel and nothing when every panel has data.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reliability.source.index import label_values
from reliability.source.parsed import longest_range, selector_text, vector_selectors
from reliability.times import format_duration

#: How far before a range an instant selector looks back (Prometheus' default lookback delta).
LOOKBACK = 300.0


@dataclass(frozen=True)
class Diagnosis:
    """What an empty answer means: ``broken`` is a dashboard fault, else ``text`` is the note."""

    broken: bool
    text: str


def diagnose(expr: str, client: Any, start: datetime, end: datetime, *,
             failures: Collection[tuple[str, str, str]] = ()) -> Diagnosis:
    """Why ``expr`` (after Grafana's substitutions) returned nothing over ``[start, end]``.

    ``failures`` are the matchers that select failures (the SLI's 5xx matcher, a breaker's trip):
    a selector that is empty only because of them is a service without failures, not a fault.
    """
    reach = longest_range(expr)
    since = start - timedelta(seconds=reach + LOOKBACK)

    def exists(name: str, keys: Collection[tuple[str, str, str]]) -> bool:
        return bool(label_values(client, "__name__", selector_text(name, keys), since, end))

    quiet = []
    for name, keys in vector_selectors(expr):
        if exists(name, keys):
            continue
        if name and not exists(name, ()):
            return Diagnosis(True, f"no series of {name} for this service between {since:%Y-%m-%d %H:%M} and "
                                   f"{end:%Y-%m-%d %H:%M}: a misspelt metric, or the service does not export it")
        plain = [k for k in keys if k not in failures]
        if len(plain) < len(keys) and exists(name, plain):
            quiet.append(" and ".join(selector_text("", [k]).strip("{}") for k in keys if k in failures))
            continue
        for key in plain:
            if not exists(name, [key]):
                seen = label_values(client, key[0], selector_text(name, ()), since, end)
                shown = ", ".join(seen[:8]) + (" ..." if len(seen) > 8 else "") if seen else "no such label"
                what = selector_text("", [key]).strip("{}")
                return Diagnosis(True, f"{what} matches no series of {name or 'the selector'} ({key[0]}: "
                                       f"{shown}): a misspelt label or value, or a variable that never matches")
        return Diagnosis(True, f"the matchers of {selector_text(name, keys)} match no series together")
    if quiet:
        return Diagnosis(False, f"no series with {'; '.join(dict.fromkeys(quiet))} in the window: none happened, "
                                "so the empty answer is the right one")
    if reach:
        return Diagnosis(False, f"every series it reads exists: its {format_duration(reach)} range reaches past the "
                                "history the server holds, or its own filter leaves nothing")
    return Diagnosis(False, "every series it reads exists: the query's own filter leaves nothing")
