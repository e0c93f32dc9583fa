"""Is a value healthy? Against the config's alert rules where any apply, else the metric's own
default levels (MetricInfo.levels and .better in the registry: hit >= 90%, p99 < 10 ms, memory
< 80%, errors < 1%...).

Pure code (no Textual) so it is tested with plain numbers. Levels: "good", "warn", "bad", or
None (no opinion: no data, or a metric with no healthy direction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from cachetop.engine.config import Config
from cachetop.model import METRICS, InstanceMetrics

log = logging.getLogger(__name__)

Level = str | None


class ColourRule(Protocol):
    """What Health reads of an alert rule (alerts/rules.py Rule, or one a daemon sent)."""

    @property
    def name(self) -> str: ...

    @property
    def metric(self) -> str: ...

    @property
    def op(self) -> str: ...

    @property
    def threshold(self) -> float | str: ...  # a string only for metric = "status": not a colour

    @property
    def severity(self) -> str: ...  # info | warning | critical

    def selects(self, inst: InstanceMetrics) -> bool: ...

    def breaches(self, value: float | str) -> bool: ...


class Health:
    """Judges (instance, metric) values. Built once from the config; cheap per cell."""

    def __init__(self, rules: Sequence[ColourRule] = ()) -> None:
        # Only rules with a number to compare with colour a value.
        self.rules = [r for r in rules if isinstance(r.threshold, int | float)]
        self.ruled_metrics = {r.metric for r in self.rules}

    @classmethod
    def from_config(cls, config: Config) -> Health:
        return cls(rules_of(config))

    def level(self, inst: InstanceMetrics, metric: str, value: float | int | None = None) -> Level:
        if value is None:
            value = inst.metrics.get(metric)
        if value is None:
            return None
        if metric in self.ruled_metrics:
            applicable = [r for r in self.rules if r.metric == metric and r.selects(inst)]
            if applicable:
                worst: Level = "good"
                for rule in applicable:
                    if rule.breaches(value):
                        if rule.severity == "critical":
                            return "bad"
                        worst = "warn" if rule.severity == "info" else "bad"
                return worst
        info = METRICS.get(metric)
        return info.level(float(value)) if info is not None else None

    def threshold_text(self, inst: InstanceMetrics, metric: str) -> str:
        """What a value is judged against, for the help line in the detail view."""
        rules = [r for r in self.rules if r.metric == metric and r.selects(inst)]
        if rules:
            return ", ".join(f"{r.name}: {r.op} {r.threshold:g}" for r in rules)
        info = METRICS.get(metric)
        if info is None or info.levels is None or info.better == "neither":
            return ""
        return f"target {'≥' if info.better == 'higher' else '<'} {info.levels.warn_at:g}"


def rules_of(
    config: Config, loader: Callable[[Config], Sequence[ColourRule]] | None = None
) -> Sequence[ColourRule]:
    """The effective alert rules (presets + user rules) of a config, or () when it has none."""
    sections = config.sections
    if not any(name in sections for name in ("rule", "alerts")):
        return ()
    try:
        if loader is None:
            from cachetop.alerts.presets import effective_rules as loader
        return tuple(loader(config))
    except Exception:  # a config problem is reported by the alert engine; colours fall back
        log.debug("alert rules unavailable for colouring", exc_info=True)
        return tuple(sections.get("rule", ()))
