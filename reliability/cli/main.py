"""The ``reliability`` command: a few subcommands, each one library call.

Exit codes: 0 GO, 1 NO-GO, 3 INCONCLUSIVE, 2 usage errors (wrong options, missing files,
missing programs; found before any work), 4 the tool itself failed (a bug or a broken
environment; never a verdict). ``demo`` and ``init`` exit 0 once their files are written.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reliability import paths
from reliability.cli.options import EXITS, missing_evidence, proof_options, subcommand
from reliability.errors import ConfigurationError, MissingBinaryError, ReliabilityError
from reliability.gate.verdict import EXIT_CODES, EXIT_INTERNAL, EXIT_USAGE

SCENARIOS = {
    # name: (ground-truth window, candidate, stable, JUnit file)
    "bad-deploy": ("bad_deploy", "v1.9.0", "v1.8.3", "v1.9.0.xml"),
    "healthy-canary": ("canary", "v1.9.1", "v1.8.3", "v1.9.1.xml"),
}


_STARTED = time.monotonic()


def _say(msg: str) -> None:
    """One progress line on stderr, with the time since the command started."""
    print(f"  [{time.monotonic() - _STARTED:6.1f} s] {msg}", file=sys.stderr, flush=True)


def _start(params: dict[str, Any]) -> None:
    from reliability.report.decision import host

    _say(f"start: proof of {params['candidate']} over {params['start']} .. {params['end']}"
         + (f" on {host(os.environ['PROMETHEUS_URL'])}" if os.environ.get("PROMETHEUS_URL") else ""))


def _print_bundle(bundle: Any) -> None:
    ev = bundle.evidence
    window = f"{ev['window']['start']} .. {ev['window']['end']}"
    print(f"Verdict: {ev['verdict']}  (candidate {ev['candidate']}, window {window})")
    scope = ev.get("scope") or {}
    jobs = ", ".join(scope.get("jobs") or []) or "none found"
    label = "PARTIAL SCOPE" if scope.get("partial") else "Scope"
    print(f"{label}: {scope.get('selector') or 'all series, no selector'} (jobs: {jobs})")
    for reason in ev["reasons"]:
        print(f"  - {reason}")
    unproven = [c for c in ev["checks"] if c["required"] and c["status"] not in ("PASS", "FAIL")]
    if ev["verdict"] == "NO-GO" and unproven:  # a failure decides, but what is missing still counts
        print("Also not proven:")
        for c in unproven:
            print(f"  - {c['name']}: {c['detail'].splitlines()[0]}")
    r = ev.get("reliability", {})
    if r.get("r") is not None:
        print(f"R = {r['r']:.5f} over {r['requests']:,.0f} requests, {r['errors_5xx']:,.0f} 5xx; "
              f"{r['confidence']:.0%} lower bound {r['r_lower_bound']:.5f}")
    print("Files:")
    for f in bundle.files:
        print(f"  {f}")


def scenario_parameters(name: str) -> dict[str, Any]:
    """Papermill parameters of a bundled scenario, from the generator's ground truth."""
    window, candidate, stable, junit = SCENARIOS[name]
    truth = json.loads(paths.GROUND_TRUTH.read_text())
    w = truth["windows"][window]
    return {"start": w["start"], "end": w["end"], "candidate": candidate, "stable": stable,
            "junit": [str(paths.JUNIT / junit)], "rules": str(paths.ALERTS_YML),
            "dashboard": str(paths.DASHBOARD_JSON)}


def cmd_demo(args: argparse.Namespace) -> int:
    from reliability.report.bundle import check_out_dir, produce
    from reliability.source.embedded import EmbeddedPrometheus

    root = paths.repo(args.repo)
    parent = Path(args.out).absolute() if args.out else root / "reports"
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    for name in names:
        check_out_dir(parent / name, replace=True)  # the demo's own folders are rewritten each run
    _say("starting the embedded Prometheus on the bundled history")
    with EmbeddedPrometheus() as prom:
        os.environ["PROMETHEUS_URL"] = prom.url
        for name in names:
            print(f"\n== scenario {name} ==", flush=True)
            _start(scenario_parameters(name))
            bundle = produce({**scenario_parameters(name), "lang": args.lang}, parent / name, progress=_say,
                             cwd=root)
            _print_bundle(bundle)
    return 0


