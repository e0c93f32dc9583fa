"""Is a value healthy? Against the config's alert rules where any apply, else the metric's own
default levels (MetricInfo.levels and .better in the registry: hit >= 90%, p99 < 10 ms, memory
< 80%, errors < 1%...).

Pure code (no Textual) so it is tested with plain numbers. Levels: "good", "warn", "bad", or
None (no opinion: no data, or a metric with no healthy direction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from cachetop.model import METRICS, InstanceMetrics

log = logging.getLogger(__name__)

Level = str | None


class Health:
    """Judges (instance, metric) values. Built once from the config; cheap per cell."""

    def __init__(self, rules: Sequence[Any] = ()) -> None:
        # Rules are duck-typed (metric, op, threshold, severity, selects(), breaches()) so the
        # dashboard works whether or not the alerts package is installed.
        self.rules = [r for r in rules if isinstance(getattr(r, "threshold", None), int | float)]
        self.ruled_metrics = {r.metric for r in self.rules}

    @classmethod
    def from_config(cls, config: Any) -> Health:
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
                        if getattr(rule, "severity", "warning") == "critical":
                            return "bad"
                        worst = "warn" if getattr(rule, "severity", "") == "info" else "bad"
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


def rules_of(config: Any, loader: Callable[[Any], Sequence[Any]] | None = None) -> Sequence[Any]:
    """The effective alert rules (presets + user rules) of a config, or () without an alerts build."""
    sections = getattr(config, "sections", {}) or {}
    if not any(name in sections for name in ("rule", "alerts")):
        return ()
    try:
        if loader is None:
            from cachetop.alerts.presets import effective_rules as loader
        return tuple(loader(config))
    except Exception:  # a config problem is reported by the alert engine; colours fall back
        log.debug("alert rules unavailable for colouring", exc_info=True)
        return tuple(sections.get("rule", ()))
