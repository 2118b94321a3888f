"""The ``reliability`` command: a few subcommands, each one library call.

Exit codes: 0 GO, 1 NO-GO, 3 INCONCLUSIVE, 2 usage errors (wrong options, missing
files, missing programs). ``demo`` exits 0 once its reports are written, whatever
they decide: it demonstrates the gate, it is not one.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reliability import paths
from reliability.errors import ConfigurationError, MissingBinaryError, ReliabilityError

SCENARIOS = {
    # name: (ground-truth window, candidate, stable, JUnit file)
    "bad-deploy": ("bad_deploy", "v1.9.0", "v1.8.3", "data/junit/v1.9.0.xml"),
    "healthy-canary": ("canary", "v1.9.1", "v1.8.3", "data/junit/v1.9.1.xml"),
}


def _say(msg: str) -> None:
    print(f"  … {msg}", file=sys.stderr, flush=True)


def _print_bundle(bundle: Any) -> None:
    ev = bundle.evidence
    print(f"Verdict: {ev['verdict']}  (candidate {ev['candidate']}, window {ev['window']['start']} .. {ev['window']['end']})")
    for reason in ev["reasons"]:
        print(f"  - {reason}")
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
            "junit": [junit]}


def cmd_demo(args: argparse.Namespace) -> int:
    from reliability.source.embedded import EmbeddedPrometheus
    from reliability.report.bundle import produce

    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    _say("starting the embedded Prometheus on the bundled history")
    with EmbeddedPrometheus() as prom:
        os.environ["PROMETHEUS_URL"] = prom.url
        for name in names:
            print(f"\n== scenario {name} ==")
            bundle = produce(scenario_parameters(name), Path(args.out) / name, progress=_say)
            _print_bundle(bundle)
    return 0


def cmd_proof(args: argparse.Namespace) -> int:
    from reliability.report.bundle import check_out_dir, produce
    from reliability.times import parse_time

    url = args.prometheus_url or os.environ.get("PROMETHEUS_URL")
    if not url:
        raise ConfigurationError("no Prometheus: pass --prometheus-url or set PROMETHEUS_URL")
    start = parse_time(args.start, name="--start")
    end = parse_time(args.end, name="--end")
    if end <= start:
        raise ConfigurationError(f"--end {args.end} is not after --start {args.start}")
    for j in args.junit:
        if not Path(j).exists():
            raise ConfigurationError(f"--junit {j}: no such file")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = check_out_dir(Path(args.out or paths.REPORTS / f"{args.candidate}-{stamp}"))
    os.environ["PROMETHEUS_URL"] = url
    stable_file = Path(args.stable_file)
    stable = args.stable or (stable_file.read_text().strip() if stable_file.exists() else None)
    params = {"start": start.isoformat(), "end": end.isoformat(), "candidate": args.candidate,
              "stable": stable, "selector": args.selector or "", "confidence": args.confidence,
              "junit": [str(Path(j).resolve()) for j in args.junit]}
    bundle = produce(params, out.resolve(), progress=_say)
    _print_bundle(bundle)
    from reliability.gate.verdict import EXIT_CODES

    if args.promote:
        if bundle.verdict == "GO":
            promote(args.candidate, stable_file)
            print(f"Promoted: {stable_file} now names {args.candidate}")
        else:
            print(f"Not promoted: the verdict is {bundle.verdict}, {stable_file} is unchanged")
    return EXIT_CODES[bundle.verdict]


def promote(version: str, target: Path) -> None:
    """Write the candidate into the stable-version file atomically (rename over the old file)."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(version + "\n")
    os.replace(tmp, target)


def cmd_render(args: argparse.Namespace) -> int:
    from reliability.report.bundle import rerender

    src = Path(args.dir)
    bundle = rerender(src, Path(args.out) if args.out else src / "rerendered", progress=_say)
    _print_bundle(bundle)
    return 0


def cmd_prometheus(args: argparse.Namespace) -> int:
    from reliability.source.embedded import serve

    return serve(Path(args.data) if args.data else None, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reliability", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the proof on the bundled history (embedded Prometheus)")
    p.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    p.add_argument("--out", default=str(paths.REPORTS), help="parent directory of the reports")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("proof", help="the deploy gate: exit 0 GO, 1 NO-GO, 3 INCONCLUSIVE")
    p.add_argument("--prometheus-url", help="default: $PROMETHEUS_URL")
    p.add_argument("--start", required=True, help="ISO 8601 (2025-10-26T09:00:00Z) or now-24h")
    p.add_argument("--end", required=True, help="ISO 8601 or now")
    p.add_argument("--candidate", required=True, help="the version label value to prove")
    p.add_argument("--stable", help="default: the content of .last-stable-version")
    p.add_argument("--junit", nargs="*", default=[], help="JUnit XML files of the candidate's tests")
    p.add_argument("--selector", help='extra label matchers, e.g. job="love-backend"')
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--out", help="default: reports/<candidate>-<UTC time>/")
    p.add_argument("--promote", action="store_true",
                   help="on GO only, write the candidate into the stable-version file")
    p.add_argument("--stable-file", default=str(paths.LAST_STABLE),
                   help="the rollback target's file (default: .last-stable-version)")
    p.set_defaults(func=cmd_proof)

    p = sub.add_parser("render", help="re-create a report's HTML and PDF from its query snapshot, offline")
    p.add_argument("dir", help="a directory written by `reliability proof` or `demo`")
    p.add_argument("--out", help="default: DIR/rerendered/")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("prometheus", help="serve the bundled history on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int)
    p.add_argument("--data", help="an OpenMetrics history file (default: the bundled one)")
    p.set_defaults(func=cmd_prometheus)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigurationError, MissingBinaryError) as exc:
        print(f"reliability: error: {exc}", file=sys.stderr)
        return 2
    except ReliabilityError as exc:
        print(f"reliability: error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("reliability: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
