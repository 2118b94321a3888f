"""A watch stops NO-GO at the look where any required check of the proof fails, not only R.

On the bundled bad deploy (v1.9.0: failing regression tests, the db breaker OPEN at 10:12, the 2 %
alert firing from 10:12:30) each failure is found at its own look; unproven checks keep watching.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import ts

from reliability import paths
from reliability.gate.look_checks import LookChecks
from reliability.gate.params import ProofParams
from reliability.gate.watch import looks
from reliability.source.prom import PrometheusClient

pytestmark = pytest.mark.prometheus


def names(checks: LookChecks, client: PrometheusClient, at) -> list[str]:
    return [c.name for c in checks.failures(client, at)]


def test_each_failure_is_found_at_its_own_look(client: PrometheusClient, truth: dict) -> None:
    w = truth["windows"]["bad_deploy"]
    start = ts(w["start"])
    p = ProofParams(start=start, end=ts(w["end"]), candidate="v1.9.0", junit=(str(paths.JUNIT / "v1.9.1.xml"),))
    checks = LookChecks(p)
    assert [names(checks, client, start + timedelta(minutes=m)) for m in (1, 5, 11)] == [[], [], []]
    assert names(checks, client, start + timedelta(minutes=12)) == ["Circuit breakers at the window end"]
    late = {c.name: c.detail for c in checks.failures(client, start + timedelta(minutes=13))}
    assert "first at 2025-10-24T10:12:30Z" in late["High5xxErrorRate on the candidate"]
    assert names(checks, client, start + timedelta(minutes=20)) == ["High5xxErrorRate on the candidate"]
    failing = LookChecks(ProofParams(start=start, end=ts(w["end"]), candidate="v1.9.0",
                                     junit=(str(paths.JUNIT / "v1.9.0.xml"),)))
    assert names(failing, client, start + timedelta(minutes=1)) == ["Regression tests"]


def test_a_missing_breaker_fails_and_unproven_checks_keep_watching(client: PrometheusClient, truth: dict) -> None:
    w = truth["windows"]["canary"]
    p = ProofParams(start=ts(w["start"]), end=ts(w["end"]), candidate="v1.9.1")  # no JUnit: unproven
    watched = list(looks(client, p, ts(w["end"]), checks=LookChecks(p)))
    assert len(watched) < 60 and watched[-1].decision == "GO" and not any(x.reasons for x in watched)
    missing = ProofParams(start=ts(w["start"]), end=ts(w["end"]), candidate="v1.9.1",
                          dependencies=("db", "auth", "payments"))
    first = next(iter(looks(client, missing, ts(w["end"]), checks=LookChecks(missing))))
    assert first.decision == "NO-GO" and first.reasons[0].startswith("A breaker on every dependency: no circuit "
                                                                      "breaker for payments")
