"""What a watch checks at each look besides R: the proof's other required checks, as of the look.

The watch stops NO-GO at the first look where one of them fails, with its reason on that look's
line; a check that is only unproven (INCONCLUSIVE, no data yet) keeps the watch going, and the
final proof judges it. Each check is the proof's own definition over ``[start, look]``, asked
cheaply so a look stays a few small queries:

- once, at the first look: the regression tests (a file) and the monitoring checks (the rule
  loaded as written, an Alertmanager, the dashboard);
- at every look: the seed's 2 % alert replayed on the candidate's traffic, a breaker OPEN now or a
  dependency without a breaker, and the cache invalidation coverage.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reliability.errors import ReliabilityError
from reliability.gate import alert_replay, sections
from reliability.gate.params import ProofParams
from reliability.gate.verdict import Check, Status
from reliability.times import iso


@dataclass
class LookChecks:
    """The required checks a watch repeats; :meth:`failures` at each look returns those that failed."""

    params: ProofParams
    _once: list[Check] | None = field(default=None, repr=False)
    _seed: tuple[Any, float | None, str] | None = field(default=None, repr=False)

    def failures(self, client: Any, at: datetime) -> list[Check]:
        """The required checks that FAIL over ``[start, at]`` (unproven ones are not failures)."""
        p = replace(self.params, end=at)
        if self._once is None:
            self._once = _collect(lambda: sections.junit(p)[1]) + _collect(lambda: sections.monitoring(p, client)[1])
        found = [*self._once, *_collect(lambda: self._alert(p, client)), *_collect(lambda: _breakers(p, client)),
                 *_collect(lambda: sections.cache(p, client)[1])]
        return [c for c in found if c.required and c.status is Status.FAIL]

    def _alert(self, p: ProofParams, client: Any) -> list[Check]:
        from reliability.analysis.alerts import load_rules

        if self._seed is None:
            rules = [r for g in load_rules(p.rules) for r in g.rules if hasattr(r, "alert")]
            seed = next((r for r in rules if r.alert == alert_replay.SEED_ALERT), None)
            self._seed = (seed, *alert_replay.evaluation_interval(client, alert_replay.SEED_ALERT))
        seed, interval, source = self._seed
        if seed is None:
            return [Check(f"{alert_replay.SEED_ALERT} on the candidate", Status.FAIL, True,
                          f"{p.rules} has no {alert_replay.SEED_ALERT} rule: the 2 % alert is not set")]
        return [alert_replay.seed_check(p, client, seed, interval, source)[1]]


def _breakers(p: ProofParams, client: Any) -> list[Check]:
    """The proof's two breaker checks at the look: none OPEN now, every dependency has a breaker."""
    from reliability.analysis.breakers.observed import state_at

    opened, exported = state_at(client, p.start, p.end, metrics=p.breakers)
    found = []
    if opened:
        found.append(Check("Circuit breakers at the window end", Status.FAIL, True,
                           f"OPEN at {iso(p.end)}: {', '.join(opened)} (a dependency is failing now)"))
    missing = [d for d in p.dependencies if d not in exported]
    if missing:
        found.append(Check("A breaker on every dependency", Status.FAIL, True,
                           f"no circuit breaker for {', '.join(missing)} since {iso(p.start)}: the backend calls "
                           "it unprotected, or does not export its breaker metrics"))
    return found


def _collect(check: Callable[[], list[Check]]) -> list[Check]:
    """A check's findings; one that cannot be computed yet is unproven, which never stops a watch."""
    try:
        return list(check())
    except ReliabilityError:
        return []
