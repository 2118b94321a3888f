"""A run that did not finish: its files set aside as ``<out>.incomplete/``, never a folder that looks done.

``produce`` registers its staging folder in :data:`RUNNING` while it works; a failure abandons it
on the way out, and a forced exit (a second Ctrl-C, or one a library swallowed) abandons every
registered run without unwinding. :data:`interrupted` is how the command's Ctrl-C handler tells a
run that swallowed its KeyboardInterrupt not to finish.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

from reliability.errors import ReliabilityError


class ReportError(ReliabilityError):
    """The proof notebook failed to run (a bug or a broken environment, not a verdict)."""


#: Set by the command's Ctrl-C handler; a run checks it before its files become a report.
interrupted = threading.Event()
#: The runs in progress, staging folder -> report folder: what a forced exit must set aside.
RUNNING: dict[Path, Path] = {}


def abandon_running() -> None:
    """Set aside every run in progress as ``<out>.incomplete/`` (a forced exit, no unwinding)."""
    for staging, out in list(RUNNING.items()):
        with contextlib.suppress(OSError):
            abandon(staging, out, KeyboardInterrupt())


def abandon(staging: Path, out: Path, exc: BaseException) -> None:
    """Keep what a failed run made, under a name that says it is not a report."""
    failed = out.with_name(out.name + ".incomplete")
    shutil.rmtree(failed, ignore_errors=True)
    (staging / "evidence.json").unlink(missing_ok=True)
    why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
    (staging / "INCOMPLETE.txt").write_text(f"This run did not finish, so this is not a report.\n{why}\n")
    os.replace(staging, failed)
    if isinstance(exc, ReportError):  # the notebook's failure names where its output went
        exc.args = (f"{exc.args[0]}; what it made is in {failed}",)
