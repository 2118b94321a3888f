"""The evidence files: evidence.json (the verdict for machines), input hashes and versions.

An approval system reads ``evidence.json``; an auditor re-renders the report from the query
snapshot whose hash it records (``reliability render``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reliability import paths
from reliability.gate.params import ProofParams
from reliability.gate.proof import Proof, rollback_plan
from reliability.source.prom import PrometheusClient
from reliability.times import iso


def evidence(proof: Proof) -> dict[str, Any]:
    """The machine-readable verdict (evidence.json) an approval system can consume."""
    p = proof.params
    assert proof.verdict is not None
    rel: dict[str, Any] = {"version_label": p.sli.version_label, "candidate": p.candidate, "sli": p.sli.as_table(),
                           "metric": p.sli.describe(), "breakers": p.breakers.as_table()}
    section = proof.sections.get("reliability")
    if section is not None:
        b = section.bound
        rel.update(requests=b.requests, errors_5xx=b.errors, r=b.r, r_lower_bound=b.lower_adjusted,
                   r_lower_bound_plain=b.lower, confidence=b.confidence, method=b.method,
                   dispersion=b.phi, min_requests=b.min_requests, threshold=p.threshold,
                   independent_units=b.units, batch_seconds=b.batch, effective_requests=b.effective_requests,
                   dependence=b.dependence, shortfall=b.shortfall or None)
    else:
        rel.update(requests=None, errors_5xx=None, r=None, r_lower_bound=None,
                   confidence=p.confidence, method=p.method, dispersion=None,
                   error=proof.errors.get("reliability"))
    return {
        "verdict": proof.verdict.decision,
        "reasons": list(proof.verdict.reasons),
        "checks": [c.as_dict() for c in proof.verdict.checks],
        "reliability": rel,
        "window": {"start": iso(p.start), "end": iso(p.end)},
        "candidate": p.candidate,
        "stable": p.stable,
        "selector": p.selector,
        "scope": {"selector": p.selector, "jobs": getattr(proof.sections.get("scope"), "jobs", None),
                  "partial": p.partial_scope},
        "prometheus": {"url": proof.prometheus_url,
                       "version": (proof.sections.get("prometheus") or {}).get("version")},
        "queries": len(proof.queries),
        "inputs": inputs(p),
        "versions": versions(proof),
        "rollback": rollback_plan(proof),
    }


_LIBRARIES = ("love-reliability", "pandas", "numpy", "scipy", "prometheus-api-client", "papermill",
              "nbconvert", "weasyprint", "matplotlib")


def sha256(path: str | Path) -> str | None:
    """Hash of an input file, so an auditor can tell the evidence was made from these files."""
    import hashlib

    f = Path(path)
    return hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else None


def inputs(params: ProofParams) -> dict[str, Any]:
    """sha256 of every file the proof read."""
    return {
        "rules": {"path": params.rules, "sha256": sha256(params.rules)},
        "dashboard": {"path": params.dashboard, "sha256": sha256(params.dashboard)},
        "junit": [{"path": j, "sha256": sha256(j)} for j in params.junit],
        "notebook": {"path": str(paths.PROOF_NOTEBOOK), "sha256": sha256(paths.PROOF_NOTEBOOK)},
    }


def versions(proof: Proof) -> dict[str, str | None]:
    """Versions of Prometheus, of this package and of the libraries the numbers depend on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"prometheus": (proof.sections.get("prometheus") or {}).get("version"),
                                  "python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def provenance(proof: Proof) -> pd.DataFrame:
    """Versions and input hashes as one short table for the report (evidence.json has them in full)."""
    found = versions(proof)
    rows = [{"item": k, "value": found.pop(k) or "unknown"} for k in ("prometheus", "love-reliability")]
    rows.append({"item": "libraries", "value": ", ".join(f"{k} {v or '?'}" for k, v in found.items())})
    log = proof.queries
    if len(log):
        kinds = log["kind"].fillna("api").value_counts().sort_index()
        rows.append({"item": "queries", "value": (  # the same on a re-render: no timings here
            f"{len(log):,} ({', '.join(f'{n} {k}' for k, n in kinds.items())}); "
            "every query and its answer: queries.json.gz"
            + (f"; {split} refused whole for their size and asked in pieces (the server's query limits)"
               if (split := int((log["pieces"].fillna(1) != 1).sum())) else ""))})
    for key, entry in inputs(proof.params).items():
        for e in entry if isinstance(entry, list) else [entry]:
            digest = f"sha256 {e['sha256'][:16]}…" if e["sha256"] else "missing"
            rows.append({"item": f"{key} {Path(e['path']).name}", "value": digest})
    return pd.DataFrame(rows)


def write_outputs(proof: Proof, client: PrometheusClient, *, evidence_path: str = "",
                  snapshot_path: str = "", generated_at: Any = None, build: str = "") -> None:
    """Save the query snapshot (unless replaying one) and evidence.json, which records its hash."""
    import json

    from reliability.source.snapshot import SnapshotClient

    snapshot = getattr(client, "path", None) if isinstance(client, SnapshotClient) else None
    replayed = snapshot is not None
    if snapshot_path and snapshot is None:
        snapshot = client.save_snapshot(snapshot_path)
    if evidence_path:
        ev = evidence(proof)
        from reliability.report.decision import build_id

        ident, source = build_id(build)
        ev["generated_at"] = iso(generated_at) if generated_at is not None else None
        ev["build"] = {"id": ident or None, "source": source or None}
        # The bundle's snapshot (written here, or gathered by `reliability proof` while the kernel
        # started) sits beside evidence.json: record its name, not the staging folder it was in.
        beside = snapshot is not None and Path(snapshot).parent.resolve() == Path(evidence_path).parent.resolve()
        where = None if snapshot is None else str(snapshot) if replayed and not beside else Path(snapshot).name
        ev["inputs"]["snapshot"] = {"path": where,
                                    "sha256": sha256(snapshot) if snapshot else None}
        Path(evidence_path).write_text(json.dumps(ev, indent=2, default=str) + "\n")
