"""Recording rules first: the requests of long windows from the SLI's recorded series, proven against
the raw series on a real Prometheus (the session's, which backfills monitoring/sli_recording.yml over
the bundled history with promtool), and the raw series, said so, where the rule does not cover."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from conftest import ts

from reliability import paths
from reliability.analysis import measure
from reliability.source.embedded import EmbeddedPrometheus
from reliability.source.prom import PrometheusClient
from reliability.source.sli import SEED, resolve

pytestmark = pytest.mark.prometheus
REPO = Path(__file__).resolve().parents[1]
END = ts("2025-10-27T09:00:00Z")
RAW = SEED  # the rule is read only where the caller has checked it covers the window
RECORDED = replace(SEED, covered=True)
# A recorded minute is a 2-minute rate extrapolated over the samples it saw: it misses a new series'
# first minutes (a canary's series are born in the window), so the sum is lower, by this much at most.
TOLERANCE = 0.01


def test_the_seed_rule_file_is_the_rule_the_sli_reads() -> None:
    doc = yaml.safe_load(paths.SLI_RECORDING_YML.read_text())
    (group,) = doc["groups"]
    assert group["interval"] == "1m" and group["rules"] == [SEED.recorded_rule()]
    assert "sli_recording.yml" in yaml.safe_load(paths.PROMETHEUS_YML.read_text())["rule_files"]


@pytest.mark.parametrize("days", [2, 30])
def test_recorded_requests_agree_with_the_raw_series_and_the_5xx_are_exact(client: PrometheusClient,
                                                                           days: int) -> None:
    start = END - timedelta(days=days)
    assert measure.recorded_coverage(client, start, END, sli=SEED) == ""
    before = len(client.log)
    rec = measure.totals(client, start, END, by=["version"], sli=RECORDED).set_index("version")
    asked = [r.query for r in client.log[before:]]
    assert any("love:sli_requests:rate2m" in q for q in asked) and not any(
        "love:" in q and "5.." in q for q in asked), asked
    raw = measure.totals(client, start, END, by=["version"], sli=RAW).set_index("version")
    assert list(rec.index) == list(raw.index)
    assert (rec["errors"] == raw["errors"]).all()
    ratio = rec["requests"] / raw["requests"]
    assert ((ratio > 1 - TOLERANCE) & (ratio < 1 + TOLERANCE / 10)).all(), ratio


def test_short_and_odd_windows_route_tables_and_unchecked_rules_read_the_raw_series() -> None:
    for window, by in (("30s", ()), ("1h", ()), ("1d", ()), ("2d30s", ()), ("30d", ("route",))):
        assert "love:" not in RECORDED.increase(window, by=by)  # a day or less: the proof's own window
    assert "love:" in RECORDED.increase("30d", by=("version",))
    assert "sum_over_time(love:sli_requests:rate2m[259199999ms])) * 60" in RECORDED.increase("3d")
    assert "love:" not in RECORDED.increase("30d", errors=True)
    assert "love:" not in SEED.increase("30d")  # declared, not checked: raw


@pytest.fixture(scope="module")
def unrecorded():
    """The same history on a server that never ran the rule (a production server without it)."""
    with EmbeddedPrometheus(recorded=False) as server:
        yield server


def test_a_server_without_the_rule_is_said_and_counted_from_raw_series(unrecorded) -> None:
    client = PrometheusClient(unrecorded.url)
    why = measure.recorded_coverage(client, END - timedelta(days=1), END, sli=SEED)
    assert "love:sli_requests:rate2m" in why and "not loaded" in why


def _proof(url: str, am: str, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "reliability", "proof", "--start", "2025-10-26T09:00:00Z",
                           "--end", "2025-10-27T09:00:00Z", "--candidate", "v1.9.1", "--out", str(out)],
                          cwd=REPO, env={**os.environ, "PROMETHEUS_URL": url, "ALERTMANAGER_URL": am},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1, 3), done.stdout + done.stderr
    return json.loads((out / "evidence.json").read_text())


def test_the_proof_says_where_its_counts_come_from_and_decides_the_same(unrecorded, prometheus_url: str,
                                                                          tmp_path: Path) -> None:
    recorded = _proof(prometheus_url, os.environ.get("ALERTMANAGER_URL", ""), tmp_path / "recorded")
    raw = _proof(unrecorded.url, unrecorded.alertmanager_url or "", tmp_path / "raw")
    checks = [{c["name"]: c for c in e["checks"]} for e in (recorded, raw)]
    assert checks[0]["Recorded SLI"]["status"] == "PASS"
    assert "love:sli_requests:rate2m" in checks[0]["Recorded SLI"]["detail"]
    assert checks[1]["Recorded SLI"]["status"] == "WARN" and "raw series" in checks[1]["Recorded SLI"]["detail"]
    assert recorded["reliability"]["sli"]["recorded"] == raw["reliability"]["sli"]["recorded"] == "love"
    assert recorded["verdict"] == raw["verdict"]
    assert {n: c["status"] for n, c in checks[0].items() if n != "Recorded SLI"} == \
           {n: c["status"] for n, c in checks[1].items() if n != "Recorded SLI"}
    assert resolve(recorded["reliability"]["sli"]).recorded == "love"  # the evidence round-trips