def proof_parameters(args: argparse.Namespace) -> tuple[dict[str, Any], Path, Path]:
    """Every argument checked and resolved before any work: (parameters, out, stable file)."""
    from reliability import config
    from reliability.report.bundle import check_out_dir
    from reliability.times import parse_time

    root = paths.repo(args.repo)
    settings = config.load(root)
    url = args.prometheus_url or os.environ.get("PROMETHEUS_URL")
    if not url:
        raise ConfigurationError("no Prometheus: pass --prometheus-url or set PROMETHEUS_URL")
    start = parse_time(args.start, name="--start")
    end = parse_time(args.end, name="--end")
    if end <= start:
        raise ConfigurationError(f"--end {args.end} is not after --start {args.start}")
    selector = args.selector if args.selector is not None else settings.scope
    confidence = args.confidence if args.confidence is not None else settings.confidence
    from reliability.gate.params import ProofParams
    from reliability.source.prom import PrometheusClient

    # The URL (scheme, host, no credentials in it) and an https server's trust are checked before any work.
    PrometheusClient(url).check_tls()
    ProofParams(start=start, end=end, candidate=args.candidate, selector=selector, confidence=confidence,
                version_label=settings.version_label, partial_scope=args.partial_scope,
                dependencies=tuple(args.dependency or settings.dependencies))
    for j in args.junit:
        if not Path(j).is_file():
            raise ConfigurationError(f"--junit {j}: no such file")
    junit = [str(Path(j).resolve()) for j in args.junit] if args.junit else [
        str(Path(f).resolve()) for pattern in settings.junit for f in sorted(glob.glob(str(root / pattern)))]
    files = {}
    for key, given in (("rules", args.rules or settings.rules), ("dashboard", args.dashboard or settings.dashboard)):
        found = paths.find(given, root=root)
        if not found.is_file():
            raise ConfigurationError(f"--{key} {given}: no such file (looked in {root} and the bundled files)")
        files[key] = str(found)
    from reliability.times import parse_duration

    deadline = parse_duration(args.deadline, name="--deadline")
    if deadline <= 0 or not (0 < args.max_answer_mb < 1e6):
        raise ConfigurationError("--deadline must be positive and --max-answer-mb between 0 and 1,000,000")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = check_out_dir(Path(args.out).absolute() if args.out else root / "reports" / f"{args.candidate}-{stamp}",
                        replace=args.replace)
    stable_file = Path(args.stable_file).resolve() if args.stable_file else root / paths.LAST_STABLE_NAME
    stable = args.stable or (stable_file.read_text().strip() if stable_file.exists() else None)
    os.environ["PROMETHEUS_URL"] = url
    params = {"start": start.isoformat(), "end": end.isoformat(), "candidate": args.candidate,
              "stable": stable, "selector": selector, "confidence": confidence,
              "version_label": settings.version_label, "junit": junit, "partial_scope": args.partial_scope,
              "dependencies": list(args.dependency or settings.dependencies),
              "deadline_s": deadline, "max_answer_mb": args.max_answer_mb, **files,
              "lang": args.lang, **({"build": args.build} if args.build else {})}
    return params, out, stable_file


def cmd_proof(args: argparse.Namespace) -> int:
    from reliability.report.bundle import produce

    params, out, stable_file = proof_parameters(args)
    _start(params)
    bundle = produce(params, out, progress=_say, cwd=paths.repo(args.repo))
    _print_bundle(bundle)
    _promote_on_go(args, bundle.verdict, stable_file)
    return EXIT_CODES[bundle.verdict]


def _promote_on_go(args: argparse.Namespace, verdict: str, stable_file: Path) -> None:
    if args.promote:
        if verdict == "GO":
            promote(args.candidate, stable_file)
            print(f"Promoted: {stable_file} now names {args.candidate}")
        else:
            print(f"Not promoted: the verdict is {verdict}, {stable_file} is unchanged")


