"""The `[alerts]` table, the industry presets and the built-in instance_down rule.

`effective_rules` is the one place that merges presets, the built-in and the user's [[rule]]s
(a user's rule with the same name wins) and checks every channel a rule names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from cachetop.alerts.channels import channels_of
from cachetop.alerts.rules import Rule
from cachetop.engine.configfile import ConfigContext, ConfigError, KeyPath
from cachetop.model import METRICS

# Each preset's targets, by metric: the metric's PresetRule in the registry (metrics/builtin.py)
# gives the rule's name, severity and hysteresis, its `better` the comparison. A preset without
# a metric has no target for it (only some know their memory budget).
PRESETS: dict[str, dict[str, float]] = {
    "ecommerce": {"hit_ratio": 90, "latency_p99_ms": 50, "memory_used_pct": 80},
    "social_media": {"hit_ratio": 85, "latency_p99_ms": 100, "memory_used_pct": 85},
    "gaming": {"hit_ratio": 95, "latency_p99_ms": 20, "memory_used_pct": 90},
    "iot": {"hit_ratio": 80, "latency_p99_ms": 200, "memory_used_pct": 70},
    "web": {"hit_ratio": 90, "latency_p99_ms": 50},
    "api": {"hit_ratio": 85, "latency_p99_ms": 100},
    "database": {"hit_ratio": 95, "latency_p99_ms": 10},
    "cdn": {"hit_ratio": 98, "latency_p99_ms": 30},
}

ALERTS_KEYS = ("preset", "channels", "instance_down", "instance_down_for", "delivery_deadline")
PRESET_FOR = 300.0  # a target missed for 5 minutes, not a blip
PRESET_COOLDOWN = 3600.0
INSTANCE_DOWN = "instance_down"


@dataclass(frozen=True, slots=True)
class AlertSettings:
    preset: str | None = None
    channels: tuple[str, ...] | None = None  # None: every configured channel
    instance_down: bool = True
    instance_down_for: float = 10.0
    # How long an undeliverable notification is retried before it is given up (and shown as failed).
    delivery_deadline: float = 86400.0
    where: str = ""


def parse_alerts_section(value: Any, ctx: ConfigContext) -> AlertSettings:
    path: KeyPath = ("alerts",)
    table = ctx.table(value, path)
    ctx.check_keys(table, ALERTS_KEYS, path)
    settings = AlertSettings(where=ctx.where((*path, "channels") if "channels" in table else path))
    if "preset" in table:
        settings = replace(settings, preset=ctx.string(table["preset"], (*path, "preset"), choices=PRESETS))
    if "channels" in table:
        settings = replace(settings, channels=ctx.string_list(table["channels"], (*path, "channels")))
    if "instance_down" in table:
        settings = replace(
            settings, instance_down=ctx.boolean(table["instance_down"], (*path, "instance_down"))
        )
    if "instance_down_for" in table:
        down_for = ctx.duration(table["instance_down_for"], (*path, "instance_down_for"), allow_zero=True)
        settings = replace(settings, instance_down_for=down_for)
    if "delivery_deadline" in table:
        deadline = ctx.duration(table["delivery_deadline"], (*path, "delivery_deadline"))
        settings = replace(settings, delivery_deadline=deadline)
    return settings


def preset_rules(preset: str) -> tuple[Rule, ...]:
    """The documented rules of one preset, in registry order; hysteresis keeps a value hovering
    at the target quiet."""
    targets = PRESETS[preset]
    rules = []
    for name, info in METRICS.items():
        if info.preset is None or name not in targets or info.better == "neither":
            continue
        threshold = targets[name]
        rules.append(
            Rule(
                name=info.preset.name,
                metric=name,
                op="<" if info.better == "higher" else ">",
                threshold=threshold,
                clear_threshold=info.preset.clear(threshold),
                for_s=PRESET_FOR,
                cooldown_s=PRESET_COOLDOWN,
                severity=info.preset.severity,
                no_data="keep_state",
                origin=f"preset:{preset}",
            )
        )
    return tuple(rules)


def instance_down_rule(down_for: float) -> Rule:
    return Rule(
        name=INSTANCE_DOWN,
        metric="status",
        op="!=",
        threshold="up",
        for_s=down_for,
        cooldown_s=PRESET_COOLDOWN,
        severity="critical",
        # A vanished instance is not a recovered one.
        no_data="keep_state",
        origin="builtin",
    )


def alert_settings(config: Any) -> AlertSettings:
    return config.sections.get("alerts") or AlertSettings()


def effective_rules(config: Any) -> tuple[Rule, ...]:
    """Built-in + preset + user rules, user rules winning by name, every channel list resolved.

    Raises ConfigError (FILE:LINE: ...) for a channel name that no [channel.*] defines.
    """
    settings = alert_settings(config)
    channels = channels_of(config)
    default_channels = settings.channels if settings.channels is not None else tuple(channels)
    for name in default_channels:
        if name not in channels:
            raise ConfigError(
                f"{settings.where}: [alerts] channels names {name!r}, which is not defined {_known(channels)}"
            )
    merged: dict[str, Rule] = {}
    if settings.instance_down:
        merged[INSTANCE_DOWN] = instance_down_rule(settings.instance_down_for)
    if settings.preset:
        merged.update({r.name: r for r in preset_rules(settings.preset)})
    for rule in config.sections.get("rule") or ():
        merged[rule.name] = rule
    resolved: list[Rule] = []
    for rule in merged.values():
        if rule.channels is None:
            rule = replace(rule, channels=default_channels)
        for name in rule.channels or ():
            if name not in channels:
                raise ConfigError(
                    f"{rule.where}: rule {rule.name!r} names channel {name!r},"
                    f" which is not defined {_known(channels)}"
                )
        resolved.append(rule)
    return tuple(resolved)


def _known(channels: dict[str, Any]) -> str:
    if not channels:
        return "(add a [channel.NAME] table)"
    return f"(defined: {', '.join(sorted(channels))})"
