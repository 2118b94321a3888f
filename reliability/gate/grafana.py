"""Live Grafana, when there is one: is the served dashboard the repository's, and what do its panels show?

Optional evidence: without ``GRAFANA_URL`` every check is NOT CONFIGURED (never PASS),
and the offline proof relies on :mod:`reliability.gate.dashboard` instead. The API token is
read from ``GRAFANA_TOKEN`` at request time only, so it never appears in arguments,
reprs or notebooks.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from reliability.gate.dashboard import Dashboard
from reliability.gate.verdict import Check, Status

NOT_SET = "GRAFANA_URL not set"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class GrafanaClient:
    """Authenticated GETs against one Grafana; the token comes from ``GRAFANA_TOKEN``."""

    url: str
    timeout: float = 15.0

    @classmethod
    def from_env(cls) -> GrafanaClient | None:
        """The client for ``GRAFANA_URL``, or None when it is not set."""
        url = os.environ.get("GRAFANA_URL", "").strip()
        return cls(url.rstrip("/")) if url else None

    def get(self, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None) -> Any:
        """GET ``path``; returns the ``requests.Response`` (never raises on HTTP status)."""
        import requests

        token = os.environ.get("GRAFANA_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.url + path, params=params, headers=headers, timeout=self.timeout)


def _not_configured(name: str) -> Check:
    return Check(name, Status.NOT_CONFIGURED, False, NOT_SET)


def _unreachable(name: str, client: GrafanaClient, exc: Exception) -> Check:
    return Check(name, Status.FAIL, False, f"Grafana at {client.url} did not answer ({type(exc).__name__}); "
                                           "check GRAFANA_URL and that Grafana is running")


def _auth_hint(status: int) -> str:
    return (" (set GRAFANA_TOKEN to a service-account token with Viewer rights)"
            if status in (401, 403) else "")


def grafana_health(client: GrafanaClient | None = None) -> Check:
    """Grafana answers ``/api/health`` with its database ok."""
    import requests

    name = "Grafana health"
    client = client or GrafanaClient.from_env()
    if client is None:
        return _not_configured(name)
    try:
        r = client.get("/api/health")
    except requests.RequestException as exc:
        return _unreachable(name, client, exc)
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code != 200 or body.get("database") != "ok":
        return Check(name, Status.FAIL, False,
                     f"Grafana at {client.url}/api/health answered {r.status_code} {body or r.text[:200]!r}; "
                     "check Grafana's logs and its database")
    return Check(name, Status.PASS, False,
                 f"Grafana {body.get('version', '?')} at {client.url} is healthy (database ok)")


def _served(client: GrafanaClient, dashboard: Dashboard) -> tuple[dict[str, Any] | None, str]:
    """The served dashboard document (``dashboard`` and ``meta``) or None, and why not."""
    if not dashboard.uid:
        return None, f"{dashboard.path} has no uid; give the dashboard a fixed uid so it can be found"
    r = client.get(f"/api/dashboards/uid/{dashboard.uid}")
    if r.status_code == 404:
        return None, (f"Grafana at {client.url} has no dashboard with uid {dashboard.uid!r}; import "
                      f"{dashboard.path} (Dashboards > New > Import, or provisioning)")
    if r.status_code != 200:
        return None, f"/api/dashboards/uid/{dashboard.uid} answered {r.status_code}{_auth_hint(r.status_code)}"
    return r.json(), ""


def grafana_dashboard(dashboard: Dashboard, client: GrafanaClient | None = None) -> Check:
    """The dashboard is imported under the file's uid, at the file's ``version``."""
    import requests

    name = "Grafana dashboard"
    client = client or GrafanaClient.from_env()
    if client is None:
        return _not_configured(name)
    try:
        doc, why = _served(client, dashboard)
    except requests.RequestException as exc:
        return _unreachable(name, client, exc)
    if doc is None:
        return Check(name, Status.FAIL, False, why)
    served = (doc.get("dashboard") or {}).get("version")
    where = client.url + str((doc.get("meta") or {}).get("url") or f"/d/{dashboard.uid}")
    if served != dashboard.version:
        return Check(name, Status.FAIL, False,
                     f"Grafana serves version {served} of {dashboard.uid!r} ({where}), {dashboard.path} is "
                     f"version {dashboard.version}: re-import the file (or commit Grafana's newer export)")
    return Check(name, Status.PASS, False, f"{where} serves version {served}, the same as {dashboard.path}")


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "dashboard"


def grafana_panel_images(
    dashboard: Dashboard,
    out_dir: str | Path,
    *,
    start: datetime,
    end: datetime,
    client: GrafanaClient | None = None,
    variables: Mapping[str, str | Sequence[str]] | None = None,
    width: int = 1000,
    height: int = 500,
) -> Check:
    """Fetch each query panel as Grafana renders it (``/render/d-solo``) into ``out_dir/panel-<id>.png``.

    Needs Grafana's image renderer plugin; without it the check is NOT CONFIGURED.
    """
    import requests

    name = "Grafana panel images"
    client = client or GrafanaClient.from_env()
    if client is None:
        return _not_configured(name)
    # "All" travels as Grafana's own $__all, exactly as in a dashboard URL.
    values = {**dashboard.default_variables(), **(variables or {})}
    var_params = [(f"var-{k}", v) for k, vs in values.items()
                  for v in ((vs,) if isinstance(vs, str) else vs)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved, failed = [], []
    for panel in dashboard.query_panels:
        params = [("orgId", 1), ("panelId", panel.id), ("from", int(start.timestamp() * 1000)),
                  ("to", int(end.timestamp() * 1000)), ("width", width), ("height", height), ("tz", "UTC"),
                  *var_params]
        try:
            r = client.get(f"/render/d-solo/{dashboard.uid}/{_slug(dashboard.title)}", params)
        except requests.RequestException as exc:
            return _unreachable(name, client, exc)
        if r.status_code == 200 and r.content.startswith(PNG_MAGIC):
            path = out / f"panel-{panel.id}.png"
            path.write_bytes(r.content)
            saved.append(path)
            continue
        if not saved and r.status_code in (404, 500) and "render" in r.text.lower():
            return Check(name, Status.NOT_CONFIGURED, False,
                         f"Grafana at {client.url} answered /render with {r.status_code} ({r.text[:120].strip()!r}): "
                         "no image renderer; install the grafana-image-renderer plugin for real panel images")
        failed.append(f"{panel.title!r} (panel {panel.id}): HTTP {r.status_code}{_auth_hint(r.status_code)}")
    if failed:
        return Check(name, Status.FAIL, False, f"{len(failed)} panel image(s) not rendered: " + "; ".join(failed))
    if not saved:
        return Check(name, Status.INCONCLUSIVE, False, "the dashboard has no query panels to render")
    return Check(name, Status.PASS, False, f"{len(saved)} panel images rendered by Grafana into {out}: "
                                           + ", ".join(p.name for p in saved))


def grafana_checks(dashboard: Dashboard, *, start: datetime, end: datetime, out_dir: str | Path) -> list[Check]:
    """Health, dashboard version and panel images; all NOT CONFIGURED without ``GRAFANA_URL``.

    With ``GRAFANA_URL`` set, health and the dashboard version are required checks.
    """
    client = GrafanaClient.from_env()
    health = grafana_health(client)
    if client is not None and health.status is not Status.PASS:
        skipped = f"skipped: {health.name} is {health.status}"
        found = [health, Check("Grafana dashboard", Status.INCONCLUSIVE, False, skipped),
                 Check("Grafana panel images", Status.INCONCLUSIVE, False, skipped)]
    else:
        found = [health, grafana_dashboard(dashboard, client),
                 grafana_panel_images(dashboard, out_dir, start=start, end=end, client=client)]
    if client is None:
        return found
    # Once GRAFANA_URL is set, "Grafana works" is evidence the verdict needs: a dead Grafana
    # or a stale dashboard blocks GO. Panel images stay optional (they need the renderer plugin).
    return [replace(c, required=c.name != "Grafana panel images") for c in found]
