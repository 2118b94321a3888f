"""Screenshots of the Prometheus UI: said, never failed, when they cannot be taken or were changed.

The pictures themselves are taken end to end in tests/test_cli.py (a real proof, a real Chromium,
through an authenticating proxy); here, the paths where there is no picture to show.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from reliability.gate.sections import screenshot_check
from reliability.gate.verdict import Check, Status, decide
from reliability.source import screenshots

START, END = datetime(2025, 10, 26, 9, tzinfo=timezone.utc), datetime(2025, 10, 27, 9, tzinfo=timezone.utc)


def take(folder: Path, url: str = "http://127.0.0.1:9") -> dict:
    return screenshots.take(url, expr="up", start=START, end=END, alert="High5xxErrorRate", out_dir=folder)


def test_no_browser_is_said_and_leaves_the_verdict_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOVE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    manifest = take(tmp_path)
    assert not manifest["shots"] and "LOVE_CHROMIUM" in manifest["missing"] and "apt-get install chromium" in \
        manifest["missing"]
    check = screenshot_check(str(tmp_path))
    assert check.status is Status.INCONCLUSIVE and not check.required and "not proven" in check.detail
    assert decide([Check("R", Status.PASS, True, ""), check]).decision == "GO"


@pytest.mark.prometheus
def test_a_server_that_does_not_answer_is_said(tmp_path: Path) -> None:
    manifest = take(tmp_path, "http://127.0.0.1:9")  # nothing listens on the discard port
    assert not manifest["shots"] and "could not show http://127.0.0.1:9's web UI" in manifest["missing"]
    assert screenshot_check(str(tmp_path)).status is Status.INCONCLUSIVE


@pytest.mark.prometheus
def test_a_server_without_prometheus_ui_is_said_not_pictured(tmp_path: Path) -> None:
    """VictoriaMetrics answers the query API but not /graph: no picture of its 404 may pass for its UI."""
    from datetime import timedelta

    from reliability.source.embedded.victoria import EmbeddedVictoriaMetrics

    with EmbeddedVictoriaMetrics(metrics=["up"], start=START, end=START + timedelta(hours=1)) as vm:
        manifest = take(tmp_path, vm.url)
    assert not manifest["shots"], manifest
    assert "HTTP 404" in manifest["missing"] and "does not serve Prometheus' web UI" in manifest["missing"]
    assert screenshot_check(str(tmp_path)).status is Status.INCONCLUSIVE


@pytest.mark.prometheus
def test_a_picture_changed_after_it_was_taken_is_not_shown(prometheus_url: str, tmp_path: Path) -> None:
    from reliability.report.tables import screenshots as figures

    manifest = take(tmp_path, prometheus_url)
    assert [s["file"] for s in manifest["shots"]] == [screenshots.GRAPH, screenshots.ALERTS], manifest["missing"]
    assert screenshot_check(str(tmp_path)).status is Status.PASS and len(figures(str(tmp_path))) == 2
    (tmp_path / screenshots.GRAPH).write_bytes(b"\x89PNG not the picture")
    assert screenshot_check(str(tmp_path)).status is Status.INCONCLUSIVE
    assert len(figures(str(tmp_path))) == 1  # only the alerts page, which still matches its sha256


def test_turned_off_and_a_notebook_run_alone_are_not_configured() -> None:
    assert screenshot_check("off").status is Status.NOT_CONFIGURED
    assert "ran by itself" in screenshot_check("").detail
