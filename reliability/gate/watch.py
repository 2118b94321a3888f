"""Watching a canary until it is proven: one cheap look per interval, an anytime-valid decision.

Each look asks Prometheus for the candidate's per-minute counts since the last look (two range
queries; the first look, since the canary started) and updates the anytime-valid evidence of
:mod:`reliability.analysis.stats.sequential`. The watch stops at the first look whose evidence
decides (GO once R > 0.98 is proven and the minimum watch has passed; NO-GO once R < 0.98 is, or
once another required check of the proof fails at that look, :mod:`.look_checks`), or at the
deadline (INCONCLUSIVE). When the deadline is in the past the looks are replayed over the history
exactly as they would have happened, which is how the demo and the tests use it. The full proof
(every required check, and the report) runs once, at the decision.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from reliability.analysis import measure
from reliability.analysis.stats.sequential import MIN_WATCH_MINUTES, Look, compare_step, look, rate_bounds
from reliability.errors import ConfigurationError
from reliability.gate.look_checks import LookChecks
from reliability.gate.params import ProofParams
from reliability.source.prom import PrometheusClient

STEP = 60.0  # seconds per count; a look is at most once a step


@dataclass(frozen=True)
class WatchedLook:
    """One look: when, the candidate's counts since the start, and what the evidence says."""

    at: datetime
    look: Look
    decision: str | None
    versus: str = ""  # candidate vs stable at this look: non-inferior, inferior, open ("" without a stable)
    reasons: tuple[str, ...] = ()  # the required checks that failed at this look (then NO-GO)

    def bounds(self) -> tuple[float, float]:
        """The anytime-valid confidence sequence for R at this look (φ-adjusted counts), (lower, upper)."""
        lk = self.look
        if lk.requests <= 0:
            return 0.0, 1.0
        low, high = rate_bounds(lk.requests / lk.phi, lk.errors / lk.phi, alpha=lk.alpha)
        return 1.0 - float(high), 1.0 - float(low)

    def line(self) -> str:
        lk = self.look
        go, nogo = np.exp(min(lk.log_go, 700)), np.exp(min(lk.log_nogo, 700))
        low, high = self.bounds()
        return (f"{self.at:%Y-%m-%d %H:%M} UTC  requests {lk.requests:>9,.0f}  5xx {lk.errors:>7,.0f}  "
                f"R {lk.r:.5f} in [{low:.5f}, {high:.5f}]  phi {lk.phi:6.2f}  evidence R>0.98 {go:9.3g}  "
                f"R<0.98 {nogo:9.3g}  (decides at {1 / lk.alpha:g})"
                + (f"  vs stable: {self.versus}" if self.versus else "")
                + (f"  -> {self.decision}" if self.decision else "")
                + "".join(f"\n    {reason}" for reason in self.reasons))


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
                            "reasons TEXT)")
            if "reasons" not in {row[1] for row in self.db.execute("PRAGMA table_info(looks)")}:
                self.db.execute("ALTER TABLE looks ADD COLUMN reasons TEXT")  # a state file from before
            row = self.db.execute("SELECT spec FROM watch").fetchone()
            if row is None:
                self.db.execute("INSERT INTO watch VALUES (?)", (self.watch,))
            elif row[0] != self.watch:
                raise ConfigurationError(f"{self.path} holds the looks of another watch ({row[0]}); give another "
                                         "--state file, or remove it to start this watch afresh")

    def recorded(self) -> list[WatchedLook]:
        rows = self.db.execute("SELECT at, requests, errors, phi, log_go, log_nogo, alpha, decision, versus, reasons "
                               "FROM looks ORDER BY at").fetchall()
        return [WatchedLook(datetime.fromisoformat(at), Look(n, e, phi, go, nogo, alpha), decision, versus or "",
                            tuple(json.loads(reasons)) if reasons else ())
                for at, n, e, phi, go, nogo, alpha, decision, versus, reasons in rows]

    def record(self, current: WatchedLook) -> None:
        lk = current.look
        with self.db:  # committed before the next look starts
            self.db.execute("INSERT OR REPLACE INTO looks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (current.at.isoformat(), lk.requests, lk.errors, lk.phi, lk.log_go, lk.log_nogo,
                             lk.alpha, current.decision, current.versus, json.dumps(list(current.reasons))))

    def close(self) -> None:
        self.db.close()


