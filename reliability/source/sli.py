"""The SLI: which counter counts the requests, how a failure is spelt there, where the version lives.

One frozen record per convention (:data:`PRESETS`), chosen once (``[sli]`` in ``reliability.toml``,
``--sli PRESET``) and passed down. Every query that reads requests is built here from the record,
so no other module spells a metric or label name: Flagger keeps its providers as query templates
in one place, Sloth builds every rule from one error/total pair. Adding a preset is one entry here
and one test history.

Two shapes of version:

- a label on the counter (``version``, Istio's ``destination_version``, or the label that names the
  deployment where the exporter has none: a Kong service, an HAProxy server, an ingress backend);
- a label on an info metric joined on ``job`` and ``instance`` (OpenTelemetry's
  ``target_info{service_version}``). The join is made at every evaluation, so a version that moves
  between instances is counted where it ran, and sums over a window add per-minute increases.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from reliability.errors import ConfigurationError
from reliability.source.promql import format_duration, matcher, parse_selector


@dataclass(frozen=True)
class Sli:
    """A metric convention: the names an exporter writes, and how to read R from them."""

    preset: str = "seed"
    requests: str = "http_requests_total"   # the counter of all requests (each name tried in turn: see `names`)
    code_label: str = "status"              # the label holding the response code
    errors: str = "5.."                     # regex on code_label values that are failures
    version_label: str = "version"          # on the counter, or on version_info
    version_info: str = ""                  # the info metric holding version_label, joined on `join`
    filters: str = ""                       # matchers always applied, e.g. reporter="destination"
    route_label: str = "route"              # the per-route table's label; "" when the exporter has none
    class_only: bool = False                # codes are classes ("5xx"): a 503 cannot be told from a 500
    join: tuple[str, ...] = ("job", "instance")
    names: tuple[str, ...] = ()             # other spellings of `requests` (Kong 2.8 / 3.x), found on the server
    recorded: str = ""                      # the prefix of the recording rule of requests (see `increase`)
    covered: bool = field(default=False, compare=False)  # the rule covers the window: set by the proof, once checked
    note: str = field(default="", compare=False)  # where the names come from, for the docs and `reliability sli`

    def __post_init__(self) -> None:
        for key in ("code_label", "version_label", "route_label", *(("version_info",) if self.version_info else ())):
            value = getattr(self, key)
            if value and not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", value):
                raise ConfigurationError(f"[sli] {key} = {value!r} is not a Prometheus name")
        matcher(self.code_label, self.errors, "=~")  # a valid label and regex literal
        from reliability.source.parsed import matcher_keys

        for name, _, _ in matcher_keys(tuple(self.filter_matchers())):
            if name in (self.code_label, self.version_label, self.route_label, "__name__"):
                raise ConfigurationError(f"[sli] filters = {self.filters!r} names {name}: filters may not slice the "
                                         "traffic by outcome, version or route, which could hide failures")

    # ------------------------------------------------------------------ matchers
    def filter_matchers(self) -> list[str]:
        """The preset's always-applied matchers (Istio's ``reporter="destination"``)."""
        return parse_selector(self.filters)

    @property
    def error_matcher(self) -> str:
        """``status=~"5.."``: the requests that are failures."""
        return matcher(self.code_label, self.errors, "=~")

    @property
    def versioned_on_counter(self) -> bool:
        return not self.version_info

    def version_matcher(self, version: str) -> str:
        return matcher(self.version_label, version)

    def selector(self, matchers: Sequence[str] = (), *, errors: bool = False, version: str | None = None) -> str:
        """The counter's selector: filters, ``matchers``, the error class and (on the counter) the version."""
        parts = [*self.filter_matchers(), *matchers]
        if errors:
            parts.append(self.error_matcher)
        if version is not None and self.versioned_on_counter:
            parts.append(self.version_matcher(version))
        return f"{self.requests}{{{','.join(parts)}}}" if parts else self.requests

    # ------------------------------------------------------------------ queries
    def counted(self, fn: str, window: str, *, matchers: Sequence[str] = (), errors: bool = False,
                version: str | None = None, by: Sequence[str] = ()) -> str:
        """``sum by (by) (fn(counter[window]))``, the requests (or failures) of ``version``.

        With an info-metric version the per-series values are joined to the version the instance
        ran at that evaluation (``group_left`` carries the version label, so ``by`` may name it).
        """
        inner = f"{fn}({self.selector(matchers, errors=errors, version=version)}[{window}])"
        if self.version_info and (version is not None or self.version_label in by):
            inner = f"({inner} * on ({', '.join(self.join)}) group_left ({self.version_label}) {self.info(version)})"
        grp = f" by ({', '.join(by)})" if by else ""
        return f"sum{grp} ({inner})"

    @property
    def recorded_name(self) -> str:
        """The recording rule's series: requests per second over 2 minutes, every minute, by job and version."""
        return f"{self.recorded}:sli_requests:rate2m"

    def recorded_rule(self, matchers: Sequence[str] = (), keep: Sequence[str] = ("job",)) -> dict[str, str]:
        """The recording rule the SLI's ``recorded`` prefix names, for a group evaluated every minute."""
        by = ", ".join(dict.fromkeys((*keep, self.version_label)))
        return {"record": self.recorded_name, "expr": f"sum by ({by}) (rate({self.selector(matchers)}[2m]))"}

    def recorded_series(self, matchers: Sequence[str] = (), version: str | None = None) -> str:
        """The recorded series of the service (and ``version``): the rule keeps job and version, and the
        scope's labels when ``reliability rules`` wrote it for that scope."""
        parts = [*matchers, *([self.version_matcher(version)] if version is not None else [])]
        return f"{self.recorded_name}{{{','.join(parts)}}}" if parts else self.recorded_name

    def increase(self, window: str, *, matchers: Sequence[str] = (), errors: bool = False,
                 version: str | None = None, by: Sequence[str] = ()) -> str:
        """Requests (or failures) over ``window``, for long windows.

        The requests come from the recorded rate where this SLI declares its recording rule
        (``recorded``), the caller has checked that it covers the window (``covered``: the proof does,
        with ``measure.recorded_coverage``) and the window is whole minutes, longer than a day: one
        series per job and version instead of one per instance, route, method and status. The rule
        is evaluated every minute, so a window's requests are the sum of its minutes' rates times 60.
        Each rate is over 2 minutes (four 30 s scrapes, so a missed one does not blind it) and
        extrapolated to them: not exact, and a series born inside the window is missed for its first
        minutes, which a short window feels more (measured: 0.03-0.3 % of a day's requests, 3 % of a
        45-minute canary's). So a proof's window of a day or less, its headline R, is counted from
        the raw series; the 30-day budget and the 3-day burn ratio from the rule. The failures are
        the evidence and few: always from the raw series, exactly.
        """
        from reliability.source.parsed import matcher_keys
        from reliability.times import parse_duration

        seconds = parse_duration(window)
        kept = {"job", self.version_label, *(n for n, _, _ in matcher_keys(tuple(matchers)))}
        if (errors or not (self.recorded and self.covered) or self.joins(version, by) or seconds <= LONG_WINDOW
                or seconds % 60 or not set(by) <= kept):
            return self.counted("increase", window, matchers=matchers, errors=errors, version=version, by=by)
        series = self.recorded_series(matchers, version)
        grp = f" by ({', '.join(by)})" if by else ""
        # One millisecond short of the window: Prometheus 2 ranges include both ends, and the
        # evaluation at the window's start belongs to the minute before it. In parentheses: callers
        # divide by it.
        return f"(sum{grp} (sum_over_time({series}[{round(seconds * 1000) - 1}ms])) * {RULE_INTERVAL:g})"

    def info(self, version: str | None = None, *, op: str = "=") -> str:
        """The instances' versions, one series per instance: the latest sample's, should two overlap
        (a redeploy within the lookback), then kept only where it is ``version`` (``op`` ``=~`` for a regex)."""
        keys = ", ".join(self.join)
        latest = f"topk by ({keys}) (1, timestamp({self.version_info}))"
        if version is not None:
            wanted = f"{self.version_info}{{{matcher(self.version_label, version, op)}}}"
            latest = f"({latest} and on ({keys}, {self.version_label}) {wanted})"
        return f"group by ({keys}, {self.version_label}) ({latest})"

    def joins(self, version: str | None, by: Sequence[str] = ()) -> bool:
        """Whether counting ``version`` (or grouping by the version) joins the info metric."""
        return bool(self.version_info) and (version is not None or self.version_label in by)

    def total(self, seconds: float, *, matchers: Sequence[str] = (), errors: bool = False, version: str | None = None,
              by: Sequence[str] = ()) -> str:
        """Requests (or failures) over a window of ``seconds`` ending at the evaluation time: one
        ``increase()`` over the window (it extrapolates once). A version joined from an info metric is
        counted step by step instead (:func:`reliability.analysis.measure.totals`), each step joined
        to the version of its time."""
        if self.joins(version, by):
            raise ValueError("a joined version is counted per step: use measure.totals")
        return self.increase(format_duration(seconds), matchers=matchers, errors=errors, version=version, by=by)

    def ratio(self, window: str, *, matchers: Sequence[str] = (), version: str | None = None,
              by: Sequence[str] = ()) -> str:
        """The seed alert's 5xx ratio over ``window``; a group with traffic but no failures is 0, not absent."""
        err = self.counted("rate", window, matchers=matchers, errors=True, version=version, by=by)
        all_ = self.counted("rate", window, matchers=matchers, version=version, by=by)
        return f"({err} or ({all_} * 0)) / {all_}"

    def counters(self) -> tuple[str, ...]:
        """Every name the counter may have (a rule or panel written on either reads it)."""
        return tuple(dict.fromkeys((self.requests, *self.names)))

    def for_version(self, expr: str, version: str) -> str:
        """A rule or panel expression written on this SLI's counter, restricted to ``version``'s requests."""
        from reliability.source.parsed import add_matchers, wrap_calls

        if self.versioned_on_counter:
            return add_matchers(expr, [self.version_matcher(version)], metrics=self.counters())
        keys = ", ".join(self.join)
        return wrap_calls(expr, self.counters(),
                          lambda call: f"({call} * on ({keys}) group_left ({self.version_label}) {self.info(version)})")

    def describe(self) -> str:
        """The metric read, in the report's words."""
        where = (f"{self.version_label} from {self.version_info} (joined on {', '.join(self.join)})"
                 if self.version_info else f"version label {self.version_label}")
        spelt = " (codes are classes: a 503 cannot be told from a 500)" if self.class_only else ""
        filters = f", always {self.filters}" if self.filters else ""
        return (f"{self.requests}{{{self.error_matcher}}} of {self.requests}{filters}; {where}{spelt} "
                f"[{self.preset}]")

    def as_table(self) -> dict[str, Any]:
        """The ``[sli]`` table that gives this record back through :func:`resolve` (the evidence, the kernel)."""
        return {k: getattr(self, k) for k in (*TABLE_KEYS, "route_label", "class_only")}


