"""Recording rules evaluated over the bundled history, once, as a production server would have.

A server that has run the SLI's recording rules (``monitoring/sli_recording.yml``) holds their
series for as long as they have been evaluated; a server serving backfilled history holds none.
``promtool tsdb create-blocks-from rules`` evaluates them over the history against a running
Prometheus and writes blocks; they are cached beside the history's own blocks (keyed by the
history and the rules' text) and served with them, so the demo's proof reads the recorded series
the way it would on a production server.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from reliability.errors import ReliabilityError
from reliability.source.embedded.backfill import block_dirs
from reliability.source.embedded.process import find_binary

COMPLETE = "recorded-complete.json"
TIMEOUT_S = 300.0


def cached(raw_blocks: Path, rules: Path) -> Path | None:
    """The recorded blocks of ``rules`` over the history in ``raw_blocks``, if already built."""
    final = _final(raw_blocks, rules)
    return final if (final / COMPLETE).is_file() else None


def build(raw_blocks: Path, rules: Path, *, url: str, start: datetime, end: datetime) -> Path:
    """Evaluate ``rules`` every minute over [start, end] against the Prometheus at ``url`` (serving the
    history) and cache the blocks. Raises :class:`ReliabilityError` naming promtool's words."""
    final = _final(raw_blocks, rules)
    work = Path(tempfile.mkdtemp(prefix=".build-rules-", dir=raw_blocks.parent))
    try:
        cmd = [find_binary("promtool"), "tsdb", "create-blocks-from", "rules", "--quiet", f"--url={url}",
               f"--start={int(start.timestamp())}", f"--end={int(end.timestamp()) + 60}",
               "--eval-interval=60s", f"--output-dir={work / 'out'}", str(rules)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        if done.returncode != 0 or not block_dirs(work / "out"):
            raise ReliabilityError(f"promtool could not evaluate {rules} over the history ({done.stderr.strip()[-300:]}"
                                   f"); the proof reads the raw series instead. Check the rules with "
                                   f"`promtool check rules {rules}`")
        (work / "out" / COMPLETE).write_text(json.dumps({"rules": str(rules), "start": start.isoformat(),
                                                         "end": end.isoformat()}))
        try:
            os.rename(work / "out", final)
        except OSError:  # another process built the same first
            if not (final / COMPLETE).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _final(raw_blocks: Path, rules: Path) -> Path:
    key = hashlib.sha256(raw_blocks.name.encode() + b"\0" + Path(rules).read_bytes()).hexdigest()
    return raw_blocks.parent / f"rules-{key[:32]}"
