"""Page 1 of the report: the decision, what to do, the figures it rests on, and where they came from.

An approver reads this page and signs (or does not). Everything else in the report is there so
that an auditor can check it. The page is built as plain data (:class:`Decision`) from a proof,
then drawn as HTML by :func:`to_html`.
"""
from __future__ import annotations

import html
import os
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reliability.gate.proof import Proof
from reliability.gate.verdict import Status
from reliability.times import format_duration

#: CI variables that name the commit being built, in the order they are looked for.
BUILD_VARIABLES = ("RELIABILITY_BUILD", "GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION", "BUILDKITE_COMMIT",
                   "CIRCLE_SHA1", "BITBUCKET_COMMIT", "GIT_COMMIT")
COLORS = {"GO": "#1a7f37", "NO-GO": "#cf222e", "INCONCLUSIVE": "#9a6700"}


@dataclass(frozen=True)
class Decision:
    """What page 1 says: the verdict, the action, the key figures, the problems, the provenance."""

    verdict: str
    action: str
    commands: tuple[str, ...]
    figures: tuple[tuple[str, str], ...]
    problems: tuple[tuple[str, str, str], ...]  # (check, status, detail): failing or unproven, once each
    notes: tuple[tuple[str, str], ...]          # (check, detail): warnings that do not decide
    banner: str | None
    provenance: tuple[tuple[str, str], ...] = field(default=())


def build_id(given: str = "") -> tuple[str, str]:
    """The candidate's build or commit, and where it came from (a flag, or the CI's variables)."""
    if given:
        return given, "given"
    for var in BUILD_VARIABLES:
        if os.environ.get(var):
            return os.environ[var], var
    return "", ""


def tool_commit() -> str:
    """This tool's commit when it runs from a git checkout; a wheel does not carry one."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():  # a wheel, even one installed in a venv inside some repository
        return ""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def host(url: str) -> str:
    """The server's scheme, host and port: never a user, password or token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path.rstrip('/')}"


def decide_page(proof: Proof, *, build: str = "", generated_at: datetime | None = None) -> Decision:
    """The decision page's content for ``proof``."""
    from reliability import __version__

    verdict = proof.verdict
    assert verdict is not None
    checks = verdict.checks
    problems = tuple((c.name, str(c.status), c.detail) for c in checks
                     if c.required and c.status in (Status.FAIL, Status.INCONCLUSIVE))
    notes = tuple((c.name, c.detail) for c in checks if not c.required and c.status is Status.WARN)
    action, commands = _action(proof)
    served = bool((proof.sections.get("prometheus") or {}).get("served_history"))
    banner = ("DEMO DATA: recorded history served by the embedded Prometheus (the bundled generated history "
              "when run by `reliability demo`), not a production server. Not evidence for a real deploy."
              if served else None)
    ident, source = build_id(build)
    commit = tool_commit()
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S UTC")
    provenance = (
        ("Generated", when),
        ("Tool", f"love-reliability {__version__}" + (f", commit {commit}" if commit else ", installed package")),
        ("Candidate build", f"{ident} ({'--build' if source == 'given' else source})" if ident
         else "not given (pass --build, or run in CI)"),
        ("Prometheus", host(proof.prometheus_url) + (" (embedded, recorded history)" if served else "")),
    )
    return Decision(verdict.decision, action, commands, _figures(proof), problems, notes, banner, provenance)


def _action(proof: Proof) -> tuple[str, tuple[str, ...]]:
    p, decision = proof.params, proof.verdict.decision if proof.verdict else "INCONCLUSIVE"
    if decision == "GO":
        return f"{p.candidate} may be deployed: every required check passed.", ()
    if decision == "NO-GO":
        if not p.stable:
            return (f"Do not deploy {p.candidate}. Roll back to the last version that worked: no stable version is "
                    "known (.last-stable-version is missing); find it in the deploy history first.", ())
        return (f"Do not deploy {p.candidate}. Roll back to {p.stable} with the runbook, and do not fix in production:",
                (f"git checkout {p.stable}", "npm run deploy",
                 f"# then confirm the 5xx ratio falls below {1 - p.threshold:.0%} on the dashboard "
                 "(this tool never deploys or rolls back by itself)"))
    missing = [c.name for c in proof.verdict.checks if c.required and c.status is Status.INCONCLUSIVE]
    more = _more_evidence(proof)
    return (f"Do not deploy {p.candidate} yet: the evidence is incomplete ({'; '.join(missing) or 'see below'})."
            + (f" {more}" if more else ""), ())


