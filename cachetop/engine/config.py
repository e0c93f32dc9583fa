"""TOML and command-line targets -> a typed, validated Config.

Sections owned by other parts of cachetop (alert rules, channels, ...) are parsed by the
functions named in SECTION_PARSERS, so this module stays the one gatekeeper for unknown keys
without knowing every feature's schema.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cachetop.engine.configfile import ConfigContext, ConfigError, KeyPath, load_toml
from cachetop.engine.targets import (
    Target,
    parse_target,
)
from cachetop.util.redact import register_secret

DEFAULT_INTERVAL = 1.0
DEFAULT_WINDOW = 10.0
DEFAULT_TIMEOUT = 2.0
DEFAULT_TARGETS = ("redis://127.0.0.1:6379", "memcached://127.0.0.1:11211")

# Top-level sections parsed elsewhere: name -> "module:function(value, ctx) -> parsed".
SECTION_PARSERS: dict[str, str] = {
    "rule": "cachetop.alerts.rules:parse_rules_section",
    "channel": "cachetop.alerts.channels:parse_channels_section",
    "alerts": "cachetop.alerts.presets:parse_alerts_section",
    "hotkeys": "cachetop.hotkeys.config:parse_hotkeys_section",
    "history": "cachetop.history.config:parse_history_section",
    "warm": "cachetop.history.config:parse_warm_section",
    "keyspace": "cachetop.analysis.keyspace.config:parse_keyspace_section",
    "inventory": "cachetop.engine.inventory:parse_inventory_section",
}

# Checks that need the whole config (e.g. a rule naming a channel), run after every section
# is parsed: "module:function(config)", raising ConfigError with FILE:LINE.
CROSS_CHECKS: dict[tuple[str, ...], str] = {
    ("rule", "channel", "alerts"): "cachetop.alerts.presets:effective_rules",
}

HOTKEY_SOURCES = ("auto", "off", "hotkeys", "lfu", "monitor", "watch")


@dataclass(frozen=True, slots=True)
class Settings:
    interval: float = DEFAULT_INTERVAL
    window: float = DEFAULT_WINDOW
    timeout: float = DEFAULT_TIMEOUT
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    # "light": no hot-key sampling anywhere (production); see docs/fleets.md "What cachetop costs".
    profile: str = "default"
    # The daemon's /api/v1 (exporters/api.py, docs/api.md): viewers' token, the separate token
    # for actions, and TLS for its HTTP port. None: no API / no actions / plain HTTP.
    api_token: str | None = None
    action_token: str | None = None
    api_tls_cert: str | None = None
    api_tls_key: str | None = None


PROFILES = ("default", "light")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cachetop"


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    name: str
    target: Target
    tags: tuple[str, ...] = ()
    interval: float | None = None  # None: use settings.interval
    timeout: float | None = None
    hotkeys: str = "auto"
    read_only: bool = False
    cluster: bool = False
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_verify: bool = True


@dataclass(frozen=True, slots=True)
class Config:
    path: str | None  # None: built from command-line targets or defaults
    settings: Settings
    instances: tuple[InstanceConfig, ...]
    # Parsed sections owned by other modules, keyed by section name (see SECTION_PARSERS).
    sections: Mapping[str, Any] = field(default_factory=dict)

    def interval_of(self, inst: InstanceConfig) -> float:
        return inst.interval or self.settings.interval

    def timeout_of(self, inst: InstanceConfig) -> float:
        return inst.timeout or self.settings.timeout

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret the config holds, so output can be scrubbed of them as a last line of defence."""
        found = [i.target.password for i in self.instances if i.target.password]
        found += [t for t in (self.settings.api_token, self.settings.action_token) if t]
        if "channel" in self.sections:
            from cachetop.alerts.channels import alert_secrets

            found.extend(alert_secrets(self))
        return tuple(s for s in found if s)


API_SETTINGS = ("api_token", "action_token", "api_tls_cert", "api_tls_key")
SETTINGS_KEYS = ("interval", "window", "timeout", "state_dir", "profile", *API_SETTINGS)
INSTANCE_KEYS = (
    "name",
    "url",
    "username",
    "password",
    "tags",
    "interval",
    "timeout",
    "hotkeys",
    "read_only",
    "cluster",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "tls_verify",
)
TOP_KEYS = ("settings", "instance", "plugin_paths", *SECTION_PARSERS)


