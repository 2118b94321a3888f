"""Shared servers refuse large queries: the proof asks again in pieces, and says INCONCLUSIVE only
when even the smallest piece is refused. On real servers started with low limits: Prometheus'
``--query.max-samples`` and VictoriaMetrics' ``-search.maxSamplesPerQuery``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from conftest import ts

from reliability.analysis import measure
from reliability.errors import QueryTooLarge
from reliability.source.embedded import EmbeddedPrometheus
from reliability.source.prom import PrometheusClient

pytestmark = pytest.mark.prometheus
REPO = Path(__file__).resolve().parents[1]
DAY = (ts("2025-10-26T09:00:00Z"), ts("2025-10-27T09:00:00Z"))
MONTH = (DAY[1] - timedelta(days=30), DAY[1])  # the error budget's window: the whole history
# Prometheus 2.x counts the samples of one series' range at a time plus the output points of all
# series: 5,000 passes a day of one series (2,880 samples at 30 s), refuses its 30 days (the budget,
# the 30-day panels) and a range query of many steps (per-minute buckets: 56 series x steps).
LIMIT = 5000
TOLERANCE = 1e-3  # a series born inside the window: see reliability.source.pieces


@pytest.fixture(scope="module")
def limited():
    with EmbeddedPrometheus(extra_args=[f"--query.max-samples={LIMIT}"]) as server:
        yield server


@pytest.fixture(scope="module")
def tiny():
    """A server whose limit refuses even 1/64 of a day of one series."""
    with EmbeddedPrometheus(extra_args=["--query.max-samples=20"]) as server:
        yield server


def test_the_limited_server_refuses_the_whole_month_for_its_size(limited) -> None:
    with pytest.raises(QueryTooLarge, match="too many samples"):
        PrometheusClient(limited.url).query("sum(increase(http_requests_total[30d]))", MONTH[1])


def test_month_totals_in_pieces_equal_the_whole_month_on_an_unlimited_server(limited, client) -> None:
    pieces_client = PrometheusClient(limited.url)
    whole = measure.totals(client, *MONTH, by=["version"]).set_index("version")
    pieces = measure.totals(pieces_client, *MONTH, by=["version"]).set_index("version")
    asked = [r for r in pieces_client.log if r.kind == "range"]
    assert len(asked) == 2 and all(r.query.count("[30d]") == 0 for r in asked), [r.query for r in pieces_client.log]
    assert [r.pieces for r in pieces_client.log if r.kind == "instant"] == [0, 0]  # refused whole, counted
    assert list(pieces.index) == list(whole.index)
    ratio = (pieces / whole - 1).abs()
    assert (ratio.to_numpy() < TOLERANCE).all(), pieces.compare(whole)
    assert pieces.loc["v1.9.1", "errors"] == whole.loc["v1.9.1", "errors"]  # its 5xx series span their pieces
    assert measure.first_seen(pieces_client, *MONTH) == measure.first_seen(client, *MONTH)  # min over pieces: exact


def test_a_refused_range_query_is_asked_in_halves_with_the_same_points(limited, client) -> None:
    pieces_client = PrometheusClient(limited.url)
    start, end = DAY[1] - timedelta(hours=4), DAY[1]  # 240 steps x 56 series: refused whole
    want = measure.step_counts(client, start, end, by=["version"])
    got = measure.step_counts(pieces_client, start, end, by=["version"])
    record = [r for r in pieces_client.log if r.kind == "range"][-1]
    assert record.pieces > 1 and record.http_requests > record.pieces  # refused, then split
    keys = ["version", "time"]
    pd.testing.assert_frame_equal(got.sort_values(keys).reset_index(drop=True),
                                  want.sort_values(keys).reset_index(drop=True))


def test_even_the_smallest_piece_refused_is_a_clear_error(tiny) -> None:
    with pytest.raises(QueryTooLarge, match="64 pieces") as caught:
        measure.totals(PrometheusClient(tiny.url), *DAY)
    assert "--query.max-samples" in str(caught.value)  # what to do


def _proof(url: str, out: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([sys.executable, "-m", "reliability", "proof", "--start", "2025-10-26T09:00:00Z",
                           "--end", "2025-10-27T09:00:00Z", "--candidate", "v1.9.1", "--out", str(out)],
                          cwd=REPO, env={**os.environ, "PROMETHEUS_URL": url, **env}, capture_output=True, text=True,
                          timeout=600)
    evidence = out / "evidence.json"
    return done, json.loads(evidence.read_text()) if evidence.exists() else {}


def test_a_proof_on_a_server_that_refuses_everything_is_inconclusive_naming_the_limit(tiny, tmp_path: Path) -> None:
    done, evidence = _proof(tiny.url, tmp_path / "out", ALERTMANAGER_URL=tiny.alertmanager_url or "")
    assert done.returncode == 3, done.stdout + done.stderr
    assert evidence["verdict"] == "INCONCLUSIVE"
    assert "refused a query for its size" in done.stdout and "max-samples" in done.stdout


def test_a_proof_on_a_limited_server_proves_what_it_proves_on_an_unlimited_one(limited, prometheus_url: str,
                                                                               tmp_path: Path) -> None:
    _, free = _proof(prometheus_url, tmp_path / "free")
    done, held = _proof(limited.url, tmp_path / "held", ALERTMANAGER_URL=limited.alertmanager_url or "")
    statuses = {c["name"]: c["status"] for c in held["checks"]}
    assert statuses == {c["name"]: c["status"] if c["name"] != "Dashboard panels" else "INCONCLUSIVE"
                        for c in free["checks"]}, done.stdout
    panels = next(c for c in held["checks"] if c["name"] == "Dashboard panels")
    assert "refused by the server for their size" in panels["detail"] and "30 days" in panels["detail"]
    for key in ("requests", "errors_5xx"):
        assert held["reliability"][key] == pytest.approx(free["reliability"][key], rel=TOLERANCE)
    # Offline, from the snapshot: the refusals replay, the pieces are asked again, the verdict is the same.
    again = subprocess.run([sys.executable, "-m", "reliability", "render", str(tmp_path / "held"), "--out",
                            str(tmp_path / "again")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    html = (tmp_path / "again" / "report.html").read_text()
    assert "asked in pieces" in html and held["verdict"] in html


def test_victoriametrics_refusal_is_recognised_and_said(tmp_path: Path) -> None:
    """VictoriaMetrics counts the samples of whole blocks: on this small history one block holds a
    series' day, so no piece is smaller than the limit and the refusal is the answer, in its words."""
    from reliability.source.embedded.victoria import EmbeddedVictoriaMetrics

    with (EmbeddedVictoriaMetrics(metrics=["http_requests_total"], start=DAY[0] - timedelta(hours=3), end=DAY[1],
                                  extra_args=["-search.maxSamplesPerQuery=100000"]) as vm,
          pytest.raises(QueryTooLarge, match="maxSamplesPerQuery") as caught):
        measure.totals(PrometheusClient(vm.url), *DAY)
    assert "64 pieces" in str(caught.value)