def _more_evidence(proof: Proof) -> str:
    """How much more evidence R needs, in requests and hours at the window's rate."""
    rel = proof.sections.get("reliability")
    b = getattr(rel, "bound", None)
    if b is None or b.sufficient:
        return ""
    if b.shortfall and "bursts" in b.shortfall:
        return f"R: {b.shortfall}."
    if b.min_requests:
        seconds = (proof.params.end - proof.params.start).total_seconds()
        more = b.min_requests - b.requests
        rate = b.requests / seconds if seconds else 0
        wait = f", about {format_duration(max(60.0, more / rate))} more at this window's traffic" if rate else ""
        return f"R needs {b.min_requests:,} requests, {more:,.0f} more than the window has{wait}."
    return ""


def _figures(proof: Proof) -> tuple[tuple[str, str], ...]:
    p = proof.params
    window = (f"{p.start:%Y-%m-%d %H:%M} to {p.end:%Y-%m-%d %H:%M} UTC "
              f"({format_duration((p.end - p.start).total_seconds())})")
    scope = proof.sections.get("scope")
    rows = [("Candidate", f"{p.candidate} (stable: {p.stable or 'none known'})"), ("Window", window),
            ("Scope", scope.text if scope is not None else (p.selector or "all series"))]
    b = getattr(proof.sections.get("reliability"), "bound", None)
    if b is not None:
        rows += [("R (share of requests without a 5xx)", f"{b.r:.3%}"),
                 (f"R, {p.confidence:.0%} lower bound", f"{b.lower_adjusted:.3%} (must exceed {p.threshold:.0%})"),
                 ("Requests", f"{b.requests:,.0f}, of which {b.errors:,.0f} ended in a 5xx"),
                 ("Independent units", f"{b.units:,.0f} (how many separate pieces of evidence the 5xx amount to)"
                  if b.units is not None else "not measured")]
    else:
        rows.append(("R", f"not computed: {proof.errors.get('reliability', 'no data')}"))
    return tuple(rows)


def to_html(d: Decision) -> str:
    """The decision page as HTML (the notebook displays it; the PDF prints it as page 1)."""
    e = html.escape
    color = COLORS.get(d.verdict, COLORS["INCONCLUSIVE"])
    banner = (f'<div style="background:#fff3cd;border:2px solid #9a6700;padding:6px 10px;margin:0 0 8px 0;'
              f'font-weight:bold">{e(d.banner)}</div>' if d.banner else "")
    commands = ("<pre style=\"margin:4px 0 0 0;font-size:9pt\">" + e("\n".join(d.commands)) + "</pre>"
                if d.commands else "")
    cell = 'style="text-align:left;padding:1pt 10pt 1pt 0;font-size:9pt"'
    figures = "".join(f"<tr><th {cell}>{e(k)}</th><td {cell}>{e(v)}</td></tr>" for k, v in d.figures)
    if d.problems:
        items = "".join(f"<li><b>{e(n)}</b> — {e(s)}: {e(t[:1].upper() + t[1:])}</li>" for n, s, t in d.problems)
        problems = f"<h3>Checks that failed or could not be proven</h3><ul>{items}</ul>"
    else:
        problems = "<p>Every required check passed; each is shown in its section below.</p>"
    notes = ("<h3>Warnings (they do not decide)</h3><ul>" +
             "".join(f"<li><b>{e(n)}</b>: {e(t)}</li>" for n, t in d.notes) + "</ul>") if d.notes else ""
    prov = "".join(f"<tr><th {cell}>{e(k)}</th><td {cell}>{e(v)}</td></tr>" for k, v in d.provenance)
    return (f'{banner}<div style="border:3px solid {color};border-radius:6px;padding:8px 14px;margin:6px 0">'
            f'<div style="font-size:22pt;font-weight:bold;color:{color}">{e(d.verdict)}</div>'
            f'<div style="font-size:11pt;margin-top:2px">{e(d.action)}</div>{commands}</div>'
            f'<table style="font-size:9pt;margin:6px 0">{figures}</table>{problems}{notes}'
            f'<h3>Provenance</h3><table style="font-size:8.5pt">{prov}</table>')


def page(proof: Proof, *, build: str = "", generated_at: datetime | None = None) -> Any:
    """The decision page for a notebook: ``display(page(result))``."""
    from IPython.display import HTML

    return HTML(to_html(decide_page(proof, build=build, generated_at=generated_at)))