RULE_INTERVAL = 60.0  # seconds between evaluations of the recorded rule (its group's interval: 1m)
LONG_WINDOW = 86400.0  # the recorded rule counts windows longer than a day; a day or less reads raw series

SEED = Sli(recorded="love", note="the directive's own contract (monitoring/METRICS.md); requests per minute "
                                  "recorded by monitoring/sli_recording.yml")

#: The named conventions, each with the exporter's own names (see docs/sli.md for the sources).
PRESETS: dict[str, Sli] = {s.preset: s for s in (
    SEED,
    Sli("otel", "http_server_request_duration_seconds_count", "http_response_status_code", "5..",
        "service_version", version_info="target_info", route_label="http_route",
        note="OpenTelemetry's stable HTTP semantic conventions through the Prometheus exporter (Python's "
             "instrumentations need OTEL_SEMCONV_STABILITY_OPT_IN=http); the version is the resource attribute "
             "service.version on target_info, joined on the job and instance Prometheus gives the target"),
    Sli("istio", "istio_requests_total", "response_code", "5..", "destination_version",
        filters='reporter="destination"', route_label="",
        note="Istio's standard metrics; only the destination's report, the source side counts the same requests"),
    Sli("linkerd", "response_total", "status_code", "5..", "deployment", filters='direction="inbound"',
        route_label="", note="Linkerd 2 proxy metrics, inbound side only (meshed clients count each request "
                             "again outbound); the canary is its own deployment (linkerd-viz's scrape adds the label)"),
    Sli("ingress-nginx", "nginx_ingress_controller_requests", "status", "5..", "service", route_label="path",
        note="ingress-nginx controller (no _total); the canary is its own backend service"),
    Sli("envoy", "envoy_cluster_upstream_rq", "envoy_response_code", "5..", "envoy_cluster_name", route_label="",
        note="Envoy cluster statistics per response code (no _total), as Flagger's Contour, Gloo, Kuma and App "
             "Mesh templates read them; the canary is its own upstream cluster. Class-only alternative: "
             "requests = envoy_cluster_upstream_rq_xx, code_label = envoy_response_code_class, errors = \"5\""),
    Sli("traefik", "traefik_service_requests_total", "code", "5..", "service", route_label="",
        note="Traefik v2/v3 service metrics; the canary is its own (weighted) service"),
    Sli("haproxy", "haproxy_server_http_responses_total", "code", "5xx", "server", route_label="", class_only=True,
        note="HAProxy 2.6's native exporter (promex), per server line, responses summed over code classes; the "
             "canary is its own server. Per backend: requests = haproxy_backend_http_responses_total, "
             "version_label = proxy (it also counts the 503s HAProxy makes when no server is up)"),
    Sli("caddy", "caddy_http_request_duration_seconds_count", "code", "5..", "server", route_label="",
        note="Caddy 2's HTTP metrics (caddy_http_requests_total has no code); the canary is its own server. "
             "Up to v2.11.1 a request is counted once per middleware: add filters = 'handler=\"reverse_proxy\"'"),
    Sli("kong", "kong_http_requests_total", "code", "5..", "service", route_label="route",
        names=("kong_http_requests_total", "kong_http_status"),
        note="Kong's Prometheus plugin: kong_http_requests_total (3.x, with status_code_metrics = true) or "
             "kong_http_status (2.8, no _total), whichever the server has; the canary is its own Kong service"),
    Sli("spring", "http_server_requests_seconds_count", "status", "5..", "version", route_label="uri",
        note="Spring Boot's Micrometer timer; it has no version: add one as a common tag "
             "(management.metrics.tags.version) or a target label"),
    Sli("fastapi", "http_requests_total", "status", "5xx", "version", route_label="handler", class_only=True,
        note="prometheus-fastapi-instrumentator's defaults (codes grouped into classes); it has no version: "
             "add one as a target label"),
)}

