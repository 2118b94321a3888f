"""Find, start, wait for and stop the Prometheus and Alertmanager child processes.

Children run in their own session so a terminal's Ctrl-C reaches only us (once) and we
stop them in order; their output goes to log files, because a pipe nobody reads fills up
and blocks the server.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reliability.errors import MissingBinaryError, PrometheusUnavailable

INSTALL_HINT = (
    "  Debian/Ubuntu: sudo apt-get install --no-install-recommends prometheus prometheus-alertmanager\n"
    "  conda:         conda install -c conda-forge prometheus alertmanager\n"
    "  Homebrew:      brew install prometheus alertmanager"
)

# An http_proxy from the environment must not swallow requests to our own 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Debian names the Alertmanager binary prometheus-alertmanager; upstream and conda do not.
_CANDIDATES = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("alertmanager", "prometheus-alertmanager"),
}


def find_binary(name: str, *, candidates: Sequence[str] | None = None, hint: str = INSTALL_HINT) -> str:
    """Locate ``prometheus``, ``promtool``, ``alertmanager`` (or ``name`` among ``candidates``).

    ``<NAME>_BIN`` (``-`` read as ``_``, e.g. ``VICTORIA_METRICS_BIN``) overrides PATH.

    Raises
    ------
    MissingBinaryError
        Not installed (or the override points nowhere); ``hint`` gives install commands.
    """
    env = f"{name.upper().replace('-', '_')}_BIN"
    override = os.environ.get(env)
    if override:
        found = shutil.which(override)
        if found is None:
            raise MissingBinaryError(f"{override} (from ${env})", hint)
        return found
    names = tuple(candidates or _CANDIDATES[name])
    for candidate in names:
        found = shutil.which(candidate)
        if found is not None:
            return found
    raise MissingBinaryError(" or ".join(names), hint)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (it may be taken before we bind it again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(Exception):
    """The child exited because its listen port was taken between picking and binding."""


@dataclass
class Child:
    """One started server: its process, log file and base URL."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        """The log's error lines if it has any (shutdown chatter buries them), else its end."""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 65536))
                text = fh.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        all_lines = text.splitlines()
        errors = [line for line in all_lines if "level=error" in line]
        return "\n".join((errors or all_lines)[-lines:])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the kernel sends SIGKILL to the server when the process that started it dies,
    however it died (SIGKILL included), so no server outlives its parent."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def launch(name: str, args: list[str], *, log: Path, url: str) -> Child:
    """Start ``args`` in a new session with stdout and stderr appended to ``log``."""
    import sys

    with open(log, "wb") as out:  # a relaunch starts a fresh log: old errors would mislead
        popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True,
                                 preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    return Child(name, popen, log, url)


def wait_ready(child: Child, *, deadline: float) -> None:
    """Poll ``/-/ready`` until it answers 200, the child dies, or ``deadline`` passes.

    Raises
    ------
    PortTaken
        The child exited complaining its address is in use (the caller may retry).
    PrometheusUnavailable
        The child exited or did not become ready in time; the message carries its log tail.
    """
    ready = child.url + "/-/ready"
    while True:
        if not child.alive():
            tail = child.log_tail()
            if "address already in use" in tail:
                raise PortTaken(child.url)
            raise PrometheusUnavailable(
                f"{child.name} exited with status {child.popen.returncode} before it was "
                f"ready; its log ({child.log}) says:\n{tail}", url=child.url)
        try:
            with _DIRECT.open(ready, timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or 503 while loading blocks
        if time.monotonic() > deadline:
            raise PrometheusUnavailable(
                f"{child.name} did not become ready at {ready} in time; its log "
                f"({child.log}) says:\n{child.log_tail()}", url=child.url)
        time.sleep(0.05)


def terminate(*children: Child, grace: float = 5.0) -> None:
    """Stop the children's process groups together: SIGTERM, then SIGKILL after ``grace`` seconds.

    Together, so stopping two servers takes as long as the slower one, not the sum.
    """
    # start_new_session made each child a group leader; the group outlives a dead leader
    # only if it forked, which these servers do not, so signalling the group is safe.
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        running = [c.popen for c in children if c.popen.poll() is None]
        for popen in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, sig)
        until = time.monotonic() + wait
        for popen in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=max(0.0, until - time.monotonic()))


def temporary_dir(prefix: str) -> Path:
    """A fresh temporary folder owned by this process; stale ones of dead owners are removed first.

    A parent killed with SIGKILL cannot clean up; its servers die with it (see ``launch``), and
    the next start removes the folder it left.
    """
    import os
    import shutil
    import tempfile

    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{prefix}*"):
        owner = old / "owner.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue  # not ours (or being made right now): leave it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:
            continue
    made = Path(tempfile.mkdtemp(prefix=prefix))
    (made / "owner.pid").write_text(str(os.getpid()))
    return made
