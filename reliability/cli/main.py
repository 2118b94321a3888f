"""The ``reliability`` command: a few subcommands, each one library call.

Exit codes: 0 GO, 1 NO-GO, 3 INCONCLUSIVE, 2 usage errors (wrong options, missing files,
missing programs; found before any work), 4 the tool itself failed (a bug or a broken
environment; never a verdict). ``demo`` and ``init`` exit 0 once their files are written.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from reliability.cli import gate
from reliability.cli.options import (
    EXITS,
    breakers_option,
    proof_options,
    screenshots_option,
    sli_option,
    subcommand,
)
from reliability.errors import ConfigurationError, MissingBinaryError, ReliabilityError
from reliability.gate.verdict import EXIT_CODES, EXIT_INTERNAL, EXIT_USAGE

_SAID = threading.Event()  # the one line was printed


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
    from reliability import config, paths
    from reliability.source.prom import PrometheusClient
    from reliability.source.promql import parse_selector

    settings = config.load(paths.repo(args.repo))
    selector = args.selector if args.selector is not None else settings.scope
    scope = parse_selector(selector)  # a bad default selector is a usage error now, not on every call
    sli = gate.settled(PrometheusClient(os.environ["PROMETHEUS_URL"], retries=0), settings.sli(args.sli), scope)
    return serve.serve(host=args.host, port=args.port, selector=selector, sli=sli)


def cmd_sli(args: argparse.Namespace) -> int:
    from reliability.source.sli import PRESETS

    if not args.prometheus_url:
        for name, s in PRESETS.items():
            print(f"{name:14} {s.describe().rsplit(' [', 1)[0]}\n{'':14} {s.note}")
        print("\nChoose one in reliability.toml ([sli] preset = \"otel\") or with --sli; "
              "`reliability sli --prometheus-url URL` finds which ones a server has.")
        return 0
    from reliability.source.prom import PrometheusClient
    from reliability.source.sli_check import detect, detect_breakers

    client = PrometheusClient(args.prometheus_url, retries=1, timeout=15)
    client.check_tls()
    found = detect(client)
    if not found:
        print(f"{args.prometheus_url} has none of the conventions `reliability sli` lists: write [sli] requests, "
              "code_label, errors and version_label yourself")
        return 3
    for f in found:
        print(f"== {f.preset}: {f.sli.requests} ({len(f.jobs)} job(s): {', '.join(f.jobs[:8])}; "
              f"{f.sli.version_label}: {', '.join(f.versions[:8]) or 'none seen'}; "
              f"{f.sli.code_label}: {', '.join(f.codes[:8])})")
        print(f.table(f.jobs[0] if len(f.jobs) == 1 else None) + "\n")
    for preset, metrics, names in detect_breakers(client):
        print(f"== breakers: {preset}: {metrics.describe().rsplit(' [', 1)[0]} ({', '.join(names[:8]) or 'none'})")
        prefix = metrics.events[:-len("circuit")] if metrics.kind == "opossum" and metrics.events.endswith(
            "circuit") else ""
        print(f'[breakers]\npreset = "{preset}"' + (f'\nprefix = "{prefix}"' if prefix else "") + "\n")
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    from reliability import config, paths
    from reliability.cli import rules
    from reliability.source.promql import parse_selector

    root = paths.repo(args.repo)
    settings = config.load(root)
    selector = args.selector or (f'job="{args.job}"' if args.job else settings.scope)
    scope = parse_selector(selector)
    rules.equalities(scope)  # names the service, before anything is asked or written
    sli = settings.sli(args.sli)
    url = args.prometheus_url or os.environ.get("PROMETHEUS_URL")
    if url:
        from reliability.source.prom import PrometheusClient

        sli = gate.settled(PrometheusClient(url, retries=0, timeout=10), sli, scope)
    out = Path(args.out) if args.out else root / "monitoring"
    for path in rules.write(out, sli, scope, force=args.force):
        print(f"  wrote {path}")
    print(f"Rules for {selector} in {sli.preset}'s names ({sli.requests}). Next: promtool test rules "
          f"{out / 'alerts_test.yml'}; and to read long windows from the recorded requests, add to "
          f"reliability.toml's [sli]: recorded = \"{rules.prefix(rules.equalities(scope))}\"")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from reliability.cli import scaffold
    from reliability.source.breaker_metrics import resolve as resolve_breakers
    from reliability.source.sli import resolve

    written = scaffold.init(Path(args.dir).resolve(), job=args.job, selector=args.selector, force=args.force,
                            sli=resolve(preset=args.sli), breakers=resolve_breakers(preset=args.breakers),
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
                                     "and reports/ to use (default: the nearest of the current directory and "
                                     "its parents holding reliability.toml, .last-stable-version or .git, else "
                                     "the current directory)")

    p = subcommand(sub, "demo", parents=[repo], summary="run the proof on the bundled history (embedded Prometheus)")
    p.add_argument("--scenario", choices=[*gate.SCENARIOS, "all"], default="all", help="which scenario (default: all)")
    p.add_argument("--out", help="parent directory of the reports (default: reports/)")
    screenshots_option(p)
    p.set_defaults(func=gate.cmd_demo)

    p = subcommand(sub, "proof", parents=[repo], summary="the deploy gate: exit 0 GO, 1 NO-GO, 3 INCONCLUSIVE")
    p.add_argument("--start", required=True, help="ISO 8601 (2025-10-26T09:00:00Z) or now-24h")
    p.add_argument("--end", required=True, help="ISO 8601 or now")
    p.add_argument("--deadline", default="15m", help="the whole proof's time bound; past it, the rest is "
                                                     "INCONCLUSIVE (default 15m)")
    proof_options(p)
    p.set_defaults(func=gate.cmd_proof)

    p = subcommand(sub, "watch", parents=[repo], summary="watch a canary until it is proven, looking every "
                    "interval: exit 0 GO, 1 NO-GO, 3 INCONCLUSIVE at the deadline")
    p.add_argument("--start", required=True, help="when the canary started taking traffic (ISO 8601 or now-1h)")
    p.add_argument("--deadline", required=True, help="the last look; INCONCLUSIVE if nothing decided by then "
                                                     "(ISO 8601 or now+2h). Both in the past: the looks are replayed")
    p.add_argument("--interval", default="1m", help="time between looks, whole minutes (default 1m)")
    p.add_argument("--min-watch", default="0", help="a policy minimum: no GO before this much watching (default "
                                                    "none: the incident guard sets its own from the data)")
    p.add_argument("--lookback", default="14d", help="the stable version's history the incident guard reads "
                                                    "(default 14d)")
    p.add_argument("--proof-deadline", default="15m", help="the final proof's time bound (default 15m)")
    p.add_argument("--state", help="the looks so far, kept across restarts (default: <out>.watch.sqlite); run "
                                   "the same command again to resume")
    proof_options(p)
    p.set_defaults(func=gate.cmd_watch)

    p = subcommand(sub, "verify", summary="check a bundle's files (and signature) against its evidence.intoto.json: "
                                      "exit 0 verified, 1 not")
    p.add_argument("dir", help="a directory written by `reliability proof` or `demo`")
    p.add_argument("--key", help="the signer's PEM public key, for a signed Statement")
    p.set_defaults(func=cmd_verify)

    p = subcommand(sub, "render", summary="re-create a report's HTML and PDF from its query snapshot, offline")
    p.add_argument("dir", help="a directory written by `reliability proof` or `demo`")
    p.add_argument("--out", help="default: DIR/rerendered/")
    p.set_defaults(func=gate.cmd_render)

    p = subcommand(sub, "prometheus", summary="serve the bundled history on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int, help="the port on 127.0.0.1 (default: a free one, printed)")
    p.add_argument("--data", help="an OpenMetrics history file (default: the bundled one)")
    p.set_defaults(func=cmd_prometheus)

    p = subcommand(sub, "serve", summary="answer Argo Rollouts' web metric provider and Flagger's webhooks with "
                    "the watch's verdict, over HTTP")
    p.add_argument("--prometheus-url", help="default: $PROMETHEUS_URL")
    p.add_argument("--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1; 0.0.0.0 for a pod)")
    p.add_argument("--port", type=int, default=8080, help="the port (default 8080)")
    p.add_argument("--selector", help='the service when a call names none, e.g. job="love-backend" (default: '
                                      "the settings' job)")
    p.add_argument("--repo", help="the repository whose reliability.toml to read (default: as for proof)")
    sli_option(p)
    p.set_defaults(func=cmd_serve)

    p = subcommand(sub, "sli", summary="list the metric conventions (SLI presets); with --prometheus-url, find "
                                       "which ones a server has data for and print the [sli] table to paste")
    p.add_argument("--prometheus-url", help="a server to look at (its index only: cheap on any server)")
    p.set_defaults(func=cmd_sli)

    p = subcommand(sub, "rules", summary="write the directive's 5xx alert, recording and burn-rate rules and "
                                         "their promtool tests in the service's own metric names")
    p.add_argument("--selector", help='the service, with = matchers, e.g. job="love-backend" (default: the settings\' '
                                      "job or selector)")
    p.add_argument("--job", help="the service's job label, when no selector is given")
    p.add_argument("--out", help="the directory of alerts.yml and alerts_test.yml (default: monitoring/)")
    p.add_argument("--repo", help="the repository whose reliability.toml to read (default: as for proof)")
    p.add_argument("--prometheus-url", help="check the SLI on this server first (default: $PROMETHEUS_URL if set)")
    p.add_argument("--force", action="store_true", help="overwrite the files if they exist")
    sli_option(p)
    p.set_defaults(func=cmd_rules)

    p = subcommand(sub, "init", summary="scaffold a backend repository: scoped rules, dashboard, CI, settings")
    p.add_argument("dir", nargs="?", default=".", help="the repository (default: the current directory)")
    p.add_argument("--job", required=True, help="the Prometheus job label of the service, e.g. love-backend")
    p.add_argument("--selector", help="more label matchers naming the service (default: job=\"<job>\")")
    p.add_argument("--dependency", action="append", metavar="BREAKER",
                   help="an external service the backend calls, by its breaker label; repeat for each "
                        "(default: db, auth, realtime, storage)")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    sli_option(p)
    breakers_option(p)
    p.set_defaults(func=cmd_init)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C: unwind as usual (KeyboardInterrupt), and force the exit if that has not ended the run
    in :data:`GRACE` seconds (a library that swallows the exception, threads held by an import lock).
    A second Ctrl-C forces it at once."""
    from reliability.report import incomplete  # imported before the handler was installed: no import lock here

    if incomplete.interrupted.is_set():
        _forced_exit()
    incomplete.interrupted.set()
    timer = threading.Timer(GRACE, _forced_exit)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


