"""Reading the running breakers from each library's metrics into one shape :func:`trip_stats` takes.

Per breaker and instance: ``state`` (``time``, ``value`` 0 closed, 1 open, 2 half-open),
``transitions`` (``from``, ``to``, ``increase``) and ``calls`` (``outcome`` success, failure,
rejected, ``increase``). How each is read depends on what the library exports
(:mod:`reliability.source.breaker_metrics`):

- ``seed``: the gauge, the transitions counter and the calls counter, as named.
- ``opossum``: the event counter only. Its series are born at their first event, so counts are
  taken exactly from the samples at scrape resolution (a series absent at the window's start and
  present later counts its whole value), never by ``increase()``, which would lose the first event.
  Opens count every move into open; closes end an episode; so episodes = closes (+ one still open
  at the end, - one already open at the start) and re-trips = opens - episodes. There is no
  half-open event: the state is rebuilt from the last open or close, and open time includes the
  half-open trial.
- ``resilience4j``: the one-hot state gauge, read per instance (one outage trips every instance at
  once), its edges counted as transitions; state changes shorter than a scrape interval are not
  seen, and ``hidden_at_most`` says how many could hide. Calls by ``kind`` and the not-permitted counter.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from reliability.errors import NoDataError
from reliability.source.breaker_metrics import BreakerMetrics
from reliability.source.frames import utc
from reliability.source.prom import PrometheusClient
from reliability.source.promql import format_duration, parse_selector

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
R4J_STATE_VALUE = {"closed": CLOSED, "open": OPEN, "half_open": HALF_OPEN, "forced_open": OPEN,
                   "disabled": CLOSED, "metrics_only": CLOSED}
OPOSSUM_OUTCOME = {"success": "success", "failure": "failure", "reject": "rejected"}


@dataclass(frozen=True)
class Observed:
    """What the breakers exported over a window, in the canonical shape (see the module)."""

    state: pd.DataFrame
    transitions: pd.DataFrame | None
    calls: pd.DataFrame
    half_open_seen: bool          # False: open time includes the half-open trial (opossum)
    hidden_at_most: pd.Series     # per (breaker, instance): state changes the scrape interval could hide
    calls_per_step: pd.DataFrame | None = None  # breaker, outcome, time, value: opossum's exact counts per step


def read(client: PrometheusClient, start: datetime, end: datetime, metrics: BreakerMetrics, *,
         selector: str | Sequence[str] | None = None, step: float = 30.0) -> Observed:
    """The breakers of the window, from whichever library's metrics ``metrics`` names.

    Raises :class:`NoDataError` when none exports anything in the window.
    """
    start, end = utc(start), utc(end)
    scope = parse_selector(selector) if isinstance(selector, str) or selector is None else list(selector)
    reader = {"seed": _seed, "opossum": _opossum, "resilience4j": _resilience4j}[metrics.kind]
    observed = reader(client, start, end, metrics, scope, step)
    if observed.state.empty and observed.calls.empty:
        raise NoDataError(f"no breaker metrics ({metrics.describe()}) in {start:%Y-%m-%dT%H:%MZ} .. "
                          f"{end:%Y-%m-%dT%H:%MZ}{f' for {selector}' if selector else ''}: the backend does not export "
                          "them, or another breaker library does ([breakers] preset; `reliability sli` finds it)")
    return observed


def _named(frame: pd.DataFrame, metrics: BreakerMetrics) -> pd.DataFrame:
    frame = frame.rename(columns={metrics.name_label: "breaker"}) if metrics.name_label != "breaker" else frame
    if len(frame) and "instance" not in frame:
        frame = frame.assign(instance="")
    return frame


def _window(start: datetime, end: datetime) -> str:
    return format_duration((end - start).total_seconds())


def _seed(client: PrometheusClient, start: datetime, end: datetime, m: BreakerMetrics, scope: list[str],
          step: float) -> Observed:
    n, w = m.name_label, _window(start, end)
    transitions = client.query(f"sum by ({n}, instance, from, to) (increase({m.metric(m.transitions, *scope)}[{w}]))",
                               end).rename(columns={"value": "increase"})
    calls = client.query(f"sum by ({n}, instance, outcome) (increase({m.metric(m.calls, *scope)}[{w}]))",
                         end).rename(columns={"value": "increase"})
    state = client.query_range(f"max by ({n}, instance) ({m.metric(m.state, *scope)})", start, end, step)
    for frame, metric, labels in ((state, m.state, (n,)), (transitions, m.transitions, (n, "from", "to")),
                                  (calls, m.calls, (n, "outcome"))):
        missing = [lab for lab in labels if len(frame) and lab not in frame]
        if missing:
            raise NoDataError(f"{metric} has no {', '.join(missing)} label: the backend's breaker metrics do not "
                              "follow the metric contract (monitoring/METRICS.md)")
    state, transitions, calls = (_named(f, m) for f in (state, transitions, calls))
    hidden = pd.Series(dtype=float)  # the counter saw every transition
    return Observed(state, transitions, calls, True, hidden)


def _opossum(client: PrometheusClient, start: datetime, end: datetime, m: BreakerMetrics, scope: list[str],
             step: float) -> Observed:
    names = "|".join(m.names())
    selector = m.metric("", f'__name__=~"{names}"', 'event=~"open|close|success|failure|reject"', *scope)
    # A grid that ends at the window's end and starts at its start (the baseline each count starts from):
    # the step shrinks to divide the window, so no event of its last moments is left out.
    step = (end - start).total_seconds() / max(1, math.ceil((end - start).total_seconds() / step))
    raw = _named(client.query_range(f"max by ({m.name_label}, instance, event) ({selector})", start, end, step), m)
    if raw.empty:
        empty = pd.DataFrame(columns=["breaker", "instance", "time", "value"])
        return Observed(empty, None, pd.DataFrame(columns=["breaker", "instance", "outcome", "increase"]), False,
                        pd.Series(dtype=float))
    counts = exact_increments(raw, first=start)
    outcomes = counts[counts["event"].isin(OPOSSUM_OUTCOME)].assign(outcome=lambda f: f["event"].map(OPOSSUM_OUTCOME))
    calls = outcomes.groupby(["breaker", "instance", "outcome"], as_index=False)["increase"].sum()
    per_step = (outcomes.groupby(["breaker", "outcome", "time"], as_index=False)["increase"].sum()
                .rename(columns={"increase": "value"}))
    state_rows, transition_rows = [], []
    times = pd.DatetimeIndex(sorted(raw["time"].unique()))  # the grid the samples were taken on
    for (breaker, instance), g in counts.groupby(["breaker", "instance"]):
        opens = g[g["event"] == "open"].set_index("time")["increase"]
        closes = g[g["event"] == "close"].set_index("time")["increase"]
        series, open_at_start = rebuild_state(times, opens, closes)
        state_rows.append(pd.DataFrame({"breaker": breaker, "instance": instance, "time": times, "value": series}))
        o, c = float(opens.sum()), float(closes.sum())
        episodes = max(0.0, c + float(series[-1] == OPEN) - float(open_at_start))
        transition_rows += [{"breaker": breaker, "instance": instance, "from": "closed", "to": "open",
                             "increase": min(o, episodes)},
                            {"breaker": breaker, "instance": instance, "from": "half_open", "to": "open",
                             "increase": max(0.0, o - episodes)},
                            {"breaker": breaker, "instance": instance, "from": "half_open", "to": "closed",
                             "increase": c}]
    state = pd.concat(state_rows, ignore_index=True) if state_rows else pd.DataFrame(
        columns=["breaker", "instance", "time", "value"])
    return Observed(state, pd.DataFrame(transition_rows), calls, False, pd.Series(dtype=float), per_step)


def exact_increments(raw: pd.DataFrame, *, first: datetime) -> pd.DataFrame:
    """Per series and step, the events counted since the previous step, exactly.

    ``raw`` is a counter sampled at every step (``time``, ``value`` and label columns) from ``first``
    on. A drop is a restart: the new value is the events since it. A series absent at ``first`` and
    present later was born in the window (opossum-prometheus makes a series at its first event): its
    first value is counted whole. Columns: labels, ``time``, ``increase`` (steps with none left out).
    """
    labels = [c for c in raw.columns if c not in ("time", "value")]
    out = []
    for _, g in raw.sort_values("time").groupby(labels, dropna=False):
        values = g["value"].to_numpy(dtype=float)
        prev = np.concatenate([[np.nan], values[:-1]])
        inc = np.where(values >= prev, values - prev, values)       # a drop: the process restarted
        born = g["time"].iloc[0] > pd.Timestamp(first)
        inc[0] = values[0] if born else 0.0                          # before the window: the baseline
        frame = g.assign(increase=inc)[[*labels, "time", "increase"]]
        out.append(frame[frame["increase"] > 0])
    if not out:
        return pd.DataFrame(columns=[*labels, "time", "increase"])
    return pd.concat(out, ignore_index=True)


def rebuild_state(times: pd.DatetimeIndex, opens: pd.Series, closes: pd.Series) -> tuple[np.ndarray, bool]:
    """Open or closed at each step from the steps where opens and closes were counted (no gauge).

    Open from a step with an open until a step with a close. A step with both opened and closed
    within one scrape interval: from closed it ends closed, from open it ends open (closed, then
    re-opened). A first close with no open before it in the window means the breaker was open from
    the window's start (returned as the flag).
    """
    opened, closed = set(opens.index), set(closes.index)
    first = min(opened | closed, default=None)
    open_at_start = first is not None and first in closed and first not in opened
    current = OPEN if open_at_start else CLOSED
    state = np.empty(len(times), dtype=float)
    changes = sorted(opened | closed)
    pos = 0
    for i, t in enumerate(times):
        while pos < len(changes) and changes[pos] <= t:
            c = changes[pos]
            if c in opened and c in closed:
                pass  # both within one interval: the state it started the interval in
            else:
                current = OPEN if c in opened else CLOSED
            pos += 1
        state[i] = current
    return state, open_at_start


def _resilience4j(client: PrometheusClient, start: datetime, end: datetime, m: BreakerMetrics, scope: list[str],
                  step: float) -> Observed:
    n, w = m.name_label, _window(start, end)
    one_hot = client.query_range(f"max by ({n}, instance, state) ({m.metric(m.state, *scope)})", start, end, step)
    calls = client.query(f"sum by ({n}, instance, kind) (increase({m.metric(m.calls, *scope)}[{w}]))", end)
    rejected = client.query(f"sum by ({n}, instance) (increase({m.metric(m.not_permitted, *scope)}[{w}]))", end)
    one_hot, calls, rejected = (_named(f, m) for f in (one_hot, calls, rejected))
    active = one_hot[one_hot["value"] >= 0.5] if len(one_hot) else one_hot
    state = (active.assign(value=active["state"].map(R4J_STATE_VALUE).fillna(CLOSED).astype(float))
             .groupby(["breaker", "instance", "time"], as_index=False)["value"].max()) if len(active) else \
        pd.DataFrame(columns=["breaker", "instance", "time", "value"])
    parts = []
    if len(calls):
        kept = calls[calls["kind"].isin({"successful", "failed"})]
        parts.append(kept.assign(outcome=kept["kind"].map({"successful": "success", "failed": "failure"}),
                                 increase=kept["value"])[["breaker", "instance", "outcome", "increase"]])
    if len(rejected):
        parts.append(rejected.assign(outcome="rejected", increase=rejected["value"])[
            ["breaker", "instance", "outcome", "increase"]])
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["breaker", "instance", "outcome", "increase"])
    transitions, hidden = gauge_edges(state)
    return Observed(state, transitions, out, True, hidden)


def gauge_edges(state: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Transitions counted from a sampled state gauge, per breaker and instance, and how many more
    state changes the samples could hide (each not-closed scrape interval can hide one re-trip)."""
    rows, hidden = [], {}
    for (breaker, instance), g in state.sort_values("time").groupby(["breaker", "instance"]):
        v = np.rint(g["value"].to_numpy(dtype=float)).astype(int)
        prev, cur = v[:-1], v[1:]
        for a, b, frm, to in ((CLOSED, OPEN, "closed", "open"), (HALF_OPEN, OPEN, "half_open", "open"),
                              (HALF_OPEN, CLOSED, "half_open", "closed"), (CLOSED, HALF_OPEN, "closed", "half_open")):
            rows.append({"breaker": breaker, "instance": instance, "from": frm, "to": to,
                         "increase": float(((prev == a) & (cur == b)).sum())})
        hidden[(breaker, instance)] = float((v != CLOSED).sum())
    return (pd.DataFrame(rows, columns=["breaker", "instance", "from", "to", "increase"]),
            pd.Series(hidden, dtype=float))
