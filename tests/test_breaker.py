"""The seed's circuit breaker on hand-written call sequences: every transition, to the letter."""
from __future__ import annotations

import asyncio

import pytest

from reliability.analysis.breakers import CircuitBreaker, CircuitOpenError, State
from reliability.errors import ConfigurationError, ReliabilityError


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("dependency down")


def succeed() -> str:
    return "ok"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, timeout=60.0, clock=clock, name="db")


def trip(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            breaker.call(fail)


def test_closed_counts_consecutive_failures_and_success_resets(breaker: CircuitBreaker) -> None:
    trip(breaker, 2)
    assert breaker.state is State.CLOSED and breaker.failure_count == 2
    assert breaker.call(succeed) == "ok"
    assert breaker.failure_count == 0
    trip(breaker, 2)  # not consecutive with the first two: still closed
    assert breaker.state is State.CLOSED


def test_threshold_opens_and_open_rejects_without_calling(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker, 3)
    assert breaker.state is State.OPEN
    assert breaker.failure_count == 3
    assert breaker.next_attempt == 1060.0
    called = []
    clock.now = 1059.999
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: called.append(1))
    assert called == []
    assert isinstance(info.value, ReliabilityError)
    assert "Circuit breaker db is OPEN until" in str(info.value)
    assert info.value.retry_after == pytest.approx(0.001)
    assert breaker.state is State.OPEN


def test_call_exactly_at_next_attempt_runs_and_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker, 3)
    clock.now = 1060.0
    assert breaker.call(succeed) == "ok"
    assert breaker.state is State.CLOSED
    assert breaker.failure_count == 0


def test_failure_in_half_open_reopens_at_once(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker, 3)
    clock.now = 1070.0
    trip(breaker, 1)  # the count was never reset: 4 >= 3
    assert breaker.state is State.OPEN
    assert breaker.failure_count == 4
    assert breaker.next_attempt == 1130.0


def test_half_open_lets_concurrent_calls_through(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker, 3)
    clock.now = 1061.0
    seen = []

    def inner() -> str:
        # While the probe runs the breaker is HALF_OPEN and a second call is not rejected.
        seen.append(breaker.state)
        return breaker.call(succeed)

    assert breaker.call(inner) == "ok"
    assert seen == [State.HALF_OPEN]
    assert breaker.state is State.CLOSED


def test_threshold_one_opens_on_first_failure(clock: FakeClock) -> None:
    cb = CircuitBreaker(failure_threshold=1, timeout=5.0, clock=clock)
    trip(cb, 1)
    assert cb.state is State.OPEN
    with pytest.raises(CircuitOpenError, match=r"\(unnamed\) is OPEN"):
        cb.call(succeed)


def test_record_matches_call_semantics() -> None:
    cb = CircuitBreaker(failure_threshold=2, timeout=10.0)
    outcomes = [(0.0, False), (1.0, False), (5.0, True), (11.0, False), (12.0, True), (21.0, True), (22.0, False)]
    # trip at 1; 5 rejected; 11 probes and fails (re-open until 21); 12 rejected; 21 probes, closes.
    got = [(cb.record(ok, t), cb.state.value) for t, ok in outcomes]
    assert got == [(True, "CLOSED"), (True, "OPEN"), (False, "OPEN"), (True, "OPEN"),
                   (False, "OPEN"), (True, "CLOSED"), (True, "CLOSED")]


def test_listeners_see_every_transition_and_call(breaker: CircuitBreaker, clock: FakeClock) -> None:
    events: list[tuple] = []

    class Listener:
        def before_call(self, cb, fn, *args, **kwargs):
            events.append(("before", fn.__name__, args))

        def success(self, cb):
            events.append(("success",))

        def failure(self, cb, exc):
            events.append(("failure", type(exc).__name__))

        def state_change(self, cb, old, new):
            events.append(("state", old.value, new.value))

    plain: list[tuple] = []
    breaker.listeners = [Listener(), lambda cb, old, new: plain.append((old, new))]
    trip(breaker, 3)
    clock.now = 1060.0
    breaker.call(succeed)
    assert events == [("before", "fail", ()), ("failure", "Boom")] * 2 + [
        ("before", "fail", ()), ("state", "CLOSED", "OPEN"), ("failure", "Boom"),
        ("state", "OPEN", "HALF_OPEN"), ("before", "succeed", ()),
        ("state", "HALF_OPEN", "CLOSED"), ("success",)]
    assert plain == [(State.CLOSED, State.OPEN), (State.OPEN, State.HALF_OPEN), (State.HALF_OPEN, State.CLOSED)]


def test_async_call_and_decorators(clock: FakeClock) -> None:
    cb = CircuitBreaker(failure_threshold=2, timeout=30.0, clock=clock, name="realtime")

    @cb
    async def fetch(ok: bool) -> str:
        await asyncio.sleep(0)
        if not ok:
            raise Boom("no")
        return "data"

    @cb
    def sync_fetch() -> str:
        return "sync"

    async def scenario() -> list[str]:
        out = [await fetch(True)]
        for _ in range(2):
            with pytest.raises(Boom):
                await fetch(False)
        with pytest.raises(CircuitOpenError):
            await fetch(True)
        clock.now += 30.0
        out.append(await cb.call_async(fetch.__wrapped__, True))
        return out

    assert asyncio.run(scenario()) == ["data", "data"]
    assert cb.state is State.CLOSED
    assert sync_fetch() == "sync" and sync_fetch.__name__ == "sync_fetch"


def test_base_exceptions_are_not_failures(breaker: CircuitBreaker) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    for _ in range(5):
        with pytest.raises(KeyboardInterrupt):
            breaker.call(interrupted)
    assert breaker.state is State.CLOSED and breaker.failure_count == 0


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"failure_threshold": 2.5},
                                    {"failure_threshold": True}, {"timeout": -1.0}, {"timeout": float("nan")}])
def test_bad_configuration_is_named(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(kwargs))):
        CircuitBreaker(**kwargs)
