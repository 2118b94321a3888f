"""Prometheus' alert state machine replayed over the results of an alert expression.

This mirrors ``AlertingRule.Eval`` in Prometheus' ``rules/alerting.go`` (2.42 and later),
per label set, at each evaluation time ``ts``:

* the expression returns a sample and the alert is not active: it becomes *pending*
  with ``ActiveAt = ts`` (a resolved alert that comes back starts over);
* an active alert whose label set is absent: a *pending* one is dropped at once; a
  *firing* one with ``keep_firing_for > 0`` keeps firing while
  ``ts - KeepFiringSince < keep_firing_for``, where ``KeepFiringSince`` is the first
  evaluation at which it was absent (reset whenever the sample comes back); otherwise it
  becomes *inactive* (resolved at ``ts``);
* still (or kept) active and pending with ``ts - ActiveAt >= for``: *firing* from ``ts``.
  So with ``for: 0`` an alert fires at the first evaluation that returns it, and with
  ``for: 5m`` at a 1m interval it fires at the sixth consecutive evaluation.

Pure: a tidy frame in, frames out. Times are compared in integer milliseconds, as
Prometheus does, so "exactly ``for`` elapsed" is not lost to float rounding.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reliability.errors import ConfigurationError

INACTIVE, PENDING, FIRING = "inactive", "pending", "firing"
STATE_COLUMNS = ["time", "labels", "state", "value"]
EPISODE_COLUMNS = ["labels", "active_since", "firing_since", "resolved_at", "duration", "peak_value"]


@dataclass
class _Alert:
    active_at: int
    state: str = PENDING
    fired_at: int | None = None
    keep_since: int | None = None
    peak: float = float("-inf")


def label_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The identity of an alert: its sorted label pairs (Prometheus hashes the same set)."""
    return tuple(sorted(labels.items()))