def looks(client: PrometheusClient, params: ProofParams, deadline: datetime, *, interval: float = 60.0,
          alpha: float = 0.05, min_watch: float = MIN_WATCH_MINUTES * 60.0,
          now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
          sleep: Callable[[float], None] = time.sleep, log: LookLog | None = None,
          checks: LookChecks | None = None) -> Iterator[WatchedLook]:
    """Every look from ``params.start`` + ``interval`` to ``deadline``, stopping after the deciding one.

    A look in the future is waited for (``sleep``); looks in the past are replayed at once. With
    ``log``, the looks it holds are yielded first (not repeated) and each new one is recorded.
    With ``checks``, a required check of the proof that fails at a look decides NO-GO there.
    """
    if interval < STEP or interval % STEP:
        raise ConfigurationError(f"--interval {interval:g} s: use whole minutes (the counts are per minute)")
    if deadline <= params.start:
        raise ConfigurationError(f"--deadline {deadline.isoformat()} is not after --start {params.start.isoformat()}")
    at = params.start + timedelta(seconds=interval)
    for old in log.recorded() if log is not None else []:
        yield old
        if old.decision:
            return
        at = old.at + timedelta(seconds=interval)
    seen: dict[str, Counts] = {}  # the counts so far, so each look asks only for the minutes since the last
    while at <= deadline:
        wait = (at - now()).total_seconds()
        if wait > 0:
            sleep(wait)
        current = look_at(client, params, at, alpha=alpha, min_watch=min_watch, seen=seen, checks=checks)
        if log is not None:
            log.record(current)
        yield current
        if current.decision:
            return
        at += timedelta(seconds=interval)


def look_at(client: PrometheusClient, params: ProofParams, at: datetime, *, alpha: float = 0.05,
            min_watch: float = MIN_WATCH_MINUTES * 60.0, seen: dict[str, Counts] | None = None,
            checks: LookChecks | None = None) -> WatchedLook:
    """The look at ``at``: the candidate's per-minute counts since ``params.start`` (two range queries),
    and with a stable version, the stable's (two more) for the sequential comparison (context, not decisive).

    With ``seen`` (the counts of earlier looks, filled in here) only the minutes since the last look are asked.
    With ``checks``, every other required check of the proof that fails at ``at`` makes the look NO-GO.
    """
    seen = {} if seen is None else seen
    n, e = seen.setdefault("candidate", Counts()).update(client, params, at, params.candidate)
    lk = look(n, e, threshold=params.threshold, alpha=alpha)
    decision = lk.decision
    if decision == "GO" and (at - params.start).total_seconds() < min_watch:
        decision = None  # too soon: a quiet stretch between incidents would look proven
    versus = ""
    if params.stable:
        sn, se = seen.setdefault("stable", Counts()).update(client, params, at, params.stable)
        if len(n) and len(sn):
            steps = min(len(n), len(sn))
            good, worse = compare_step(n[:steps], e[:steps], sn[:steps], se[:steps], margin=params.margin, alpha=alpha)
            versus = "non-inferior" if good[0] else "inferior" if worse[0] else "open"
    failed = checks.failures(client, at) if checks is not None and decision != "NO-GO" else []
    if failed:
        decision = "NO-GO"
    return WatchedLook(at, lk, decision, versus, tuple(f"{c.name}: {c.detail.splitlines()[0]}" for c in failed))


@dataclass
class Counts:
    """One version's per-minute requests and 5xx since the canary's start, extended look by look.

    A minute's ``increase()`` does not depend on the range it is asked in, so appending the new
    minutes gives exactly what one query over the whole watch would.
    """

    requests: np.ndarray = field(default_factory=lambda: np.zeros(0))
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    until: datetime | None = None

    def update(self, client: PrometheusClient, params: ProofParams, at: datetime,
               version: str) -> tuple[np.ndarray, np.ndarray]:
        since = self.until or params.start
        if at > since:  # a partial scope's slice (route...) applies to the counts, as in the proof
            counts = measure.step_counts(client, since, at, step=STEP, sli=params.sli, selector=params.scope(),
                                         version=version)
            self.requests = np.concatenate([self.requests, counts["requests"].to_numpy(dtype=float)])
            self.errors = np.concatenate([self.errors, counts["errors"].to_numpy(dtype=float)])
            self.until = at
        return self.requests, self.errors