def cmd_watch(args: argparse.Namespace) -> int:
    from reliability.gate.look_checks import LookChecks
    from reliability.gate.proof import params_from
    from reliability.gate.watch import LookLog, looks
    from reliability.report.bundle import produce
    from reliability.source import from_env
    from reliability.times import parse_duration, parse_time

    deadline = parse_time(args.deadline, name="--deadline")
    interval = parse_duration(args.interval, name="--interval")
    min_watch = parse_duration(args.min_watch, name="--min-watch")
    args.end, args.deadline = args.deadline, args.proof_deadline  # the final proof's window and time bound
    if not args.out:  # the same command finds the same folder and state again after a restart
        start = parse_time(args.start, name="--start")
        args.out = str(paths.repo(args.repo) / "reports" / f"{args.candidate}-watch-{start:%Y%m%dT%H%M%SZ}")
    params, out, stable_file = proof_parameters(args)
    p = params_from(params, root=paths.repo(args.repo))  # the proof's own parameters, its window ending at the deadline
    client = from_env().scoped(p.service_scope())
    _say(f"watch: {args.candidate} from {params['start']} until {deadline.isoformat()}, a look every "
         f"{interval:g} s, no GO before {min_watch:g} s")
    state = Path(args.state).absolute() if args.state else out.with_name(out.name + ".watch.sqlite")
    log = LookLog(state, {"candidate": p.candidate, "start": p.start, "selector": p.selector, "interval": interval,
                          "confidence": p.confidence, "min_watch": min_watch})
    resumed = len(log.recorded())
    if resumed:
        _say(f"watch: resuming from {state} ({resumed} looks recorded)")
    last = None
    try:
        for last in looks(client, p, deadline, interval=interval, alpha=1 - p.confidence, min_watch=min_watch, log=log,
                          checks=LookChecks(p)):
            print(last.line(), flush=True)
    finally:
        log.close()
    watched = (last.decision if last is not None else None) or "INCONCLUSIVE"
    at = last.at if last is not None else deadline
    after = (at - p.start).total_seconds() / 60
    print(f"Watch: {watched} at {at:%Y-%m-%d %H:%M} UTC ({after:.0f} min after the start)")
    if watched == "INCONCLUSIVE" and last is not None:
        print(f"  {missing_evidence(last, p.start, p.threshold, min_watch)}")
    params["end"] = at.isoformat()
    _start(params)
    bundle = produce(params, out, progress=_say, cwd=paths.repo(args.repo))
    _print_bundle(bundle)
    # Both must agree to deploy: the watch proves R anytime-validly, the proof every other required check.
    order = {"NO-GO": 0, "INCONCLUSIVE": 1, "GO": 2}
    final = min(watched, bundle.verdict, key=order.__getitem__)
    print(f"Decision: {final} (watch {watched}, proof {bundle.verdict})")
    _promote_on_go(args, final, stable_file)
    return EXIT_CODES[final]


