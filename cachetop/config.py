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
from urllib.parse import unquote, urlsplit

from cachetop.configfile import ConfigContext, ConfigError, KeyPath, load_toml
from cachetop.redact import register_secret

DEFAULT_INTERVAL = 1.0
DEFAULT_WINDOW = 10.0
DEFAULT_TIMEOUT = 2.0
DEFAULT_TARGETS = ("redis://127.0.0.1:6379", "memcached://127.0.0.1:11211")

SCHEMES = {
    "redis": ("redis", False),
    "rediss": ("redis", True),
    "valkey": ("valkey", False),
    "valkeys": ("valkey", True),
    "memcached": ("memcached", False),
}
# Schemes that name several hosts: a cluster's seeds, or the sentinels that know a master.
MODE_SCHEMES = {
    "redis-cluster": ("redis", False, "cluster"),
    "rediss-cluster": ("redis", True, "cluster"),
    "redis-sentinel": ("redis", False, "sentinel"),
    "rediss-sentinel": ("redis", True, "sentinel"),
}
DEFAULT_PORTS = {"redis": 6379, "valkey": 6379, "memcached": 11211}
SENTINEL_PORT = 26379
URL_FORMS = "redis://[user:password@]host:port[/db], rediss://…, valkey://…, memcached://host:port"
MULTI_HOST_FORMS = "redis-cluster://seed1:port,seed2:port, redis-sentinel://host:26379[,host2:26379]/MASTER"

# Top-level sections parsed elsewhere: name -> "module:function(value, ctx) -> parsed".
SECTION_PARSERS: dict[str, str] = {
    "rule": "cachetop.alerts.rules:parse_rules_section",
    "channel": "cachetop.alerts.channels:parse_channels_section",
    "alerts": "cachetop.alerts.presets:parse_alerts_section",
    "hotkeys": "cachetop.hotkeys_config:parse_hotkeys_section",
}

# Checks that need the whole config (e.g. a rule naming a channel), run after every section
# is parsed: "module:function(config)", raising ConfigError with FILE:LINE.
CROSS_CHECKS: dict[tuple[str, ...], str] = {
    ("rule", "channel", "alerts"): "cachetop.alerts.presets:effective_rules",
}

HOTKEY_SOURCES = ("auto", "off", "hotkeys", "lfu", "monitor", "watch")


