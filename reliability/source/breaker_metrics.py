"""Which metrics a service's circuit breakers export: one record per library, chosen once and passed down.

Like the SLI (:mod:`reliability.source.sli`), the names live here and nowhere else. Three kinds:

- ``seed``: the directive's contract (``monitoring/METRICS.md``): a state gauge, a transitions
  counter ``{from, to}`` and calls by outcome, every series created at 0;
- ``opossum``: opossum-prometheus' one counter ``circuit{name, event}`` (``metricPrefix`` glued in
  front; ``circuit_total`` where the app's registry speaks OpenMetrics), one series per event the
  breaker emitted, each born at its first event; no state gauge and no half-open event;
- ``resilience4j``: Micrometer's ``resilience4j_circuitbreaker_state{name, state}`` (1 for the
  current state), calls by ``kind`` and the not-permitted counter; no transition counter, so trips
  are read from the gauge, at scrape resolution.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from reliability.errors import ConfigurationError
from reliability.source.promql import parse_selector


@dataclass(frozen=True)
class BreakerMetrics:
    """A breaker library's metric names; ``kind`` says how trips are read from them."""

    preset: str = "seed"
    kind: str = "seed"                  # seed | opossum | resilience4j
    name_label: str = "breaker"         # the label naming the breaker (the dependency)
    state: str = "circuit_breaker_state"
    transitions: str = "circuit_breaker_transitions_total"
    calls: str = "circuit_breaker_calls_total"
    events: str = ""                    # opossum's event counter
    not_permitted: str = ""             # resilience4j's rejected calls
    filters: str = ""                   # matchers always applied
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("seed", "opossum", "resilience4j"):
            raise ConfigurationError(f"[breakers] kind = {self.kind!r}: use seed, opossum or resilience4j")
        for key in ("name_label", "state", "transitions", "calls", "events", "not_permitted"):
            value = getattr(self, key)
            if value and not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", value):
                raise ConfigurationError(f"[breakers] {key} = {value!r} is not a Prometheus name")
        parse_selector(self.filters)

    def metric(self, name: str, *matchers: str) -> str:
        """``name{filters, matchers}``."""
        parts = [*parse_selector(self.filters), *matchers]
        return f"{name}{{{','.join(parts)}}}" if parts else name

    def exported(self) -> list[str]:
        """The metrics the library exports for every breaker (the monitoring checks look for each)."""
        return [n for n in (self.events, self.state, self.transitions, self.calls, self.not_permitted) if n]

    def names(self) -> tuple[str, ...]:
        """Every metric this library exports, the alternative spellings included."""
        if self.kind == "opossum":
            return (self.events, f"{self.events}_total")
        if self.kind == "resilience4j":
            return (self.state, self.calls, self.not_permitted)
        return (self.state, self.transitions, self.calls)

    @property
    def tripped(self) -> str:
        """The matcher that selects a trip on the metric that counts or shows it: none is good news."""
        return {"seed": 'to="open"', "opossum": 'event="open"', "resilience4j": 'state="open"'}[self.kind]

    @property
    def failure_matchers(self) -> tuple[str, ...]:
        """Matchers of series that exist only once something went wrong (opossum makes a series at its
        first event): a panel empty only because of them shows good news, not a broken query."""
        return ('event="open"', 'event="reject"', 'event="failure"') if self.kind == "opossum" else (self.tripped,)

    def describe(self) -> str:
        if self.kind == "opossum":
            return f"{self.events}{{{self.name_label}, event}} events [{self.preset}]"
        if self.kind == "resilience4j":
            return f"{self.state}{{{self.name_label}, state}} gauge, {self.calls}, {self.not_permitted} [{self.preset}]"
        return f"{self.state}, {self.transitions}, {self.calls} by {self.name_label} [{self.preset}]"

    def as_table(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "note"}


SEED = BreakerMetrics(note="the directive's contract (monitoring/METRICS.md)")
PRESETS: dict[str, BreakerMetrics] = {b.preset: b for b in (
    SEED,
    BreakerMetrics("opossum", "opossum", name_label="name", state="", transitions="", calls="", events="circuit",
                   note="opossum-prometheus: circuit{name, event}; set prefix to its metricPrefix"),
    BreakerMetrics("resilience4j", "resilience4j", name_label="name", state="resilience4j_circuitbreaker_state",
                   transitions="", calls="resilience4j_circuitbreaker_calls_seconds_count",
                   not_permitted="resilience4j_circuitbreaker_not_permitted_calls_total",
                   note="resilience4j's Micrometer binder (TaggedCircuitBreakerMetrics)"),
)}
_KEYS = frozenset({"preset", "prefix", "name_label", "state", "transitions", "calls", "events", "not_permitted",
                   "filters"})


def resolve(table: Mapping[str, Any] | BreakerMetrics | None = None, *, preset: str | None = None,
            where: str = "[breakers]") -> BreakerMetrics:
    """The breaker metrics a ``[breakers]`` table (or ``--breakers PRESET``) names.

    ``prefix`` is opossum-prometheus' ``metricPrefix`` (``"svc_"`` reads ``svc_circuit``).
    """
    if isinstance(table, BreakerMetrics):
        return table if preset is None else resolve(table.as_table(), preset=preset, where=where)
    table = {k: v for k, v in dict(table or {}).items() if k != "kind"}
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    name = preset or table.pop("preset", None) or "seed"
    table.pop("preset", None)
    if name not in PRESETS:
        raise ConfigurationError(f"{where}: unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    for key, value in table.items():
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}: {key} must be a string, not {value!r}")
    base = PRESETS[name]
    prefix = table.pop("prefix", "")
    if prefix:
        if base.kind != "opossum":
            raise ConfigurationError(f"{where}: prefix is opossum-prometheus' metricPrefix; the {name} preset has "
                                     "no prefix, set its metric names instead")
        table.setdefault("events", prefix + base.events)
    return replace(base, **table)