def run_alert_states(samples: pd.DataFrame, times: Sequence[Any] | pd.DatetimeIndex, *, for_: float,
                     keep_firing_for: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replay the alert state machine at each evaluation time.

    Parameters
    ----------
    samples
        The alert expression's results: columns ``labels`` (dict, the alert's final
        labels incl. ``alertname``), ``time`` (tz-aware) and ``value``; one row per
        evaluation time at which the expression returned that label set.
    times
        Every evaluation time, including those where the expression returned nothing.
        Samples at other times are ignored.
    for_, keep_firing_for
        The rule's hold durations in seconds.

    Returns
    -------
    states, episodes
        ``states``: one row per evaluation time and label set, from the label set's
        first appearance through the last evaluation (``inactive`` rows after it
        resolves); ``value`` is the expression's value at that time, NaN where it
        returned nothing (e.g. while ``keep_firing_for`` holds the alert).
        ``episodes``: one row per activation: ``active_since`` (became pending),
        ``firing_since`` (NaT if it never fired), ``resolved_at`` (first evaluation at
        which it was inactive again; NaT if still active at the last evaluation),
        ``duration`` (to ``resolved_at``, or to the last evaluation when still active)
        and ``peak_value`` (largest value while active).
    """
    if for_ < 0 or keep_firing_for < 0:
        raise ConfigurationError(f"for ({for_}) and keep_firing_for ({keep_firing_for}) must not be negative")
    eval_ms = _ms(pd.DatetimeIndex(pd.to_datetime(list(times), utc=True)))
    if len(np.unique(eval_ms)) != len(eval_ms) or np.any(np.diff(eval_ms) < 0):
        raise ConfigurationError("evaluation times must be strictly increasing")
    hold, keep = round(for_ * 1000), round(keep_firing_for * 1000)
    by_time = _samples_by_time(samples)

    labels_of: dict[Hashable, dict[str, str]] = {}
    active: dict[Hashable, _Alert] = {}
    seen: list[Hashable] = []                       # first-appearance order, for stable output
    rows: list[tuple[int, Hashable, str, float]] = []
    episodes: list[dict[str, Any]] = []

    def close(key: Hashable, alert: _Alert, resolved: int | None, last: int) -> None:
        episodes.append({"key": key, "active_since": alert.active_at, "firing_since": alert.fired_at,
                         "resolved_at": resolved, "duration_ms": (resolved if resolved is not None else last)
                         - alert.active_at, "peak_value": alert.peak})

    for ts in eval_ms:
        present = by_time.get(int(ts), {})
        for key, (labels, value) in present.items():
            alert = active.get(key)
            if alert is None or alert.state == INACTIVE:
                if key not in labels_of:
                    labels_of[key] = labels
                    seen.append(key)
                alert = active[key] = _Alert(active_at=int(ts))
            alert.peak = max(alert.peak, value) if not np.isnan(value) else alert.peak
        for key, alert in active.items():
            if alert.state == INACTIVE:
                continue
            if key not in present:
                keep_firing = False
                if alert.state == FIRING and keep > 0:
                    if alert.keep_since is None:
                        alert.keep_since = int(ts)
                    keep_firing = ts - alert.keep_since < keep
                if not keep_firing:
                    alert.state = INACTIVE
                    close(key, alert, int(ts), int(ts))
                    continue
            else:
                alert.keep_since = None
            if alert.state == PENDING and ts - alert.active_at >= hold:
                alert.state, alert.fired_at = FIRING, int(ts)
        for key in seen:
            sample = present.get(key)
            rows.append((int(ts), key, active[key].state, sample[1] if sample else np.nan))

    last = int(eval_ms[-1]) if len(eval_ms) else 0
    for key, alert in active.items():
        if alert.state != INACTIVE:
            close(key, alert, None, last)
    return _states_frame(rows, labels_of), _episodes_frame(episodes, labels_of)


def _samples_by_time(samples: pd.DataFrame) -> dict[int, dict[Hashable, tuple[dict[str, str], float]]]:
    missing = {"labels", "time", "value"} - set(samples.columns)
    if missing:
        raise ConfigurationError(f"samples need columns labels, time and value; missing {sorted(missing)}")
    out: dict[int, dict[Hashable, tuple[dict[str, str], float]]] = {}
    if samples.empty:
        return out
    ms = _ms(pd.DatetimeIndex(pd.to_datetime(samples["time"], utc=True)))
    for t, labels, value in zip(ms, samples["labels"], samples["value"].astype(float), strict=True):
        key = label_key(labels)
        at = out.setdefault(int(t), {})
        if key in at:
            # Prometheus fails the whole evaluation here (ErrDuplicateAlertLabelSet).
            raise ConfigurationError(f"the alert expression returned two samples with the labels {dict(key)} at "
                                     f"{pd.Timestamp(int(t), unit='ms', tz='UTC')}: after dropping __name__ "
                                     "they are the same alert; aggregate (sum by ...) in the expression")
        at[key] = (dict(labels), float(value))
    return out


def _ms(index: pd.DatetimeIndex) -> np.ndarray:
    return (index.as_unit("ns").asi8 // 1_000_000).astype(np.int64)


def _time(ms: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(ms, dtype="Int64"), unit="ms", utc=True)


def _states_frame(rows: list[tuple[int, Hashable, str, float]], labels_of: dict[Hashable, dict[str, str]]
                  ) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"), "labels": pd.Series([], dtype=object),
                             "state": pd.Series([], dtype=object), "value": pd.Series([], dtype=float)})
    t, keys, states, values = zip(*rows, strict=True)
    return pd.DataFrame({
        "time": _time(list(t)),
        "labels": pd.Series([labels_of[k] for k in keys], dtype=object),
        "state": pd.Series(states, dtype=object),
        "value": pd.Series(values, dtype=float),
    })


def _episodes_frame(episodes: list[dict[str, Any]], labels_of: dict[Hashable, dict[str, str]]) -> pd.DataFrame:
    episodes = sorted(episodes, key=lambda e: (e["active_since"], e["key"]))
    return pd.DataFrame({
        "labels": pd.Series([labels_of[e["key"]] for e in episodes], dtype=object),
        "active_since": _time([e["active_since"] for e in episodes]),
        "firing_since": _time([e["firing_since"] for e in episodes]),
        "resolved_at": _time([e["resolved_at"] for e in episodes]),
        "duration": pd.to_timedelta(pd.Series([e["duration_ms"] for e in episodes], dtype="int64"), unit="ms"),
        "peak_value": pd.Series([e["peak_value"] if np.isfinite(e["peak_value"]) else np.nan for e in episodes],
                                dtype=float),
    })
