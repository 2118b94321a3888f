"""The production Prometheus config, adapted to serve history; its errors, made readable."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reliability.errors import ConfigurationError, RuleFileError

HISTORY_LABEL = "reliability_served_history"
ALERTMANAGER_YML = """\
# Alerts reach this Alertmanager so the pipeline is proven end to end; nobody is paged.
route:
  receiver: "null"
receivers:
  - name: "null"
"""


def derived_config(config: Path, *, alertmanager: str | None,
                   evaluation_interval: str | None = None) -> dict[str, Any]:
    """Adapt the production ``prometheus.yml`` to serve history from a temporary directory.

    Rule file paths become absolute (Prometheus resolves them against the config file,
    which moves), the Alertmanager target becomes the local one, and scraping and remote
    storage go: we serve recorded history, and must not scrape or write anywhere real.
    ``evaluation_interval``, when given, replaces ``global.evaluation_interval``: a fresh
    Prometheus first evaluates a group only when its interval comes round (up to 30 s
    here), and the rule check waits for that evaluation. Rules evaluated live on a
    history server see no current data, so their cadence changes nothing else; the alert
    backtests take the interval from the file, not from the server.

    Raises
    ------
    ConfigurationError
        The file is missing or is not a YAML mapping.
    """
    import yaml

    config = Path(config)
    try:
        loaded = yaml.safe_load(config.read_text())
    except OSError as exc:
        raise ConfigurationError(f"{config}: cannot read the Prometheus config ({exc}); "
                                 "pass config= with an existing prometheus.yml") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{config}: is not valid YAML ({exc})") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{config}: expected a YAML mapping at the top level")
    derived = {k: v for k, v in loaded.items()
               if k not in ("scrape_configs", "scrape_config_files", "remote_write",
                            "remote_read", "alerting")}
    base = config.resolve().parent
    derived["rule_files"] = [str(base / f) for f in loaded.get("rule_files") or []]
    if alertmanager is not None:
        alerting = {k: v for k, v in (loaded.get("alerting") or {}).items()
                    if k == "alert_relabel_configs"}
        alerting["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
        derived["alerting"] = alerting
    if evaluation_interval is not None:
        derived["global"] = {**(derived.get("global") or {}), "evaluation_interval": evaluation_interval}
    # Says so to whoever asks (/api/v1/status/config): the live rule cadence of a history server is
    # not the cadence the history ran at, so alert replays take the rule file's interval.
    glob = derived.setdefault("global", {}) or {}
    glob["external_labels"] = {**(glob.get("external_labels") or {}), HISTORY_LABEL: "true"}
    derived["global"] = glob
    return derived


# Prometheus logs a bad rule file as: msg="loading groups failed" err="PATH: LINE:COL: message"
_RULE_ERROR = re.compile(
    r'msg="loading groups failed" err="(?P<path>[^:"]+):(?: (?P<line>\d+):\d+:)? ?(?P<msg>.*)"$',
    re.MULTILINE)


def raise_config_error(log: str, config: Path, cause: Exception) -> None:
    """Turn Prometheus' refusal of the config or a rule file into our error classes."""
    m = _RULE_ERROR.search(log)
    if m is not None:
        raise RuleFileError(m["msg"].replace('\\"', '"') + "; check it with `promtool check rules`",
                            path=m["path"], line=int(m["line"]) if m["line"] else None) from cause
    if "error loading config" in log:
        raise ConfigurationError(f"{config}: Prometheus rejected the config (check it with "
                                 f"`promtool check config`):\n{log}") from cause
