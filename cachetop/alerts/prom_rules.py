"""cachetop's alert rules as Prometheus alerting rules (`cachetop rules export --format prometheus`).

Each rule becomes one alerting rule on the gauge the daemon exports for its metric
(`cachetop_<prom_name>`, exporters/prometheus.py), so Prometheus compares the very numbers the
daemon's own engine compares. What maps how:

    metric, op, threshold   `cachetop_<prom_name>{sel} OP threshold*prom_scale` (Prometheus units)
    instances               globs -> a regex on cache_instance; `tag:NAME` -> cachetop_instance_info{tags}
    for, keep_firing_for    `for:`, `keep_firing_for:` (Prometheus 2.42+), same semantics as the engine
    clear_threshold         `or (value OP clear and on(...) ALERTS{alertname, alertstate="firing"})`:
                            a firing alert stays firing while past the clear threshold
    min_probes (p99...)     `and on(...) cachetop_latency_probes >= N`: too few probes is no data
    no_data = keep_state    `or` the firing ALERTS series while the value is missing: a firing
                            alert stays firing (a pending one restarts its `for`: reported)
    no_data = alerting      `or (cachetop_up unless on(...) value)`
    status (instance_down)  `max without(status) (cachetop_instance_status{status=~...} == 1)`
    (a daemon down)         one more rule, cachetop_daemon_down: `up == 0` for a target that exported
                            cachetop's metrics within the hour, routed like instance_down
    severity, channels      labels `severity`, `channels` (",a,b,": match with =~".*,a,.*"), `rule`
    cooldown, send_resolved Alertmanager routes and receivers (alerts/alertmanager.py)

What has no PromQL or Alertmanager form is listed in `Export.unexpressed` (the command prints it
on stderr and writes it as comments in the file), never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetop.alerts.engine import FLAP_FIRINGS
from cachetop.alerts.presets import INSTANCE_DOWN
from cachetop.alerts.rules import PROBE_COUNT_METRIC, STATUS_METRIC, Rule
from cachetop.model import METRICS, Status

PREFIX = "cachetop_"
GROUP = "cachetop"
# Labels that identify one cache instance as scraped from one daemon.
JOIN = "on(cache_instance, job, instance)"
DAEMON_DOWN = "cachetop_daemon_down"
DAEMON_DOWN_FOR_S = 60.0
RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")
STATUS_VALUES = tuple(s.value for s in Status if s is not Status.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Export:
    groups: list[dict[str, Any]]
    unexpressed: list[str] = field(default_factory=list)  # "rule NAME: what is lost, and how"


def alert_name(rule: Rule) -> str:
    """The `alert:` name: the rule's name (any string is valid, but a metric-like one reads well
    in Alertmanager's matchers and URLs)."""
    return rule.name


def prom_number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def glob_regex(pattern: str) -> str:
    """An fnmatch glob as an RE2 regex (Prometheus anchors label regexes at both ends)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(r"\[")
            else:
                body = pattern[i + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re2_escape(c))
        i += 1
    return "".join(out)


def re2_escape(text: str) -> str:
    """Backslashes before RE2's metacharacters only (Python's re.escape also escapes a space,
    which RE2, Prometheus's regex engine, refuses)."""
    return "".join("\\" + c if c in RE2_SPECIAL else c for c in text)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selected(rule: Rule, metric: str, matchers: str = "") -> str:
    """The series of `metric` (with extra label `matchers`) for the instances the rule selects."""
    names = [glob_regex(p) for p in rule.instances if not p.startswith("tag:")]
    tags = [p[4:] for p in rule.instances if p.startswith("tag:")]
    plain = f"{metric}{{{matchers}}}" if matchers else metric
    parts = []
    if names == [".*"]:
        parts.append(plain)
    elif names:
        inner = ", ".join(x for x in (matchers, f"cache_instance=~{_quote('|'.join(names))}") if x)
        parts.append(f"{metric}{{{inner}}}")
    if tags:
        tag_re = "(.*,)?(" + "|".join(re2_escape(t) for t in tags) + ")(,.*)?"
        parts.append(f"({plain} and {JOIN} {PREFIX}instance_info{{tags=~{_quote(tag_re)}}})")
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _firing(rule: Rule) -> str:
    return f'ALERTS{{alertname={_quote(alert_name(rule))}, alertstate="firing"}}'


def rule_expr(rule: Rule, notes: list[str]) -> str:
    if rule.metric == STATUS_METRIC:
        return _status_expr(rule, notes)
    info = METRICS[rule.metric]
    metric = f"{PREFIX}{info.prom_name or rule.metric}"
    value = selected(rule, metric)
    if info.min_probes:
        probes = METRICS[PROBE_COUNT_METRIC]
        value = f"({value} and {JOIN} {PREFIX}{probes.prom_name or PROBE_COUNT_METRIC} >= {info.min_probes})"
    scale = info.prom_scale or 1.0
    assert isinstance(rule.threshold, float | int)
    parts = [f"{value} {rule.op} {prom_number(rule.threshold * scale)}"]
    if rule.clear_threshold is not None:
        clear = prom_number(rule.clear_threshold * scale)
        parts.append(f"({value} {rule.op} {clear} and {JOIN} {_firing(rule)})")
    if rule.no_data == "keep_state":
        parts.append(f"(max without(alertname, alertstate) ({_firing(rule)}) unless {JOIN} {value})")
        if rule.for_s:
            notes.append(
                "no_data = keep_state: a firing alert stays firing while the value is missing, but a"
                " pending one starts its `for` again (Prometheus drops a pending alert without data)"
            )
    elif rule.no_data == "alerting":
        parts.append(f"({selected(rule, PREFIX + 'up')} unless {JOIN} {value})")
    if info.prom_scale and info.prom_scale != 1.0:
        notes.append(
            f"compared in Prometheus units: {rule.metric} x {prom_number(info.prom_scale)}"
            f" (threshold {rule.threshold:g} {info.unit} -> {prom_number(rule.threshold * scale)})"
        )
    return " or ".join(parts)


