"""Is the alert wired to an Alertmanager? Judged from Prometheus' own view, not from the runner.

The Alertmanager URL Prometheus reports is usually cluster-internal: a CI runner cannot reach
it, and a probe from there would fail every deploy. Prometheus itself knows: the Alertmanagers
it discovered (``/api/v1/alertmanagers``) and its ``prometheus_notifications_*`` counters over
the window (scraped from itself) or, when it does not scrape itself, since it started (its own
``/metrics``). A direct probe from the runner is optional (``RELIABILITY_PROBE_ALERTMANAGER=1``).
"""
from __future__ import annotations

import os
import re
import time
from datetime import datetime
from typing import Any

from reliability.errors import PrometheusError
from reliability.gate.verdict import Check, Status
from reliability.times import format_duration

NAME = "Alertmanager discovered"
_COUNTERS = ("prometheus_notifications_sent_total", "prometheus_notifications_errors_total",
             "prometheus_notifications_dropped_total", "prometheus_notifications_alertmanagers_discovered")


def alertmanager_wired(client: Any, start: datetime, end: datetime, *, wait: float = 20.0,
                       probe: bool | None = None) -> Check:
    """Prometheus has an active Alertmanager and delivers to it (no errors or drops in the window)."""
    from reliability.source import server_config

    own = client.unscoped() if hasattr(client, "unscoped") else client  # no service owns these
    config = server_config(own) or {}
    configured = bool((config.get("alerting") or {}).get("alertmanagers"))
    deadline = time.monotonic() + (wait if configured and getattr(own, "live", True) else 0.0)
    while True:
        try:
            data = own.api("alertmanagers")
        except PrometheusError as exc:
            vmalert = _vmalert_view(own)  # VictoriaMetrics: the rules and notifiers are vmalert's
            if vmalert is not None:
                return vmalert
            return Check(NAME, Status.INCONCLUSIVE, True, f"cannot list Alertmanagers: {exc}")
        active = [a["url"] for a in data.get("activeAlertmanagers", [])]
        if active or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if not active:
        dropped = [a["url"] for a in data.get("droppedAlertmanagers", [])]
        why = ("prometheus.yml has no alerting.alertmanagers section" if not configured
               else f"none became active within {wait:.0f} s" + (f" (dropped: {dropped})" if dropped else ""))
        return Check(NAME, Status.FAIL, True,
                     f"Prometheus at {client.url} has no active Alertmanager: {why}. Alerts would fire "
                     "but notify nobody; configure alerting.alertmanagers and check the Alertmanager is up.")
    where = ", ".join(active)
    try:
        found, span = _window_counters(own, start, end), "in the window"
        if found is None:
            found, span = _counters_now(own), "since Prometheus started (it does not scrape itself)"
    except PrometheusError as exc:
        return Check(NAME, Status.INCONCLUSIVE, True, f"{len(active)} active ({where}), but its "
                                                      f"notification counters cannot be read: {exc}")
    sent, errors, dropped = (found.get(k, 0.0) for k in _COUNTERS[:3])
    figures = f"sent {sent:,.0f}, errors {errors:,.0f}, dropped {dropped:,.0f} {span}"
    if span == "in the window" and (errors > 0 or dropped > 0):
        return Check(NAME, Status.FAIL, True, f"Prometheus failed to deliver alerts to {where}: {figures}. "
                                              "Check the Alertmanager's address, TLS and auth in prometheus.yml.")
    if span != "in the window" and errors > 0 and errors >= sent:
        return Check(NAME, Status.FAIL, True, f"Prometheus cannot deliver alerts to {where}: {figures}.")
    if found.get("firing", 0) > 0 and sent == 0:
        return Check(NAME, Status.FAIL, True, f"alerts fired in the window but Prometheus sent no "
                                              f"notification to {where} ({figures})")
    detail = f"{len(active)} active Alertmanager(s) listed by Prometheus ({where}); {figures}"
    if probe if probe is not None else os.environ.get("RELIABILITY_PROBE_ALERTMANAGER") == "1":
        down = [u for u in active if client.probe(re.sub(r"/api/v\d+/alerts/?$", "", u) + "/-/ready") != 200]
        if down:
            return Check(NAME, Status.FAIL, True, f"{detail}; not answering /-/ready from here: {', '.join(down)}")
        detail += "; each answers /-/ready from here"
    return Check(NAME, Status.PASS, True, detail)


def _vmalert_view(client: Any) -> Check | None:
    """vmalert's notifiers and delivery counters, as vmagent stored them; None when there are none.

    A server without ``/api/v1/alertmanagers`` (VictoriaMetrics) has its rules run by vmalert,
    which creates ``vmalert_alerts_sent_total{addr=...}`` for each Alertmanager it notifies.
    """
    at = client.now()
    try:
        sent = client.query("sum by (addr) (vmalert_alerts_sent_total)", at)
        errors = client.query("sum by (addr) (vmalert_alerts_send_errors_total)", at)
    except PrometheusError:
        return None
    if sent.empty:
        return None
    where = ", ".join(sorted(sent["addr"]))
    n_sent, n_err = float(sent["value"].sum()), float(errors["value"].sum()) if len(errors) else 0.0
    figures = f"sent {n_sent:,.0f}, errors {n_err:,.0f} since vmalert started (its counters, as scraped)"
    if n_err > 0 and n_err >= n_sent:
        return Check(NAME, Status.FAIL, True, f"vmalert cannot deliver alerts to {where}: {figures}. Check "
                                              "-notifier.url and that the Alertmanager is up.")
    return Check(NAME, Status.PASS, True, f"{len(sent)} Alertmanager(s) notified by vmalert ({where}); {figures}")


def _window_counters(client: Any, start: datetime, end: datetime) -> dict[str, float] | None:
    """Increases of the notification counters over the window; None when Prometheus has no history of them."""
    rng = format_duration(max((end - start).total_seconds(), 60.0))
    out: dict[str, float] = {}
    for metric in _COUNTERS[:3]:
        frame = client.query(f"sum(increase({metric}[{rng}]))", end)
        if frame.empty:
            return None
        out[metric] = float(frame["value"].iloc[0])
    firing = client.query(f'count(max_over_time(ALERTS{{alertstate="firing"}}[{rng}]))', end)
    out["firing"] = float(firing["value"].iloc[0]) if len(firing) else 0.0
    return out


def _counters_now(client: Any) -> dict[str, float]:
    """The counters from Prometheus' own /metrics page, summed over Alertmanagers."""
    out: dict[str, float] = {}
    for line in client.text("/metrics").splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in _COUNTERS:
            try:
                out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
    return out
