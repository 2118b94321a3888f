"""The seed's circuit breaker, to the letter, so one failing dependency cannot take the rest down.

The seed (``supabase/functions/_shared/circuit-breaker.ts``) specifies:

* ``execute(fn)`` when OPEN and ``now < nextAttempt``: reject without calling ``fn``;
  when OPEN and ``now >= nextAttempt``: go HALF_OPEN and let the call through (so a call
  exactly at ``nextAttempt`` runs);
* success: ``failureCount = 0``; HALF_OPEN -> CLOSED;
* failure: ``failureCount += 1``; ``failureCount >= failureThreshold`` -> OPEN with
  ``nextAttempt = now + timeout``.

Consequences kept on purpose: the count is *not* reset on opening, so one failure in
HALF_OPEN re-opens; consecutive failures (not a rate) trip it; any number of concurrent
calls pass while HALF_OPEN. Called sequentially, the state after a call is never HALF_OPEN.
"""
from __future__ import annotations

import functools
import inspect
import numbers
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from enum import Enum
from typing import Any, TypeVar

from reliability.errors import ConfigurationError, ReliabilityError

T = TypeVar("T")


class State(str, Enum):
    """Breaker states; the string values match the seed and the replay frames."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"

    def __str__(self) -> str:
        return self.value


#: The metric contract's gauge values (circuit_breaker_state: 0 closed, 1 open, 2 half-open).
GAUGE_VALUE = {State.CLOSED: 0, State.OPEN: 1, State.HALF_OPEN: 2}


class CircuitOpenError(ReliabilityError):
    """A call was rejected without running because the breaker is OPEN."""

    def __init__(self, name: str, *, next_attempt: float, now: float) -> None:
        self.name = name
        self.next_attempt = next_attempt
        self.retry_after = max(next_attempt - now, 0.0)
        super().__init__(
            f"Circuit breaker {name or '(unnamed)'} is OPEN until clock time {next_attempt:.3f}; "
            f"retry after {self.retry_after:.1f} s (the dependency failed repeatedly; the next call "
            f"at or after that time is let through as a probe)."
        )


def _check_config(failure_threshold: int, timeout: float) -> None:
    if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, numbers.Integral) \
            or failure_threshold < 1:
        raise ConfigurationError(f"failure_threshold must be an integer >= 1, got {failure_threshold!r}")
    if not timeout >= 0:  # also rejects NaN
        raise ConfigurationError(f"timeout must be a number of seconds >= 0, got {timeout!r}")


class CircuitBreaker:
    """Consecutive-failure breaker with the seed's semantics; thread- and asyncio-safe.

    Parameters
    ----------
    failure_threshold
        Consecutive failures that open the breaker (the seed uses 5 for the database).
    timeout
        Seconds the breaker stays OPEN before one call is let through (seed: 60 s).
    clock
        Returns the current time in seconds; ``time.monotonic`` by default.
    name
        Shown in :class:`CircuitOpenError` messages and handy in listeners.
    listeners
        Objects with any of the pybreaker-style methods ``state_change(breaker, old, new)``,
        ``before_call(breaker, fn, *args, **kwargs)``, ``success(breaker)``,
        ``failure(breaker, exc)``; a plain callable is a ``state_change`` hook. Listener
        errors propagate: a broken hook should be seen, not swallowed.

    Notes
    -----
    A failure is any ``Exception`` raised by the wrapped function (re-raised unchanged).
    ``BaseException``s such as ``KeyboardInterrupt`` or ``asyncio.CancelledError`` pass
    through without being counted: they say nothing about the dependency.
    """

    def __init__(self, *, failure_threshold: int = 5, timeout: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, name: str = "",
                 listeners: Iterable[Any] = ()) -> None:
        _check_config(failure_threshold, timeout)
        self.failure_threshold = int(failure_threshold)
        self.timeout = float(timeout)
        self.clock = clock
        self.name = name
        self.listeners = list(listeners)
        self._state = State.CLOSED
        self._failure_count = 0
        self._next_attempt: float | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"CircuitBreaker(name={self.name!r}, state={self._state.value}, failure_count={self._failure_count}, "
                f"failure_threshold={self.failure_threshold}, timeout={self.timeout})")

    @property
    def state(self) -> State:
        """The current state (an OPEN breaker whose timeout passed stays OPEN until a call arrives)."""
        return self._state

    @property
    def failure_count(self) -> int:
        """Consecutive failures since the last success (not reset by opening)."""
        return self._failure_count

    @property
    def next_attempt(self) -> float | None:
        """Clock time from which a call is let through as a probe; None until the first trip."""
        return self._next_attempt

    # -- the state machine; each step returns the transition it made, notified outside the lock

    def _acquire(self, now: float) -> tuple[bool, tuple[State, State] | None]:
        with self._lock:
            if self._state is State.OPEN:
                assert self._next_attempt is not None
                if now < self._next_attempt:
                    return False, None
                self._state = State.HALF_OPEN
                return True, (State.OPEN, State.HALF_OPEN)
            return True, None

    def _on_success(self) -> tuple[State, State] | None:
        with self._lock:
            self._failure_count = 0
            if self._state is State.HALF_OPEN:
                self._state = State.CLOSED
                return State.HALF_OPEN, State.CLOSED
            return None

    def _on_failure(self, now: float) -> tuple[State, State] | None:
        with self._lock:
            self._failure_count += 1
            if self._failure_count >= self.failure_threshold:
                old = self._state
                self._state = State.OPEN
                self._next_attempt = now + self.timeout
                # OPEN -> OPEN happens when a call admitted before the trip fails late.
                return (old, State.OPEN) if old is not State.OPEN else None
            return None

    def _notify(self, event: str, *args: Any) -> None:
        for listener in self.listeners:
            hook = getattr(listener, event, None)
            if hook is None and event == "state_change" and callable(listener):
                hook = listener
            if hook is not None:
                hook(self, *args)

    def _transition(self, change: tuple[State, State] | None) -> None:
        if change is not None:
            self._notify("state_change", *change)

    def _reject(self, now: float) -> CircuitOpenError:
        assert self._next_attempt is not None
        return CircuitOpenError(self.name, next_attempt=self._next_attempt, now=now)

    def _admit(self, now: float) -> bool:
        """May a call run at ``now``? A state change (OPEN -> HALF_OPEN) is announced either way."""
        allowed, change = self._acquire(now)
        self._transition(change)
        return allowed

    def _enter(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Admit a call of ``fn`` or raise CircuitOpenError (shared by call and call_async)."""
        now = self.clock()
        if not self._admit(now):
            raise self._reject(now)
        self._notify("before_call", fn, *args, **kwargs)

    def _failed(self, exc: Exception) -> None:
        self._transition(self._on_failure(self.clock()))
        self._notify("failure", exc)

    def _succeeded(self) -> None:
        self._transition(self._on_success())
        self._notify("success")

    # -- public API

    def record(self, ok: bool, now: float) -> bool:
        """Feed one call's outcome at time ``now``; return False if the breaker rejected it.

        The low-level form of :meth:`call` for replays: a rejected call leaves the state
        unchanged and its ``ok`` is ignored.
        """
        if not self._admit(now):
            return False
        self._transition(self._on_success() if ok else self._on_failure(now))
        return True

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` through the breaker; raise CircuitOpenError if OPEN."""
        self._enter(fn, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self._failed(exc)
            raise
        self._succeeded()
        return result

    async def call_async(self, coro_fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``coro_fn(*args, **kwargs)`` through the breaker, with the same semantics as call."""
        self._enter(coro_fn, args, kwargs)
        try:
            result = await coro_fn(*args, **kwargs)
        except Exception as exc:
            self._failed(exc)
            raise
        self._succeeded()
        return result

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate a function or coroutine function so every call goes through the breaker."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(fn, *args, **kwargs)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, *args, **kwargs)
        return wrapper
