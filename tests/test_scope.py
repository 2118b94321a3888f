"""One scope everywhere: on a Prometheus that also serves another service, the love backend's
verdict, counts and tables are exactly those it gets alone.

The other service (tests/otherservice.py) has 30 % 5xx under the canary's own version label, an
OPEN db breaker, a target down for an hour and queue updates without cache invalidation. The
rules, dashboard and settings are what ``reliability init --job love-backend`` writes.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import otherservice
import pandas as pd
import pytest
from conftest import ts

from reliability.cli import scaffold
from reliability.gate import proof
from reliability.gate.verdict import Status
from reliability.source.parsed import add_matchers
from reliability.source.prom import PrometheusClient

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
JOB = "love-backend"
SELECTOR = f'job="{JOB}"'


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backend repository as `reliability init` leaves it."""
    root = tmp_path_factory.mktemp("backend")
    scaffold.init(root, job=JOB)
    return root


@pytest.fixture(scope="module")
def servers(repo: Path, tmp_path_factory: pytest.TempPathFactory):
    """(alone, shared): the love backend alone, and beside the other service, both with init's rules."""
    from reliability.source.embedded import EmbeddedPrometheus

    other = otherservice.write(tmp_path_factory.mktemp("other") / "scheduler.om")
    config = repo / "monitoring" / "prometheus.yml"
    with EmbeddedPrometheus(config=config) as alone, EmbeddedPrometheus(config=config, extra_data=[other]) as shared:
        yield alone, shared


def run(url: str, repo: Path, truth: dict, selector: str) -> proof.Proof:
    w = truth["windows"]["canary"]
    params = proof.ProofParams(
        start=ts(w["start"]), end=ts(w["end"]), candidate="v1.9.1", stable="v1.8.3", selector=selector,
        junit=(str(Path(__file__).parents[1] / "data" / "junit" / "v1.9.1.xml"),),
        rules=str(repo / "monitoring" / "alerts.yml"), dashboard=str(repo / "monitoring" / "grafana-dashboard.json"))
    return proof.run(params, PrometheusClient(url))


def _no_urls(text: str) -> str:
    return re.sub(r"http://127\.0\.0\.1:\d+", "<url>", text)


def _checks(result: proof.Proof) -> list[tuple[str, str, str]]:
    return [(c.name, str(c.status), _no_urls(c.detail)) for c in result.checks]


@pytest.fixture(scope="module")
def results(servers, repo: Path, truth: dict) -> dict[str, proof.Proof]:
    alone, shared = servers
    return {"alone": run(alone.url, repo, truth, SELECTOR), "shared": run(shared.url, repo, truth, SELECTOR),
            "shared_unscoped": run(shared.url, repo, truth, "")}


def test_the_other_service_is_really_there(results) -> None:
    """Without a scope the shared server sinks the healthy canary: the test has teeth."""
    r = results["shared_unscoped"]
    assert r.verdict.decision == "NO-GO"
    failed = {c.name for c in r.checks if c.status is Status.FAIL}
    assert "Circuit breakers at the window end" in failed
    assert "Cache invalidation" in failed
    assert r.sections["scope"].jobs == [otherservice.JOB, JOB]
    scope_check = next(c for c in r.checks if c.name == "Scope")
    assert scope_check.status is Status.WARN and "sum 2 jobs" in scope_check.detail


def test_scoped_verdict_and_checks_equal_the_service_alone(results) -> None:
    alone, shared = results["alone"], results["shared"]
    assert alone.verdict.decision == "GO", alone.verdict.reasons
    assert shared.verdict.decision == alone.verdict.decision
    assert _checks(shared) == _checks(alone)
    assert shared.sections["scope"].jobs == [JOB]


def test_scoped_counts_and_tables_equal_the_service_alone(results) -> None:
    alone, shared = results["alone"], results["shared"]
    a, s = alone.sections, shared.sections
    assert s["reliability"].bound == a["reliability"].bound
    for key, attr in (("reliability", "per_version"), ("reliability", "per_route"), ("reliability", "steps"),
                      ("breakers", "summary"), ("cache", "by_clinic"), ("data_quality", "findings"),
                      ("alerts", "all_rules")):
        pd.testing.assert_frame_equal(getattr(s[key], attr), getattr(a[key], attr), obj=f"{key}.{attr}")
    pd.testing.assert_frame_equal(s["monitoring"].panels.drop(columns=["expr"], errors="ignore"),
                                  a["monitoring"].panels.drop(columns=["expr"], errors="ignore"))


def test_every_query_of_the_scoped_proof_names_the_service(results) -> None:
    """The scope reached every PromQL query the proof ran (API calls carry no PromQL)."""
    queries = results["shared"].queries
    promql = queries[queries["kind"] != "api"]["query"]
    assert len(promql) > 30
    own = ("prometheus_notifications_", "ALERTS{")  # Prometheus' own series: no service owns them
    missing = [q for q in promql if SELECTOR not in q and not any(o in q for o in own)]
    assert missing == []


def test_cli_from_the_backend_repository_uses_its_settings(servers, repo: Path, truth: dict, tmp_path: Path) -> None:
    """`reliability proof` run in the repository `init` made: its settings scope the proof."""
    _, shared = servers
    w = truth["windows"]["canary"]
    (repo / "test-results").mkdir(exist_ok=True)
    (repo / "test-results" / "unit.xml").write_text(
        (Path(__file__).parents[1] / "data" / "junit" / "v1.9.1.xml").read_text())
    (repo / ".last-stable-version").write_text("v1.8.3\n")
    r = subprocess.run([sys.executable, "-m", "reliability", "proof", "--start", w["start"], "--end", w["end"],
                        "--candidate", "v1.9.1", "--out", str(tmp_path / "evidence")],
                       cwd=repo, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PROMETHEUS_URL": shared.url})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Scope: {SELECTOR} (jobs: {JOB})" in r.stdout
    ev = json.loads((tmp_path / "evidence" / "evidence.json").read_text())
    assert ev["verdict"] == "GO" and ev["scope"] == {"selector": SELECTOR, "jobs": [JOB], "partial": False}
    assert ev["inputs"]["rules"]["path"] == str(repo / "monitoring" / "alerts.yml")


def test_scope_is_added_by_the_parser_to_every_selector() -> None:
    expr = ('sum by (version) (rate(http_requests_total{status=~"5.."}[5m] offset 1m)) / on(version) '
            'group_left sum(rate(http_requests_total[5m])) > 0.02 or absent(up{x="job=\\"a\\""})')
    out = add_matchers(expr, ['job="love-backend"'])
    assert out.count('job="love-backend"') == 3
    assert 'up{x="job=\\"a\\"",job="love-backend"}' in out  # a quote in a label value stays a string
    assert add_matchers(out, ['job="love-backend"']) == out  # idempotent
    assert add_matchers("x + y", ['a="1"'], metrics={"y"}) == 'x + y{a="1"}'
