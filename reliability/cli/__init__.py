"""The ``reliability`` command and what only commands need: the options, ``init``'s scaffold, ``serve``.

:mod:`.main` parses and dispatches, :mod:`.options` holds the shared vocabulary (exit codes,
examples, the proof's options), :mod:`.scaffold` writes a repository's files (``init``) and
:mod:`.serve` answers Argo Rollouts and Flagger over HTTP.
"""
from __future__ import annotations

from reliability.cli.main import main

__all__ = ["main"]