def parse_settings(raw: Any, ctx: ConfigContext) -> Settings:
    path: KeyPath = ("settings",)
    table = ctx.table(raw, path)
    ctx.check_keys(table, SETTINGS_KEYS, path)
    settings = Settings()
    if "interval" in table:
        settings = replace(settings, interval=ctx.duration(table["interval"], (*path, "interval")))
    if "window" in table:
        settings = replace(settings, window=ctx.duration(table["window"], (*path, "window")))
    if "timeout" in table:
        settings = replace(settings, timeout=ctx.duration(table["timeout"], (*path, "timeout")))
    if "state_dir" in table:
        state = ctx.string(table["state_dir"], (*path, "state_dir"))
        settings = replace(settings, state_dir=Path(state).expanduser())
    if "profile" in table:
        profile = ctx.string(table["profile"], (*path, "profile"), choices=PROFILES)
        settings = replace(settings, profile=profile)
    for key in API_SETTINGS:
        if key in table:
            value = ctx.string(table[key], (*path, key))
            if key.endswith("_token"):
                if len(value) < 16:
                    ctx.fail((*path, key), f"{key} must be at least 16 characters (`openssl rand -hex 24`)")
                register_secret(value)
            settings = replace(settings, **{key: value})
    if bool(settings.api_tls_cert) != bool(settings.api_tls_key):
        ctx.fail((*path, "api_tls_cert"), "api_tls_cert and api_tls_key go together: give both or neither")
    problem = window_problem(settings)
    if problem:
        ctx.fail((*path, "window"), problem)
    return settings


def window_problem(settings: Settings) -> str | None:
    """The window rule, one check for the file and the command line alike: a window holds at
    least one poll. None when the settings keep it."""
    if settings.window < settings.interval:
        return (
            f"window ({settings.window:g}s) must be at least interval ({settings.interval:g}s): "
            "rates need a poll at each end of the window"
        )
    return None


def parse_instance(raw: Any, index: int, ctx: ConfigContext) -> InstanceConfig:
    path: KeyPath = ("instance", index)
    table = ctx.table(raw, path)
    ctx.check_keys(table, INSTANCE_KEYS, path)
    for required in ("name", "url"):
        if required not in table:
            ctx.fail(path, f"[[instance]] number {index + 1} has no {required!r} (name and url are required)")
    name = ctx.string(table["name"], (*path, "name")).strip()
    if not name:
        ctx.fail((*path, "name"), "name must not be empty")
    url = ctx.string(table["url"], (*path, "url"))
    try:
        target = parse_target(url)
    except ValueError as exc:
        ctx.fail((*path, "url"), str(exc))
    if "username" in table:
        target = replace(target, username=ctx.string(table["username"], (*path, "username")))
    if "password" in table:
        target = replace(target, password=ctx.string(table["password"], (*path, "password")))
        register_secret(target.password)
    if target.kind == "memcached" and (target.username or target.password):
        ctx.fail((*path, "url"), "memcached targets take no username or password (SASL is not supported)")
    inst = InstanceConfig(name=name, target=target, cluster=target.mode == "cluster")
    if "tags" in table:
        inst = replace(inst, tags=ctx.string_list(table["tags"], (*path, "tags")))
    if "interval" in table:
        inst = replace(inst, interval=ctx.duration(table["interval"], (*path, "interval")))
    if "timeout" in table:
        inst = replace(inst, timeout=ctx.duration(table["timeout"], (*path, "timeout")))
    if "hotkeys" in table:
        inst = replace(inst, hotkeys=ctx.string(table["hotkeys"], (*path, "hotkeys"), choices=HOTKEY_SOURCES))
    for flag in ("read_only", "cluster", "tls_verify"):
        if flag in table:
            inst = replace(inst, **{flag: ctx.boolean(table[flag], (*path, flag))})
    for file_key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        if file_key in table:
            inst = replace(inst, **{file_key: ctx.string(table[file_key], (*path, file_key))})
    return inst


