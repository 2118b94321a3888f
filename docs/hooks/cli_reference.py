"""MkDocs hook: the CLI reference page, generated from the parser the ``reliability`` command uses.

``docs/cli.md`` holds the marker ``<!-- cli-reference -->``; each build replaces it with the
``--help`` of ``reliability`` and of every subcommand, as ``argparse`` formats it (at 100 columns,
so the wrapping does not depend on the terminal that runs ``mkdocs build``). Nothing is copied by
hand, so the page cannot fall behind the options.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = "<!-- cli-reference -->"
PAGE = "cli.md"
COLUMNS = "100"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subparsers here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def reference() -> str:
    """The Markdown of the reference: one section per command, its help in a ``text`` block."""
    from reliability.cli.main import build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = COLUMNS
    try:
        parser = build_parser()
        sections = [("reliability", parser.format_help())]
        sections += [(f"reliability {name}", sub.format_help()) for name, sub in _subcommands(parser).items()]
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(f"## {title}\n\n```text\n{text.rstrip()}\n```\n" for title, text in sections)


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} has lost its {MARKER} marker: the CLI reference would be missing")
    return markdown.replace(MARKER, reference())
