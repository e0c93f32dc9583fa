"""Alert rules: the `[[rule]]` tables, parsed into immutable Rule values.

A rule compares one metric of each selected instance with a threshold. Everything about time
(pending, repeats, hysteresis) lives in engine.py; this module only knows what a rule says.
"""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetop.engine.configfile import ConfigContext, KeyPath
from cachetop.model import METRICS, InstanceMetrics, Status

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
SEVERITIES = ("info", "warning", "critical")
NO_DATA = ("ok", "keep_state", "alerting")
STATUS_METRIC = "status"
STATUS_VALUES = tuple(s.value for s in Status if s is not Status.UNKNOWN)

RULE_KEYS = (
    "name",
    "metric",
    "op",
    "threshold",
    "clear_threshold",
    "for",
    "keep_firing_for",
    "cooldown",
    "severity",
    "instances",
    "channels",
    "send_resolved",
    "no_data",
)

DEFAULT_COOLDOWN = 3600.0
# A probe percentile is no data to a rule until it rests on enough probes to differ from the
# slowest one or two (metrics/latency.py): a p99 of 30 probes flaps with every slow probe. Each
# metric says how many it needs (MetricInfo.min_probes).
PROBE_COUNT_METRIC = "latency_probes"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    metric: str
    op: str
    threshold: float | str  # a string only for metric = "status"
    clear_threshold: float | None = None
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    cooldown_s: float = DEFAULT_COOLDOWN
    severity: str = "warning"
    instances: tuple[str, ...] = ("*",)
    # None: the [alerts] channels (or every configured channel); filled in by presets.effective_rules.
    channels: tuple[str, ...] | None = None
    send_resolved: bool = True
    no_data: str = "keep_state"
    origin: str = "config"  # config | preset:NAME | builtin
    where: str = ""  # FILE:LINE of the rule, for errors found after parsing (unknown channel)

    def breaches(self, value: float | str) -> bool:
        return OPS[self.op](value, self.threshold)

    def still_active(self, value: float | str) -> bool:
        """While firing, hysteresis keeps the alert up until the value crosses clear_threshold."""
        if self.clear_threshold is None:
            return self.breaches(value)
        return OPS[self.op](value, self.clear_threshold)

    def selects(self, inst: InstanceMetrics) -> bool:
        for pattern in self.instances:
            if pattern.startswith("tag:"):
                if pattern[4:] in inst.tags:
                    return True
            elif fnmatch.fnmatchcase(inst.name, pattern):
                return True
        return False

    def value_of(self, inst: InstanceMetrics) -> float | str | None:
        """The value the rule compares; None when there is no data for it."""
        if self.metric == STATUS_METRIC:
            return None if inst.status is Status.UNKNOWN else str(inst.status)
        value = inst.metrics.get(self.metric)
        info = METRICS.get(self.metric)
        needed = info.min_probes if info is not None else 0
        probes = inst.metrics.get(PROBE_COUNT_METRIC) if needed else None
        if probes is not None and probes < needed:
            return None  # too few probes yet for this percentile to mean anything
        return None if value is None else float(value)

    def describe(self) -> str:
        return f"{self.metric} {self.op} {format_threshold(self.threshold)}"


def format_value(metric: str, value: float | str | None) -> str:
    """A measured value for people, with its unit: rounded to the metric's precision
    (MetricInfo.decimals), but a value that is not 0 never reads 0 (0.004% stays 0.004%)."""
    info = METRICS.get(metric)
    if value is None or isinstance(value, str) or info is None:
        return format_threshold(value)
    digits = info.decimals
    while value and round(value, digits) == 0 and digits < 9:
        digits += 1
    return with_unit(f"{value:.{digits}f}", info.unit)


def format_limit(metric: str, value: float | str | None) -> str:
    """A threshold as the rule wrote it (never rounded: 0.005 stays 0.005), with the unit."""
    info = METRICS.get(metric)
    if value is None or isinstance(value, str) or info is None:
        return format_threshold(value)
    return with_unit(format_threshold(value), info.unit)


def with_unit(number: str, unit: str) -> str:
    return f"{number}%" if unit == "%" else f"{number} {unit}"


def format_threshold(value: float | str | None) -> str:
    if value is None:
        return "no data"
    if isinstance(value, str):
        return value
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"


def parse_rules_section(value: Any, ctx: ConfigContext) -> tuple[Rule, ...]:
    """`[[rule]]` -> Rules. Channel names are checked later, against [channel.*] (presets.effective_rules)."""
    if not isinstance(value, list):
        ctx.fail(("rule",), "rule must be an array of tables: write [[rule]] (not [rule])")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(value):
        rule = parse_rule(raw, ("rule", index), ctx)
        if rule.name in seen:
            ctx.fail(
                ("rule", index, "name"),
                f"duplicate rule name {rule.name!r}"
                f" (first used at {ctx.where(('rule', seen[rule.name], 'name'))};"
                " names must be unique)",
            )
        seen[rule.name] = index
        rules.append(rule)
    return tuple(rules)


