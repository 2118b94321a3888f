"""The command line's vocabulary: exit codes, examples, the options ``proof`` and ``watch`` share,
and the plain-words reasons ``watch`` gives. Kept apart so that :mod:`reliability.cli` stays the
commands themselves.
"""
from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

EXITS = """exit codes:
  0  GO (demo, init, render: the files were written; verify: verified)
  1  NO-GO (verify: the bundle does not match its Statement)
  2  a usage error: a wrong option, a missing file or program, found before any work
  3  INCONCLUSIVE: the evidence is missing or not enough
  4  the tool itself failed (a bug or a broken environment), never a verdict
  130 interrupted (Ctrl-C)"""

# The commands that answer no verdict: done, or why not.
TOOL_EXITS = """exit codes:
  0  done
  2  a usage error: a wrong option, a missing file or program, found before any work
  4  the tool itself failed (a bug or a broken environment)
  130 interrupted (Ctrl-C)"""
VERDICTS = frozenset({"demo", "proof", "watch", "verify", "render", "init"})

EXAMPLES = {
    "demo": "example:\n  reliability demo --out /tmp/reports    # writes bad-deploy/ (NO-GO) and healthy-canary/ (GO)",
    "proof": "example:\n  PROMETHEUS_URL=https://prometheus.example:9090 \\\n"
             "      reliability proof --start now-24h --end now \\\n"
             "      --candidate v1.9.1 --selector 'job=\"love-backend\"' --junit build/junit.xml --build $GITHUB_SHA",
    "verify": "example:\n  reliability verify reports/v1.9.1-20251027T090000Z --key signer.pub",
    "render": "example:\n  reliability render reports/v1.9.1-20251027T090000Z --out /tmp/audit",
    "prometheus": "example:\n  reliability prometheus --port 9090    # then open http://127.0.0.1:9090",
    "init": "example:\n  reliability init ../love-backend --job love-backend",
    "serve": "example:\n  RELIABILITY_SERVE_TOKEN=s3cret reliability serve --port 8080 \\\n"
             "      --selector 'job=\"love-backend\"'",
    "sli": "example:\n  reliability sli --prometheus-url http://127.0.0.1:9090    # which presets it has data for",
    "rules": "example:\n  reliability rules --sli otel --selector 'job=\"love-backend\"' --out monitoring",
    "watch": "example:\n  reliability watch --candidate v1.9.1 \\\n"
             "      --start 2025-10-26T09:00:00Z --deadline 2025-10-26T13:00:00Z",
}


