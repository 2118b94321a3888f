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
from reliability.report import i18n
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
    lang: str = "en"
    limit: str = "2%"  # the 5xx share the rollback must bring the dashboard under


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


def decide_page(proof: Proof, *, build: str = "", generated_at: datetime | None = None,
                lang: str = "en") -> Decision:
    """The decision page's content for ``proof``, in ``lang`` (see :mod:`reliability.report.i18n`)."""
    from reliability import __version__

    t = i18n.texts(lang)
    verdict = proof.verdict
    assert verdict is not None
    checks = verdict.checks
    problems = tuple((i18n.check_name(c.name, lang), t[str(c.status)] if str(c.status) in t else str(c.status),
                      c.detail) for c in checks if c.required and c.status in (Status.FAIL, Status.INCONCLUSIVE))
    notes = tuple((i18n.check_name(c.name, lang), c.detail) for c in checks
                  if not c.required and c.status is Status.WARN)
    action, commands = _action(proof, t, lang)
    served = bool((proof.sections.get("prometheus") or {}).get("served_history"))
    ident, source = build_id(build)
    commit = tool_commit()
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S UTC")
    provenance = (
        (t["generated"], when),
        (t["tool"], f"love-reliability {__version__}" + (f", commit {commit}" if commit else f", {t['installed']}")),
        (t["build"], f"{ident} ({'--build' if source == 'given' else source})" if ident else t["no_build"]),
        (t["prometheus"], host(proof.prometheus_url) + (t["embedded"] if served else "")),
    )
    return Decision(verdict.decision, action, commands, _figures(proof, t), problems, notes,
                    t["banner"] if served else None, provenance, lang, f"{1 - proof.params.threshold:.0%}")


def _action(proof: Proof, t: dict[str, str], lang: str) -> tuple[str, tuple[str, ...]]:
    p, decision = proof.params, proof.verdict.decision if proof.verdict else "INCONCLUSIVE"
    if decision == "GO":
        return t["go"].format(candidate=p.candidate), ()
    if decision == "NO-GO":
        if not p.stable:
            return t["rollback_unknown"].format(candidate=p.candidate), ()
        return (t["rollback"].format(candidate=p.candidate, stable=p.stable),
                (f"git checkout {p.stable}", "npm run deploy"))
    missing = [i18n.check_name(c.name, lang) for c in proof.verdict.checks
               if c.required and c.status is Status.INCONCLUSIVE]
    more = _more_evidence(proof, t)
    return (t["incomplete"].format(candidate=p.candidate, missing="; ".join(missing) or t["see_below"])
            + (f" {more}" if more else ""), ())


def _more_evidence(proof: Proof, t: dict[str, str]) -> str:
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
        wait = t["more_wait"].format(wait=format_duration(max(60.0, more / rate))) if rate else ""
        return t["more_requests"].format(need=f"{b.min_requests:,}", more=f"{more:,.0f}", wait=wait)
    return ""


def _figures(proof: Proof, t: dict[str, str]) -> tuple[tuple[str, str], ...]:
    p = proof.params
    window = t["window_value"].format(start=f"{p.start:%Y-%m-%d %H:%M}", end=f"{p.end:%Y-%m-%d %H:%M}",
                                      span=format_duration((p.end - p.start).total_seconds()))
    scope = proof.sections.get("scope")
    rows = [(t["candidate"], t["candidate_value"].format(candidate=p.candidate, stable=p.stable or t["none_known"])),
            (t["window"], window), (t["scope"], scope.text if scope is not None else (p.selector or "all series"))]
    b = getattr(proof.sections.get("reliability"), "bound", None)
    if b is not None:
        rows += [(t["r"], f"{b.r:.3%}"),
                 (t["r_lower"].format(confidence=f"{p.confidence:.0%}"),
                  t["r_lower_value"].format(bound=f"{b.lower_adjusted:.3%}", threshold=f"{p.threshold:.0%}")),
                 (t["requests"], t["requests_value"].format(requests=f"{b.requests:,.0f}", errors=f"{b.errors:,.0f}")),
                 (t["units"], t["units_value"].format(units=f"{b.units:,.0f}") if b.units is not None
                  else t["not_measured"])]
    else:
        rows.append(("R", t["r_missing"].format(why=proof.errors.get("reliability", "no data"))))
    return tuple(rows)


def to_html(d: Decision) -> str:
    """The decision page as HTML (the notebook displays it; the PDF prints it as page 1).

    In Arabic the page runs right to left; the commands and each check's generated detail stay
    left to right, so versions, numbers and timestamps read as written.
    """
    e, t = html.escape, i18n.texts(d.lang)
    rtl = d.lang == "ar"
    side = "right" if rtl else "left"

    def ltr(text: str) -> str:
        return f'<span dir="ltr" lang="en">{e(text)}</span>' if rtl else e(text)

    def value(text: str) -> str:  # a value without Arabic (a time, a URL) is laid out left to right
        return ltr(text) if not i18n.has_arabic(text) else e(text)

    color = COLORS.get(d.verdict, COLORS["INCONCLUSIVE"])
    banner = (f'<div style="background:#fff3cd;border:2px solid #9a6700;padding:6px 10px;margin:0 0 8px 0;'
              f'font-weight:bold">{e(d.banner)}</div>' if d.banner else "")
    commands = ('<pre dir="ltr" style="margin:4px 0 0 0;font-size:9pt;text-align:left">' + e("\n".join(d.commands))
                + f'</pre><div style="font-size:9pt">{e(t["confirm"].format(limit=d.limit))}</div>'
                if d.commands else "")
    cell = f'style="text-align:{side};padding:1pt 10pt 1pt 0;font-size:9pt"'
    figures = "".join(f"<tr><th {cell}>{e(k)}</th><td {cell}>{value(v)}</td></tr>" for k, v in d.figures)
    if d.problems:
        items = "".join(f"<li><b>{e(n)}</b> — {e(s)}: {ltr(x[:1].upper() + x[1:])}</li>" for n, s, x in d.problems)
        problems = f"<h3>{e(t['problems'])}</h3><ul>{items}</ul>"
    else:
        problems = f"<p>{e(t['all_passed'])}</p>"
    notes = (f"<h3>{e(t['warnings'])}</h3><ul>" +
             "".join(f"<li><b>{e(n)}</b>: {ltr(x)}</li>" for n, x in d.notes) + "</ul>") if d.notes else ""
    prov = "".join(f"<tr><th {cell}>{e(k)}</th><td {cell}>{value(v)}</td></tr>" for k, v in d.provenance)
    body = (f'{banner}<div style="border:3px solid {color};border-radius:6px;padding:8px 14px;margin:6px 0">'
            f'<div style="font-size:22pt;font-weight:bold;color:{color}">{e(t[d.verdict])}</div>'
            f'<div style="font-size:11pt;margin-top:2px">{e(d.action)}</div>{commands}</div>'
            f'<table style="font-size:9pt;margin:6px 0">{figures}</table>{problems}{notes}'
            f'<h3>{e(t["provenance"])}</h3><table style="font-size:8.5pt">{prov}</table>')
    return f'<div dir="rtl" lang="ar" style="text-align:right">{body}</div>' if rtl else body


def page(proof: Proof, *, build: str = "", generated_at: datetime | None = None, lang: str = "en") -> Any:
    """The decision page for a notebook: ``display(page(result))``."""
    from IPython.display import HTML

    return HTML(to_html(decide_page(proof, build=build, generated_at=generated_at, lang=lang)))
