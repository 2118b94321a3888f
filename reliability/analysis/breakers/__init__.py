"""Circuit breakers: the seed's breaker, fast replays of call histories, what-if tuning, trip statistics.

``CircuitBreaker`` is the seed's breaker (consecutive failures); ``replay`` runs a call
history through it with work per trip only; ``RateBasedBreaker``/``replay_rate_based`` are
resilience4j's failure-rate policy for comparison; ``whatif`` replays a dependency's
history under a grid of configurations; ``trip_stats`` summarizes the running breakers'
metrics (trips, rejected calls, time open, aliasing between the counter and the gauge);
``breaker_stats`` is the one call that asks Prometheus for all of it.
"""
from __future__ import annotations

from reliability.analysis.breakers.observed import breaker_stats, call_intervals, dependency_coverage
from reliability.analysis.breakers.rate_policy import RateBasedBreaker, replay_rate_based
from reliability.analysis.breakers.replay import replay
from reliability.analysis.breakers.trips import BreakerStats, from_resilience4j, trip_stats
from reliability.analysis.breakers.whatif import intervals_from_calls, whatif
from reliability.source.breaker import CircuitBreaker, CircuitOpenError, State

__all__ = [
    "BreakerStats", "CircuitBreaker", "CircuitOpenError", "RateBasedBreaker", "State", "breaker_stats",
    "call_intervals", "dependency_coverage", "from_resilience4j", "intervals_from_calls", "replay",
    "replay_rate_based", "trip_stats", "whatif",
]
