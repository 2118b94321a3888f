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
    inconsistent: tuple[str, ...] = ()  # suites whose summary counts disagree with their cases

    @property
    def ok(self) -> bool:
        """All executed tests passed, at least one test ran, and every suite's counts agree."""
        return self.total > self.skipped and self.failures == 0 and self.errors == 0 and not self.inconsistent

    @property
    def counts(self) -> str:
        """``40 tests: 36 passed, 3 failed, 1 error`` (zero counts other than passed left out)."""
        from reliability.times import plural

        parts = [f"{self.passed:,} passed"] + [text for n, text in (
            (self.failures, f"{self.failures:,} failed"), (self.errors, plural(self.errors, "error")),
            (self.skipped, f"{self.skipped:,} skipped")) if n]
        return f"{plural(self.total, 'test')}: {', '.join(parts)}"

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
    inconsistent: list[str] = []
    total = skipped = 0
    for path in files:
        root = _parse(path)
        if root.tag not in ("testsuites", "testsuite"):
            raise ConfigurationError(f"{path}: root element <{root.tag}> is not <testsuites> or <testsuite>")
        for suite in root.iter("testsuite"):
            mismatch = _disagreement(suite)
            if mismatch:
                inconsistent.append(f"{path.name}: suite {suite.get('name', '?')!r} {mismatch}")
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
                       failures, errors, skipped, failing, tuple(inconsistent))


def _disagreement(suite: ET.Element) -> str:
    """How the suite's ``tests``/``failures``/``errors``/``skipped`` attributes disagree with its
    own ``<testcase>`` elements ("" when they agree or are absent): a stale or edited summary."""
    cases = suite.findall("testcase")
    found = {"tests": len(cases),
             "failures": sum(c.find("failure") is not None for c in cases),
             "errors": sum(c.find("failure") is None and c.find("error") is not None for c in cases),
             "skipped": sum(c.find("failure") is None and c.find("error") is None and c.find("skipped") is not None
                            for c in cases)}
    if suite.find("testsuite") is not None:  # a nesting suite's counts include its children
        return ""
    wrong = []
    for key, n in found.items():
        said = suite.get(key) or (suite.get("disabled") if key == "skipped" else None)
        if said is None:
            continue
        try:
            claimed = int(float(said))
        except ValueError:
            wrong.append(f"{key}={said!r} is not a number")
            continue
        if claimed != n:
            wrong.append(f"says {key}={claimed} but holds {n}")
    return "; ".join(wrong)
