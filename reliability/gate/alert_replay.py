"""The alert section of the proof: the seed's 2 % alert replayed on the candidate's traffic.

Prometheus does not evaluate rules over stored history, so the rules are replayed from a moment
the alert was quiet (an episode under way at the window start keeps its true start), at the
interval the server evaluates them at.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from reliability.gate.params import ProofParams
from reliability.gate.verdict import Check, Status
from reliability.source.prom import PrometheusClient
from reliability.times import iso


@dataclass(frozen=True)
class AlertSection:
    """The seed's rule replayed on the candidate's traffic, and every rule of the file on all traffic."""

    candidate: Any            # alerts.Backtest of High5xxErrorRate scoped to the candidate
    all_rules: pd.DataFrame   # one row per alerting rule: fired, episodes, first firing
    episodes: pd.DataFrame    # firing episodes of every rule over the window


SEED_ALERT = "High5xxErrorRate"


def alerts(p: ProofParams, client: PrometheusClient) -> tuple[AlertSection, list[Check]]:
    from reliability.analysis.alerts import backtest, load_rules

    groups = load_rules(p.rules)
    rules = [r for g in groups for r in g.rules if hasattr(r, "alert")]
    seed = next((r for r in rules if r.alert == SEED_ALERT), None)
    name = f"{SEED_ALERT} on the candidate"
    if seed is None:
        return None, [Check(name, Status.FAIL, True, f"{p.rules} has no {SEED_ALERT} rule: the 2 % alert is not set")]
    interval, source = evaluation_interval(client, SEED_ALERT)
    bt, check = seed_check(p, client, seed, interval, source)
    rows, episodes = [], []
    for rule in rules:
        res = backtest(rule, client, p.start, p.end, interval=interval)
        rows.append(res.summary.iloc[0][["alert", "fired", "firing_episodes", "first_firing", "firing_time"]])
        if len(res.firing):
            episodes.append(res.firing.assign(alert=rule.alert))
    table = pd.DataFrame(rows).reset_index(drop=True)
    eps = pd.concat(episodes, ignore_index=True) if episodes else pd.DataFrame()
    return AlertSection(bt, table, eps), [check]


def seed_check(p: ProofParams, client: PrometheusClient, seed: Any, interval: float | None,
               source: str) -> tuple[Any, Check]:
    """The seed's rule replayed on the candidate's traffic over the window: FAIL if it fired.

    The proof's check, and a watch's at each look (``p.end`` is the look).
    """
    from dataclasses import replace

    name = f"{SEED_ALERT} on the candidate"
    from reliability.source.parsed import add_matchers

    on_counter = add_matchers(seed.expr, p.scope(), metrics=p.sli.counters())  # a partial scope's slice too
    scoped = replace(seed, expr=p.sli.for_version(on_counter, p.candidate))
    bt = replay_from_quiet(scoped, client, p.start, p.end, interval=interval)
    firing = bt.firing
    firing = firing[firing["resolved_at"].isna() | (firing["resolved_at"] > p.start)]
    if len(firing):
        first = firing.iloc[0]
        times = "once" if len(firing) == 1 else f"{len(firing)} times"
        detail = (f"fired {times} on {p.candidate}'s traffic; first at {iso(first['firing_since'])}, "
                  f"peak 5xx ratio {first['peak_value']:.2%}")
        if first["firing_since"] < p.start:
            end = "still firing" if pd.isna(first["resolved_at"]) else f"resolved at {iso(first['resolved_at'])}"
            detail += f" (the window starts inside this episode, which began before it; {end})"
        return bt, Check(name, Status.FAIL, True, detail)
    detail = (f"replayed every {bt.interval:.0f} s ({source}) over the window on {p.candidate}'s traffic "
              f"({bt.evaluations} evaluations): never firing")
    return bt, Check(name, Status.PASS, True, detail)


def evaluation_interval(client: PrometheusClient, alert: str) -> tuple[float | None, str]:
    """The interval the server evaluates ``alert`` at, and where that figure came from."""
    from reliability.errors import PrometheusError
    from reliability.source import server_config
    from reliability.source.embedded.config import HISTORY_LABEL

    config = server_config(client) or {}
    try:
        groups = client.api("rules", {"type": "alert"}).get("groups", [])
    except (PrometheusError, AttributeError):
        groups = []
    labels = (config.get("global") or {}).get("external_labels") or {}
    if labels.get(HISTORY_LABEL) == "true":
        return None, "the rule file's interval: this server serves recorded history"
    for g in groups:
        if any(r.get("name") == alert for r in g.get("rules", [])) and g.get("interval"):
            return float(g["interval"]), "the server's evaluation interval"
    return None, "the rule file's interval: the server did not list the rule"


LOOKBACK_LIMIT = pd.Timedelta(days=2)


def replay_from_quiet(rule: Any, client: PrometheusClient, start: Any, end: Any, *,
                      interval: float | None) -> Any:
    """The backtest of ``rule`` from a moment it was quiet, so an episode under way at ``start``
    keeps its true start: the look-back grows until the first evaluation is inactive."""
    from reliability.analysis.alerts import backtest

    lookback = pd.Timedelta(seconds=max(rule.for_, interval or 60.0))
    while True:
        bt = backtest(rule, client, start - lookback, end, interval=interval)
        active_at_first = bool(len(bt.episodes)) and (bt.episodes["active_since"] <= bt.start).any()
        if not active_at_first or lookback >= LOOKBACK_LIMIT:
            return bt
        lookback = min(lookback * 4, LOOKBACK_LIMIT)
