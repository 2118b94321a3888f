"""The repository's gate settings: ``reliability.toml`` (or ``[tool.reliability]`` in pyproject.toml).

``reliability init`` writes one, so the CI command line stays short; options on the command
line win over the file. Credentials never go here: they come from the environment.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from reliability import paths
from reliability.errors import ConfigurationError
from reliability.gate.params import DEFAULT_DEPENDENCIES  # the directive's four, as breaker names
from reliability.source.breaker_metrics import BreakerMetrics
from reliability.source.breaker_metrics import resolve as resolve_breakers
from reliability.source.sli import Sli, resolve

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib



@dataclass(frozen=True)
class Settings:
    """What a repository pins for its gate; every field has the default a bare run uses."""

    job: str = ""
    selector: str = ""
    sli_table: Mapping[str, Any] = field(default_factory=dict)  # [sli]: a preset and its overrides
    breakers_table: Mapping[str, Any] = field(default_factory=dict)  # [breakers]: the breaker library's metrics
    rules: str = "monitoring/alerts.yml"
    dashboard: str = "monitoring/grafana-dashboard.json"
    junit: tuple[str, ...] = ()
    confidence: float = 0.95
    dependencies: tuple[str, ...] = DEFAULT_DEPENDENCIES
    source: str = field(default="", compare=False)  # the file these came from, for messages
    notes: tuple[str, ...] = field(default=(), compare=False)  # deprecations to tell the user

    def sli(self, preset: str | None = None) -> Sli:
        """The SLI the settings name (``--sli PRESET`` replaces the preset, the table's overrides stay)."""
        table = self.sli_table
        if preset is not None and table.get("preset", "seed") != preset:
            table = {}  # another preset's overrides do not apply to this one
        return resolve(table, preset=preset, where=f"{self.source or 'the settings'} [sli]")

    def breakers(self, preset: str | None = None) -> BreakerMetrics:
        """The breaker library's metrics (``--breakers PRESET`` replaces the preset, as ``--sli`` does)."""
        table = self.breakers_table
        if preset is not None and table.get("preset", "seed") != preset:
            table = {}
        return resolve_breakers(table, preset=preset, where=f"{self.source or 'the settings'} [breakers]")

    @property
    def scope(self) -> str:
        """The selector, or ``job="<job>"`` when only the job is given."""
        if self.selector:
            return self.selector
        from reliability.source.promql import matcher

        return matcher("job", self.job) if self.job else ""


_KEYS = {f.name for f in fields(Settings)} - {"source", "notes", "sli_table", "breakers_table"} | {
    "sli", "breakers", "version_label"}


def load(root: str | Path | None = None) -> Settings:
    """The settings of the repository at ``root`` (default: the current directory)."""
    base = paths.repo(root)
    own, project = base / paths.CONFIG_NAME, base / "pyproject.toml"
    if own.exists():
        return _settings(_read(own), own)
    if project.exists():
        table = _read(project).get("tool", {}).get("reliability")
        if table is not None:
            return _settings(table, project)
    return Settings()


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the settings ({exc}); fix the TOML") from None


def _settings(table: dict[str, Any], path: Path) -> Settings:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigurationError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    values: dict[str, Any] = {}
    notes = []
    sli = table.get("sli", {})
    if not isinstance(sli, dict):
        raise ConfigurationError(f"{path}: sli must be a table ([sli] with preset = \"otel\", ...)")
    sli = dict(sli)
    if "version_label" in table:  # its place before [sli]
        if "version_label" in sli:
            notes.append(f"{path}: the top-level version_label is ignored: [sli] version_label wins; remove it")
        else:
            sli["version_label"] = table["version_label"]
            notes.append(f"{path}: version_label belongs in [sli] now; move it there (it is read from the top "
                         "level for now)")
    resolve(sli, where=f"{path} [sli]")  # a bad table is a usage error now, before any work
    breakers = table.get("breakers", {})
    if not isinstance(breakers, dict):
        raise ConfigurationError(f"{path}: breakers must be a table ([breakers] with preset = \"opossum\", ...)")
    resolve_breakers(breakers, where=f"{path} [breakers]")
    for key, value in table.items():
        if key in ("sli", "breakers", "version_label"):
            continue
        if key in ("junit", "dependencies"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigurationError(f"{path}: {key} must be a list of strings")
            value = tuple(value)
        elif key == "confidence":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigurationError(f"{path}: confidence must be a number such as 0.95")
            value = float(value)
        elif not isinstance(value, str):
            raise ConfigurationError(f"{path}: {key} must be a string")
        values[key] = value
    return Settings(**values, sli_table=sli, breakers_table=dict(breakers), source=str(path), notes=tuple(notes))