GRACE = 10.0


def _swallowed(unraisable: object) -> None:
    """An interrupt raised where Python cannot propagate it (a weakref callback, a ``__del__``, as in
    an import lock's clean-up) is "ignored" and printed as a traceback: end the run now instead, with
    the one line, rather than waiting :data:`GRACE` seconds after a stray traceback."""
    if getattr(unraisable, "exc_type", None) is KeyboardInterrupt:
        _forced_exit()
    sys.__unraisablehook__(unraisable)  # type: ignore[arg-type]


def _forced_exit() -> None:
    """Set aside what the run made, say the one line, and end the process (its children die with it)."""
    from reliability.report import incomplete

    incomplete.abandon_running()
    _interrupted_exit()


def _interrupted_exit() -> None:
    # Every child is stopped on the way out or dies with this process (PR_SET_PDEATHSIG); exit now,
    # without joining threads an interrupted import can hold forever.
    if not _SAID.is_set():
        _SAID.set()
        print("reliability: interrupted", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


class _Stdout:
    """stdout whose reader may leave early (``reliability proof | head``): what is left to print is
    dropped, and the exit code stays the command's (a verdict), not a crash's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._drop()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()

    def _drop(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # the interpreter's last flush goes nowhere too
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    import signal

    gate.restart_clock()
    parser = build_parser()
    args = parser.parse_args(argv)
    from reliability.report.incomplete import ReportError

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        sys.unraisablehook = _swallowed
    if not isinstance(sys.stdout, _Stdout) and hasattr(sys.stdout, "fileno"):
        sys.stdout = _Stdout(sys.stdout)

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
        _interrupted_exit()  # what was made is already set aside (<out>.incomplete/)
        return 130
    except Exception as exc:  # a bug must never look like NO-GO (1)
        if os.environ.get("RELIABILITY_DEBUG"):
            raise
        print(f"reliability: internal error: {type(exc).__name__}: {exc} (a bug or a broken environment, "
              f"not a verdict; rerun with RELIABILITY_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