TABLE_KEYS = ("preset", "requests", "code_label", "errors", "version_label", "version_info", "filters", "recorded")
_OVERRIDES = frozenset(TABLE_KEYS) - {"preset"} | {"route_label", "class_only"}


def resolve(table: Mapping[str, Any] | Sli | None = None, *, preset: str | None = None,
            where: str = "[sli]") -> Sli:
    """The SLI a ``[sli]`` table (or ``--sli PRESET``) names: the preset, then each field overridden.

    Raises
    ------
    ConfigurationError
        An unknown preset or key, or a value of the wrong type, naming ``where`` it came from.
    """
    if isinstance(table, Sli):
        return table if preset is None else resolve(table.as_table(), preset=preset, where=where)
    table = dict(table or {})
    unknown = sorted(set(table) - _OVERRIDES - {"preset"})
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(sorted(_OVERRIDES | {'preset'}))}")
    name = preset or table.pop("preset", None) or "seed"
    table.pop("preset", None)
    if name not in PRESETS:
        raise ConfigurationError(f"{where}: unknown preset {name!r}; use one of {', '.join(PRESETS)} "
                                 "(`reliability sli` lists them)")
    base = PRESETS[name]
    for key, value in table.items():
        want = bool if key == "class_only" else str
        if not isinstance(value, want):
            raise ConfigurationError(f"{where}: {key} must be a {'boolean' if want is bool else 'string'}, "
                                     f"not {value!r}")
    if "requests" in table:
        table["names"] = ()  # one name, given: nothing to detect
    if "errors" in table and "class_only" not in table:
        table["class_only"] = not any(c in table["errors"] for c in ".[\\")  # "5xx", "5": a class, not a pattern
    return replace(base, **table)


def field_names() -> list[str]:
    return [f.name for f in fields(Sli)]
