"""Watching a canary until it is proven: one cheap look per interval, an anytime-valid decision.

Each look asks Prometheus for the candidate's per-minute counts since the last look (two range
queries; the first look, since the canary started), and with a stable version its counts over the
same minutes; the first look also reads the stable's history over the lookback (14 days by
default; the whole service's traffic before the start when no stable version is named). The
decision is :mod:`reliability.analysis.stats.sequential`'s: GO once the 5xx outside incidents are
proven low enough that the incidents the canary could still have leave R > 0.98, NO-GO once R < 0.98
is proven (and the stable beside it does not fail alike), or once another required check of the
proof fails at that look (:mod:`.look_checks`), INCONCLUSIVE at the deadline. When the deadline is
in the past the looks are replayed over the history exactly as they would have happened, which is
how the demo and the tests use it. The full proof (every required check, and the report) runs
once, at the decision.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from reliability.analysis import measure
from reliability.analysis.stats.incident_rate import NO_HISTORY_RATE, SEVERITY_PRIOR, StableProfile
from reliability.analysis.stats.martingale import rate_bounds
from reliability.analysis.stats.relative import RATIO_MARGIN
from reliability.analysis.stats.sequential import RATE_FACTOR, Look, history_profile, look
from reliability.errors import ConfigurationError
from reliability.gate.look_checks import LookChecks
from reliability.gate.params import ProofParams
from reliability.source.prom import PrometheusClient

STEP = 60.0  # seconds per count; a look is at most once a step
LOOKBACK = 14 * 86400.0  # seconds of the stable's history the incident guard reads
_FACTS = [f.name for f in fields(Look)][6:]  # what a look knows beyond the six figures of the first watch


@dataclass(frozen=True)
class WatchedLook:
    """One look: when, the candidate's counts since the start, and what the evidence says."""

    at: datetime
    look: Look
    decision: str | None
    start: datetime | None = None
    reasons: tuple[str, ...] = ()  # the required checks that failed at this look (then NO-GO)

    def bounds(self) -> tuple[float, float]:
        """The anytime-valid confidence sequence for R at this look (φ-adjusted counts), (lower, upper)."""
        lk = self.look
        if lk.requests <= 0:
            return 0.0, 1.0
        low, high = rate_bounds(lk.requests / lk.phi, lk.errors / lk.phi, alpha=lk.alpha)
        return 1.0 - float(high), 1.0 - float(low)

    def line(self) -> str:
        """The look's figures, and a sentence saying what decided it or what it waits for."""
        lk = self.look
        go, nogo = np.exp(min(lk.log_go, 700)), np.exp(min(lk.log_nogo, 700))
        low, high = self.bounds()
        versus = ""
        if np.isfinite(lk.log_not_worse) and (abs(lk.log_not_worse) > 1e-9 or abs(lk.log_worse) > 1e-9):
            versus = (f"  vs stable: not worse {np.exp(min(lk.log_not_worse, 700)):.3g}, "
                      f"worse {np.exp(min(lk.log_worse, 700)):.3g}")
        return (f"{self.at:%Y-%m-%d %H:%M} UTC  requests {lk.requests:>9,.0f}  5xx {lk.errors:>7,.0f}  "
                f"R {lk.r:.5f} in [{low:.5f}, {high:.5f}]  phi {lk.phi:6.2f}  evidence GO {go:9.3g} (at "
                f"{2 / lk.alpha:g})  NO-GO {nogo:9.3g} (at {1 / lk.alpha:g})  incidents {lk.incidents}{versus}"
                + (f"  -> {self.decision}" if self.decision else "")
                + f"\n    {explain(lk, self.decision, self.start)}"
                + "".join(f"\n    {reason}" for reason in self.reasons))