@dataclass(frozen=True, slots=True)
class Target:
    """Where an instance lives and how to log in. repr() and str() never show the password."""

    kind: str  # redis | valkey | memcached (valkey is a hint; the server's INFO decides)
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    mode: str = "single"  # single | cluster (host:port is the first seed) | sentinel
    seeds: tuple[tuple[str, int], ...] = ()  # every seed or sentinel, the first one included
    service: str | None = None  # the master's name, for sentinel

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    @property
    def redacted_url(self) -> str:
        scheme = {v: k for k, v in SCHEMES.items() if not v[1]}.get((self.kind, False), self.kind)
        if self.mode != "single":
            scheme = f"redis-{self.mode}"
        if self.tls:
            scheme = scheme.replace("redis", "rediss", 1) if self.mode != "single" else scheme + "s"
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':***' if self.password else ''}@"
        hosts = ",".join(format_address(h, p) for h, p in self.seeds) or self.address
        path = f"/{self.service}" if self.service else (f"/{self.db}" if self.db else "")
        return f"{scheme}://{auth}{hosts}{path}"

    def __str__(self) -> str:
        return self.redacted_url


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_target(url: str) -> Target:
    """Parses a target URL; ValueError messages never contain the password."""
    _register_url_secrets(url)
    if "://" not in url:
        raise ValueError(f"{_redact(url)!r} is not a URL (allowed: {URL_FORMS})")
    if url.split("://", 1)[0].lower() in MODE_SCHEMES:
        return _parse_multi_host(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{_redact(url)!r} has a bad port (allowed: {URL_FORMS})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r} in {_redact(url)!r} (allowed: {URL_FORMS})")
    kind, tls = SCHEMES[scheme]
    host = parts.hostname
    if not host:
        raise ValueError(f"{_redact(url)!r} has no host (allowed: {URL_FORMS})")
    db = 0
    path = parts.path.strip("/")
    if path:
        if kind == "memcached" or not path.isdigit():
            raise ValueError(
                f"{_redact(url)!r}: the path must be a database number like /0 (allowed: {URL_FORMS})"
            )
        db = int(path)
    if parts.query or parts.fragment:
        raise ValueError(f"{_redact(url)!r}: query strings are not supported (allowed: {URL_FORMS})")
    if parts.password:
        register_secret(unquote(parts.password))
    return Target(
        kind=kind,
        host=host,
        port=port or DEFAULT_PORTS[kind],
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def _parse_multi_host(url: str) -> Target:
    """redis-cluster://[auth@]h1:p1,h2:p2 and redis-sentinel://[auth@]h1:p1,h2:p2/MASTER."""
    scheme, rest = url.split("://", 1)
    kind, tls, mode = MODE_SCHEMES[scheme.lower()]
    netloc, _, path = rest.partition("/")
    auth, _, hosts = netloc.rpartition("@")
    default_port = SENTINEL_PORT if mode == "sentinel" else DEFAULT_PORTS[kind]
    seeds: list[tuple[str, int]] = []
    for part in hosts.split(","):
        try:
            parsed = urlsplit(f"redis://{part.strip()}")
            host, port = parsed.hostname, parsed.port
        except ValueError:
            raise ValueError(
                f"{_redact(url)!r} has a bad port in {part!r} (allowed: {MULTI_HOST_FORMS})"
            ) from None
        if not host:
            raise ValueError(f"{_redact(url)!r} has an empty host (allowed: {MULTI_HOST_FORMS})")
        seeds.append((host, port or default_port))
    path = path.strip("/")
    if mode == "sentinel" and (not path or "/" in path):
        raise ValueError(f"{_redact(url)!r}: name the master, as in redis-sentinel://host:26379/mymaster")
    if mode == "cluster" and path not in ("", "0"):
        raise ValueError(f"{_redact(url)!r}: a cluster has only database 0")
    if "?" in path or "#" in path:
        raise ValueError(f"{_redact(url)!r}: query strings are not supported (allowed: {MULTI_HOST_FORMS})")
    username, _, password = auth.partition(":") if auth else ("", "", "")
    if password:
        register_secret(unquote(password))
    return Target(
        kind=kind,
        host=seeds[0][0],
        port=seeds[0][1],
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=tls,
        mode=mode,
        seeds=tuple(seeds),
        service=unquote(path) if mode == "sentinel" else None,
    )


def _redact(url: str) -> str:
    """A URL-like string safe to print: no password (even in a malformed URL), no query string.

    Everything before the last "@" may hold a password (people type "/" and ":" in passwords
    without encoding them), so only a user name before a ":" survives; a query string may hold
    one too, so it is dropped.
    """
    text, query, _ = url.partition("?")
    scheme, sep, rest = text.partition("://") if "://" in text else ("", "", text)
    if "@" in rest:
        auth, _, host = rest.rpartition("@")
        user, colon, _ = auth.partition(":")
        # Without a ":", the one part may be a password typed where a user name goes.
        rest = f"{user}:***@{host}" if colon else f"***@{host}"
    return f"{scheme}{sep}{rest}" + ("?…" if query or url.endswith("?") else "")


def _register_url_secrets(url: str) -> None:
    """Registers anything that may be a password in a URL, before any validation can echo it."""
    text, _, query = url.partition("?")
    rest = text.split("://", 1)[-1]
    if "@" in rest:
        auth = rest.rpartition("@")[0]
        secret = auth.partition(":")[2] if ":" in auth else auth
        for value in (secret, unquote(secret)):
            register_secret(value)
    for part in query.split("&"):
        value = part.partition("=")[2]
        for item in (value, unquote(value)):
            register_secret(item)


@dataclass(frozen=True, slots=True)
class Settings:
    interval: float = DEFAULT_INTERVAL
    window: float = DEFAULT_WINDOW
    timeout: float = DEFAULT_TIMEOUT
    state_dir: Path = field(default_factory=lambda: default_state_dir())


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
        if "channel" in self.sections:
            from cachetop.alerts.channels import alert_secrets

            found.extend(alert_secrets(self))
        return tuple(s for s in found if s)


SETTINGS_KEYS = ("interval", "window", "timeout", "state_dir")
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
    if settings.window < settings.interval:
        ctx.fail(
            (*path, "window"),
            f"window ({settings.window:g}s) must be at least interval ({settings.interval:g}s)",
        )
    return settings


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
    config = Config(path=ctx.path, settings=settings, instances=tuple(instances), sections=sections)
    for names, ref in CROSS_CHECKS.items():
        if any(n in sections for n in names):
            module_name, func_name = ref.split(":")
            getattr(importlib.import_module(module_name), func_name)(config)
    return config


def load_config(path: str | Path) -> Config:
    data, ctx = load_toml(path)
    config = parse_config(data, ctx)
    from cachetop.filemode import warn_if_readable

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


def resolve_config(targets: Sequence[str], config_path: str | None) -> Config:
    """The CLI's rule: targets win; otherwise the first config file found; otherwise the defaults."""
    found = find_config_file(config_path)
    base = load_config(found) if found else None
    if targets:
        return config_from_targets(targets, base if config_path else None)
    if base is not None:
        if not base.instances:
            raise ConfigError(
                f"{found}:1: no [[instance]] tables (add at least one, or give targets on the command line)"
            )
        return base
    return config_from_targets(DEFAULT_TARGETS)
