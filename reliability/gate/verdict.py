"""The GO / NO-GO / INCONCLUSIVE decision: GO only when every required check passed.

A required check that could not be computed (no data, unreachable server, missing
file) is INCONCLUSIVE, never PASS, so every path that cannot prove something keeps
the verdict away from GO.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import Enum

import pandas as pd


class Status(str, Enum):
    """Outcome of one check."""

    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"                  # worth reading; only allowed on checks that are not required
    INCONCLUSIVE = "INCONCLUSIVE"  # evidence missing or insufficient
    NOT_CONFIGURED = "NOT CONFIGURED"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Check:
    """One named piece of evidence with a detail a human can act on."""

    name: str
    status: Status
    required: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d


EXIT_CODES = {"GO": 0, "NO-GO": 1, "INCONCLUSIVE": 3}
EXIT_USAGE = 2      # a user error, found before any work
EXIT_INTERNAL = 4   # the tool broke (a bug or a broken environment): not a verdict


@dataclass(frozen=True)
class Verdict:
    """The decision, its one-sentence reasons, and every check behind it."""

    decision: str
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"check": c.name, "status": str(c.status), "required": c.required, "detail": c.detail}
             for c in self.checks]
        )


def decide(checks: Iterable[Check]) -> Verdict:
    """NO-GO if a required check failed; INCONCLUSIVE if one is not proven; else GO."""
    checks = tuple(checks)
    required = [c for c in checks if c.required]
    failed = [c for c in required if c.status is Status.FAIL]
    unproven = [c for c in required if c.status is not Status.PASS and c.status is not Status.FAIL]
    if failed:
        return Verdict("NO-GO", tuple(f"{c.name}: {c.detail}" for c in failed), checks)
    if unproven or not required:
        reasons = tuple(f"{c.name}: {c.detail}" for c in unproven) or ("no required check was run",)
        return Verdict("INCONCLUSIVE", reasons, checks)
    return Verdict("GO", tuple(f"{c.name}: {c.detail}" for c in required), checks)
