"""Judging an alerting rule against known incidents: what it caught, how fast, and what it cried wolf on.

An alert rule is evidence of safety only if it demonstrably fires on the incidents the
history contains (the generator's ground truth) and stays quiet elsewhere. The
definitions, all on *firing* episodes (pending ones page nobody):

* an incident is **detected** when a firing episode overlaps [start, end + slack];
  the earliest such episode is the detecting one;
* **detection delay** = its ``firing_since`` - incident start (negative when the alert
  was already firing when the incident began);
* **time to resolve** = its ``resolved_at`` - incident end (NaT when still firing at
  the end of the window);
* a **false alarm** is a firing episode that started firing outside every
  [start - slack, end + slack].
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from reliability.errors import ConfigurationError

DEFAULT_SLACK = timedelta(minutes=15)


@dataclass(frozen=True, eq=False)  # frames inside: compare fields, not objects
class AlertQuality:
    """Per-incident detection and the false alarms of one rule's episodes."""

    alert: str
    # name, start, end, detected, firing_since, detection_delay, resolved_at, time_to_resolve
    incidents: pd.DataFrame
    false_alarms: pd.DataFrame     # the firing episodes outside every incident (± slack)
    slack: timedelta

    @property
    def missed(self) -> list[str]:
        """Names of the incidents the rule never fired for."""
        return list(self.incidents.loc[~self.incidents["detected"], "name"])

    @property
    def summary(self) -> pd.DataFrame:
        """One row: detected/missed counts, delays and false alarms."""
        detected = self.incidents[self.incidents["detected"]]
        delays = detected["detection_delay"]
        return pd.DataFrame([{
            "alert": self.alert,
            "incidents": len(self.incidents),
            "detected": len(detected),
            "missed": len(self.incidents) - len(detected),
            "missed_incidents": ", ".join(self.missed),
            "median_detection_delay": delays.median() if len(delays) else pd.NaT,
            "max_detection_delay": delays.max() if len(delays) else pd.NaT,
            "max_time_to_resolve": detected["time_to_resolve"].max() if len(detected) else pd.NaT,
            "false_alarms": len(self.false_alarms),
        }])


def alert_quality(episodes: pd.DataFrame, incidents: Iterable[Mapping[str, Any]], *,
                  slack: timedelta | float = DEFAULT_SLACK, alert: str = "") -> AlertQuality:
    """Compare a rule's episodes (from :func:`reliability.analysis.alerts.backtest`) with ground-truth incidents.

    Parameters
    ----------
    episodes
        ``Backtest.episodes``: ``firing_since`` and ``resolved_at`` are used.
    incidents
        Mappings with ``name``, ``start``, ``end`` (tz-aware datetimes or ISO 8601 UTC strings).
    slack
        Tolerance around incidents (timedelta or seconds), see the module docstring.
    alert
        Name shown in the summary.
    """
    slack = slack if isinstance(slack, timedelta) else timedelta(seconds=float(slack))
    table = _incidents(incidents)
    firing = episodes[episodes["firing_since"].notna()].sort_values("firing_since")
    never = pd.Timestamp.max.tz_localize("UTC")
    fire_start = firing["firing_since"]
    fire_end = firing["resolved_at"].fillna(never)
    rows = []
    for inc in table.itertuples(index=False):
        overlapping = firing[(fire_start <= inc.end + slack) & (fire_end > inc.start)]
        hit = overlapping.iloc[0] if len(overlapping) else None
        rows.append({
            "name": inc.name, "start": inc.start, "end": inc.end, "detected": hit is not None,
            "firing_since": hit["firing_since"] if hit is not None else pd.NaT,
            "detection_delay": hit["firing_since"] - inc.start if hit is not None else pd.NaT,
            "resolved_at": hit["resolved_at"] if hit is not None else pd.NaT,
            "time_to_resolve": hit["resolved_at"] - inc.end if hit is not None else pd.NaT,
        })
    result = pd.DataFrame(rows, columns=["name", "start", "end", "detected", "firing_since", "detection_delay",
                                         "resolved_at", "time_to_resolve"])
    result["detected"] = result["detected"].astype(bool)
    inside = pd.Series(False, index=firing.index)
    for inc in table.itertuples(index=False):
        inside |= (fire_start >= inc.start - slack) & (fire_start <= inc.end + slack)
    return AlertQuality(alert=alert, incidents=result, false_alarms=firing[~inside].reset_index(drop=True),
                        slack=slack)


def compare_rules(rules: Sequence[Any], client: Any, start: datetime, end: datetime,
                  incidents: Iterable[Mapping[str, Any]], *, interval: float | str | None = None,
                  slack: timedelta | float = DEFAULT_SLACK) -> pd.DataFrame:
    """Backtest several rules over the same window and put their quality side by side.

    Meant for the seed's single-window ``High5xxErrorRate`` against the multi-window
    burn-rate alerts: one row per rule with ``for``, detection counts and delays, false
    alarms, firing episodes and total firing time.
    """
    from reliability.analysis.alerts.replay import backtest

    incidents = list(incidents)
    rows = []
    for rule in rules:
        bt = backtest(rule, client, start, end, interval=interval)
        quality = alert_quality(bt.episodes, incidents, slack=slack, alert=bt.rule.alert).summary.iloc[0]
        summary = bt.summary.iloc[0]
        rows.append({**quality.to_dict(), "for": pd.Timedelta(seconds=bt.rule.for_),
                     "firing_episodes": summary["firing_episodes"], "firing_time": summary["firing_time"],
                     "first_firing": summary["first_firing"]})
    return pd.DataFrame(rows).set_index("alert")


def _incidents(incidents: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    rows = []
    for i, inc in enumerate(incidents):
        try:
            name, start, end = inc.get("name", f"incident {i + 1}"), _time(inc["start"]), _time(inc["end"])
        except KeyError as exc:
            raise ConfigurationError(f"incident {i + 1} has no {exc.args[0]!r}; give name, start and end") from None
        if end < start:
            raise ConfigurationError(f"incident {name!r} ends ({end}) before it starts ({start})")
        rows.append({"name": str(name), "start": start, "end": end})
    return pd.DataFrame(rows, columns=["name", "start", "end"])


def _time(value: Any) -> pd.Timestamp:
    t = pd.Timestamp(value.replace("Z", "+00:00") if isinstance(value, str) else value)
    if t.tzinfo is None:
        raise ConfigurationError(f"incident time {value!r} has no time zone; use ISO 8601 with Z")
    return t.tz_convert("UTC")