def parse_rule(raw: Any, path: KeyPath, ctx: ConfigContext) -> Rule:
    table = ctx.table(raw, path)
    ctx.check_keys(table, RULE_KEYS, path)
    number = f"[[rule]] number {int(path[-1]) + 1}" if isinstance(path[-1], int) else "the rule"
    for required in ("name", "metric", "op", "threshold"):
        if required not in table:
            ctx.fail(path, f"{number} has no {required!r} (name, metric, op and threshold are required)")
    name = ctx.string(table["name"], (*path, "name")).strip()
    if not name:
        ctx.fail((*path, "name"), "name must not be empty")
    metric = ctx.string(table["metric"], (*path, "metric"), choices=(*METRICS, STATUS_METRIC))
    op = ctx.string(table["op"], (*path, "op"), choices=OPS)
    threshold = _threshold(table["threshold"], metric, op, (*path, "threshold"), ctx)
    clear: float | None = None
    if "clear_threshold" in table:
        clear = _clear_threshold(
            table["clear_threshold"], metric, op, threshold, (*path, "clear_threshold"), ctx
        )
    kwargs: dict[str, Any] = {}
    if "for" in table:
        kwargs["for_s"] = ctx.duration(table["for"], (*path, "for"), allow_zero=True)
    if "keep_firing_for" in table:
        kwargs["keep_firing_for_s"] = ctx.duration(
            table["keep_firing_for"], (*path, "keep_firing_for"), allow_zero=True
        )
    if "cooldown" in table:
        kwargs["cooldown_s"] = ctx.duration(table["cooldown"], (*path, "cooldown"))
    if "severity" in table:
        kwargs["severity"] = ctx.string(table["severity"], (*path, "severity"), choices=SEVERITIES)
    if "instances" in table:
        kwargs["instances"] = _patterns(table["instances"], (*path, "instances"), ctx)
    if "channels" in table:
        channels = ctx.string_list(table["channels"], (*path, "channels"))
        kwargs["channels"] = channels
    if "send_resolved" in table:
        kwargs["send_resolved"] = ctx.boolean(table["send_resolved"], (*path, "send_resolved"))
    if "no_data" in table:
        kwargs["no_data"] = ctx.string(table["no_data"], (*path, "no_data"), choices=NO_DATA)
    return Rule(
        name=name,
        metric=metric,
        op=op,
        threshold=threshold,
        clear_threshold=clear,
        where=ctx.where((*path, "channels") if "channels" in table else path),
        **kwargs,
    )


def _threshold(value: Any, metric: str, op: str, path: KeyPath, ctx: ConfigContext) -> float | str:
    if metric == STATUS_METRIC:
        if op not in ("==", "!="):
            ctx.fail((*path[:-1], "op"), f'metric = "status" compares with == or != only, not {op!r}')
        return ctx.string(value, path, choices=STATUS_VALUES)
    return ctx.number(value, path)


def _clear_threshold(
    value: Any, metric: str, op: str, threshold: float | str, path: KeyPath, ctx: ConfigContext
) -> float:
    if metric == STATUS_METRIC or op in ("==", "!="):
        ctx.fail(path, f"clear_threshold needs op <, <=, > or >= on a numeric metric (this rule uses {op!r})")
    clear = ctx.number(value, path)
    assert isinstance(threshold, float)
    # Hysteresis must widen the alert band, or the alert would clear while still breaching.
    if op in ("<", "<=") and clear < threshold:
        ctx.fail(
            path, f"clear_threshold ({clear:g}) must be at least threshold ({threshold:g}) when op is {op!r}"
        )
    if op in (">", ">=") and clear > threshold:
        ctx.fail(
            path, f"clear_threshold ({clear:g}) must be at most threshold ({threshold:g}) when op is {op!r}"
        )
    return clear


def _patterns(value: Any, path: KeyPath, ctx: ConfigContext) -> tuple[str, ...]:
    patterns = ctx.string_list(value, path)
    if not patterns:
        ctx.fail(path, 'instances must not be empty (use ["*"] for every instance)')
    for pattern in patterns:
        if pattern == "tag:" or not pattern.strip():
            ctx.fail(path, f'{pattern!r} is not a pattern (allowed: a glob like "cache-*", or "tag:NAME")')
    return patterns


def select(rules: Sequence[Rule], name: str) -> Rule | None:
    for rule in rules:
        if rule.name == name:
            return rule
    return None
