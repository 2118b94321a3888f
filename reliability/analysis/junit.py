"""Regression-test evidence from JUnit XML, as pytest, Jest (jest-junit) and Maven Surefire write it.

The seed forbids a redeploy until the regression tests pass on the new version, so
the counts come from the ``<testcase>`` elements themselves (suite attributes are
sometimes stale or missing), and a missing file or zero tests is never a pass.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reliability.errors import ConfigurationError


@dataclass(frozen=True)
class JUnitResult:
    """Totals over all files and the list of tests that did not pass."""

    files: tuple[str, ...]
    total: int
    passed: int
    failures: int
    errors: int
    skipped: int
    failing: pd.DataFrame  # file, suite, classname, name, kind, message

    @property
    def ok(self) -> bool:
        """All executed tests passed and at least one test ran."""
        return self.total > self.skipped and self.failures == 0 and self.errors == 0

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{"files": len(self.files), "tests": self.total, "passed": self.passed,
                              "failures": self.failures, "errors": self.errors, "skipped": self.skipped}])


def _parse(path: Path) -> ET.Element:
    if not path.exists():
        raise ConfigurationError(f"JUnit file {path} does not exist; pass the XML your test runner wrote")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else "?"
        raise ConfigurationError(f"{path}:{line}: not valid JUnit XML ({exc})") from None


def read_junit(paths: Iterable[str | Path]) -> JUnitResult:
    """Read one or more JUnit XML files (``<testsuites>`` or a bare ``<testsuite>`` root)."""
    files = [Path(p) for p in paths]
    rows: list[dict[str, str]] = []
    total = skipped = 0
    for path in files:
        root = _parse(path)
        if root.tag not in ("testsuites", "testsuite"):
            raise ConfigurationError(f"{path}: root element <{root.tag}> is not <testsuites> or <testsuite>")
        for suite in root.iter("testsuite"):
            for case in suite.findall("testcase"):
                total += 1
                outcome = None
                for kind in ("failure", "error", "skipped"):
                    el = case.find(kind)
                    if el is not None:
                        outcome = (kind, el)
                        break
                if outcome is None:
                    continue
                kind, el = outcome
                if kind == "skipped":
                    skipped += 1
                    continue
                message = el.get("message") or (el.text or "").strip().splitlines()[0:1]
                rows.append({
                    "file": str(path), "suite": suite.get("name", ""), "classname": case.get("classname", ""),
                    "name": case.get("name", ""), "kind": kind,
                    "message": message if isinstance(message, str) else " ".join(message),
                })
    failing = pd.DataFrame(rows, columns=["file", "suite", "classname", "name", "kind", "message"])
    failures = int((failing["kind"] == "failure").sum())
    errors = int((failing["kind"] == "error").sum())
    return JUnitResult(tuple(map(str, files)), total, total - failures - errors - skipped,
                       failures, errors, skipped, failing)