def parse_config(data: Mapping[str, Any], ctx: ConfigContext) -> Config:
    ctx.check_keys(data, TOP_KEYS, ())
    data = ctx.expand_env(dict(data), ())
    settings = parse_settings(data.get("settings", {}), ctx)
    raw_instances = data.get("instance", [])
    if not isinstance(raw_instances, list):
        ctx.fail(("instance",), "instance must be an array of tables: write [[instance]] (not [instance])")
    instances: list[InstanceConfig] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_instances):
        inst = parse_instance(raw, index, ctx)
        if inst.name in seen:
            first = ctx.where(("instance", seen[inst.name], "name"))
            ctx.fail(
                ("instance", index, "name"),
                f"duplicate instance name {inst.name!r} (first used at {first}; names must be unique)",
            )
        seen[inst.name] = index
        instances.append(inst)
    sections: dict[str, Any] = {}
    if "plugin_paths" in data:
        sections["plugin_paths"] = ctx.string_list(data["plugin_paths"], ("plugin_paths",))
    for name, ref in SECTION_PARSERS.items():
        if name in data:
            module_name, func_name = ref.split(":")
            try:
                parser = getattr(importlib.import_module(module_name), func_name)
            except (ImportError, AttributeError):
                ctx.fail((name,), f"[{name}] is not supported by this build of cachetop")
            sections[name] = parser(data[name], ctx)
    if "inventory" in sections:  # targets from file_sd files (engine/inventory.py), after [[instance]]
        problems: list[str] = []
        taken = {name: ctx.where(("instance", index, "name")) for name, index in seen.items()}
        instances += sections["inventory"].instances(taken, problems.append)
        if problems:
            raise ConfigError(problems[0])
    config = Config(path=ctx.path, settings=settings, instances=tuple(instances), sections=sections)
    for names, ref in CROSS_CHECKS.items():
        if any(n in sections for n in names):
            module_name, func_name = ref.split(":")
            getattr(importlib.import_module(module_name), func_name)(config)
    return config


def load_config(path: str | Path) -> Config:
    data, ctx = load_toml(path)
    config = parse_config(data, ctx)
    from cachetop.util.filemode import warn_if_readable

    warn_if_readable(path, config.secrets)
    return config


def find_config_file(explicit: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """--config, then $CACHETOP_CONFIG, then ./cachetop.toml, then $XDG_CONFIG_HOME/cachetop/config.toml."""
    env = os.environ if env is None else env
    if explicit:
        return explicit
    if env.get("CACHETOP_CONFIG"):
        return env["CACHETOP_CONFIG"]
    if Path("cachetop.toml").is_file():
        return "cachetop.toml"
    xdg = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    candidate = Path(xdg) / "cachetop" / "config.toml"
    if candidate.is_file():
        return str(candidate)
    return None


def config_from_targets(urls: Sequence[str], base: Config | None = None) -> Config:
    """Instances named host:port from URLs; settings and sections from `base` when given."""
    instances = []
    seen: set[str] = set()
    for url in urls:
        try:
            target = parse_target(url)
        except ValueError as exc:
            raise ConfigError(f"target: {exc}") from None
        name = target.address
        if target.db:
            name += f"/{target.db}"
        if name in seen:
            raise ConfigError(f"target: {name} is given twice")
        seen.add(name)
        instances.append(InstanceConfig(name=name, target=target, cluster=target.mode == "cluster"))
    settings = base.settings if base else Settings()
    sections = base.sections if base else {}
    return Config(
        path=base.path if base else None, settings=settings, instances=tuple(instances), sections=sections
    )


def apply_profile(config: Config, profile: str | None = None) -> Config:
    """The `light` profile (`[settings] profile = "light"` or --light) turns hot-key sampling off
    on every instance: cachetop then holds 2 connections per instance and sends only its polls."""
    profile = profile or config.settings.profile
    if profile != "light":
        return config
    instances = tuple(replace(i, hotkeys="off") for i in config.instances)
    return replace(config, settings=replace(config.settings, profile=profile), instances=instances)


def resolve_config(targets: Sequence[str], config_path: str | None) -> Config:
    """The CLI's rule: targets win; otherwise the first config file found; otherwise the defaults."""
    found = find_config_file(config_path)
    base = load_config(found) if found else None
    if targets:
        return apply_profile(config_from_targets(targets, base if config_path else None))
    if base is not None:
        if not base.instances and "inventory" not in base.sections:
            raise ConfigError(
                f"{found}:1: no [[instance]] tables (add at least one, or give targets on the command line)"
            )
        return apply_profile(base)
    return config_from_targets(DEFAULT_TARGETS)