def promote(version: str, target: Path) -> None:
    """Write the candidate into the stable-version file atomically (rename over the old file)."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(version + "\n")
    os.replace(tmp, target)


def cmd_render(args: argparse.Namespace) -> int:
    from reliability.report.bundle import rerender

    src = Path(args.dir).resolve()
    bundle = rerender(src, Path(args.out).resolve() if args.out else src / "rerendered", progress=_say)
    _print_bundle(bundle)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from reliability.report import attest

    problems, what = attest.verify(Path(args.dir).resolve(), public_key=args.key)
    for problem in problems:
        print(f"  {problem}")
    if problems:
        print(f"NOT VERIFIED: {args.dir} does not match its {attest.STATEMENT} ({len(problems)} problem(s))")
        return 1
    print(f"Verified: {args.dir} matches its {attest.STATEMENT} ({what})")
    return 0


def cmd_prometheus(args: argparse.Namespace) -> int:
    from reliability.source.embedded import serve

    return serve(Path(args.data) if args.data else None, port=args.port)


def cmd_serve(args: argparse.Namespace) -> int:
    from reliability.cli import serve

    if not (args.prometheus_url or os.environ.get("PROMETHEUS_URL")):
        raise ConfigurationError("no Prometheus: pass --prometheus-url or set PROMETHEUS_URL")
    if args.prometheus_url:
        os.environ["PROMETHEUS_URL"] = args.prometheus_url
    from reliability.source.prom import PrometheusClient

    PrometheusClient(os.environ["PROMETHEUS_URL"]).check_tls()
    if args.selector:
        from reliability.source.promql import parse_selector

        parse_selector(args.selector)  # a bad default selector is a usage error now, not on every call
    return serve.serve(host=args.host, port=args.port, selector=args.selector or "")


def cmd_init(args: argparse.Namespace) -> int:
    from reliability.cli import scaffold

    written = scaffold.init(Path(args.dir).resolve(), job=args.job, selector=args.selector, force=args.force,
                            **({"dependencies": tuple(args.dependency)} if args.dependency else {}))
    for f in written:
        print(f"  wrote {f}")
    print(f"Scaffolded {len(written)} files for job {args.job!r}. Next: promtool test rules "
          f"{Path(args.dir) / 'monitoring' / 'tests'}/*.yml, then commit them.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reliability", description="Prove from Prometheus history that a release "
                                     "keeps R > 0.98 (at most 2 % of requests end in a 5xx), and write the evidence.",
                                     epilog=EXITS + "\n\nRun `reliability COMMAND --help` for each command's "
                                     "options and an example.", formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    repo = argparse.ArgumentParser(add_help=False)
    repo.add_argument("--lang", choices=["en", "ar"], default="en",
                      help="the language of the decision page and the headings: en, or ar (the directive's "
                           "Arabic, right to left) (default: en)")
    repo.add_argument("--repo", help="the repository whose settings, monitoring/ files, .last-stable-version "
                                     "and reports/ to use (default: the current directory)")

    p = subcommand(sub, "demo", parents=[repo], summary="run the proof on the bundled history (embedded Prometheus)")
    p.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all", help="which scenario (default: all)")
    p.add_argument("--out", help="parent directory of the reports (default: reports/)")
    p.set_defaults(func=cmd_demo)

    p = subcommand(sub, "proof", parents=[repo], summary="the deploy gate: exit 0 GO, 1 NO-GO, 3 INCONCLUSIVE")
    p.add_argument("--start", required=True, help="ISO 8601 (2025-10-26T09:00:00Z) or now-24h")
    p.add_argument("--end", required=True, help="ISO 8601 or now")
    p.add_argument("--deadline", default="15m", help="the whole proof's time bound; past it, the rest is "
                                                     "INCONCLUSIVE (default 15m)")
    proof_options(p)
    p.set_defaults(func=cmd_proof)

    p = subcommand(sub, "watch", parents=[repo], summary="watch a canary until it is proven, looking every "
                    "interval: exit 0 GO, 1 NO-GO, 3 INCONCLUSIVE at the deadline")
    p.add_argument("--start", required=True, help="when the canary started taking traffic (ISO 8601 or now-1h)")
    p.add_argument("--deadline", required=True, help="the last look; INCONCLUSIVE if nothing decided by then "
                                                     "(ISO 8601 or now+2h). Both in the past: the looks are replayed")
    p.add_argument("--interval", default="1m", help="time between looks, whole minutes (default 1m)")
    p.add_argument("--min-watch", default="60m", help="no GO before this much watching (default 60m)")
    p.add_argument("--proof-deadline", default="15m", help="the final proof's time bound (default 15m)")
    p.add_argument("--state", help="the looks so far, kept across restarts (default: <out>.watch.sqlite); run "
                                   "the same command again to resume")
    proof_options(p)
    p.set_defaults(func=cmd_watch)

    p = subcommand(sub, "verify", summary="check a bundle's files (and signature) against its evidence.intoto.json: "
                                      "exit 0 verified, 1 not")
    p.add_argument("dir", help="a directory written by `reliability proof` or `demo`")
    p.add_argument("--key", help="the signer's PEM public key, for a signed Statement")
    p.set_defaults(func=cmd_verify)

    p = subcommand(sub, "render", summary="re-create a report's HTML and PDF from its query snapshot, offline")
    p.add_argument("dir", help="a directory written by `reliability proof` or `demo`")
    p.add_argument("--out", help="default: DIR/rerendered/")
    p.set_defaults(func=cmd_render)

    p = subcommand(sub, "prometheus", summary="serve the bundled history on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, help="the port on 127.0.0.1 (default: a free one, printed)")
    p.add_argument("--data", help="an OpenMetrics history file (default: the bundled one)")
    p.set_defaults(func=cmd_prometheus)

    p = subcommand(sub, "serve", summary="answer Argo Rollouts' web metric provider and Flagger's webhooks with "
                    "the watch's verdict, over HTTP")
    p.add_argument("--prometheus-url", help="default: $PROMETHEUS_URL")
    p.add_argument("--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1; 0.0.0.0 for a pod)")
    p.add_argument("--port", type=int, default=8080, help="the port (default 8080)")
    p.add_argument("--selector", help='the service when a call names none, e.g. job="love-backend"')
    p.set_defaults(func=cmd_serve)

    p = subcommand(sub, "init", summary="scaffold a backend repository: scoped rules, dashboard, CI, settings")
    p.add_argument("dir", nargs="?", default=".", help="the repository (default: the current directory)")
    p.add_argument("--job", required=True, help="the Prometheus job label of the service, e.g. love-backend")
    p.add_argument("--selector", help="more label matchers naming the service (default: job=\"<job>\")")
    p.add_argument("--dependency", action="append", metavar="BREAKER",
                   help="an external service the backend calls, by its breaker label; repeat for each "
                        "(default: db, auth, realtime, storage)")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.set_defaults(func=cmd_init)
    return parser


def main(argv: list[str] | None = None) -> int:
    global _STARTED
    _STARTED = time.monotonic()
    parser = build_parser()
    args = parser.parse_args(argv)
    from reliability.report.bundle import ReportError

    try:
        return int(args.func(args))
    except (ConfigurationError, MissingBinaryError) as exc:
        print(f"reliability: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ReportError as exc:
        print(f"reliability: internal error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except ReliabilityError as exc:
        print(f"reliability: error: {exc}", file=sys.stderr)
        return EXIT_CODES["INCONCLUSIVE"]
    except KeyboardInterrupt:
        print("reliability: interrupted", file=sys.stderr, flush=True)
        # The interrupted kernel client's tasks can report themselves as the interpreter exits;
        # after the one line above there is nothing left worth saying.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        return 130
    except Exception as exc:  # a bug must never look like NO-GO (1)
        if os.environ.get("RELIABILITY_DEBUG"):
            raise
        print(f"reliability: internal error: {type(exc).__name__}: {exc} (a bug or a broken environment, "
              f"not a verdict; rerun with RELIABILITY_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