def explain(lk: Look, decision: str | None, start: datetime | None = None) -> str:
    """One sentence: why this look decided, or what GO still waits for (docs/watch-and-serve.md)."""
    if decision == "NO-GO" and lk.decision != "NO-GO":
        return "NO-GO: a required check of the proof failed at this look (below)"
    bar = np.log(1 / lk.alpha)
    if decision == "NO-GO":
        if lk.log_far >= bar:
            return ("NO-GO: over the same minutes the canary's 5xx rate is proven so far above the stable's that, "
                    "at the stable's own long-run share, it would take R below 0.98")
        if lk.log_worse >= bar and lk.log_nogo < bar:
            return (f"NO-GO: the canary's 5xx rate is proven above {RATIO_MARGIN:g}x the stable's over the same "
                    "minutes, and its R so far is below 0.98")
        return "NO-GO: R < 0.98 is proven on all the canary's requests, and the stable beside it does not fail alike"
    prior = (f"the documented prior (an incident every {1 / NO_HISTORY_RATE / 60:g} h, {SEVERITY_PRIOR:g} "
             "share-minutes each)")
    short = (f"the stable's history is too short ({lk.stable_minutes:.0f} min with traffic, a day is needed), so "
             if lk.stable_minutes else "no stable history, so ")
    route = ("its incidents bounded by its own incident-free exposure" if lk.route != "stable" else
             f"its incidents bounded at {RATE_FACTOR:g}x the stable's rate" if not np.isnan(lk.stable_rate) else
             f"{short}its incidents bounded by {prior}")
    if decision == "GO":
        return (f"GO: outside incidents the 5xx share is proven below {lk.room:.2%}, what 2 % leaves with {route}")
    if np.isfinite(lk.log_worse) and lk.log_worse >= bar:
        return (f"GO waits: the canary's 5xx rate is proven above {RATIO_MARGIN:g}x the stable's over the same "
                "minutes")
    if not np.isfinite(lk.room):
        return "GO waits: the first minutes' incident status settles a few minutes late"
    if lk.room <= 0:
        history = (short + prior if np.isnan(lk.stable_rate)
                   else f"the stable's incidents ({lk.stable_rate * 1440:.2g} a day, "
                        f"{lk.stable_severity:.2g} share-minutes each) at {RATE_FACTOR:g}x")
        until = ("never at this 5xx share outside incidents" if not np.isfinite(lk.go_after) else
                 f"watch until {start + timedelta(minutes=lk.go_after):%H:%M} UTC" if start is not None else
                 f"{lk.go_after:.0f} min from the start")
        return (f"GO waits: no incident-free exposure long enough yet: {lk.incidents} incident(s) so far, and "
                f"{history} could take 2 %; if none comes, {until}")
    return (f"GO needs more requests: the 5xx share outside incidents must be proven below {lk.room:.2%} ({route})")


class LookLog:
    """The looks so far, on disk (SQLite, one transaction per look), so a killed watcher resumes.

    The evidence is recomputed from Prometheus' counts since the canary's start at every look,
    so resuming loses nothing and restarts nothing: the log keeps which looks were made and what
    they said, and refuses to continue a different watch (other candidate, start, selector...).
    """

    def __init__(self, path: str | Path, watch: dict[str, object]) -> None:
        self.path, self.watch = Path(path), json.dumps(watch, sort_keys=True, default=str)
        self.db = sqlite3.connect(self.path)
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS watch (spec TEXT NOT NULL)")
            self.db.execute("CREATE TABLE IF NOT EXISTS looks (at TEXT PRIMARY KEY, requests REAL, errors REAL, "
                            "phi REAL, log_go REAL, log_nogo REAL, alpha REAL, decision TEXT, versus TEXT, "
                            "reasons TEXT, facts TEXT)")
            have = {row[1] for row in self.db.execute("PRAGMA table_info(looks)")}
            for column in ("reasons", "facts"):  # a state file from before
                if column not in have:
                    self.db.execute(f"ALTER TABLE looks ADD COLUMN {column} TEXT")
            row = self.db.execute("SELECT spec FROM watch").fetchone()
            if row is None:
                self.db.execute("INSERT INTO watch VALUES (?)", (self.watch,))
            elif row[0] != self.watch:
                raise ConfigurationError(f"{self.path} holds the looks of another watch ({row[0]}); give another "
                                         "--state file, or remove it to start this watch afresh")

    def recorded(self, start: datetime | None = None) -> list[WatchedLook]:
        rows = self.db.execute("SELECT at, requests, errors, phi, log_go, log_nogo, alpha, decision, reasons, facts "
                               "FROM looks ORDER BY at").fetchall()
        return [WatchedLook(datetime.fromisoformat(at), Look(n, e, phi, go, nogo, alpha, **_facts(facts)), decision,
                            start, tuple(json.loads(reasons)) if reasons else ())
                for at, n, e, phi, go, nogo, alpha, decision, reasons, facts in rows]

    def record(self, current: WatchedLook) -> None:
        lk = current.look
        facts = {k: v for k, v in asdict(lk).items() if k in _FACTS}
        with self.db:  # committed before the next look starts
            self.db.execute("INSERT OR REPLACE INTO looks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (current.at.isoformat(), lk.requests, lk.errors, lk.phi, lk.log_go, lk.log_nogo,
                             lk.alpha, current.decision, "", json.dumps(list(current.reasons)), json.dumps(facts)))

    def close(self) -> None:
        self.db.close()


def _facts(text: str | None) -> dict[str, object]:
    """A recorded look's facts (JSON keeps inf and nan as Infinity and NaN); none from a state file of before."""
    return {k: v for k, v in json.loads(text).items() if k in _FACTS} if text else {}


