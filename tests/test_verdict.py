"""The decision rule: GO only when every required check passed; never GO by default."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from reliability.errors import ConfigurationError
from reliability.gate.verdict import Check, Status, decide
from reliability.times import iso, parse_time


def chk(status: Status, required: bool = True, name: str = "c") -> Check:
    return Check(name, status, required, f"{name} is {status}")


def test_all_required_pass_is_go() -> None:
    v = decide([chk(Status.PASS, name="a"), chk(Status.PASS, name="b"), chk(Status.WARN, False, "dq")])
    assert v.decision == "GO" and v.exit_code == 0


def test_a_failure_is_no_go_even_with_missing_evidence() -> None:
    v = decide([chk(Status.PASS), chk(Status.INCONCLUSIVE, name="x"), chk(Status.FAIL, name="y")])
    assert v.decision == "NO-GO" and v.exit_code == 1
    assert v.reasons == ("y: y is FAIL",)


@pytest.mark.parametrize("status", [Status.INCONCLUSIVE, Status.WARN, Status.NOT_CONFIGURED])
def test_anything_unproven_is_inconclusive(status: Status) -> None:
    v = decide([chk(Status.PASS, name="a"), chk(status, name="b")])
    assert v.decision == "INCONCLUSIVE" and v.exit_code == 3


def test_no_required_check_is_never_go() -> None:
    assert decide([]).decision == "INCONCLUSIVE"
    assert decide([chk(Status.PASS, required=False)]).decision == "INCONCLUSIVE"


def test_optional_failure_does_not_block() -> None:
    assert decide([chk(Status.PASS), chk(Status.FAIL, required=False, name="o")]).decision == "GO"


def test_parse_time_iso_and_relative() -> None:
    now = datetime(2025, 10, 29, 12, tzinfo=timezone.utc)
    assert parse_time("2025-10-26T09:00:00Z") == datetime(2025, 10, 26, 9, tzinfo=timezone.utc)
    assert parse_time("2025-10-26T12:00:00+03:00") == datetime(2025, 10, 26, 9, tzinfo=timezone.utc)
    assert parse_time("now-24h", now=now) == datetime(2025, 10, 28, 12, tzinfo=timezone.utc)
    assert parse_time("now", now=now) == now
    assert iso(now) == "2025-10-29T12:00:00Z"


@pytest.mark.parametrize("bad", ["2025-10-26T09:00:00", "yesterday", "now-5parsecs"])
def test_parse_time_rejects_ambiguous_or_bad(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_time(bad, name="--start")
