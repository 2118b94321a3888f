"""The SLI against a real server: is it right for this service, and which conventions does the server have?

:func:`settle` runs before any proof work (``reliability proof``, ``watch``, ``serve``): a counter the
server has never seen, a label the counter does not carry, or an ``errors`` regex that matches no
code the server has ever recorded is a usage error (exit 2) naming the ``[sli]`` field and what the
server actually has. :func:`detect` is ``reliability sli --prometheus-url``: for each preset whose
counter the server holds, the jobs and versions it sees and the ``[sli]`` table to paste.

Everything here asks the server's index (label names and values with ``match[]``), never the
samples, so it costs a few small requests on any server.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reliability.errors import ConfigurationError, PrometheusError
from reliability.source.breaker_metrics import BreakerMetrics
from reliability.source.index import label_values
from reliability.source.sli import PRESETS, Sli

#: How many values a message or a detection shows.
SHOWN = 8


def _shown(values: Sequence[str]) -> str:
    return ", ".join(values[:SHOWN]) + (f" ... ({len(values)} in all)" if len(values) > SHOWN else "") \
        if values else "none"


def errors_match(pattern: str, codes: Iterable[str]) -> list[str]:
    """The codes ``pattern`` matches (anchored, as PromQL's ``=~``), counting the failure spelt in each
    code's own form: a service that never failed has ``200`` and ``404``, and ``5..`` fits ``500``."""
    seen = list(codes)
    shaped = set(seen) | {"5" + c[1:] for c in seen if c}
    regex = re.compile(pattern)
    return sorted(c for c in shaped if regex.fullmatch(c))


def settle(sli: Sli, client: Any) -> Sli:
    """The SLI checked against the server's history for the client's scope; the counter's name found.

    Raises
    ------
    ConfigurationError
        The server has never seen the counter, a label, or a failure code the SLI names.
    """
    where = f"[sli] (preset {sli.preset})"
    found = [n for n in sli.counters() if label_values(client, "__name__", n)]
    if not found:
        others = [d.preset for d in detect(client)]
        hint = f"; it has data for: {', '.join(others)} (reliability sli --prometheus-url ... shows them)" \
            if others else "; `reliability sli --prometheus-url ...` lists what it has"
        raise ConfigurationError(f"{where} requests = {' or '.join(sli.counters())}: the server has no such series "
                                 f"for this service{hint}")
    sli = replace(sli, requests=found[0], names=())
    counter = sli.selector()
    labels = label_values(client, None, counter)
    for key in ("code_label", "version_label") if sli.versioned_on_counter else ("code_label",):
        if getattr(sli, key) not in labels:
            raise ConfigurationError(f"{where} {key} = {getattr(sli, key)!r}: {sli.requests} has no such label; "
                                     f"its labels: {_shown(sorted(labels))}")
    if sli.version_info:
        info = label_values(client, None, f"{sli.version_info}{{}}")
        if sli.version_label not in info:
            raise ConfigurationError(f"{where} version_info = {sli.version_info!r}, version_label = "
                                     f"{sli.version_label!r}: {sli.version_info} has "
                                     f"{'no such label; its labels: ' + _shown(sorted(info)) if info else 'no series'}")
        missing = [k for k in sli.join if k not in info or k not in labels]
        if missing:
            raise ConfigurationError(f"{where}: {sli.requests} and {sli.version_info} do not both carry "
                                     f"{', '.join(missing)}, so the version cannot be joined to the requests")
    codes = label_values(client, sli.code_label, counter)
    if not errors_match(sli.errors, codes):
        spelt = "5.." if any(c.isdigit() and len(c) == 3 for c in codes) else "5" if any(
            c.isdigit() for c in codes) else "5xx"
        raise ConfigurationError(f"{where} errors = {sli.errors!r} matches none of the {sli.code_label} values the "
                                 f"server has seen on {sli.requests} ({_shown(codes)}), nor a failure spelt like "
                                 f"them: write errors = \"{spelt}\"")
    return sli


@dataclass(frozen=True)
class Found:
    """A convention the server has data for: the jobs and versions it sees, and a sample of its codes."""

    preset: str
    sli: Sli
    jobs: list[str]
    versions: list[str]
    codes: list[str]

    def table(self, job: str | None = None) -> str:
        """The ``reliability.toml`` lines that choose it."""
        lines = [f"[sli]\npreset = \"{self.preset}\""]
        if self.sli.requests != PRESETS[self.preset].requests:
            lines.append(f"requests = \"{self.sli.requests}\"")
        scope = f"job = \"{job}\"\n" if job else ""
        return scope + "\n".join(lines)


def detect(client: Any) -> list[Found]:
    """Every preset whose counter the server holds; of presets sharing a counter, the best fit only.

    Two presets can share a counter (``http_requests_total`` is the seed's and FastAPI's): the one
    whose code, version and route labels the series carry, and whose code spelling (``500`` or
    ``5xx``) they use, wins. A preset whose code label the counter lacks is not listed.
    """
    best: dict[str, tuple[int, Found]] = {}
    for sli in PRESETS.values():
        for name in sli.counters():
            try:
                if not label_values(client, "__name__", name):
                    continue
                s = replace(sli, requests=name, names=())
                labels = set(label_values(client, None, s.selector()))
                if s.code_label not in labels:
                    continue
                codes = label_values(client, s.code_label, s.selector())
                if not errors_match(s.errors, codes):
                    continue
                jobs = label_values(client, "job", s.selector())
                source = s.selector() if s.versioned_on_counter else f"{s.version_info}{{}}"
                versions = label_values(client, s.version_label, source)
            except PrometheusError:
                continue
            classes = any(not c.isdigit() or len(c) == 1 for c in codes)
            score = (bool(versions) + (not s.route_label or s.route_label in labels)
                     + (classes == s.class_only) + all(f.split("=")[0].rstrip("!~") in labels
                                                       for f in s.filter_matchers()))
            if name not in best or score > best[name][0]:
                best[name] = (score, Found(sli.preset, s, jobs, versions, codes))
            break
    return [found for _, found in best.values()]


def detect_breakers(client: Any) -> list[tuple[str, BreakerMetrics, list[str]]]:
    """The breaker libraries whose metrics the server holds: ``(preset, metrics, breaker names)``.

    opossum-prometheus' counter is found by its ``event`` label, whatever ``metricPrefix`` the app set.
    """
    from reliability.source.breaker_metrics import PRESETS as BREAKERS
    from reliability.source.breaker_metrics import resolve as resolve_breakers

    found = []
    for preset, m in BREAKERS.items():
        try:
            if m.kind == "opossum":
                names = [n for n in label_values(client, "__name__", '{event=~"open|fire|success|failure"}')
                         if re.fullmatch(r"(\w*?)circuit(_total)?", n)]
                if not names:
                    continue
                prefix = re.fullmatch(r"(\w*?)circuit(_total)?", names[0]).group(1)  # type: ignore[union-attr]
                m = resolve_breakers({"prefix": prefix} if prefix else {}, preset="opossum")
                if names[0].endswith("_total"):
                    m = replace(m, events=names[0])
                source = m.metric(names[0])
            else:
                if not label_values(client, "__name__", m.state):
                    continue
                source = m.state
            found.append((preset, m, label_values(client, m.name_label, source)))
        except PrometheusError:
            continue
    return found
