"""The Prometheus screenshots of a bundle: taken beside the gathering of the answers, or kept from the
bundle a re-render starts from (:mod:`reliability.source.screenshots` takes and checks them)."""
from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FOLDER = "screenshots"  # in the bundle, beside evidence.json


def start(params: Any, url: str, into: Path, say: Callable[[str], None]) -> threading.Thread:
    """A started thread taking the Prometheus UI's pictures of the proof's window into ``into``."""
    from reliability.gate.checks import SEED_RULE
    from reliability.source import screenshots as taken

    def take() -> None:
        t = time.perf_counter()
        manifest = taken.take(url, expr=params.sli.ratio("5m", matchers=params.service_scope()),
                              start=params.start, end=params.end, alert=SEED_RULE, out_dir=into)
        took = f"({time.perf_counter() - t:.1f} s)"
        say(f"screenshots: {len(manifest['shots'])} of the Prometheus UI {took}" if not manifest["missing"]
            else f"screenshots: none ({manifest['missing']})")

    thread = threading.Thread(target=take, name="screenshots", daemon=True)
    thread.start()
    return thread


def folder(parameters: dict[str, Any], target: Path, gather: bool) -> str:
    """The notebook's ``screenshots`` value: "off", the folder they are taken into, or a re-render's copy."""
    from reliability.source import screenshots as taken

    given = str(parameters.get("screenshots") or "")
    if not gather and given not in ("", "off") and (Path(given) / taken.MANIFEST).is_file():
        shutil.copytree(given, target)  # re-rendering a bundle: its own pictures, as they were
        return str(target)
    if given == "off" or not taken.wanted():
        return "off"
    return str(target) if gather else ""