def _status_expr(rule: Rule, notes: list[str]) -> str:
    wanted = [s for s in STATUS_VALUES if (s == rule.threshold) == (rule.op == "==")]
    status = selected(rule, f"{PREFIX}instance_status", f"status=~{_quote('|'.join(wanted))}")
    expr = f"max without(status) ({status} == 1)"
    if rule.no_data == "keep_state":
        expr += f" or (max without(alertname, alertstate) ({_firing(rule)}) unless {JOIN} {PREFIX}up)"
    return expr


def rule_entry(rule: Rule, notes: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"alert": alert_name(rule), "expr": rule_expr(rule, notes)}
    if rule.for_s:
        entry["for"] = duration(rule.for_s)
    if rule.keep_firing_for_s:
        entry["keep_firing_for"] = duration(rule.keep_firing_for_s)
    channels = rule.channels or ()
    entry["labels"] = {
        "severity": rule.severity,
        "channels": "," + ",".join(channels) + "," if channels else "",
        "rule": rule.name,
        "origin": rule.origin,
    }
    entry["annotations"] = {
        "summary": f"{{{{ $labels.cache_instance }}}}: {rule.metric} {rule.op} {_threshold_text(rule)}",
        "value": _value_template(rule),
    }
    return entry


def _threshold_text(rule: Rule) -> str:
    if isinstance(rule.threshold, str):
        return rule.threshold
    unit = METRICS[rule.metric].unit
    return f"{rule.threshold:g}%" if unit == "%" else f"{rule.threshold:g} {unit}"


def _value_template(rule: Rule) -> str:
    if rule.metric == STATUS_METRIC:
        return "{{ $labels.cache_instance }} is not up"
    info = METRICS[rule.metric]
    back = prom_number(1 / (info.prom_scale or 1.0))
    return f'{{{{ $value | printf "%.6g" }}}} (x{back} = {info.unit})' if back != "1" else "{{ $value }}"


def duration(seconds: float) -> str:
    """A Prometheus duration: whole milliseconds, in the largest units that divide it."""
    ms = round(seconds * 1000)
    out = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out) or "0s"


FLAPPING_NOTE = (
    f"every rule: cachetop holds back the notices of an alert that fires {FLAP_FIRINGS} times within its"
    " cooldown (flapping); Alertmanager has no such hold-back: its repeat_interval (= cooldown) and"
    " group_interval bound the repeats instead"
)


def daemon_down_rule(channels: Sequence[str]) -> dict[str, Any]:
    """A daemon that stops answering takes its instances out of Prometheus (their alerts hold,
    no new ones start): this one fires for a scrape target that exported cachetop's metrics
    within the last hour and is down now. It goes where instance_down goes."""
    return {
        "alert": DAEMON_DOWN,
        "expr": f"up == 0 and on(job, instance) count_over_time({PREFIX}snapshots_total[1h]) > 0",
        "for": duration(DAEMON_DOWN_FOR_S),
        "labels": {
            "severity": "critical",
            "channels": "," + ",".join(channels) + "," if channels else "",
            "rule": DAEMON_DOWN,
            "origin": "export",
        },
        "annotations": {
            "summary": "cachetop daemon {{ $labels.instance }} (job {{ $labels.job }}) is not scraped:"
            " its instances are not watched",
            "value": "{{ $value }}",
        },
    }


def daemon_down_channels(rules: Sequence[Rule]) -> tuple[str, ...]:
    down = next((r for r in rules if r.name == INSTANCE_DOWN), None)
    return tuple(down.channels or ()) if down is not None else ()


def export_rules(rules: Sequence[Rule], *, group: str = GROUP, interval: str | None = None) -> Export:
    entries, unexpressed = [], []
    for rule in rules:
        notes: list[str] = []
        entries.append(rule_entry(rule, notes))
        unexpressed.extend(f"rule {rule.name}: {n}" for n in notes if _is_loss(n))
    entries.append(daemon_down_rule(daemon_down_channels(rules)))
    if rules:
        unexpressed.append(FLAPPING_NOTE)
    body: dict[str, Any] = {"name": group, "rules": entries}
    if interval:
        body["interval"] = interval
    return Export([body], unexpressed)


def _is_loss(note: str) -> bool:
    """Notes that say something is approximated or missing (the rest only explain a mapping)."""
    return note.startswith("no_data")
