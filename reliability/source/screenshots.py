"""Screenshots of the Prometheus web UI the proof queried, taken with the machine's headless Chromium.

The operators asked for proof that the monitoring works *with a picture of it*. The report's
dashboard is redrawn from PromQL; these are pictures of the monitoring system itself: its graph
of the 5xx ratio over the proof's window and its alerts page with the guarding rule opened.

Taking them never decides anything and never fails the proof: when there is no browser (or
Playwright), or the UI does not answer, the manifest says why and the report's check says the
picture is not proven. Credentials (from the environment, like every query's) go in request
headers for the server's own origin only, never in a URL; every other origin is blocked.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

MANIFEST = "manifest.json"
SWITCH_VARIABLE = "LOVE_SCREENSHOTS"    # "0": do not take them
CHROMIUM_VARIABLE = "LOVE_CHROMIUM"     # the browser binary, when it is not where Debian puts it
BROWSERS = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "chrome")
GRAPH, ALERTS = "prometheus-graph.png", "prometheus-alerts.png"
VIEWPORT = {"width": 1200, "height": 780}


def wanted() -> bool:
    """False when the user turned screenshots off (``LOVE_SCREENSHOTS=0`` or ``--no-screenshots``)."""
    return os.environ.get(SWITCH_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def browser() -> str | None:
    """The Chromium to drive: ``LOVE_CHROMIUM``, else Debian's binary, else the first on PATH."""
    given = os.environ.get(CHROMIUM_VARIABLE)
    if given:
        return given if Path(given).is_file() and os.access(given, os.X_OK) else None
    for name in BROWSERS:
        found = name if Path(name).is_file() else shutil.which(name)
        if found:
            return found
    return None


def graph_url(base: str, expr: str, start: datetime, end: datetime) -> str:
    """The UI's graph of ``expr`` over [start, end] (Prometheus 2's ``/graph`` parameters; 3.x redirects them)."""
    seconds = max(60, int((end - start).total_seconds()))
    moment = end.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    query = urlencode({"g0.expr": expr, "g0.tab": "0", "g0.stacked": "0", "g0.show_exemplars": "0",
                       "g0.range_input": f"{seconds}s", "g0.end_input": moment, "g0.moment_input": moment})
    return f"{base.rstrip('/')}/graph?{query}"


def take(base: str, *, expr: str, start: datetime, end: datetime, alert: str, out_dir: Path,
         timeout_s: float = 30.0) -> dict[str, Any]:
    """Take the two screenshots into ``out_dir`` and write its manifest; never raises for a missing browser.

    The manifest lists each picture with the page it shows and its sha256, or says in ``missing``
    why there is none and what to do.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"prometheus": base, "expr": expr, "taken_at": None, "browser": None, "shots": [],
                                "missing": ""}
    exe = browser()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        manifest["missing"] = ("Playwright is not installed: pip install 'love-reliability[screenshots]' "
                               "(and Debian's chromium) to put pictures of Prometheus in the report")
        return _write(out_dir, manifest)
    if exe is None:
        manifest["missing"] = (f"no Chromium found ({CHROMIUM_VARIABLE} or one of {', '.join(BROWSERS)}): install "
                               "Debian's chromium (apt-get install chromium) or set " + CHROMIUM_VARIABLE)
        return _write(out_dir, manifest)
    manifest["browser"] = exe
    pages = [(GRAPH, graph_url(base, expr, start, end), "the service's 5xx ratio over the proof's window"),
             (ALERTS, None, f"the alerts page with {alert} opened, as the server has it now (its live state, "
                            "not the window's: section 4 replays what fired in the window)")]
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"],
                                          timeout=timeout_s * 1000)
            try:
                page = _page(chromium, base, timeout_s)
                for name, url, shows in pages:
                    shown = _show(page, base, url, alert)
                    page.screenshot(path=str(out_dir / name))
                    manifest["shots"].append({"file": name, "url": _public(shown), "shows": shows,
                                              "sha256": _sha256(out_dir / name)})
            finally:
                chromium.close()
    except Exception as exc:  # a picture is never worth a failed proof: say why instead
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        manifest["missing"] = (f"the browser could not show {base}'s web UI ({first}); open it by hand to check, "
                               f"or set {SWITCH_VARIABLE}=0 to stop trying")
    manifest["taken_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _write(out_dir, manifest)


def _page(chromium: Any, base: str, timeout_s: float) -> Any:
    """A page that reaches only ``base``'s origin, with the environment's credentials as headers."""
    from reliability.source.session import CA_VARIABLES, CERT_VARIABLE, KEY_VARIABLE, credentials_session

    _, headers, auth = credentials_session()
    if auth:
        headers = {**headers, "Authorization": "Basic " + base64.b64encode(":".join(auth).encode()).decode()}
    options: dict[str, Any] = {"viewport": VIEWPORT, "timezone_id": "UTC", "locale": "en-US"}
    # The client has already verified the server against this CA (check_tls); Chromium cannot take a CA file.
    if urlsplit(base).scheme == "https" and any(os.environ.get(v) for v in CA_VARIABLES):
        options["ignore_https_errors"] = True
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    cert, key = os.environ.get(CERT_VARIABLE), os.environ.get(KEY_VARIABLE)
    if cert:
        options["client_certificates"] = [{"origin": origin, "certPath": cert, **({"keyPath": key} if key else {})}]
    context = chromium.new_context(**options)
    context.set_default_timeout(timeout_s * 1000)

    def route(r: Any) -> None:
        if r.request.url.startswith(origin + "/"):
            r.continue_(headers={**r.request.headers, **headers})
        else:
            r.abort()

    context.route("**/*", route)
    return context.new_page()


def _show(page: Any, base: str, url: str | None, alert: str) -> str:
    """Open ``url`` (or the alerts page through the UI's own menu) and wait until it has drawn."""
    if url is not None:
        _answered(page.goto(url, wait_until="networkidle"), url)
        page.wait_for_timeout(500)  # the graph draws after its data arrives
        return page.url
    _answered(page.goto(base.rstrip("/") + "/graph", wait_until="networkidle"), base)
    page.get_by_role("link", name="Alerts", exact=True).first.click()
    page.wait_for_load_state("networkidle")
    rule = page.get_by_text(alert, exact=True).first
    if rule.count():
        rule.click()  # opens the rule: its expression and threshold
        page.wait_for_timeout(300)
    return page.url


def _answered(response: Any, url: str) -> None:
    """A page the server refused is no picture of its UI (a 404 from a server without Prometheus' UI)."""
    if response is None or response.status >= 400:
        status = "no answer" if response is None else f"HTTP {response.status}"
        raise RuntimeError(f"{status} for {url.split('?')[0]}: the server does not serve Prometheus' web UI there")


def _public(url: str) -> str:
    """The URL with no user information (the client refuses such URLs; this keeps it true of the manifest)."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl() \
        if parts.hostname else url


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(out_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of ``folder`` with each picture checked against its sha256; None when there is none.

    A picture changed or gone since it was taken is moved to ``missing``, so nothing unverified is shown.
    """
    if not str(folder):
        return None
    f = Path(folder) / MANIFEST
    if not f.is_file():
        return None
    manifest = json.loads(f.read_text())
    good = []
    for shot in manifest.get("shots", []):
        picture = Path(folder) / shot["file"]
        if picture.is_file() and _sha256(picture) == shot["sha256"]:
            good.append({**shot, "path": str(picture)})
        else:
            manifest["missing"] = f"{picture} is missing or differs from its recorded sha256"
    return {**manifest, "shots": good}