def subcommand(sub: Any, name: str, summary: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand whose --help has its description, defaults, exit codes and an example."""
    exits = EXITS if name in VERDICTS else TOOL_EXITS
    return sub.add_parser(name, help=summary, description=summary, epilog=f"{exits}\n\n{EXAMPLES[name]}",
                          formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def proof_options(p: argparse.ArgumentParser) -> None:
    """The options ``proof`` and ``watch`` share."""
    p.add_argument("--prometheus-url", help="default: $PROMETHEUS_URL")
    p.add_argument("--candidate", required=True, help="the version label value to prove")
    p.add_argument("--stable", help="default: the content of .last-stable-version")
    p.add_argument("--junit", nargs="*", default=[], help="JUnit XML files of the candidate's tests "
                                                         "(default: the settings' junit globs)")
    p.add_argument("--selector", help='the service to judge, e.g. job="love-backend" (default: the settings\' job)')
    p.add_argument("--partial-scope", action="store_true",
                   help="allow a selector on status, route, method, instance, version... (a slice of the "
                        "traffic); the verdict is then at best INCONCLUSIVE")
    p.add_argument("--dependency", action="append", metavar="BREAKER",
                   help="an external service the backend calls, by its breaker label; repeat for each (default: "
                        "the settings' dependencies, else db, auth, realtime, storage)")
    sli_option(p)
    breakers_option(p)
    p.add_argument("--rules", help="the alert rule file Prometheus runs (default: monitoring/alerts.yml)")
    p.add_argument("--dashboard", help="the Grafana dashboard (default: monitoring/grafana-dashboard.json)")
    p.add_argument("--confidence", type=float, help="one-sided confidence of the bound on R (default 0.95)")
    p.add_argument("--out", help="default: reports/<candidate>-<UTC time>/ (watch: "
                                 "reports/<candidate>-watch-<start>/)")
    p.add_argument("--max-answer-mb", type=float, default=64.0, help="the largest answer accepted from the "
                                                                     "server, in MB (default 64)")
    p.add_argument("--build", help="the candidate's build or commit, for the report's provenance (default: "
                                   "$GITHUB_SHA, $CI_COMMIT_SHA, $BUILD_SOURCEVERSION ... when set)")
    p.add_argument("--replace", action="store_true", help="replace a finished report already in --out")
    screenshots_option(p)
    p.add_argument("--promote", action="store_true",
                   help="on GO only, write the candidate into the stable-version file")
    p.add_argument("--stable-file", help="the rollback target's file (default: .last-stable-version)")


def screenshots_option(p: argparse.ArgumentParser) -> None:
    """``--no-screenshots``: no pictures of the Prometheus web UI in the report (LOVE_SCREENSHOTS=0 too)."""
    p.add_argument("--no-screenshots", action="store_true",
                   help="do not put screenshots of the queried Prometheus' web UI in the report (they are taken "
                        "with headless Chromium when it is installed; LOVE_SCREENSHOTS=0 does the same)")


def sli_option(p: argparse.ArgumentParser) -> None:
    """``--sli PRESET``: which metric convention the requests are read from."""
    from reliability.source.sli import PRESETS

    p.add_argument("--sli", choices=list(PRESETS), metavar="PRESET",
                   help=f"the metric convention to read requests from: {', '.join(PRESETS)} (default: the "
                        "settings' [sli], else seed); `reliability sli` lists them")


def breakers_option(p: argparse.ArgumentParser) -> None:
    """``--breakers PRESET``: which breaker library's metrics the breakers are read from."""
    from reliability.source.breaker_metrics import PRESETS

    p.add_argument("--breakers", choices=list(PRESETS), metavar="PRESET",
                   help=f"the breaker library whose metrics to read: {', '.join(PRESETS)} (default: the settings' "
                        "[breakers], else seed)")


def missing_evidence(last: Any, start: datetime, threshold: float, min_watch: float) -> str:
    """What an undecided watch lacks: the incident guard's exposure, requests, and the time they take."""
    from reliability.analysis.stats.sequential import requests_needed
    from reliability.gate.watch import explain
    from reliability.times import format_duration

    lk = last.look
    if lk.requests == 0:
        return "no requests from the candidate yet: is it taking traffic, and does --candidate match its version label?"
    watched = (last.at - start).total_seconds()
    wait = (f"; and no GO before the minimum watch, {format_duration(min_watch - watched)} more"
            if watched < min_watch else "")
    if lk.r <= threshold:
        return (f"R = {lk.r:.5f} is not above {threshold}: at this 5xx ratio no amount of traffic proves it; "
                "it is not failing clearly enough for NO-GO either")
    if not lk.room > 0:  # GO waits for incident-free exposure (or the 5xx outside incidents are at the bar)
        return explain(lk, None, start) + wait
    need = requests_needed(lk, threshold=threshold)
    if need is None:
        return explain(lk, None, start) + wait
    if need <= lk.requests:
        return f"the evidence is there{wait}: set a later --deadline"
    rate = lk.requests / max(watched, 1.0)
    return (f"not proven yet: about {need:,.0f} requests in all are needed ({need - lk.requests:,.0f} more), "
            f"about {format_duration(max(60, round((need - lk.requests) / rate)))} more at this traffic, if the 5xx "
            f"ratio outside incidents, its clustering and the incidents' bound stay as observed{wait}")
