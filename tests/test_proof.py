"""The proof's verdict on the bundled scenarios, without papermill (fast)."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import ts

from reliability import paths
from reliability.gate import proof
from reliability.gate.verdict import Status
from reliability.report.evidence import evidence

pytestmark = pytest.mark.prometheus


def run(client, truth: dict, window: str, candidate: str, junit: str | None = None) -> proof.Proof:
    w = truth["windows"][window]
    params = proof.ProofParams(start=ts(w["start"]), end=ts(w["end"]), candidate=candidate, stable="v1.8.3",
                               junit=(str(paths.DATA / "junit" / junit),) if junit else ())
    return proof.run(params, client)


def status(result: proof.Proof, prefix: str) -> Status:
    return next(c.status for c in result.checks if c.name.startswith(prefix))


def test_bad_deploy_is_no_go_for_the_right_reasons(client, truth) -> None:
    r = run(client, truth, "bad_deploy", "v1.9.0", "v1.9.0.xml")
    assert r.verdict.decision == "NO-GO"
    assert status(r, "R > 0.98") is Status.FAIL
    assert status(r, "High5xxErrorRate") is Status.FAIL
    assert status(r, "Regression tests") is Status.FAIL
    assert "git checkout v1.8.3" in proof.rollback_plan(r)


def test_healthy_canary_is_go(client, truth) -> None:
    r = run(client, truth, "canary", "v1.9.1", "v1.9.1.xml")
    assert r.verdict.decision == "GO", r.verdict.summary.to_string()
    assert proof.rollback_plan(r) is None
    ev = evidence(r)
    want = truth["windows"]["canary"]["by_version"]["v1.9.1"]
    assert abs(ev["reliability"]["requests"] - want["requests"]) <= 0.01 * want["requests"]
    # The bound says what it rests on: the clustering's independent units, batch length and method.
    rel = ev["reliability"]
    assert rel["independent_units"] >= 8 and rel["batch_seconds"] >= 60 and "batch means" in rel["dependence"]
    assert rel["effective_requests"] == pytest.approx(rel["requests"] / rel["dispersion"])
    assert f"{rel['independent_units']:.0f} independent units" in next(
        c.detail for c in r.checks if c.name.startswith("R > 0.98"))


def test_missing_junit_keeps_the_canary_from_go(client, truth) -> None:
    r = run(client, truth, "canary", "v1.9.1")
    assert r.verdict.decision == "INCONCLUSIVE"
    assert status(r, "Regression tests") is Status.INCONCLUSIVE


def test_quiet_night_is_insufficient_data(client, truth) -> None:
    r = run(client, truth, "quiet_night", "v1.8.3", "v1.9.1.xml")
    assert status(r, "R > 0.98") is Status.INCONCLUSIVE
    assert "insufficient data" in next(c.detail for c in r.checks if c.name.startswith("R > 0.98"))
    assert r.verdict.decision != "GO"


def test_cache_gap_is_no_go(client, truth) -> None:
    r = run(client, truth, "cache_gap", "v1.8.3", "v1.9.1.xml")
    assert status(r, "Cache invalidation") is Status.FAIL
    assert r.verdict.decision == "NO-GO"
    gaps = r.sections["cache"].gaps
    assert set(gaps["clinic"]) == {"orthopedics"}


def test_report_tables_show_missing_times_as_a_dash_not_nat() -> None:
    from reliability.report import tables

    t = pd.Timestamp("2025-10-24T10:12:30Z")
    for col in (pd.Series([pd.NaT, pd.NaT]), pd.Series([pd.NaT, pd.NaT], dtype=object),
                pd.Series([None, t], dtype=object), pd.Series([pd.NaT, t])):
        shown = list(tables.frame(pd.DataFrame({"first_firing": col})).data["first firing"])
        assert shown[0] == "—" and shown[1] in ("—", "2025-10-24 10:12:30"), (col.dtype, shown)


def test_a_dependency_without_a_breaker_is_no_go_with_its_name(client, truth) -> None:
    w = truth["windows"]["canary"]
    params = proof.ProofParams(start=ts(w["start"]), end=ts(w["end"]), candidate="v1.9.1", stable="v1.8.3",
                               junit=(str(paths.DATA / "junit" / "v1.9.1.xml"),),
                               dependencies=("db", "auth", "realtime", "storage", "payments"))
    r = proof.run(params, client)
    check = next(c for c in r.checks if c.name == "A breaker on every dependency")
    assert check.status is Status.FAIL and check.required
    assert "no circuit breaker for payments" in check.detail
    assert r.verdict.decision == "NO-GO"
    # With the directive's four, the same window is covered, each breaker having seen calls.
    ok = next(c for c in run(client, truth, "canary", "v1.9.1", "v1.9.1.xml").checks
              if c.name == "A breaker on every dependency")
    assert ok.status is Status.PASS and "db " in ok.detail and "storage " in ok.detail


@pytest.mark.prometheus
def test_sections_at_once_give_the_same_proof_as_one_by_one(client, truth) -> None:
    """Concurrency changes nothing a reader sees: checks, figures and the query table, in order."""
    from reliability.cli.gate import scenario_parameters
    from reliability.source.prom import PrometheusClient

    params = proof.params_from(scenario_parameters("bad-deploy"))
    one = proof.run(params, PrometheusClient(client.url), workers=1, progress=lambda _m: None)
    many_client = PrometheusClient(client.url)
    many = proof.run(params, many_client, workers=proof.WORKERS, progress=lambda _m: None)
    assert [(c.name, c.status, c.detail) for c in one.checks] == [(c.name, c.status, c.detail) for c in many.checks]
    keys = ["kind", "query", "time", "start", "end", "step", "series"]
    pd.testing.assert_frame_equal(one.queries[keys], many.queries[keys])
    # every branch's requests are counted in the client the proof was given
    assert many_client.http_requests >= many.queries["http_requests"].sum() > 0


def test_the_cli_reads_the_notebooks_defaults_as_papermill_does() -> None:
    """The CLI gathers with the notebook's own defaults, read without importing papermill."""
    import ast

    import papermill as pm

    from reliability.report.bundle import _notebook_defaults

    notebook = paths.PROOF_NOTEBOOK
    expected = {k: ast.literal_eval(v["default"]) for k, v in pm.inspect_notebook(str(notebook)).items()}
    assert _notebook_defaults(notebook) == expected and "deadline_s" in expected


@pytest.mark.prometheus
def test_the_server_status_is_read_once_per_proof(prometheus_url: str, truth: dict) -> None:
    """Six sections asked status/config each (six requests); the status does not change in a run."""
    import collections
    from urllib.parse import urlsplit

    from reliability.source.prom import PrometheusClient

    client = PrometheusClient(prometheus_url)
    paths_asked: list[str] = []
    client._session.hooks["response"].append(lambda r, *a, **k: paths_asked.append(urlsplit(r.url).path))
    w = truth["windows"]["canary"]
    proof.run(proof.ProofParams(start=ts(w["start"]), end=ts(w["end"]), candidate="v1.9.1", stable="v1.8.3"), client)
    asked = collections.Counter(paths_asked)
    assert asked["/api/v1/status/config"] == 1 and asked["/api/v1/status/buildinfo"] == 1, asked
