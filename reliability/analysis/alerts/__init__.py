"""Alert rules as evidence: load and validate rule files, replay alerts over history, judge them.

``load_rules`` reads a Prometheus rule file (errors name file and line); ``backtest``
replays an alerting rule over a window with Prometheus' own state machine; ``alert_quality``
and ``compare_rules`` measure detection against ground-truth incidents.
"""
from __future__ import annotations

from reliability.analysis.alerts.inline import inline_recording_rules
from reliability.analysis.alerts.quality import AlertQuality, alert_quality, compare_rules
from reliability.analysis.alerts.replay import Backtest, backtest, default_recording_rules, evaluation_times
from reliability.analysis.alerts.rules import (
    AlertRule,
    RecordingRule,
    RuleGroup,
    load_rule,
    load_rules,
    recording_rules,
)
from reliability.analysis.alerts.statemachine import run_alert_states

__all__ = [
    "AlertQuality", "AlertRule", "Backtest", "RecordingRule", "RuleGroup", "alert_quality", "backtest",
    "compare_rules", "default_recording_rules", "evaluation_times", "inline_recording_rules", "load_rule",
    "load_rules", "recording_rules", "run_alert_states",
]
