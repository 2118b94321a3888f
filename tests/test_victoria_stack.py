"""The full VictoriaMetrics stack (VictoriaMetrics, vmalert, vmagent, Alertmanager) gives Prometheus' verdicts.

The stack holds the whole bundled history; vmalert runs ``monitoring/alerts.yml`` and notifies a real
Alertmanager; the gate reads the rules through VictoriaMetrics' proxy of ``/api/v1/rules`` and the
Alertmanager from vmalert's counters. On both bundled scenarios every check has the same status as on
the session Prometheus, and R agrees within 1e-4 (the engines differ only in how ``increase()``
treats a series born inside the window: ``tests/test_victoriametrics.py``).
"""
from __future__ import annotations

import pytest
from conftest import process_exists

from reliability.cli.gate import scenario_parameters
from reliability.gate import proof
from reliability.source.embedded.stack import EmbeddedVictoriaStack
from reliability.source.prom import PrometheusClient

R_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def stack():
    with EmbeddedVictoriaStack() as s:
        yield s
    assert not any(process_exists(pid) for pid in s.pids)


def _params(name: str) -> proof.ProofParams:
    return proof.params_from(scenario_parameters(name))


@pytest.mark.prometheus
@pytest.mark.parametrize("scenario, verdict", [("healthy-canary", "GO"), ("bad-deploy", "NO-GO")])
def test_the_stack_gives_prometheus_verdict_checks_and_r(stack, client, scenario, verdict) -> None:
    params = _params(scenario)
    on_prom = proof.run(params, PrometheusClient(client.url), progress=lambda _m: None)
    on_vm = proof.run(params, PrometheusClient(stack.url), progress=lambda _m: None)
    assert on_prom.verdict.decision == on_vm.verdict.decision == verdict
    prom_status = {c.name: str(c.status) for c in on_prom.checks}
    vm_status = {c.name: str(c.status) for c in on_vm.checks}
    # The imported history has no recorded series (vmalert evaluates the rule from now on): the raw
    # series are read there, and the report says so; the Prometheus history has them backfilled.
    assert (prom_status.pop("Recorded SLI"), vm_status.pop("Recorded SLI")) == ("PASS", "WARN")
    assert vm_status == prom_status, {k: (prom_status.get(k), vm_status.get(k))
                                      for k in prom_status.keys() | vm_status.keys()
                                      if prom_status.get(k) != vm_status.get(k)}
    r_prom, r_vm = on_prom.sections["reliability"].bound.r, on_vm.sections["reliability"].bound.r
    print(f"{scenario}: R Prometheus {r_prom:.8f}, VictoriaMetrics stack {r_vm:.8f}")
    assert abs(r_prom - r_vm) < R_TOLERANCE


@pytest.mark.prometheus
def test_rules_and_alertmanager_come_from_vmalert(stack) -> None:
    result = proof.run(_params("healthy-canary"), PrometheusClient(stack.url), progress=lambda _m: None)
    checks = {c.name: c for c in result.checks}
    assert checks["Alert rules loaded"].status.name == "PASS", checks["Alert rules loaded"].detail
    am = checks["Alertmanager discovered"]
    assert am.status.name == "PASS" and "vmalert" in am.detail and stack.alertmanager_url in am.detail, am.detail
