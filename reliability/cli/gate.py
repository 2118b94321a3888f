"""The gate's commands: ``proof``, ``watch``, ``demo`` and ``render``, and what they share.

Every argument is checked before any work (:func:`proof_parameters`); progress goes to stderr with
the time since the command started, the verdict and files to stdout.
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
from reliability.cli.options import missing_evidence
from reliability.errors import ConfigurationError
from reliability.gate.verdict import EXIT_CODES

SCENARIOS = {
    # name: (ground-truth window, candidate, stable, JUnit file)
    "bad-deploy": ("bad_deploy", "v1.9.0", "v1.8.3", "v1.9.0.xml"),
    "healthy-canary": ("canary", "v1.9.1", "v1.8.3", "v1.9.1.xml"),
}


_STARTED = time.monotonic()


def restart_clock() -> None:
    """Progress times count from now (the start of a command run in this process)."""
    global _STARTED
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
            bundle = produce({**scenario_parameters(name), "lang": args.lang, **_screenshots(args)}, parent / name,
                             progress=_say, cwd=root)
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

    for note in settings.notes:
        print(f"reliability: warning: {note}", file=sys.stderr)
    sli = settings.sli(args.sli)
    params = ProofParams(start=start, end=end, candidate=args.candidate, selector=selector, confidence=confidence,
                         sli=sli, partial_scope=args.partial_scope,
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
    # The URL (scheme, host, no credentials in it), an https server's trust and the SLI against the
    # server's history are checked before any work.
    sli = settled(PrometheusClient(url, retries=0, timeout=10, max_answer_bytes=int(args.max_answer_mb * 2**20)),
                  sli, params.service_scope())
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = check_out_dir(Path(args.out).absolute() if args.out else root / "reports" / f"{args.candidate}-{stamp}",
                        replace=args.replace)
    stable_file = Path(args.stable_file).resolve() if args.stable_file else root / paths.LAST_STABLE_NAME
    stable = args.stable or (stable_file.read_text().strip() if stable_file.exists() else None)
    os.environ["PROMETHEUS_URL"] = url
    params = {"start": start.isoformat(), "end": end.isoformat(), "candidate": args.candidate,
              "stable": stable, "selector": selector, "confidence": confidence,
              "sli": sli.as_table(), "breakers": settings.breakers(args.breakers).as_table(), "junit": junit,
              "partial_scope": args.partial_scope,
              "dependencies": list(args.dependency or settings.dependencies),
              "deadline_s": deadline, "max_answer_mb": args.max_answer_mb, **files,
              "lang": args.lang, **({"build": args.build} if args.build else {}), **_screenshots(args)}
    return params, out, stable_file


def _screenshots(args: argparse.Namespace) -> dict[str, str]:
    """The notebook's ``screenshots`` parameter when the user turned them off; else the bundle decides."""
    return {"screenshots": "off"} if args.no_screenshots else {}


def settled(client: Any, sli: Any, scope: list[str]) -> Any:
    """The SLI checked on the server for the service (:func:`reliability.source.sli_check.settle`).

    An https server that refuses the trust, or a server whose history contradicts the SLI, is a
    usage error; a server that does not answer is left to the proof, which says INCONCLUSIVE.
    """
    from reliability.errors import PrometheusError
    from reliability.source.sli_check import settle

    client.check_tls()
    try:
        return settle(sli, client.scoped(scope))
    except PrometheusError:
        return sli


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
    from reliability.gate.watch import LookLog, explain, looks
    from reliability.report.bundle import produce
    from reliability.source import from_env
    from reliability.times import parse_duration, parse_time

    deadline = parse_time(args.deadline, name="--deadline")
    interval = parse_duration(args.interval, name="--interval")
    min_watch = parse_duration(args.min_watch, name="--min-watch")
    lookback = parse_duration(args.lookback, name="--lookback")
    args.end, args.deadline = args.deadline, args.proof_deadline  # the final proof's window and time bound
    if not args.out:  # the same command finds the same folder and state again after a restart
        start = parse_time(args.start, name="--start")
        args.out = str(paths.repo(args.repo) / "reports" / f"{args.candidate}-watch-{start:%Y%m%dT%H%M%SZ}")
    params, out, stable_file = proof_parameters(args)
    p = params_from(params, root=paths.repo(args.repo))  # the proof's own parameters, its window ending at the deadline
    client = from_env().scoped(p.service_scope())
    _say(f"watch: {args.candidate} from {params['start']} until {deadline.isoformat()}, a look every "
         f"{interval:g} s, the stable's incidents read over the {args.lookback} before"
         + (f", no GO before {min_watch:g} s" if min_watch else ""))
    state = Path(args.state).absolute() if args.state else out.with_name(out.name + ".watch.sqlite")
    log = LookLog(state, {"candidate": p.candidate, "start": p.start, "selector": p.selector, "interval": interval,
                          "confidence": p.confidence, "min_watch": min_watch, "lookback": lookback})
    resumed = len(log.recorded())
    if resumed:
        _say(f"watch: resuming from {state} ({resumed} looks recorded)")
    last, looked = None, 0
    try:
        for last in looks(client, p, deadline, interval=interval, alpha=1 - p.confidence, min_watch=min_watch,
                          lookback=lookback, log=log, checks=LookChecks(p)):
            looked += 1
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
    if last is not None:  # the report says what the watch decided and why, in the look's sentence
        why = (explain(last.look, last.decision, p.start) if watched != "INCONCLUSIVE"
               else missing_evidence(last, p.start, p.threshold, min_watch))
        params["watch"] = {"decision": watched, "from": f"{p.start:%Y-%m-%d %H:%M} UTC",
                           "at": f"{at:%Y-%m-%d %H:%M} UTC", "looks": looked, "why": why.rstrip(".")}
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