def looks(client: PrometheusClient, params: ProofParams, deadline: datetime, *, interval: float = 60.0,
          alpha: float = 0.05, min_watch: float = 0.0, lookback: float = LOOKBACK,
          now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
          sleep: Callable[[float], None] = time.sleep, log: LookLog | None = None,
          checks: LookChecks | None = None) -> Iterator[WatchedLook]:
    """Every look from ``params.start`` + ``interval`` to ``deadline``, stopping after the deciding one.

    A look in the future is waited for (``sleep``); looks in the past are replayed at once. With
    ``log``, the looks it holds are yielded first (not repeated) and each new one is recorded.
    With ``checks``, a required check of the proof that fails at a look decides NO-GO there.
    ``min_watch`` is a policy minimum before GO (none by default: the incident guard sets its own).
    """
    if interval < STEP or interval % STEP:
        raise ConfigurationError(f"--interval {interval:g} s: use whole minutes (the counts are per minute)")
    if deadline <= params.start:
        raise ConfigurationError(f"--deadline {deadline.isoformat()} is not after --start {params.start.isoformat()}")
    at = params.start + timedelta(seconds=interval)
    for old in log.recorded(params.start) if log is not None else []:
        yield old
        if old.decision:
            return
        at = old.at + timedelta(seconds=interval)
    seen: dict[str, Counts] = {}  # the counts so far, so each look asks only for the minutes since the last
    while at <= deadline:
        wait = (at - now()).total_seconds()
        if wait > 0:
            sleep(wait)
        current = look_at(client, params, at, alpha=alpha, min_watch=min_watch, lookback=lookback, seen=seen,
                          checks=checks)
        if log is not None:
            log.record(current)
        yield current
        if current.decision:
            return
        at += timedelta(seconds=interval)


def look_at(client: PrometheusClient, params: ProofParams, at: datetime, *, alpha: float = 0.05,
            min_watch: float = 0.0, lookback: float = LOOKBACK, seen: dict[str, Counts] | None = None,
            checks: LookChecks | None = None) -> WatchedLook:
    """The look at ``at``: the candidate's per-minute counts since ``params.start`` (two range queries), the
    stable's over the same minutes (two more, with a stable version), and once, its history over ``lookback``.

    With ``seen`` (the counts of earlier looks, filled in here) only the minutes since the last look are asked.
    With ``checks``, every other required check of the proof that fails at ``at`` makes the look NO-GO.
    """
    seen = {} if seen is None else seen
    n, e = seen.setdefault("candidate", Counts(params.start)).update(client, params, at, params.candidate)
    history = seen.setdefault("history", Counts(params.start - timedelta(seconds=lookback)))
    if history.profile is None:  # once: the history ends at the start
        counts = history.update(client, params, params.start, params.stable or None)
        history.profile = history_profile(counts, threshold=params.threshold)
    stable = None
    if params.stable:
        stable = seen.setdefault("stable", Counts(params.start)).update(client, params, at, params.stable)
    lk = look(n, e, profile=history.profile, stable=stable, threshold=params.threshold, alpha=alpha)
    decision = lk.decision
    if decision == "GO" and (at - params.start).total_seconds() < min_watch:
        decision = None  # the policy's minimum watch has not passed
    failed = checks.failures(client, at) if checks is not None and decision != "NO-GO" else []
    if failed:
        decision = "NO-GO"
    return WatchedLook(at, lk, decision, params.start, tuple(f"{c.name}: {c.detail.splitlines()[0]}" for c in failed))


@dataclass
class Counts:
    """One version's per-minute requests and 5xx from ``since``, one per minute (0 where Prometheus has none),
    extended look by look.

    A minute's ``increase()`` does not depend on the range it is asked in, so appending the new
    minutes gives exactly what one query over the whole watch would.
    """

    since: datetime
    requests: np.ndarray = field(default_factory=lambda: np.zeros(0))
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    until: datetime | None = None
    profile: StableProfile | None = None  # a history's incident profile, once it is read

    def update(self, client: PrometheusClient, params: ProofParams, at: datetime,
               version: str | None) -> tuple[np.ndarray, np.ndarray]:
        since = self.until or self.since
        if at > since:  # a partial scope's slice (route...) applies to the counts, as in the proof
            counts = measure.step_counts(client, since, at, step=STEP, sli=params.sli, selector=params.scope(),
                                         version=version)
            grid = pd.date_range(pd.Timestamp(since) + pd.Timedelta(seconds=STEP), pd.Timestamp(at),
                                 freq=pd.Timedelta(seconds=STEP))
            counts = counts.set_index("time")[["requests", "errors"]].reindex(grid, fill_value=0.0)
            self.requests = np.concatenate([self.requests, counts["requests"].to_numpy(dtype=float)])
            self.errors = np.concatenate([self.errors, counts["errors"].to_numpy(dtype=float)])
            self.until = at
        return self.requests, self.errors
